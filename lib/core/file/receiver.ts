/**
 * The File-TCP receiver's session core: bytes and the current time in,
 * events and bytes to send out. No sockets, no files, no clock. The shell
 * owns the partial file; the core tells it what to do with it.
 *
 * ```text
 * awaiting offer ──OFFER──▶ offered ──accept(state)──▶ receiving ──END──▶ ending
 *                                                             verified ◀──┘ (all held, MD5 matches)
 * ```
 *
 * Events, which the shell must act on strictly in order (first in, first
 * out, including the events that {@link FileReceiver.hashChunk} returns: a
 * `read` may name a chunk whose `store` is still ahead of it in the queue):
 * - `offer`: open (or resume) the partial for this offer, then call
 *   {@link FileReceiver.accept} with its state and send the bytes it returns.
 * - `store`: a verified new chunk; write it at its offset. `data` is a view
 *   valid until the next call into the core.
 * - `read`: the whole-file MD5 needs a chunk held from an earlier session;
 *   read it and hand it to {@link FileReceiver.hashChunk}.
 * - `send`: bytes for the client (a NACK).
 * - `checkpoint`: save the partial's state (about once a second).
 * - `verified`: every chunk is held and the whole-file MD5 matches; store
 *   the file, then send what {@link FileReceiver.stored} returns.
 *
 * It throws {@link ProtocolError} for anything a client may not send now,
 * and {@link UserError} when the transfer fails (a chunk failing its MD5
 * too often, a whole-file mismatch, the client giving up).
 *
 * @module
 */
import { ProtocolError, UserError } from "../errors.ts";
import { FrameDecoder } from "../wire/frame.ts";
import { md5, Md5Stream } from "../wire/md5.ts";
import {
  decodeChunk,
  decodeEnd,
  decodeError,
  decodeOffer,
  encodeJson,
  encodeNack,
  MsgType,
  type Offer,
  SERVER_LIMITS,
} from "./messages.ts";
import type { TransferState } from "./transfer_state.ts";

/** What the client's bytes mean, for the shell to act on. */
export type ReceiverEvent =
  | { type: "offer"; offer: Offer }
  | { type: "store"; index: number; data: Uint8Array }
  | { type: "read"; index: number }
  | { type: "send"; bytes: Uint8Array }
  | { type: "checkpoint" }
  | { type: "verified"; md5: string };

/** Counters of one receiver session, for logs and tests. */
export interface ReceiverCounters {
  /** DATA chunks received (including retransmissions). */
  dataChunks: number;
  /** Chunks confirmed by CHECK without their data (resumed). */
  checkedChunks: number;
  /** NACKs sent. */
  nacks: number;
}

/** How often to ask the shell to save state, ms. */
export const CHECKPOINT_MS = 1000;

/** The receiver's side of one file transfer. */
export class FileReceiver {
  /** What the session has seen. */
  readonly counters: ReceiverCounters = { dataChunks: 0, checkedChunks: 0, nacks: 0 };
  #decoder = new FrameDecoder(SERVER_LIMITS);
  #offer: Offer | undefined;
  #state: TransferState | undefined;
  #whole = new Md5Stream();
  #expected: string | undefined;
  #reading: number | undefined;
  #verified = false;
  #lastSave: number | undefined;
  #frames = 0;

  /**
   * Whole messages taken so far: progress, as the shell's idle timeout
   * measures it (a peer trickling bytes that never make a message makes none).
   */
  get frames(): number {
    return this.#frames;
  }

