/**
 * The File-TCP receiver's session core: bytes and the current time in,
 * events and bytes to send out. No sockets, no files, no clock. The shell
 * owns the partial file; the core tells it what to do with it.
 *
 * ```text
 * awaiting offer ──OFFER──▶ offered ──accept(state)──▶ receiving ──END──▶ ending
 *                                │                            verified ◀──┘ (all held, MD5 matches)
 *                                └─challenge(salt)──▶ challenged ──PROOF──▶ proved
 *                                        proved ──upToDate()──▶ done, or ──accept(state)──▶ receiving
 * ```
 *
 * Every chunk is checked by the MD5 of the file up to its end (its prefix
 * MD5), so the core hashes the file once, in order, and the last check is
 * the whole file's MD5. Chunks are therefore taken strictly in order: when
 * one fails, the core asks for it again (a NACK) and drops the chunks the
 * sender had already sent after it, which the sender sends again after the
 * one asked for (go-back-N). Over TCP a failure is rare, so this costs
 * nothing in the common case and keeps one MD5 pass per side.
 *
 * Events, which the shell must act on strictly in order (first in, first
 * out, including the events that {@link FileReceiver.hashChunk} returns):
 * - `offer`: open (or resume) the partial for this offer, then call
 *   {@link FileReceiver.accept} with its state and send the bytes it returns;
 *   or, for an `update` offer of a file stored with its size, send what
 *   {@link FileReceiver.challenge} returns.
 * - `proof`: the client's answer to the challenge; send what
 *   {@link FileReceiver.upToDate} returns if it matches, else accept.
 * - `store`: a verified new chunk; write it at its offset. `data` is a view
 *   valid until the next call into the core.
 * - `read`: a resumed transfer's held chunk, which the running MD5 needs
 *   before the next new chunk can be checked; read it and hand it to
 *   {@link FileReceiver.hashChunk}. A held chunk that no longer matches
 *   its check value is dropped with everything after it and asked for.
 * - `send`: bytes for the client (a NACK).
 * - `checkpoint`: save the partial's state (about once a second).
 * - `verified`: every chunk is held and the whole-file MD5 matches; store
 *   the file, then send what {@link FileReceiver.stored} returns.
 *
 * It throws {@link ProtocolError} for anything a client may not send now,
 * and {@link UserError} when the transfer fails (a chunk failing its MD5
 * too often, a whole-file mismatch, the client giving up).
 * The session's phase ({@link FileReceiver.phase}) moves only as
 * {@link RECEIVER_TRANSITIONS} allows; once a call threw, the session is
 * `failed` and refuses every later input.
 *
 * @module
 */
import { ProtocolError, UserError } from "../errors.ts";
import { FrameDecoder } from "../wire/frame.ts";
import { bytesEqual, PrefixMd5, toHex } from "../crypto/md5.ts";
import {
  BEFORE_OFFER_LIMITS,
  type ChunkRef,
  decodeChunk,
  decodeError,
  encodeJson,
  encodeNack,
  MsgType,
  type Offer,
  offeredLimits,
} from "./messages.ts";
import { decodeEnd, decodeOffer, decodeProof } from "./decode_messages.ts";
import type { TransferState } from "./transfer_state.ts";

/** What the client's bytes mean, for the shell to act on. */
export type ReceiverEvent =
  | { type: "offer"; offer: Offer }
  | { type: "proof"; proof: string }
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
  /** Chunks dropped because they came after one that failed (sent again). */
  droppedChunks: number;
}

/**
 * Where a receiver session is. Each phase may move only to those
 * {@link RECEIVER_TRANSITIONS} lists; `failed` is final: once a call
 * threw, every later input is refused.
 */
export type ReceiverPhase =
  | "awaiting-offer"
  | "offered"
  | "challenged"
  | "proved"
  | "receiving"
  | "verified"
  | "done"
  | "failed";

