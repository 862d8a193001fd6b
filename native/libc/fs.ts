/**
 * Linux's file calls that resolve a name relative to an open folder,
 * through Deno FFI: `openat2` (with its `RESOLVE_*` rules), `mkdirat`,
 * `renameat2`, `linkat`, `unlinkat`, `fstatat`, and the calls on an open
 * descriptor. Each failure throws a {@link LibcError} naming the call and
 * carrying its `errno`.
 *
 * An open descriptor is a {@link FileDescriptor}: its number is a
 * `#private` field, `close()` is idempotent and `using` closes it. Its
 * reads and writes at an offset also come as promises, run on Deno's
 * blocking threads (a megabyte written while the caller goes on); `errno`
 * is per thread, so a failed one is repeated here to read it.
 *
 * @module
 */
import { LibcError } from "./errors.ts";
import { loadLibc } from "./library.ts";
import {
  AT_SYMLINK_NOFOLLOW,
  type LibcSymbols,
  S_IFDIR,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
  SYS_OPENAT2,
} from "./symbols.ts";

const encoder = new TextEncoder();

/**
 * Two reused buffers for the (at most two) names of one call: PATH_MAX
 * (4,096 bytes) with room for the terminating NUL at any UTF-16 length.
 */
const SCRATCH = [new Uint8Array(3 * 4096 + 1), new Uint8Array(3 * 4096 + 1)];

/**
 * `path` NUL-terminated, as C takes it, in scratch buffer `slot` (valid
 * until the next call that uses that slot: the calls are synchronous);
 * a longer one gets a buffer of its own.
 */
function cString(path: string, slot = 0): Uint8Array<ArrayBuffer> {
  const buf = SCRATCH[slot];
  if (path.length * 3 >= buf.length) return encoder.encode(path + "\0");
  const { written } = encoder.encodeInto(path, buf);
  buf[written] = 0;
  return buf;
}

/** The calling thread's `errno`. */
function errno(lib: LibcSymbols): number {
  return new Deno.UnsafePointerView(lib.__errno_location()!).getInt32();
}

/** Throws {@link LibcError} for `call` if it returned -1. */
function check(lib: LibcSymbols, call: string, result: number | bigint, subject?: string): void {
  if (result === -1 || result === -1n) throw new LibcError(call, errno(lib), subject);
}

/** What `fstat` says of a file (the fields this binding reads). */
export interface FileStat {
  /** Device: with the inode, the file's identity. */
  dev: bigint;
  /** Inode number. */
  ino: bigint;
  /** Type and permission bits (`st_mode`). */
  mode: number;
  /** Size in bytes. */
  size: number;
  /** Modification time, whole ms since the epoch (as Deno's `FileInfo.mtime`). */
  mtimeMs: number;
  /** A regular file. */
  isFile: boolean;
  /** A folder. */
  isDirectory: boolean;
  /** A symbolic link (only `lstatat` sees one). */
  isSymlink: boolean;
}

/** `struct stat`'s size and the offsets of `st_mode` (x86-64 against arm64's generic layout). */
const STAT = Deno.build.arch === "aarch64" ? { size: 128, mode: 16 } : { size: 144, mode: 24 };

/** Reads a `struct stat` (dev, ino, size and mtime lie at the same offsets on both). */
function decodeStat(buf: Uint8Array<ArrayBuffer>): FileStat {
  const v = new DataView(buf.buffer);
  const mode = v.getUint32(STAT.mode, true);
  const type = mode & S_IFMT;
  return {
    dev: v.getBigUint64(0, true),
    ino: v.getBigUint64(8, true),
    mode,
    size: Number(v.getBigInt64(48, true)),
    mtimeMs: Number(v.getBigInt64(88, true)) * 1000 +
      Math.trunc(Number(v.getBigInt64(96, true)) / 1e6),
    isFile: type === S_IFREG,
    isDirectory: type === S_IFDIR,
    isSymlink: type === S_IFLNK,
  };
}

/**
 * Reads and writes this small run on the calling thread: a trip to
 * another thread costs more, and V8 may keep (and move) a small array's
 * bytes inside its heap, where no other thread may write them.
 */
const SYNC_BYTES = 64 * 1024;

/** What `openat2` is told: `struct open_how`. */
export interface OpenHow {
  /** `O_*` flags (see `O` in `symbols.ts`). */
  flags: number;
  /** Permission bits of a file it creates. */
  mode?: number;
  /** `RESOLVE_*` rules for the way to it. */
  resolve: number;
}

