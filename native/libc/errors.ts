/**
 * Typed errors of the libc binding.
 *
 * @module
 */

/** The names of the `errno` values a caller may want to tell apart (Linux). */
export const ERRNO_NAMES: Readonly<Record<number, string>> = {
  1: "EPERM",
  2: "ENOENT",
  9: "EBADF",
  13: "EACCES",
  17: "EEXIST",
  18: "EXDEV",
  20: "ENOTDIR",
  21: "EISDIR",
  22: "EINVAL",
  28: "ENOSPC",
  30: "EROFS",
  31: "EMLINK",
  36: "ENAMETOOLONG",
  38: "ENOSYS",
  39: "ENOTEMPTY",
  40: "ELOOP",
  95: "EOPNOTSUPP",
  122: "EDQUOT",
};

/** A libc call failed; carries its `errno` and names the call. */
export class LibcError extends Error {
  /** The `errno` the call left. */
  readonly errno: number;
  /** Its name, e.g. `EEXIST` (or `errno N` for one not listed). */
  readonly code: string;
  /** The call that failed, e.g. `mkdirat`. */
  readonly call: string;

  /** Creates an error for `call` failing with `errno`, about `subject` (a name, if any). */
  constructor(call: string, errno: number, subject?: string) {
    const code = ERRNO_NAMES[errno] ?? `errno ${errno}`;
    super(`${call}${subject === undefined ? "" : ` ${subject}`} failed: ${code}`);
    this.name = "LibcError";
    this.errno = errno;
    this.code = code;
    this.call = call;
  }
}

/** libc could not be loaded, or this system lacks what the binding needs. */
export class LibcLoadError extends Error {
  /** Creates a load error with a one-line fix. */
  constructor(message: string) {
    super(message);
    this.name = "LibcLoadError";
  }
}