/** The receiver's transition table: the phases each phase may move to. */
export const RECEIVER_TRANSITIONS: Readonly<Record<ReceiverPhase, readonly ReceiverPhase[]>> = {
  "awaiting-offer": ["offered", "failed"],
  // A proof sent with the offer is the shell's to check: up to date, or accepted.
  offered: ["receiving", "challenged", "done", "failed"],
  challenged: ["proved", "failed"],
  proved: ["receiving", "done", "failed"],
  receiving: ["verified", "failed"],
  verified: ["done", "failed"],
  done: [],
  failed: [],
};

/** How often to ask the shell to save state, ms. */
export const CHECKPOINT_MS = 1000;

/** The receiver's side of one file transfer. */
export class FileReceiver {
  /** What the session has seen. */
  readonly counters: ReceiverCounters = {
    dataChunks: 0,
    checkedChunks: 0,
    nacks: 0,
    droppedChunks: 0,
  };
  #decoder = new FrameDecoder(BEFORE_OFFER_LIMITS);
  #offer: Offer | undefined;
  #state: TransferState | undefined;
  /** MD5 over chunks [0, #hashed), all held and verified. */
  #prefix = new PrefixMd5();
  #hashed = 0;
  /** The chunk the client must send next (CHECKs confirm without hashing). */
  #next = 0;
  /** A NACK for #next is out: later chunks are dropped until it comes. */
  #awaiting = false;
  #lastDropped = -1;
  #expected: string | undefined;
  #reading: number | undefined;
  #verified = false;
  #lastSave: number | undefined;
  #frames = 0;
  /** A challenge went out and its proof has not come yet. */
  #challenged = false;
  /** The client's proof came. */
  #proved = false;
  #phase: ReceiverPhase = "awaiting-offer";

  /** Where the session is ({@link RECEIVER_TRANSITIONS}). */
  get phase(): ReceiverPhase {
    return this.#phase;
  }

  /**
   * Whole messages taken so far: progress, as the shell's idle timeout
   * measures it (a peer trickling bytes that never make a message makes none).
   */
  get frames(): number {
    return this.#frames;
  }

  /**
   * Bytes of the client's held here, not yet taken as whole messages: what
   * a connection's budget counts ({@link StreamBudget}).
   */
  get buffered(): number {
    return this.#decoder.buffered;
  }

