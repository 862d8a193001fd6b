/**
 * The one typed table of libc symbols this binding uses (glibc 2.33 or
 * later on Linux): the `*at` calls that resolve a name relative to an open
 * folder, `syscall` for `openat2` (glibc has no wrapper for it), and
 * `__errno_location` for the error of the call that failed. Every
 * argument that C declares `int` or `mode_t` is passed as such; `syscall`
 * takes `long`s.
 *
 * @module
 */

/** Every libc function this binding calls. */
export const SYMBOLS = {
  __errno_location: { parameters: [], result: "pointer" },
  // syscall(SYS_openat2, dirfd, path, struct open_how*, sizeof(struct open_how))
  syscall: { parameters: ["i64", "i64", "buffer", "buffer", "usize"], result: "i64" },
  // mkdirat(dirfd, path, mode)
  mkdirat: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  // renameat2(olddirfd, oldpath, newdirfd, newpath, flags)
  renameat2: { parameters: ["i32", "buffer", "i32", "buffer", "u32"], result: "i32" },
  // linkat(olddirfd, oldpath, newdirfd, newpath, flags)
  linkat: { parameters: ["i32", "buffer", "i32", "buffer", "i32"], result: "i32" },
  // unlinkat(dirfd, path, flags)
  unlinkat: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  fchmod: { parameters: ["i32", "u32"], result: "i32" },
  // fchmodat(dirfd, path, mode, flags): with AT_SYMLINK_NOFOLLOW, glibc
  // refuses a link (EOPNOTSUPP) and sets the mode of the file it opened.
  fchmodat: { parameters: ["i32", "buffer", "u32", "i32"], result: "i32" },
  // fstatat(dirfd, path, struct stat*, flags)
  fstatat: { parameters: ["i32", "buffer", "buffer", "i32"], result: "i32" },
  fstat: { parameters: ["i32", "buffer"], result: "i32" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  // pwrite(fd, buf, count, offset) and pread: on this thread, or (the
  // _async ones) on one of Deno's blocking threads, a promise here.
  pwrite: { parameters: ["i32", "buffer", "usize", "i64"], result: "isize" },
  pread: { parameters: ["i32", "buffer", "usize", "i64"], result: "isize" },
  pwrite_async: {
    name: "pwrite",
    parameters: ["i32", "buffer", "usize", "i64"],
    result: "isize",
    nonblocking: true,
  },
  pread_async: {
    name: "pread",
    parameters: ["i32", "buffer", "usize", "i64"],
    result: "isize",
    nonblocking: true,
  },
  fdatasync: { parameters: ["i32"], result: "i32" },
  fdatasync_async: { name: "fdatasync", parameters: ["i32"], result: "i32", nonblocking: true },
  close: { parameters: ["i32"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The loaded symbols' type. */
export type LibcSymbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** `SYS_openat2`: the same number on every Linux architecture (since 5.6). */
export const SYS_OPENAT2 = 437n;
/** `AT_FDCWD`: a name relative to the working directory. */
export const AT_FDCWD: number = -100;
/** `AT_SYMLINK_NOFOLLOW` (fcntl.h). */
export const AT_SYMLINK_NOFOLLOW = 0x100;
/** `AT_REMOVEDIR` (fcntl.h): `unlinkat` removes an empty folder. */
export const AT_REMOVEDIR = 0x200;
/** `RENAME_NOREPLACE` (fcntl.h): `renameat2` fails rather than replace. */
export const RENAME_NOREPLACE = 1;
/** `RESOLVE_NO_MAGICLINKS` (openat2.h): no `/proc/PID/fd`-style links. */
export const RESOLVE_NO_MAGICLINKS = 0x02;
/** `RESOLVE_NO_SYMLINKS` (openat2.h): no symbolic link anywhere on the way. */
export const RESOLVE_NO_SYMLINKS = 0x04;
/** `RESOLVE_BENEATH` (openat2.h): never above the folder resolved from. */
export const RESOLVE_BENEATH = 0x08;

/** `open(2)` flags that differ by architecture (x86-64 against the generic ones of arm64). */
const ARCH_FLAGS = Deno.build.arch === "aarch64"
  ? { O_DIRECTORY: 0o40000, O_NOFOLLOW: 0o100000 }
  : { O_DIRECTORY: 0o200000, O_NOFOLLOW: 0o400000 };

/** The `open(2)` flags this binding uses, for this machine's architecture. */
export const O = {
  O_RDONLY: 0,
  O_WRONLY: 0o1,
  O_RDWR: 0o2,
  O_CREAT: 0o100,
  O_EXCL: 0o200,
  O_TRUNC: 0o1000,
  O_NONBLOCK: 0o4000,
  O_CLOEXEC: 0o2000000,
  O_PATH: 0o10000000,
  ...ARCH_FLAGS,
} as const;

/** `S_IFMT` and the file types of `st_mode`. */
export const S_IFMT = 0o170000;
/** A folder. */
export const S_IFDIR = 0o040000;
/** A regular file. */
export const S_IFREG = 0o100000;
/** A symbolic link. */
export const S_IFLNK = 0o120000;