  /** Takes bytes from the client at time `now` (ms) and returns what to do. */
  receive(bytes: Uint8Array, now: number): ReceiverEvent[] {
    this.#decoder.push(bytes);
    const events: ReceiverEvent[] = [];
    // Until the shell accepts the offer, later frames wait in the decoder.
    while (!(this.#offer && !this.#state) && !this.#verified) {
      const f = this.#decoder.next();
      if (f === null) break;
      this.#frames++;
      if (f.type === MsgType.ERROR) {
        throw new UserError(`Client gave up: ${decodeError(f.payload)}`);
      }
      if (!this.#offer) {
        if (f.type !== MsgType.OFFER) {
          throw new ProtocolError(`Expected an offer, got frame type ${f.type}`);
        }
        this.#offer = decodeOffer(f.payload);
        events.push({ type: "offer", offer: this.#offer });
        continue;
      }
      const state = this.#state!;
      switch (f.type) {
        case MsgType.DATA: {
          this.counters.dataChunks++;
          const c = decodeChunk(f.payload);
          const outcome = state.receiveData(c.index, c.data.length, c.digest, md5(c.data));
          if (outcome === "store") {
            events.push({ type: "store", index: c.index, data: c.data });
            this.#hashForward(events, c.index, c.data);
          } else if (outcome === "retry") {
            events.push(this.#nack(c.index));
          }
          break;
        }
        case MsgType.CHECK: {
          this.counters.checkedChunks++;
          const c = decodeChunk(f.payload);
          if (c.data.length !== 0) throw new ProtocolError("Check frame carries data");
          if (state.receiveCheck(c.index, c.digest) === "retry") events.push(this.#nack(c.index));
          else this.#hashForward(events);
          break;
        }
        case MsgType.END:
          if (this.#expected !== undefined) throw new ProtocolError("Client sent two end messages");
          this.#expected = decodeEnd(f.payload).md5;
          state.endOfChunks();
          this.#hashForward(events);
          break;
        default:
          throw new ProtocolError(`Unexpected frame type ${f.type}`);
      }
      this.#finishIfDone(events);
    }
    if (this.#state && !this.#verified) {
      this.#lastSave ??= now;
      if (now - this.#lastSave > CHECKPOINT_MS) {
        this.#lastSave = now;
        events.push({ type: "checkpoint" });
      }
    }
    return events;
  }

  /**
   * Accepts the offer with the receiver state the shell opened (fresh, or
   * resumed from an earlier session whose token the offer carried) and the
   * token that resumes it. Returns the ACCEPT frame to send; then call
   * {@link receive} (with no bytes) for frames that came with the offer.
   */
  accept(state: TransferState, token: string): Uint8Array {
    if (!this.#offer || this.#state) throw new Error("Nothing to accept");
    this.#state = state;
    return encodeJson(MsgType.ACCEPT, { token, held: state.heldRanges() });
  }

  /** The bytes of held chunk `index`, asked for by a `read` event. */
  hashChunk(index: number, data: Uint8Array): ReceiverEvent[] {
    if (this.#reading !== index) throw new Error(`Chunk ${index} was not asked for`);
    this.#reading = undefined;
    const events: ReceiverEvent[] = [];
    this.#hashForward(events, index, data);
    this.#finishIfDone(events);
    return events;
  }

  /** The DONE frame once the shell stored the verified file as `storedAs`. */
  stored(storedAs: string): Uint8Array {
    if (!this.#verified) throw new Error("The file is not verified");
    return encodeJson(MsgType.DONE, {
      md5: this.#expected,
      storedAs,
      bytes: this.#offer!.size,
    });
  }

  /**
   * Call when the client closed the connection before the file was stored:
   * throws the error that says what was left undone.
   */
  closed(): never {
    this.#decoder.finish();
    if (!this.#offer) throw new ProtocolError("Client closed the connection before its offer");
    const s = this.#state;
    throw new UserError(
      s
        ? `Client disconnected with ${s.heldCount} of ${s.chunks} chunks held; kept for resume`
        : "Client disconnected before its offer was accepted",
    );
  }

  #nack(index: number): ReceiverEvent {
    this.counters.nacks++;
    return { type: "send", bytes: encodeNack(index) };
  }

  /**
   * Feeds the whole-file MD5 every chunk it can take, in order. `index` and
   * `data` are the chunk in hand, so it need not be read back; any other
   * held chunk is asked for with a `read` event, and hashing waits for it.
   */
  #hashForward(events: ReceiverEvent[], index?: number, data?: Uint8Array) {
    const state = this.#state!;
    if (this.#reading !== undefined) return;
    let i: number | null;
    while ((i = state.nextToHash()) !== null) {
      if (i !== index) {
        this.#reading = i;
        events.push({ type: "read", index: i });
        return;
      }
      this.#whole.update(data!);
      state.advanceHash();
    }
  }

  #finishIfDone(events: ReceiverEvent[]) {
    const state = this.#state!;
    if (this.#expected === undefined || !state.complete || this.#reading !== undefined) return;
    if (state.hashCursor !== state.chunks) return;
    const actual = this.#whole.hex();
    if (actual !== this.#expected) {
      throw new WholeFileMismatch(this.#expected, actual);
    }
    this.#verified = true;
    events.push({ type: "verified", md5: actual });
  }
}

/** The whole file's MD5 differs from the client's: the partial data is worthless. */
export class WholeFileMismatch extends UserError {
  /** Creates the error naming both digests. */
  constructor(expected: string, actual: string) {
    super(
      `Whole-file MD5 mismatch (client ${expected}, server ${actual}); partial data discarded`,
    );
    this.name = "WholeFileMismatch";
  }
}
