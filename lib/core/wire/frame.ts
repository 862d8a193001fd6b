/**
 * The stream framing shared by every TCP tool: an 8-byte header followed by
 * a payload.
 *
 * ```text
 * offset 0  magic    2 bytes  "SK" (0x53 0x4B)
 * offset 2  version  1 byte   FRAME_VERSION
 * offset 3  type     1 byte   message type, meaning set by each protocol
 * offset 4  length   4 bytes  payload length, unsigned big-endian
 * offset 8  payload  length bytes
 * ```
 *
 * {@link FrameDecoder} is sans-I/O: push whatever bytes a socket returned and
 * pull whole frames out. TCP is a byte stream, so one read may hold half a
 * frame or several; the decoder never assumes a read matches a write. Every
 * header is validated (magic, version, type, length) before any payload is
 * buffered, so a hostile peer cannot make it allocate more than the limit.
 *
 * @module
 */
import { ProtocolError } from "../errors.ts";

/** The two magic bytes that start every frame ("SK"). */
export const FRAME_MAGIC = 0x534b;
/** The version of the framing this code speaks. */
export const FRAME_VERSION = 1;
/** Size of the frame header in bytes. */
export const HEADER_LENGTH = 8;

/** One decoded frame. */
export interface Frame {
  /** Message type. */
  type: number;
  /**
   * The payload. It is a view into the decoder's buffer and stays valid only
   * until the next {@link FrameDecoder.push}; copy it to keep it longer.
   */
  payload: Uint8Array;
}

/** Limits a decoder enforces before buffering a payload. */
export interface FrameLimits {
  /** Largest payload accepted for each known type; other types are rejected. */
  maxPayload: Readonly<Record<number, number>>;
}

/** Writes a frame header for `type` and `length` into `target` at `offset`. */
export function writeHeader(
  target: Uint8Array,
  type: number,
  length: number,
  offset = 0,
): void {
  const view = new DataView(target.buffer, target.byteOffset + offset, 8);
  view.setUint16(0, FRAME_MAGIC);
  view.setUint8(2, FRAME_VERSION);
  view.setUint8(3, type);
  view.setUint32(4, length);
}

/** The bytes of `parts` one after another, in a new array. */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  return all;
}

/** Encodes one frame with the given type and payload into a new array. */
export function encodeFrame(type: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(HEADER_LENGTH + payload.length);
  writeHeader(out, type, payload.length);
  out.set(payload, HEADER_LENGTH);
  return out;
}

/** Incremental frame decoder: bytes in, frames out. */
export class FrameDecoder {
  #limits: FrameLimits;
  #buf: Uint8Array;
  #start = 0;
  #end = 0;
  #maxFrame: number;

  /**
   * Creates a decoder that enforces `limits`.
   *
   * @param limits Per-type payload limits; unknown types are protocol errors.
   */
  constructor(limits: FrameLimits) {
    this.#limits = limits;
    const largest = Math.max(0, ...Object.values(limits.maxPayload));
    this.#maxFrame = HEADER_LENGTH + largest;
    // Empty at first (a session per small file must not cost 64 KiB, nor
    // a hundred thousand refused offers 4 KiB each): it grows to what the
    // peer's bytes need, up to one maximal frame.
    this.#buf = new Uint8Array(0);
  }