  /**
   * Takes bytes from the client at time `now` (ms) and returns what to do.
   * Until its offer, a transfer takes offer-sized frames only; then DATA
   * frames no larger than its chunks.
   */
  receive(bytes: Uint8Array, now: number): ReceiverEvent[] {
    this.#live();
    const events: ReceiverEvent[] = [];
    try {
      this.#decoder.push(bytes);
      this.#pump(events);
    } catch (err) {
      this.#phase = "failed";
      if (this.#offer || !(err instanceof ProtocolError)) throw err;
      throw new ProtocolError(`A transfer must open with its offer: ${err.message}`);
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
    this.#live();
    if (!this.#offer || this.#state) throw new Error("Nothing to accept");
    this.#state = state;
    this.#move("receiving");
    return encodeJson(MsgType.ACCEPT, { token, held: state.heldRanges() });
  }

  /** The bytes of held chunk `index`, asked for by a `read` event. */
  hashChunk(index: number, data: Uint8Array): ReceiverEvent[] {
    this.#live();
    if (this.#reading !== index) throw new Error(`Chunk ${index} was not asked for`);
    this.#reading = undefined;
    const state = this.#state!;
    const events: ReceiverEvent[] = [];
    const trial = this.#prefix.trial(data);
    if (data.length === state.lengthOf(index) && bytesEqual(trial.digest, state.digestOf(index))) {
      trial.commit();
      this.#hashed++;
    } else {
      // The partial's bytes changed since they were verified: drop them and
      // everything after, and ask the client for them.
      state.truncate(index);
      this.#next = index;
      this.#reject(events, index);
    }
    try {
      this.#pump(events);
    } catch (err) {
      this.#phase = "failed";
      throw err;
    }
    return events;
  }

  /**
   * The CHALLENGE frame for an `update` offer of a file the shell stores
   * with the offer's size: the client is to prove it holds the content by
   * MD5(salt ‖ content), which comes as a `proof` event.
   */
  challenge(salt: string): Uint8Array {
    this.#live();
    const offer = this.#offer;
    if (!offer?.update || this.#state || this.#challenged || this.#proved) {
      throw new Error("Nothing to challenge");
    }
    this.#challenged = true;
    this.#move("challenged");
    return encodeJson(MsgType.CHALLENGE, { salt });
  }

  /**
   * The DONE frame that ends an `update` offer: the client proved that it
   * holds the file stored as `storedAs` (whose MD5 is `md5`).
   */
  upToDate(storedAs: string, md5: string): Uint8Array {
    this.#live();
    const offer = this.#offer;
    if (!offer?.update || !this.#proved || this.#state || this.#verified) {
      throw new Error("Nothing to skip");
    }
    this.#verified = true;
    this.#expected = md5;
    this.#move("done");
    return encodeJson(MsgType.DONE, { md5, storedAs, bytes: offer.size, upToDate: true });
  }

  /** The whole file's MD5 (hexadecimal), once verified. */
  get md5(): string | undefined {
    return this.#verified ? this.#expected : undefined;
  }

  /**
   * The DONE frame once the shell stored the verified file as `storedAs`
   * (for a pack, its folder, with the files it could not store and each
   * stored file's MD5).
   */
  stored(storedAs: string, failed?: [number, string][], md5s?: string[]): Uint8Array {
    this.#live();
    if (!this.#verified) throw new Error("The file is not verified");
    this.#move("done");
    return encodeJson(MsgType.DONE, {
      md5: this.#expected,
      storedAs,
      bytes: this.#offer!.size,
      failed: failed && failed.length > 0 ? failed : undefined,
      md5s,
    });
  }

  /**
   * Call when the client closed the connection before the file was stored:
   * throws the error that says what was left undone.
   */
  closed(): never {
    this.#live();
    this.#phase = "failed";
    this.#decoder.finish();
    if (!this.#offer) throw new ProtocolError("Client closed the connection before its offer");
    const s = this.#state;
    throw new UserError(
      s
        ? `Client disconnected with ${s.heldCount} of ${s.chunks} chunks held; kept for resume`
        : "Client disconnected before its offer was accepted",
    );
  }

  /** Refuses every input once the session failed. */
  #live(): void {
    if (this.#phase === "failed") {
      throw new ProtocolError("This transfer already failed: nothing more is taken");
    }
  }

  /** Moves to `next`, as the transition table allows. */
  #move(next: ReceiverPhase): void {
    if (!RECEIVER_TRANSITIONS[this.#phase].includes(next)) {
      throw new Error(`A receiver cannot go from ${this.#phase} to ${next}`);
    }
    this.#phase = next;
  }

  /** Takes frames while the session can: not before the shell accepts, not while a read is out. */
  #pump(events: ReceiverEvent[]): void {
    while (
      (!this.#offer || this.#state || (this.#challenged && !this.#proved)) &&
      !this.#verified && this.#reading === undefined
    ) {
      // A resumed transfer's held chunks are confirmed by CHECKs without
      // hashing; before anything else, the running MD5 catches up on them.
      if (this.#state && this.#hashed < this.#next) {
        const type = this.#decoder.peekType();
        if (type === null) break;
        if (type !== MsgType.CHECK && type !== MsgType.ERROR) {
          this.#reading = this.#hashed;
          events.push({ type: "read", index: this.#hashed });
          break;
        }
      }
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
        this.#decoder.setLimits(offeredLimits(this.#offer.chunkSize));
        // A proof sent with the offer answers no challenge: it is the shell's to check.
        this.#proved = this.#offer.proof !== undefined;
        this.#move("offered");
        events.push({ type: "offer", offer: this.#offer });
        continue;
      }
      if (!this.#state) {
        // Challenged: the proof, and nothing else, until the shell answers it.
        if (f.type !== MsgType.PROOF) {
          throw new ProtocolError(`Expected a proof, got frame type ${f.type}`);
        }
        this.#proved = true;
        this.#move("proved");
        events.push({ type: "proof", proof: decodeProof(f.payload) });
        continue;
      }
      switch (f.type) {
        case MsgType.DATA:
          this.counters.dataChunks++;
          this.#data(events, f.payload);
          break;
        case MsgType.CHECK:
          this.counters.checkedChunks++;
          this.#check(events, f.payload);
          break;
        case MsgType.END:
          if (this.#expected !== undefined) throw new ProtocolError("Client sent two end messages");
          if (!this.#awaiting && this.#next !== this.#state!.chunks) {
            throw new ProtocolError(`Client ended after ${this.#next} of the file's chunks`);
          }
          this.#expected = decodeEnd(f.payload).md5;
          break;
        default:
          throw new ProtocolError(`Unexpected frame type ${f.type}`);
      }
      this.#finishIfDone(events);
    }
  }

  /**
   * Whether a chunk frame for `index` is dropped: it came after one this
   * core asked for again. A sender of ours sends them in order, so each
   * dropped index is higher than the last (which bounds what a client can
   * make the server skip).
   */
  #drops(index: number): boolean {
    if (index === this.#next) {
      this.#awaiting = false;
      return false;
    }
    if (this.#awaiting && index > this.#lastDropped && index > this.#next) {
      this.#lastDropped = index;
      this.counters.droppedChunks++;
      return true;
    }
    throw new ProtocolError(`Chunk ${index} was sent out of order (chunk ${this.#next} is next)`);
  }

  #data(events: ReceiverEvent[], payload: Uint8Array): void {
    const state = this.#state!;
    const c = this.#chunk(payload);
    if (this.#drops(c.index)) return;
    const trial = this.#prefix.trial(c.data);
    const outcome = state.receiveData(c.index, c.data.length, c.digest, trial.digest);
    if (outcome === "retry") {
      this.#reject(events, c.index);
      return;
    }
    trial.commit();
    this.#hashed++;
    this.#next++;
    if (outcome === "store") events.push({ type: "store", index: c.index, data: c.data });
  }

  #check(events: ReceiverEvent[], payload: Uint8Array): void {
    const state = this.#state!;
    const c = this.#chunk(payload);
    if (c.data.length !== 0) throw new ProtocolError("Check frame carries data");
    if (this.#drops(c.index)) return;
    if (state.receiveCheck(c.index, c.digest) === "retry") this.#reject(events, c.index);
    else this.#next++;
  }

  /** A DATA or CHECK payload, its index checked against the file (even one that will be dropped). */
  #chunk(payload: Uint8Array): ChunkRef {
    const c = decodeChunk(payload);
    this.#state!.lengthOf(c.index); // throws ProtocolError for an index past the file
    return c;
  }

  /** Asks for chunk `index` again; later chunks are dropped until it comes. */
  #reject(events: ReceiverEvent[], index: number): void {
    this.counters.nacks++;
    this.#awaiting = true;
    this.#lastDropped = index;
    events.push({ type: "send", bytes: encodeNack(index) });
  }

  #finishIfDone(events: ReceiverEvent[]) {
    const state = this.#state!;
    if (this.#expected === undefined || this.#awaiting || this.#hashed !== state.chunks) return;
    const actual = toHex(this.#prefix.digest());
    if (actual !== this.#expected) {
      throw new WholeFileMismatch(this.#expected, actual);
    }
    this.#verified = true;
    this.#move("verified");
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
