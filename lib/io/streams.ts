/**
 * Small I/O helpers every shell uses: write all bytes, read exactly n bytes,
 * read at an offset. Deno's `write` and `read` may move fewer bytes than
 * asked; these loop until done.
 *
 * @module
 */

/** Anything with Deno's `write` method (a connection or a file). */
export interface Writer {
  /** Writes some of `p`; resolves with how many bytes were written. */
  write(p: Uint8Array): Promise<number>;
}

/** Anything with Deno's `read` method. */
export interface Reader {
  /** Reads into `p`; resolves with how many bytes were read, or null at the end. */
  read(p: Uint8Array): Promise<number | null>;
}

/** Writes every byte of `data`. */
export async function writeAll(w: Writer, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) off += await w.write(data.subarray(off));
}

/**
 * Fills `buf` from `r`; returns how many bytes were read, which is less than
 * `buf.length` only at end of file.
 */
export async function readFull(r: Reader, buf: Uint8Array): Promise<number> {
  let off = 0;
  while (off < buf.length) {
    const n = await r.read(buf.subarray(off));
    if (n === null) break;
    off += n;
  }
  return off;
}

/** Reads `length` bytes at `offset` of `file` into a new array (short at EOF). */
export async function readAt(
  file: Deno.FsFile,
  offset: number,
  length: number,
): Promise<Uint8Array> {
  await file.seek(offset, Deno.SeekMode.Start);
  const buf = new Uint8Array(length);
  const n = await readFull(file, buf);
  return buf.subarray(0, n);
}

/**
 * Fills `buf` from `file` synchronously; returns bytes read (short only at
 * end of file). For hot loops over local files, where Deno's async read
 * costs a thread-pool round trip per call.
 */
export function readFullSync(file: Deno.FsFile, buf: Uint8Array): number {
  let off = 0;
  while (off < buf.length) {
    const n = file.readSync(buf.subarray(off));
    if (n === null) break;
    off += n;
  }
  return off;
}
