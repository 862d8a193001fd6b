/**
 * A folder's handle that everything done below it goes through, as Go's
 * `os.Root` does: each create, mkdir, rename, link, chmod, stat and
 * remove names a path relative to the handle, and the kernel resolves it
 * with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
 * RESOLVE_NO_MAGICLINKS)`: a symbolic link anywhere on the way, a `..`
 * or an absolute path is refused, never followed. Nothing is checked
 * once and trusted later: a folder swapped for a link after one call is
 * refused at the next.
 *
 * Linux 5.6 or later only (`openat2`); elsewhere {@link ContainedRoot.open}
 * fails with a one-line message rather than write unconfined.
 *
 * @module
 */
import { UserError } from "../core/errors.ts";
import {
  AT_FDCWD,
  AT_REMOVEDIR,
  chmodat,
  FileDescriptor,
  type FileStat,
  LibcError,
  LibcLoadError,
  linkat,
  lstatat,
  mkdirat,
  OPEN_FLAGS as O,
  openat2,
  renameat,
  RESOLVE_BENEATH,
  RESOLVE_NO_MAGICLINKS,
  RESOLVE_NO_SYMLINKS,
  unlinkat,
} from "../../native/mod.ts";

export type { FileDescriptor, FileStat };

/** The rules for every path resolved under a root. */
const CONTAINED = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
/** A folder held only to name things in it. */
const DIR_HANDLE = O.O_PATH | O.O_DIRECTORY | O.O_CLOEXEC;

/** How {@link ContainedRoot.open} opens a file. */
export interface RootOpenOptions {
  /** Open for reading. */
  read?: boolean;
  /** Open for writing. */
  write?: boolean;
  /** Create it; fail if anything (a link included) is there. */
  createNew?: boolean;
  /** Permission bits of a file created (before the umask). */
  mode?: number;
}

/** A handle on a folder; every path given to it stays below it. */
export class ContainedRoot {
  #fd: FileDescriptor;
  /** The folder's path, for messages and logs only: nothing resolves through it. */
  readonly dir: string;

  private constructor(fd: FileDescriptor, dir: string) {
    this.#fd = fd;
    this.dir = dir;
  }

  /**
   * Opens a root on `dir` (itself named as the user gave it). Throws
   * {@link UserError} when it is no folder, or when this system lacks
   * `openat2`.
   */
  static open(dir: string): ContainedRoot {
    try {
      const fd = openat2(AT_FDCWD, dir, { flags: DIR_HANDLE, resolve: 0 });
      return new ContainedRoot(fd, dir);
    } catch (err) {
      if (err instanceof LibcError && err.code === "ENOENT") {
        throw new UserError(`Directory ${dir} does not exist`);
      }
      if (err instanceof LibcError && err.code === "ENOTDIR") {
        throw new UserError(`${dir} is not a directory`);
      }
      throw translate(err, dir);
    }
  }

  /**
   * A new descriptor on the same folder, for another thread of this
   * process to {@link adopt}: its own, so that this root's closing cannot
   * pull the handle from under it.
   */
  duplicate(): number {
    const fd = this.#openat(".", { flags: DIR_HANDLE });
    return fd.fd; // owned from here on by whoever adopts it
  }

  /** A root owning `fd`, a descriptor from {@link duplicate}; {@link close} closes it. */
  static adopt(fd: number, dir: string): ContainedRoot {
    return new ContainedRoot(new FileDescriptor(fd), dir);
  }

  /** The handle's descriptor number. */
  get fd(): number {
    return this.#fd.fd;
  }