/** An open file descriptor; `close()` is idempotent and `using` closes it. */
export class FileDescriptor {
  #fd: number;
  #lib: LibcSymbols;
  /** Calls running on blocking threads: the descriptor is closed only after them. */
  #busy = 0;
  #closing = false;

  /** Owns `fd` (closed by {@link close}). */
  constructor(fd: number, lib: LibcSymbols = loadLibc()) {
    this.#fd = fd;
    this.#lib = lib;
  }

  /** The descriptor's number; throws once closed. */
  get fd(): number {
    if (this.#fd < 0 || this.#closing) throw new LibcError("use of a closed descriptor", 9);
    return this.#fd;
  }

  /** Whether {@link close} was called. */
  get closed(): boolean {
    return this.#fd < 0 || this.#closing;
  }

  /**
   * Runs `call` on a blocking thread, the descriptor held open meanwhile:
   * closed then, its number could name another file by the time the
   * thread writes.
   */
  async #onThread<T>(call: (fd: number) => Promise<T>): Promise<T> {
    const fd = this.fd;
    this.#busy++;
    try {
      return await call(fd);
    } finally {
      if (--this.#busy === 0 && this.#closing) this.#release();
    }
  }

  /** Writes all of `bytes` at `offset` (the file's position unchanged). */
  writeAt(bytes: Uint8Array, offset: number): void {
    for (let at = 0; at < bytes.length;) {
      const rest = bytes.subarray(at) as Uint8Array<ArrayBuffer>;
      const n = this.#lib.pwrite(this.fd, rest, BigInt(rest.length), BigInt(offset + at));
      check(this.#lib, "pwrite", n);
      at += Number(n);
    }
  }

  /**
   * Writes all of `bytes` at `offset` on a blocking thread; `bytes` must
   * not change until the promise settles.
   */
  async writeAtAsync(bytes: Uint8Array, offset: number): Promise<void> {
    if (bytes.length <= SYNC_BYTES) return this.writeAt(bytes, offset);
    for (let at = 0; at < bytes.length;) {
      const rest = bytes.subarray(at) as Uint8Array<ArrayBuffer>;
      const where = BigInt(offset + at);
      let n = await this.#onThread((fd) =>
        this.#lib.pwrite_async(fd, rest, BigInt(rest.length), where)
      );
      // errno was the other thread's: the call again, here, tells it.
      if (n === -1n) n = this.#lib.pwrite(this.fd, rest, BigInt(rest.length), where);
      check(this.#lib, "pwrite", n);
      at += Number(n);
    }
  }

  /** Reads up to `length` bytes at `offset` (fewer at the end of the file). */
  readAt(offset: number, length: number): Uint8Array {
    const buf = new Uint8Array(length);
    let at = 0;
    while (at < length) {
      const rest = buf.subarray(at);
      const n = this.#lib.pread(this.fd, rest, BigInt(rest.length), BigInt(offset + at));
      check(this.#lib, "pread", n);
      if (n === 0n) break;
      at += Number(n);
    }
    return buf.subarray(0, at);
  }

  /** {@link readAt} on a blocking thread. */
  async readAtAsync(offset: number, length: number): Promise<Uint8Array> {
    if (length <= SYNC_BYTES) return this.readAt(offset, length);
    const buf = new Uint8Array(length);
    let at = 0;
    while (at < length) {
      const rest = buf.subarray(at);
      const where = BigInt(offset + at);
      let n = await this.#onThread((fd) =>
        this.#lib.pread_async(fd, rest, BigInt(rest.length), where)
      );
      if (n === -1n) n = this.#lib.pread(this.fd, rest, BigInt(rest.length), where);
      check(this.#lib, "pread", n);
      if (n === 0n) break;
      at += Number(n);
    }
    return buf.subarray(0, at);
  }

  /** {@link syncData} on a blocking thread. */
  async syncDataAsync(): Promise<void> {
    if (await this.#onThread((fd) => this.#lib.fdatasync_async(fd)) === -1) this.syncData();
  }

  /** Writes all of `bytes` at the file's position. */
  writeAll(bytes: Uint8Array): void {
    for (let at = 0; at < bytes.length;) {
      const rest = bytes.subarray(at) as Uint8Array<ArrayBuffer>;
      const n = this.#lib.write(this.fd, rest, BigInt(rest.length));
      check(this.#lib, "write", n);
      at += Number(n);
    }
  }

  /** `fchmod`: sets the permission bits of the open file itself. */
  chmod(mode: number): void {
    check(this.#lib, "fchmod", this.#lib.fchmod(this.fd, mode));
  }

  /** `fstat` of the open file itself. */
  stat(): FileStat {
    const buf = new Uint8Array(STAT.size);
    check(this.#lib, "fstat", this.#lib.fstat(this.fd, buf));
    return decodeStat(buf);
  }

  /** `fdatasync`: the file's data on the disk. */
  syncData(): void {
    check(this.#lib, "fdatasync", this.#lib.fdatasync(this.fd));
  }

  /**
   * Closes the descriptor (once the calls running on blocking threads
   * have returned); idempotent.
   */
  close(): void {
    if (this.#fd < 0 || this.#closing) return;
    this.#closing = true;
    if (this.#busy === 0) this.#release();
  }

  #release(): void {
    const fd = this.#fd;
    this.#fd = -1;
    this.#lib.close(fd);
  }

  /** Closes the descriptor. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/** `struct open_how` (flags, mode, resolve), filled for each call: the calls are synchronous. */
const OPEN_HOW = new BigUint64Array(3);
const OPEN_HOW_BYTES = new Uint8Array(OPEN_HOW.buffer);

/** `openat2`: opens `path` relative to the folder `dirfd` under `how`'s rules. */
export function openat2(dirfd: number, path: string, how: OpenHow): FileDescriptor {
  const lib = loadLibc();
  OPEN_HOW[0] = BigInt(how.flags);
  OPEN_HOW[1] = BigInt(how.mode ?? 0);
  OPEN_HOW[2] = BigInt(how.resolve);
  const fd = lib.syscall(SYS_OPENAT2, BigInt(dirfd), cString(path), OPEN_HOW_BYTES, 24n);
  check(lib, "openat2", fd, path);
  return new FileDescriptor(Number(fd), lib);
}

/** `mkdirat`: makes folder `name` in the folder `dirfd` (a link in its place is not followed). */
export function mkdirat(dirfd: number, name: string, mode: number): void {
  const lib = loadLibc();
  check(lib, "mkdirat", lib.mkdirat(dirfd, cString(name), mode), name);
}

/** `renameat2`: moves `from` (in `fromDir`) to `to` (in `toDir`); `flags` e.g. `RENAME_NOREPLACE`. */
export function renameat(
  fromDir: number,
  from: string,
  toDir: number,
  to: string,
  flags = 0,
): void {
  const lib = loadLibc();
  check(lib, "renameat2", lib.renameat2(fromDir, cString(from), toDir, cString(to, 1), flags), to);
}

/** `linkat` (never following a link at `from`): a new name for a file, never replacing one. */
export function linkat(fromDir: number, from: string, toDir: number, to: string): void {
  const lib = loadLibc();
  check(lib, "linkat", lib.linkat(fromDir, cString(from), toDir, cString(to, 1), 0), to);
}

/** `unlinkat`: removes `name` from the folder `dirfd` (`AT_REMOVEDIR` for a folder). */
export function unlinkat(dirfd: number, name: string, flags = 0): void {
  const lib = loadLibc();
  check(lib, "unlinkat", lib.unlinkat(dirfd, cString(name), flags), name);
}

/**
 * `fchmodat` with `AT_SYMLINK_NOFOLLOW`: sets the mode of `name` in the
 * folder `dirfd`; a link there is refused (`EOPNOTSUPP`), never followed.
 */
export function chmodat(dirfd: number, name: string, mode: number): void {
  const lib = loadLibc();
  check(lib, "fchmodat", lib.fchmodat(dirfd, cString(name), mode, AT_SYMLINK_NOFOLLOW), name);
}

/** `fstatat` with `AT_SYMLINK_NOFOLLOW`: what `name` in the folder `dirfd` is, a link not followed. */
export function lstatat(dirfd: number, name: string): FileStat {
  const lib = loadLibc();
  const buf = new Uint8Array(STAT.size);
  check(lib, "fstatat", lib.fstatat(dirfd, cString(name), buf, AT_SYMLINK_NOFOLLOW), name);
  return decodeStat(buf);
}
