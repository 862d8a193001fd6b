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
import { describeError, readError } from "../lib/io/errors.ts";

import type { Entry } from "../lib/core/file/entry.ts";

export type { Entry };

/** What a walk tells besides its entries. */
export interface WalkOptions {
  /** Send what links inside folders point to (else skip and report them). */
  followLinks?: boolean;
  /** Called with one line for each thing not sent: links, special files, unreadable folders. */
  onSkip?: (line: string) => void;
  /** Called with one line for each pair of names that differ only in case. */
  onCollision?: (line: string) => void;
}

/** A path named on the command line, checked: a file or a folder. */
export interface Source {
  /** The path as given (resolved). */
  path: string;
  /** Whether it is a folder (else a file). */
  folder: boolean;
  /** The name it is sent under: the file's, or the folder's. */
  name: string;
  /** Size in bytes when checked (a file's). */
  size: number;
  /** Its identity on disk (device and inode), so that a followed link never loops back to it. */
  key: string;
}

/**
 * Checks the paths named on the command line before anything is sent.
 * Throws {@link UserError} for one that is missing or not a file or folder.
 */
export async function checkSources(paths: string[]): Promise<Source[]> {
  const out: Source[] = [];
  for (const path of paths) {
    let info: Deno.FileInfo;
    try {
      info = await Deno.stat(path); // a link named by the user is followed
    } catch (err) {
      throw readError(err, path);
    }
    if (!info.isFile && !info.isDirectory) {
      throw new UserError(`${path} is not a regular file or a folder`);
    }
    const name = info.isDirectory ? basename(path.replace(/\/+$/, "")) || "root" : basename(path);
    out.push({ path, folder: info.isDirectory, name, size: info.size, key: key(info) });
  }
  return out;
}

/**
 * The entries to send, one at a time, as the walk finds them: a named
 * file is an entry of its own, a folder gives one entry per file below it
 * (sorted by name, folder by folder) and one per empty folder. Memory
 * stays bounded by the largest folder's list of names, however large the
 * tree: nothing keeps the entries.
 */
export async function* walkEntries(
  sources: readonly Source[],
  options: WalkOptions = {},
): AsyncGenerator<Entry> {
  for (const source of sources) {
    if (source.folder) {
      yield* walkFolder(source.path, source.name, [], options, new Set([source.key]));
    } else yield { source: source.path, name: source.name, size: source.size };
  }
}

/** A file's identity, to stop a followed link from looping. */
function key(info: Deno.FileInfo): string {
  return `${info.dev}:${info.ino}`;
}

/** Yields a folder's entries; returns how many it yielded. */
async function* walkFolder(
  dir: string,
  root: string,
  parts: string[],
  options: WalkOptions,
  ancestors: Set<string>,
): AsyncGenerator<Entry, number> {
  const shown = (name: string) => [root, ...parts, name].join("/");
  // Synchronous calls: a walk of ten thousand files is a few milliseconds
  // of system calls, and a trip through the thread pool for each costs more.
  let names: string[];
  try {
    names = [];
    for (const e of Deno.readDirSync(dir)) names.push(e.name);
  } catch (err) {
    options.onSkip?.(`${[root, ...parts].join("/")}: ${describeError(err, "cannot read folder")}`);
    return 0;
  }
  names.sort();
  let yielded = 0;
  const folded = new Map<string, string>();
  for (const name of names) {
    const fold = name.normalize("NFC").toLowerCase();
    const other = folded.get(fold);
    if (other !== undefined) {
      options.onCollision?.(
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
          options.onSkip?.(
            `${shown(name)}: symbolic link, skipped (--follow-links sends what it points to)`,
          );
          continue;
        }
        info = Deno.statSync(path);
      }
    } catch (err) {
      options.onSkip?.(`${shown(name)}: ${describeError(err, "cannot read it")}`);
      continue;
    }
    if (info.isFile) {
      yielded++;
      yield {
        source: path,
        name: root,
        parts: [...parts, name],
        size: info.size,
        mode: (info.mode ?? 0o644) & 0o777,
        mtime: Math.trunc(info.mtime?.getTime() ?? 0),
      };
    } else if (info.isDirectory) {
      if (ancestors.has(key(info))) {
        options.onSkip?.(`${shown(name)}: a link back to a folder above it, skipped`);
        continue;
      }
      yielded += yield* walkFolder(
        path,
        root,
        [...parts, name],
        options,
        new Set([...ancestors, key(info)]),
      );
    } else {
      options.onSkip?.(`${shown(name)}: not a regular file or folder, skipped`);
    }
  }
  // An empty folder arrives too (the folder named itself always does).
  if (yielded === 0 && parts.length > 0) {
    yielded++;
    yield { name: root, parts, kind: "dir", size: 0 };
  }
  return yielded;
}