  /**
   * Opens regular file `rel` (never a link, nor through one). Deno's own
   * files cannot be made from a descriptor (and Deno asks for every
   * permission to open `/proc/self/fd/N`), so it is read and written
   * through the descriptor's own calls.
   */
  open(rel: string, options: RootOpenOptions): FileDescriptor {
    const { read = false, write = false, createNew = false } = options;
    const access = read && write ? O.O_RDWR : write ? O.O_WRONLY : O.O_RDONLY;
    const fd = this.#openat(rel, {
      flags: access | O.O_NOFOLLOW | O.O_CLOEXEC | O.O_NONBLOCK |
        (createNew ? O.O_CREAT | O.O_EXCL : 0),
      mode: createNew ? options.mode ?? 0o666 : 0,
    });
    if (!createNew && !fd.stat().isFile) {
      fd.close();
      throw new UserError(`${rel} is not a regular file on the server`);
    }
    return fd;
  }

  /**
   * Creates file `rel` (it must not exist; a link there is not followed)
   * and returns its raw descriptor, for callers that write and close it
   * themselves.
   */
  create(rel: string, mode = 0o666): FileDescriptor {
    return this.#openat(rel, {
      flags: O.O_WRONLY | O.O_CREAT | O.O_EXCL | O.O_NOFOLLOW | O.O_CLOEXEC,
      mode,
    });
  }

  /** Reads the whole regular file `rel`. */
  readFile(rel: string): Uint8Array {
    using fd = this.open(rel, { read: true });
    return fd.readAt(0, fd.stat().size);
  }

  /** Makes folder `rel`; throws `Deno.errors.AlreadyExists` if anything is there. */
  mkdir(rel: string, mode = 0o777): void {
    this.#at(rel, (dirfd, name) => mkdirat(dirfd, name, mode));
  }

  /** What `rel` itself is (a link at its end is described, not followed), or null if nothing. */
  lstat(rel: string): FileStat | null {
    try {
      return this.#at(rel, (dirfd, name) => lstatat(dirfd, name));
    } catch (err) {
      if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory) {
        return null;
      }
      throw err;
    }
  }

  /** Moves `from` to `to`, replacing a file there (a link at either end is moved, not followed). */
  rename(from: string, to: string): void {
    this.#at(from, (fromDir, fromName) => {
      this.#at(to, (toDir, toName) => renameat(fromDir, fromName, toDir, toName));
    });
  }

  /** Gives file `from` the new name `to`; throws `Deno.errors.AlreadyExists` if `to` exists. */
  link(from: string, to: string): void {
    this.#at(from, (fromDir, fromName) => {
      this.#at(to, (toDir, toName) => linkat(fromDir, fromName, toDir, toName));
    });
  }

  /** Removes file `rel` (a link there is removed, not followed). */
  remove(rel: string): void {
    this.#at(rel, (dirfd, name) => unlinkat(dirfd, name));
  }

  /** Removes the empty folder `rel`. */
  removeDir(rel: string): void {
    this.#at(rel, (dirfd, name) => unlinkat(dirfd, name, AT_REMOVEDIR));
  }

  /** Sets the permission bits of file or folder `rel`; a link there is refused. */
  chmod(rel: string, mode: number): void {
    this.#at(rel, (dirfd, name) => chmodat(dirfd, name, mode));
  }

  /** Closes the handle; idempotent. */
  close(): void {
    this.#fd.close();
  }

  /** Closes the handle. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** `openat2` under the root's rules; errors translated. */
  #openat(rel: string, how: { flags: number; mode?: number }): FileDescriptor {
    checkRelative(rel);
    try {
      return openat2(this.fd, rel, { ...how, resolve: CONTAINED });
    } catch (err) {
      throw translate(err, rel);
    }
  }

  /**
   * Runs `call` on `rel`'s folder (opened under the root's rules, the root
   * itself for a top-level name) and last name; errors translated.
   */
  #at<T>(rel: string, call: (dirfd: number, name: string) => T): T {
    checkRelative(rel);
    const cut = rel.lastIndexOf("/");
    const name = rel.slice(cut + 1);
    if (cut < 0) return attempt(() => call(this.fd, name), rel);
    using dir = this.#openat(rel.slice(0, cut), { flags: DIR_HANDLE });
    return attempt(() => call(dir.fd, name), rel);
  }
}

/** Runs `f`, its libc errors translated for `rel`. */
function attempt<T>(f: () => T, rel: string): T {
  try {
    return f();
  } catch (err) {
    throw translate(err, rel);
  }
}

/** Refuses an empty or absolute path, and any `.` or `..` part but a lone `.`. */
function checkRelative(rel: string): void {
  if (rel === ".") return;
  // Most paths hold no dot after a slash, nor a leading one: no split needed.
  const suspect = rel === "" || rel[0] === "/" || rel[0] === "." || rel.includes("/.") ||
    rel.includes("//") || rel.endsWith("/");
  if (suspect && rel.split("/").some((p) => p === "" || p === "." || p === "..")) {
    throw new UserError(`${rel} is not a path inside the server's directory`);
  }
}

/**
 * A libc error as what callers check for: Deno's own error classes for the
 * common cases, a {@link UserError} for a link or an escape refused and for
 * a system without `openat2`.
 */
function translate(err: unknown, rel: string): unknown {
  if (err instanceof LibcLoadError) {
    return new UserError(`Cannot keep writes inside ${rel}: ${err.message}`);
  }
  if (!(err instanceof LibcError)) return err;
  const what = `${err.call} ${rel}`;
  switch (err.code) {
    case "ENOSYS":
      return new UserError(
        `Cannot keep writes inside ${rel}: this system lacks openat2 (Linux 5.6 or later)`,
      );
    case "ELOOP":
    case "EOPNOTSUPP":
      return new UserError(`${rel} is or goes through a symbolic link on the server (refused)`);
    case "EXDEV":
      return err.call === "openat2"
        ? new UserError(`${rel} leads outside the server's directory (refused)`)
        : err;
    case "EEXIST":
      return new Deno.errors.AlreadyExists(`${what}: already exists`);
    case "ENOENT":
      return new Deno.errors.NotFound(`${what}: not found`);
    case "ENOTDIR":
      return new Deno.errors.NotADirectory(`${what}: not a directory`);
    case "EISDIR":
      return new Deno.errors.IsADirectory(`${what}: is a directory`);
    case "EACCES":
    case "EPERM":
      return new Deno.errors.PermissionDenied(`${what}: permission denied`);
    default:
      return err;
  }
}
