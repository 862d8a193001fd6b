/**
 * The file server's disk primitives: the staging folder, the checked
 * directory, small files stored by a temporary file and a rename, and the
 * message a client gets for a failure.
 *
 * Everything here is done through a {@link ContainedRoot} on DIR: each
 * path is resolved by the kernel relative to the handle, never through a
 * symbolic link, at the moment it is used; no check is kept and trusted
 * later.
 *
 * @module
 */
import { ProtocolError, UserError } from "../../core/errors.ts";
import { toHex } from "../../core/crypto/md5.ts";
import { receivedName } from "../../core/file/names.ts";
import { storedMode } from "../../core/file/disk_policy.ts";
import { SALT_BYTES } from "../../core/file/proof.ts";
import { ContainedRoot, type FileStat } from "../contained_root.ts";

/** Name of the staging folder inside the server's directory. */
export const PARTIAL_DIR = ".partial";

/** A new random salt for salted digests (`proof.ts`), hexadecimal. */
export function newSalt(): string {
  return toHex(crypto.getRandomValues(new Uint8Array(SALT_BYTES)));
}

/**
 * Opens the root everything in `dir` is done through, once `dir` is found
 * a writable directory; throws a {@link UserError} if not (or if this
 * system cannot confine paths to it).
 */
export function checkDirectory(dir: string): ContainedRoot {
  const root = ContainedRoot.open(dir);
  const probe = `${PARTIAL_DIR}/.probe-${crypto.randomUUID()}`;
  try {
    mkdirIfAbsent(root, PARTIAL_DIR);
    // Made with every permission bit: what is left shows the umask.
    const fd = root.create(probe, 0o777);
    try {
      processUmask ??= 0o777 & ~fd.stat().mode;
    } finally {
      fd.close();
    }
    root.remove(probe);
  } catch (err) {
    root.close();
    throw new UserError(`Directory ${dir} is not writable: ${(err as Error).message}`);
  }
  return root;
}

/** Makes folder `rel` under `root` unless one is there (a link there is refused later, when used). */
export function mkdirIfAbsent(root: ContainedRoot, rel: string): void {
  try {
    root.mkdir(rel, 0o755);
  } catch (err) {
    if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
  }
}

/**
 * The process's umask, as {@link checkDirectory} found it (files are made
 * with `mode & ~umask`); read so, no permission is needed to ask for it.
 */
let processUmask: number | undefined;
export function umask(): number {
  return processUmask ?? 0o777; // unknown: every mode is set by chmod
}

/** The umask this process was found to have, if known (for the store worker). */
export function knownUmask(): number | undefined {
  return processUmask;
}

/** Takes the umask a worker was told (the server process's, found by {@link checkDirectory}). */
export function learnUmask(mask: number | undefined): void {
  processUmask ??= mask;
}

/**
 * Stores a small file's verified bytes at `DIR/storedAs`: written to `tmp`
 * (made exclusively, never through a planted link, with the offered mode
 * masked by {@link storedMode}), then renamed into place, replacing what
 * is there; both through `root`. Returns what the stored file was before
 * its rename (its size, time and identity). Synchronous: for ten
 * thousand small files a trip through Deno's file threads for each call
 * cost more CPU than the calls (measured: the server's CPU rose from about
 * 1.8 s to 2.3 s for 10,000 files, and the time did not fall). With `sync`
 * the data is on the disk before the rename.
 */
export function storeBytes(
  root: ContainedRoot,
  tmp: string,
  storedAs: string,
  bytes: Uint8Array,
  mode: number | undefined,
  sync: boolean,
): FileStat {
  const perms = mode === undefined ? undefined : storedMode(mode, false);
  try {
    let info: FileStat;
    {
      using fd = root.create(tmp, perms ?? 0o666);
      fd.writeAll(bytes);
      // Made with its mode, unless the umask took bits away.
      if (perms !== undefined && (perms & umask()) !== 0) fd.chmod(perms);
      if (sync) fd.syncData();
      info = fd.stat();
    }
    root.rename(tmp, storedAs);
    return info;
  } catch (err) {
    try {
      root.remove(tmp);
    } catch {
      // Never made, or renamed.
    }
    throw placeError(err, root, storedAs);
  }
}

/** The error for a file that could not be moved to `DIR/storedAs`: a folder in its place is named. */
export function placeError(err: unknown, root: ContainedRoot, storedAs: string): unknown {
  return lstatOrNull(root, storedAs)?.isDirectory
    ? new UserError(`${storedAs} is a folder on the server`)
    : err;
}

/** What `rel` itself is (a link is not followed), or null when nothing (or a link on the way) is there. */
export function lstatOrNull(root: ContainedRoot, rel: string): FileStat | null {
  try {
    return root.lstat(rel);
  } catch {
    return null;
  }
}

/**
 * Replaces `rel` with `bytes` atomically: written to a temporary file of
 * a random name, made exclusively (never through a link planted there),
 * then renamed over it, through `root`.
 */
export async function writeReplacing(
  root: ContainedRoot,
  rel: string,
  bytes: Uint8Array,
): Promise<void> {
  const tmp = `${rel}.${crypto.randomUUID()}.tmp`;
  {
    using f = root.open(tmp, { write: true, createNew: true });
    await f.writeAtAsync(bytes, 0);
  }
  root.rename(tmp, rel);
}

/** Hard-links `src` to the first free received name: atomic, never overwrites. */
export function linkNoClobber(root: ContainedRoot, src: string, base: string): string {
  for (let copy = 0; copy < 10000; copy++) {
    const name = receivedName(base, copy);
    try {
      root.link(src, name);
      return name;
    } catch (err) {
      if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
    }
  }
  throw new UserError(`Too many copies of ${receivedName(base)} already stored`);
}

/**
 * The message a client gets for a failed transfer: the tool's own errors
 * as they are, anything else (a file system error naming the server's
 * directory) in general terms, and no server path in either; the server's
 * log has the whole message.
 */
export function clientMessage(err: unknown, dir: string): string {
  const text = err instanceof UserError || err instanceof ProtocolError
    ? err.message
    : "Server could not store the file (its log says why)";
  // And should one of ours quote a path after all, it goes too.
  return text.split(dir).join("DIR").replace(/'\/[^']*'/g, "'(a server path)'");
}
