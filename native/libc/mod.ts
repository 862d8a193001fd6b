/**
 * Linux's libc through Deno FFI: `openat2` and the `*at` calls, with which
 * a folder's handle confines every name resolved under it.
 *
 * @module
 */
export {
  chmodat,
  FileDescriptor,
  type FileStat,
  linkat,
  lstatat,
  mkdirat,
  openat2,
  type OpenHow,
  renameat,
  unlinkat,
} from "./fs.ts";
export { ERRNO_NAMES, LibcError, LibcLoadError } from "./errors.ts";
export { LIBC_PATH_VARIABLE, loadLibc } from "./library.ts";
export {
  AT_FDCWD,
  AT_REMOVEDIR,
  AT_SYMLINK_NOFOLLOW,
  type LibcSymbols,
  O as OPEN_FLAGS,
  RENAME_NOREPLACE,
  RESOLVE_BENEATH,
  RESOLVE_NO_MAGICLINKS,
  RESOLVE_NO_SYMLINKS,
  S_IFDIR,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
  SYMBOLS as LIBC_SYMBOLS,
  SYS_OPENAT2,
} from "./symbols.ts";
