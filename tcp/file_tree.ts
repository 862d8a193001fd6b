/**
 * What the file client sends: the files named on its command line and the
 * trees of the folders named there, walked into a list of entries. Links
 * inside a folder are not followed unless asked (`--follow-links`); they
 * are skipped and reported, as are other special files, unreadable
 * folders, and names that would collide on a case-insensitive file
 * system.
 *
 * @module
 */
import { basename, join } from "node:path";
import { UserError } from "../lib/core/errors.ts";
import { describeError } from "../lib/io/errors.ts";

/** One thing to send: a file, or an empty folder of a tree. */
export interface Entry {
  /** Where to read it (a file; unset for an empty folder). */
  source?: string;
  /** The name sent: the file's, or the folder's for a tree entry. */
  name: string;
  /** A tree entry's path below its folder, one string per component. */
  parts?: string[];
  /** `"dir"` for an empty folder of a tree. */
  kind?: "dir";
  /** Size in bytes when walked. */
  size: number;
  /** Permission bits. */
  mode?: number;
  /** Modification time, ms (tree entries: names a cut entry's partial data). */
  mtime?: number;
}

/** A walk's result. */
export interface Walk {
  /** What to send, folders' entries in a stable order (sorted by name). */
  entries: Entry[];
  /** One line for each thing not sent: links, special files, unreadable folders. */
  skipped: string[];
  /** One line for each pair of names that differ only in case. */
  collisions: string[];
  /** Folders walked, by the name they are sent under, with how many entries each gave. */
  folders: { name: string; entries: number }[];
}

/** Options of {@link walkSources}. */
export interface WalkOptions {
  /** Send what links inside folders point to (else skip and report them). */
  followLinks?: boolean;
}

/**
 * Walks the paths named on the command line: files become entries of
 * their own, folders one entry per file below them and one per empty
 * folder. Throws {@link UserError} for a named path that is missing or
 * not a file or folder.
 */
export async function walkSources(paths: string[], options: WalkOptions = {}): Promise<Walk> {
  const walk: Walk = { entries: [], skipped: [], collisions: [], folders: [] };
  for (const path of paths) {
    let info: Deno.FileInfo;
    try {
      info = await Deno.stat(path); // a link named by the user is followed
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) throw new UserError(`File ${path} does not exist`);
      throw new UserError(describeError(err, `Cannot read ${path}`));
    }
    if (info.isFile) {
      walk.entries.push({ source: path, name: basename(path), size: info.size });
    } else if (info.isDirectory) {
      const name = basename(path.replace(/\/+$/, "")) || "root";
      const before = walk.entries.length;
      await walkFolder(walk, path, name, [], options, new Set([key(info)]));
      walk.folders.push({ name, entries: walk.entries.length - before });
    } else {
      throw new UserError(`${path} is not a regular file or a folder`);
    }
  }
  return walk;
}

/** A file's identity, to stop a followed link from looping. */
function key(info: Deno.FileInfo): string {
  return `${info.dev}:${info.ino}`;
}

async function walkFolder(
  walk: Walk,
  dir: string,
  root: string,
  parts: string[],
  options: WalkOptions,
  ancestors: Set<string>,
): Promise<void> {
  const shown = (name: string) => [root, ...parts, name].join("/");
  // Synchronous calls: a walk of ten thousand files is a few milliseconds
  // of system calls, and a trip through the thread pool for each costs more.
  let names: string[];
  try {
    names = [];
    for (const e of Deno.readDirSync(dir)) names.push(e.name);
  } catch (err) {
    walk.skipped.push(`${[root, ...parts].join("/")}: ${describeError(err, "cannot read folder")}`);
    return;
  }
  names.sort();
  const before = walk.entries.length;
  const folded = new Map<string, string>();
  for (const name of names) {
    const fold = name.normalize("NFC").toLowerCase();
    const other = folded.get(fold);
    if (other !== undefined) {
      walk.collisions.push(
        `${shown(other)} and ${shown(name)} differ only in case: ` +
          "a case-insensitive file system keeps one",
      );
    } else folded.set(fold, name);
    const path = join(dir, name);
    let info: Deno.FileInfo;
    try {
      info = Deno.lstatSync(path);
      if (info.isSymlink) {
        if (!options.followLinks) {
          walk.skipped.push(
            `${shown(name)}: symbolic link, skipped (--follow-links sends what it points to)`,
          );
          continue;
        }
        info = Deno.statSync(path);
      }
    } catch (err) {
      walk.skipped.push(`${shown(name)}: ${describeError(err, "cannot read it")}`);
      continue;
    }
    if (info.isFile) {
      walk.entries.push({
        source: path,
        name: root,
        parts: [...parts, name],
        size: info.size,
        mode: (info.mode ?? 0o644) & 0o777,
        mtime: Math.trunc(info.mtime?.getTime() ?? 0),
      });
    } else if (info.isDirectory) {
      if (ancestors.has(key(info))) {
        walk.skipped.push(`${shown(name)}: a link back to a folder above it, skipped`);
        continue;
      }
      await walkFolder(
        walk,
        path,
        root,
        [...parts, name],
        options,
        new Set([...ancestors, key(info)]),
      );
    } else {
      walk.skipped.push(`${shown(name)}: not a regular file or folder, skipped`);
    }
  }
  // An empty folder arrives too (the folder named itself always does).
  if (walk.entries.length === before && parts.length > 0) {
    walk.entries.push({ name: root, parts, kind: "dir", size: 0 });
  }
}
