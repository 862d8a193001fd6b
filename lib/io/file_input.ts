/**
 * The File-TCP client's disk reads: a file's size and handle, a small
 * file or a pack's files read whole, and the proof of a file held
 * (`--update`), each with errors a user can act on.
 *
 * @module
 */
import { UserError } from "../core/errors.ts";
import type { Entry, EntryResult } from "../core/file/entry.ts";
import type { OpenedEntry } from "../core/file/client_link.ts";
import { encodePack, type PackFile } from "../core/file/pack.ts";
import { proofHash } from "../core/file/proof.ts";
import { describeError, readError } from "./errors.ts";

/** Files up to this size (as walked) are read whole in one call: most of a folder's. */
export const SMALL_FILE = 64 * 1024;

/** What the regular file at `path` is, with errors a user can act on. */
export function inputInfo(path: string): Deno.FileInfo {
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(path);
  } catch (err) {
    throw readError(err, path);
  }
  if (info.isDirectory) throw new UserError(`${path} is a directory, not a file`);
  if (!info.isFile) throw new UserError(`${path} is not a regular file`);
  return info;
}

/** Opens `path` for reading, with errors a user can act on. */
export function openInput(path: string): { file: Deno.FsFile; size: number; mtime: number } {
  const info = inputInfo(path);
  try {
    const file = Deno.openSync(path, { read: true });
    return { file, size: info.size, mtime: Math.trunc(info.mtime?.getTime() ?? 0) };
  } catch (err) {
    throw new UserError(describeError(err, `Cannot read ${path}`));
  }
}

/**
 * The salted digest MD5(salt ‖ file) that proves the file is held, read
 * from the start (`--update`, when the server asks).
 */
export function fileProof(file: Deno.FsFile, path: string, buf: Uint8Array, salt: string): string {
  const h = proofHash(salt);
  try {
    file.seekSync(0, Deno.SeekMode.Start);
    for (let n = file.readSync(buf); n !== null; n = file.readSync(buf)) {
      h.update(buf.subarray(0, n));
    }
  } catch (err) {
    throw new UserError(describeError(err, `Cannot read ${path}`));
  }
  return h.hex();
}

/** A small file's bytes, with errors a user can act on. */
export function readSmall(path: string): Uint8Array {
  try {
    return Deno.readFileSync(path);
  } catch (err) {
    if (err instanceof Deno.errors.IsADirectory) {
      throw new UserError(`${path} is a directory, not a file`);
    }
    throw readError(err, path);
  }
}

/**
 * A pack's files, each read whole (one that cannot be read is reported
 * failed on its own), and the pack made of them; undefined when none
 * could be read.
 */
function readPack(
  members: readonly Entry[],
  report: (result: EntryResult) => void,
): OpenedEntry | undefined {
  const files: PackFile[] = [];
  const pack = { members: [] as Entry[], sizes: [] as number[] };
  for (const m of members) {
    try {
      const bytes = readSmall(m.source!);
      files.push({ path: m.parts!, mode: m.mode, mtime: m.mtime, data: bytes });
      pack.members.push(m);
      pack.sizes.push(bytes.length);
    } catch (err) {
      report({ entry: m, ok: false, error: err });
    }
  }
  if (files.length === 0) return undefined;
  const data = encodePack(files);
  return { data, size: data.length, mtime: undefined, pack };
}

/**
 * Opens an entry to send: a pack or a small file read whole, a larger
 * file by its handle (the caller closes it), an empty folder as it is.
 * Undefined when it cannot be read: then it was reported failed (each of
 * a pack's files on its own).
 */
export function openEntry(
  entry: Entry,
  report: (result: EntryResult) => void,
): { opened: OpenedEntry; file?: Deno.FsFile } | undefined {
  if (entry.kind === "pack") {
    const opened = readPack(entry.members!, report);
    return opened && { opened };
  }
  try {
    if (entry.source !== undefined && entry.size <= SMALL_FILE) {
      // A small file (as walked) is read whole in one call, its size
      // what was read: no handle, no seek, no second stat.
      const data = readSmall(entry.source);
      return { opened: { data, size: data.length, mtime: entry.mtime } };
    }
    if (entry.source !== undefined) {
      const { file, size, mtime } = openInput(entry.source);
      // A named file's cut transfer resumes by `--update` too: its
      // partial is named by its name, size and time, as a folder entry's.
      return { opened: { size, mtime: entry.mtime ?? mtime }, file };
    }
    return { opened: { size: entry.size, mtime: entry.mtime } };
  } catch (err) {
    report({ entry, ok: false, error: err });
    return undefined;
  }
}
