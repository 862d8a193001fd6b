/**
 * The receiver's view of one file transfer, with no I/O: which chunks it
 * holds verified and their check values, and how often each chunk has
 * failed. It serialises to bytes so a server can keep it beside the
 * partial file and resume after a cut or a restart.
 *
 * A chunk's check value is the MD5 of the file up to the end of that
 * chunk, so chunks are verified in order and what is held is always a
 * prefix of the file: {@link TransferState.truncate} drops everything from
 * a chunk on when it turns out to differ.
 *
 * Memory and the saved state grow with the chunks held, never with the
 * size a client offers: digests are kept in pages of {@link PAGE_CHUNKS}
 * chunks made when a chunk in them is first held, and the state saves
 * the held chunks only. An offer of 64 GiB that sends nothing costs the
 * same as one of a byte.
 *
 * @module
 */
import { ProtocolError, UserError } from "../errors.ts";
import { chunkCount, MAX_CHUNK_RETRIES, MAX_CHUNKS, MAX_HELD_RANGES } from "./messages.ts";
import { bytesEqual, MD5_LENGTH } from "../crypto/md5.ts";

const STATE_MAGIC = 0x534b5354; // "SKST"
// Version 3: check values are prefix MD5s; a version 2 state (per-chunk
// MD5s) is foreign and the transfer starts over.
const STATE_VERSION = 3;
const STATE_HEADER = 28;
/** Chunks per page of digests. */
export const PAGE_CHUNKS = 1024;

/** Bytes per page in a saved state: its number, held bits and digests. */
const STATE_PAGE = 4 + PAGE_CHUNKS / 8 + PAGE_CHUNKS * MD5_LENGTH;

interface Page {
  held: Uint8Array;
  digests: Uint8Array;
}

/** What happened to a chunk the receiver was given. */
export type ChunkOutcome =
  /** Verified and new: store its data. */
  | "store"
  /** Verified, but already held: nothing to do. */
  | "duplicate"
  /** Failed its MD5 (or the held copy differs): ask for it again. */
  | "retry";

/** Receiver-side state of one transfer. */
export class TransferState {
  /** File size in bytes. */
  readonly size: number;
  /** Chunk size in bytes. */
  readonly chunkSize: number;
  /** Number of chunks. */
  readonly chunks: number;
  #pages = new Map<number, Page>();
  #last: { n: number; page: Page } | undefined;
  #heldCount = 0;
  #failures = new Map<number, number>();

  /** State of a transfer of `size` bytes in chunks of `chunkSize`, with nothing held yet. */
  constructor(size: number, chunkSize: number) {
    if (!Number.isSafeInteger(size) || size < 0) throw new RangeError("Bad size");
    if (!Number.isSafeInteger(chunkSize) || chunkSize <= 0) {
      throw new RangeError("Bad chunk size");
    }
    this.size = size;
    this.chunkSize = chunkSize;
    this.chunks = chunkCount(size, chunkSize);
    if (this.chunks > MAX_CHUNKS) throw new RangeError("Too many chunks");
  }