  /**
   * Enforces `limits` from the next frame on (the pending header, if in
   * hand, is checked against them at once): a session that allows larger
   * frames only once the peer proved something (an offer accepted).
   * Throws {@link ProtocolError} like {@link next}.
   */
  setLimits(limits: FrameLimits): void {
    this.#limits = limits;
    this.#maxFrame = HEADER_LENGTH + Math.max(0, ...Object.values(limits.maxPayload));
    if (this.#end - this.#start >= HEADER_LENGTH) this.#header();
    else this.#checkPartialMagic();
  }

  /** Bytes received but not yet returned as frames. */
  get buffered(): number {
    return this.#end - this.#start;
  }

  /**
   * Appends bytes from the peer. Frames returned earlier may be overwritten.
   * Throws {@link ProtocolError} if the pending header is invalid.
   */
  push(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    // Validate a header as soon as it is complete, so that nothing is
    // buffered on the strength of a hostile length.
    this.#ensureRoom(bytes.length);
    this.#buf.set(bytes, this.#end);
    this.#end += bytes.length;
  }

  /**
   * Returns the next whole frame, or `null` when more bytes are needed.
   * Throws {@link ProtocolError} on a bad magic, version, type or length.
   */
  next(): Frame | null {
    const type = this.peekType();
    if (type === null) return null;
    const { length } = this.#header();
    const at = this.#start + HEADER_LENGTH;
    this.#start = at + length;
    if (this.#start === this.#end) this.#start = this.#end = 0;
    return { type, payload: this.#buf.subarray(at, at + length) };
  }

  /**
   * The type of the next whole frame without taking it, or `null` when more
   * bytes are needed. Throws like {@link next} on a bad header.
   */
  peekType(): number | null {
    const available = this.#end - this.#start;
    if (available < HEADER_LENGTH) {
      this.#checkPartialMagic();
      return null;
    }
    const { type, length } = this.#header();
    return available < HEADER_LENGTH + length ? null : type;
  }

  /**
   * Call when the peer closed its side: throws {@link ProtocolError} if a
   * frame was cut short.
   */
  finish(): void {
    const left = this.#end - this.#start;
    if (left > 0) {
      throw new ProtocolError(
        `Stream ended in the middle of a frame (${left} bytes left over)`,
      );
    }
  }

  #checkPartialMagic(): void {
    const b = this.#buf;
    const s = this.#start;
    const n = this.#end - s;
    if (n >= 1 && b[s] !== FRAME_MAGIC >> 8) this.#badMagic();
    if (n >= 2 && b[s + 1] !== (FRAME_MAGIC & 0xff)) this.#badMagic();
    if (n >= 3 && b[s + 2] !== FRAME_VERSION) this.#badVersion(b[s + 2]);
    if (n >= 4 && this.#limits.maxPayload[b[s + 3]] === undefined) {
      this.#badType(b[s + 3]);
    }
  }

  #header(): { type: number; length: number } {
    const b = this.#buf;
    const s = this.#start;
    const view = new DataView(b.buffer, b.byteOffset + s, HEADER_LENGTH);
    if (view.getUint16(0) !== FRAME_MAGIC) this.#badMagic();
    const version = view.getUint8(2);
    if (version !== FRAME_VERSION) this.#badVersion(version);
    const type = view.getUint8(3);
    const max = this.#limits.maxPayload[type];
    if (max === undefined) this.#badType(type);
    const length = view.getUint32(4);
    if (length > max) {
      throw new ProtocolError(
        `Frame of type ${type} claims ${length} bytes, over the limit of ${max}`,
      );
    }
    return { type, length };
  }

  #ensureRoom(extra: number): void {
    // Validate the header in hand before growing: a bad header throws here.
    if (this.#end - this.#start >= HEADER_LENGTH) this.#header();
    else this.#checkPartialMagic();
    const live = this.#end - this.#start;
    const needed = live + extra;
    if (this.#end + extra <= this.#buf.length) return;
    if (needed <= this.#buf.length) {
      this.#buf.copyWithin(0, this.#start, this.#end);
    } else {
      // Never hold more than one maximal frame plus the bytes just read.
      const size = Math.max(needed, Math.min(this.#buf.length * 2, this.#maxFrame + extra));
      const grown = new Uint8Array(size);
      grown.set(this.#buf.subarray(this.#start, this.#end));
      this.#buf = grown;
    }
    this.#start = 0;
    this.#end = live;
  }

  #badMagic(): never {
    throw new ProtocolError("Peer is not speaking this protocol (bad magic)");
  }

  #badVersion(version: number): never {
    throw new ProtocolError(
      `Peer speaks protocol version ${version}; this tool speaks ${FRAME_VERSION}`,
    );
  }

  #badType(type: number): never {
    throw new ProtocolError(`Unknown frame type ${type}`);
  }
}
