/**
 * The server's reader of a connection's link frames, with no I/O: it
 * passes each STREAM frame's inner bytes on to their stream as they
 * arrive, without holding the frame whole (the stream's own decoder frames
 * them). A connection thus holds at most a header here; what its streams
 * hold is counted by {@link StreamBudget}. An ERROR (the client gave up)
 * is small and kept whole.
 *
 * @module
 */
import { ProtocolError } from "../errors.ts";
import { FRAME_MAGIC, FRAME_VERSION, HEADER_LENGTH } from "../wire/frame.ts";
import { decodeError, MsgType, SERVER_LINK_LIMITS, STREAM_PREFIX } from "./messages.ts";

/** What a connection's bytes carry: a piece of a stream's inner bytes, or the client giving up. */
export type LinkPiece =
  | { type: "stream"; id: number; bytes: Uint8Array }
  | { type: "error"; message: string };

const HEAD = HEADER_LENGTH + STREAM_PREFIX;

/** Splits a connection's link frames into pieces of its streams' bytes. */
export class LinkSplitter {
  /** The frame's header (and a STREAM frame's id) being gathered. */
  #head = new Uint8Array(HEAD);
  #have = 0;
  /** Gathering a header (else a payload). */
  #inHead = true;
  /** Payload bytes of the current frame still to come. */
  #left = 0;
  #id = 0;
  /** An ERROR's payload, gathered whole. */
  #error: Uint8Array | undefined;
  #errorAt = 0;

  /**
   * The pieces in `bytes` (views into it, valid until the caller's next
   * read). Throws {@link ProtocolError} on a bad header.
   */
  push(bytes: Uint8Array): LinkPiece[] {
    const out: LinkPiece[] = [];
    let at = 0;
    while (at < bytes.length) {
      if (this.#inHead) {
        const need = (this.#have < HEADER_LENGTH ? HEADER_LENGTH : HEAD) - this.#have;
        const n = Math.min(need, bytes.length - at);
        this.#head.set(bytes.subarray(at, at + n), this.#have);
        this.#have += n;
        at += n;
        if (this.#have === HEADER_LENGTH) this.#header(out);
        else if (this.#have === HEAD) {
          this.#id = new DataView(this.#head.buffer).getUint32(HEADER_LENGTH);
          this.#have = 0;
          this.#inHead = this.#left === 0;
          if (this.#left === 0) out.push({ type: "stream", id: this.#id, bytes: EMPTY });
        }
        continue;
      }
      const n = Math.min(this.#left, bytes.length - at);
      const piece = bytes.subarray(at, at + n);
      at += n;
      this.#left -= n;
      if (this.#error) {
        this.#error.set(piece, this.#errorAt);
        this.#errorAt += n;
        if (this.#left === 0) this.#errorDone(out);
      } else out.push({ type: "stream", id: this.#id, bytes: piece });
      if (this.#left === 0) this.#inHead = true;
    }
    return out;
  }

  /** Call when the client closed its side: throws if a frame was cut short. */
  finish(): void {
    if (!this.#inHead || this.#have > 0) {
      throw new ProtocolError("Stream ended in the middle of a frame");
    }
  }

  /** Checks the header in hand and starts its payload. */
  #header(out: LinkPiece[]): void {
    const view = new DataView(this.#head.buffer);
    if (view.getUint16(0) !== FRAME_MAGIC) {
      throw new ProtocolError("Peer is not speaking this protocol (bad magic)");
    }
    const version = view.getUint8(2);
    if (version !== FRAME_VERSION) {
      throw new ProtocolError(
        `Peer speaks protocol version ${version}; this tool speaks ${FRAME_VERSION}`,
      );
    }
    const type = view.getUint8(3);
    const max = SERVER_LINK_LIMITS.maxPayload[type];
    if (max === undefined) throw new ProtocolError(`Unknown frame type ${type}`);
    const length = view.getUint32(4);
    if (length > max || (type === MsgType.STREAM && length < STREAM_PREFIX)) {
      throw new ProtocolError(`Frame of type ${type} claims ${length} bytes, over the limit`);
    }
    if (type === MsgType.ERROR) {
      this.#have = 0;
      this.#left = length;
      this.#error = new Uint8Array(length);
      this.#errorAt = 0;
      this.#inHead = length === 0;
      if (length === 0) this.#errorDone(out);
    } else this.#left = length - STREAM_PREFIX;
  }

  #errorDone(out: LinkPiece[]): void {
    out.push({ type: "error", message: decodeError(this.#error!) });
    this.#error = undefined;
  }
}

const EMPTY = new Uint8Array(0);