  /** Bytes of memory the held chunks' pages take (for tests of the bound). */
  get memoryBytes(): number {
    let bytes = 0;
    for (const p of this.#pages.values()) bytes += p.held.length + p.digests.length;
    return bytes;
  }

  /** Number of chunks held verified. */
  get heldCount(): number {
    return this.#heldCount;
  }

  /** Whether every chunk is held verified. */
  get complete(): boolean {
    return this.#heldCount === this.chunks;
  }

  /** Byte offset of chunk `index` in the file. */
  offsetOf(index: number): number {
    return index * this.chunkSize;
  }

  /** Length in bytes of chunk `index` (the last may be short). */
  lengthOf(index: number): number {
    this.#checkIndex(index);
    return Math.min(this.chunkSize, this.size - index * this.chunkSize);
  }

  /** Whether chunk `index` is held verified. */
  isHeld(index: number): boolean {
    const p = this.#page(index);
    const i = index % PAGE_CHUNKS;
    return p !== undefined && (p.held[i >> 3] & (1 << (i & 7))) !== 0;
  }

  /** The page holding chunk `index`, if made (the last one used is kept at hand). */
  #page(index: number): Page | undefined {
    const n = Math.floor(index / PAGE_CHUNKS);
    if (this.#last?.n === n) return this.#last.page;
    const page = this.#pages.get(n);
    if (page) this.#last = { n, page };
    return page;
  }

  /**
   * Records a DATA chunk whose check value (`actual`, computed by the
   * receiver over the bytes that arrived) is compared with the sender's.
   * Throws {@link ProtocolError} for an index or length that cannot be, and
   * {@link UserError} when the chunk has failed more than MAX_CHUNK_RETRIES.
   */
  receiveData(
    index: number,
    length: number,
    claimed: Uint8Array,
    actual: Uint8Array,
  ): ChunkOutcome {
    this.#checkIndex(index);
    if (length !== this.lengthOf(index)) {
      throw new ProtocolError(
        `Chunk ${index} has ${length} bytes; it should have ${this.lengthOf(index)}`,
      );
    }
    if (!bytesEqual(claimed, actual)) return this.#fail(index);
    if (this.isHeld(index)) {
      if (bytesEqual(this.digestOf(index), actual)) return "duplicate";
      // Verified bytes that differ from the held copy: the file changed
      // since, and every held chunk from here on is stale.
      this.truncate(index);
    }
    this.#hold(index, actual);
    return "store";
  }

  /**
   * Records a CHECK: the sender says the receiver's held chunk should have
   * this check value. A mismatch (or a chunk not held) drops the held
   * chunks from `index` on, counts a failure and asks for the data.
   */
  receiveCheck(index: number, claimed: Uint8Array): ChunkOutcome {
    this.#checkIndex(index);
    if (this.isHeld(index) && bytesEqual(this.digestOf(index), claimed)) {
      return "duplicate";
    }
    this.truncate(index);
    return this.#fail(index);
  }

  /**
   * Drops every held chunk from `index` on: their check values cover a
   * chunk now known to differ. Returns how many were dropped.
   */
  truncate(index: number): number {
    let dropped = 0;
    for (const i of this.#heldIndices()) {
      if (i < index) continue;
      const p = this.#pages.get(Math.floor(i / PAGE_CHUNKS))!;
      const at = i % PAGE_CHUNKS;
      p.held[at >> 3] &= ~(1 << (at & 7));
      this.#heldCount--;
      dropped++;
    }
    return dropped;
  }

  /** The number of chunks held from the start with no gap. */
  get prefixLength(): number {
    let n = 0;
    for (const i of this.#heldIndices()) {
      if (i !== n) break;
      n++;
    }
    return n;
  }

  /** The stored digest of a held chunk (a view). */
  digestOf(index: number): Uint8Array {
    const p = this.#page(index);
    if (!p) return new Uint8Array(MD5_LENGTH);
    const i = index % PAGE_CHUNKS;
    return p.digests.subarray(i * MD5_LENGTH, (i + 1) * MD5_LENGTH);
  }

  /** How many times chunk `index` has failed so far. */
  failuresOf(index: number): number {
    return this.#failures.get(index) ?? 0;
  }

  /** Held chunks as half-open ranges, at most `limit` of them (the first ones). */
  heldRanges(limit = MAX_HELD_RANGES): [number, number][] {
    const out: [number, number][] = [];
    for (const i of this.#heldIndices()) {
      const last = out[out.length - 1];
      if (last && last[1] === i) last[1] = i + 1;
      else if (out.length < limit) out.push([i, i + 1]);
      else break;
    }
    return out;
  }

  /** Serialises the held chunks and their check values (not failures). */
  serialize(): Uint8Array {
    const pages = [...this.#pages.keys()].sort((a, b) => a - b);
    const out = new Uint8Array(STATE_HEADER + pages.length * STATE_PAGE);
    const view = new DataView(out.buffer);
    view.setUint32(0, STATE_MAGIC);
    view.setUint32(4, STATE_VERSION);
    view.setFloat64(8, this.size);
    view.setUint32(16, this.chunkSize);
    view.setUint32(20, this.chunks);
    view.setUint32(24, pages.length);
    let at = STATE_HEADER;
    for (const n of pages) {
      const p = this.#pages.get(n)!;
      view.setUint32(at, n);
      out.set(p.held, at + 4);
      out.set(p.digests, at + 4 + p.held.length);
      at += STATE_PAGE;
    }
    return out;
  }

  /**
   * Restores a state saved by {@link serialize}, or returns `null` when the
   * bytes are not a valid state for this size and chunk size (a damaged or
   * foreign file is ignored, and the transfer starts over).
   */
  static deserialize(
    bytes: Uint8Array,
    size: number,
    chunkSize: number,
  ): TransferState | null {
    const state = new TransferState(size, chunkSize);
    if (bytes.length < STATE_HEADER) return null;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
    const pages = view.getUint32(24);
    const maxPages = Math.ceil(state.chunks / PAGE_CHUNKS);
    if (
      view.getUint32(0) !== STATE_MAGIC || view.getUint32(4) !== STATE_VERSION ||
      view.getFloat64(8) !== size || view.getUint32(16) !== chunkSize ||
      view.getUint32(20) !== state.chunks || pages > maxPages ||
      bytes.length !== STATE_HEADER + pages * STATE_PAGE
    ) {
      return null;
    }
    // Page numbers strictly increasing and in range, no chunk past the
    // last held, or the file is foreign.
    let last = -1;
    for (let at = STATE_HEADER; at < bytes.length; at += STATE_PAGE) {
      const n = view.getUint32(at);
      if (n <= last || n >= maxPages) return null;
      last = n;
      const held = bytes.slice(at + 4, at + 4 + PAGE_CHUNKS / 8);
      const page = { held, digests: bytes.slice(at + 4 + held.length, at + STATE_PAGE) };
      for (let i = 0; i < PAGE_CHUNKS; i++) {
        if (!(held[i >> 3] & (1 << (i & 7)))) continue;
        if (n * PAGE_CHUNKS + i >= state.chunks) return null;
        state.#heldCount++;
      }
      state.#pages.set(n, page);
    }
    // Only a prefix can have been verified; anything past a gap is foreign.
    state.truncate(state.prefixLength);
    return state;
  }

  #hold(index: number, digest: Uint8Array): void {
    const n = Math.floor(index / PAGE_CHUNKS);
    let p = this.#page(index);
    if (!p) {
      // The last page holds only the chunks the file has: a small file's
      // state is a few bytes, not 16 KiB (ten thousand small files).
      const chunks = Math.min(PAGE_CHUNKS, this.chunks - n * PAGE_CHUNKS);
      p = {
        held: new Uint8Array(PAGE_CHUNKS / 8),
        digests: new Uint8Array(chunks * MD5_LENGTH),
      };
      this.#pages.set(n, p);
    }
    const i = index % PAGE_CHUNKS;
    p.digests.set(digest, i * MD5_LENGTH);
    p.held[i >> 3] |= 1 << (i & 7);
    this.#heldCount++;
  }

  /** Held chunk indices in order. */
  #heldIndices(): number[] {
    const out: number[] = [];
    for (const n of [...this.#pages.keys()].sort((a, b) => a - b)) {
      const held = this.#pages.get(n)!.held;
      for (let byte = 0; byte < held.length; byte++) {
        const bits = held[byte];
        if (bits === 0) continue;
        for (let bit = 0; bit < 8; bit++) {
          if (bits & (1 << bit)) out.push(n * PAGE_CHUNKS + byte * 8 + bit);
        }
      }
    }
    return out;
  }

  #fail(index: number): ChunkOutcome {
    const n = (this.#failures.get(index) ?? 0) + 1;
    this.#failures.set(index, n);
    if (n > MAX_CHUNK_RETRIES) {
      throw new UserError(
        `Chunk ${index} failed its MD5 check ${n} times; giving up`,
      );
    }
    return "retry";
  }

  #checkIndex(index: number): void {
    if (!Number.isSafeInteger(index) || index < 0 || index >= this.chunks) {
      throw new ProtocolError(
        `Chunk index ${index} is out of range (the file has ${this.chunks} chunks)`,
      );
    }
  }
}
