/**
 * The File-TCP sender's session core, in the style of h11's `Connection`:
 * no sockets, no files, no clock. The shell feeds it the bytes the server
 * sent ({@link FileSender.receive}) and asks it for the bytes to send
 * ({@link FileSender.offerFrame}, {@link FileSender.chunkFrame},
 * {@link FileSender.endFrame}); the core decides what each message means
 * in the session's current phase and refuses any order a server could send
 * that the protocol does not allow.
 *
 * ```text
 * offering ──ACCEPT──▶ sending ──endFrame()──▶ ending ──DONE──▶ done
 *     ├──CHALLENGE (an `update` offer of a file the server stores)──▶ proving
 *     │     proving ──proofFrame()──▶ proved ──DONE (upToDate)──▶ done, or ──ACCEPT──▶ sending
 *     ├──endFrame() (an eager file: one chunk, sent with the offer)──▶ ending (ACCEPT, then DONE)
 *     └──ERROR──▶ failed       (NACKs in sending and ending; ERROR anywhere ends it)
 * ```
 *
 * {@link TRANSITIONS} holds every move the diagram allows. Once the
 * session failed (the server's error, a message it may not send now),
 * every further input is refused: {@link FileSender.receive} and every
 * frame builder throw the failure that ended it, again.
 *
 * Each chunk goes with the MD5 of the file up to its end, which the core
 * computes as the chunk first goes out (one pass over the file); the last
 * one is the whole file's MD5. A NACK sends the sender back to that chunk
 * (go-back-N: the server dropped the ones after it).
 *
 * @module
 */
import { ProtocolError, UserError } from "../errors.ts";
import { FrameDecoder, HEADER_LENGTH } from "../wire/frame.ts";
import {
  CHUNK_CHECK,
  chunkCount,
  CLIENT_LIMITS,
  DATA_PREFIX,
  decodeError,
  decodeNack,
  type Done,
  encodeCheck,
  encodeJson,
  fillDataFrame,
  MAX_CHUNK_RETRIES,
  MsgType,
  type Offer,
} from "./messages.ts";
import { decodeAccept, decodeChallenge, decodeDone } from "./decode_messages.ts";
import { MD5_LENGTH, PrefixMd5, toHex } from "../crypto/md5.ts";

/** What the server said, as the sender's core understood it. */
export type SenderEvent =
  /**
   * The server accepted the offer; it already holds these chunk ranges, and
   * `token` resumes the transfer if it is cut.
   */
  | { type: "accepted"; held: [number, number][]; token: string }
  /** The server asks for chunk `index` again (its MD5 failed there). */
  | { type: "resend"; index: number }
  /** The server stored the file and confirmed its whole-file MD5. */
  | { type: "done"; done: Done }
  /**
   * The server stores a file of this size here: prove you hold it by
   * {@link FileSender.proofFrame} with MD5(salt ‖ the file).
   */
  | { type: "challenge"; salt: string };

/** Counters of a sender session. */
export interface SenderCounters {
  /** Chunks sent with data, the first time. */
  chunksSent: number;
  /** Chunks the server already held, confirmed by digest only. */
  chunksSkipped: number;
  /** Chunks sent again because the server asked. */
  chunksResent: number;
}

/** Where a sender session is: see the diagram above. */
export type SenderPhase =
  | "idle"
  | "offering"
  | "proving"
  | "sending"
  | "ending"
  | "done"
  | "failed";

/**
 * The moves a sender session may make, from each phase: anything else is
 * a bug of the caller's (the server's messages that do not fit are
 * refused before a move is tried). `failed` and `done` end the session.
 */
export const TRANSITIONS: Readonly<Record<SenderPhase, readonly SenderPhase[]>> = {
  idle: ["offering", "failed"],
  // ACCEPT; CHALLENGE; an eager file's END; a proved file's DONE.
  offering: ["sending", "proving", "ending", "done", "failed"],
  proving: ["offering", "failed"],
  sending: ["ending", "failed"],
  ending: ["done", "failed"],
  done: ["failed"],
  failed: [],
};

/** The sender's side of one file transfer. */
export class FileSender {
  /** What is offered. */
  readonly offer: Offer;
  /** Chunks in the file. */
  readonly chunks: number;
  /** What the session has sent so far. */
  readonly counters: SenderCounters = { chunksSent: 0, chunksSkipped: 0, chunksResent: 0 };
  #decoder = new FrameDecoder(CLIENT_LIMITS);
  #phase: SenderPhase = "idle";
  /** Chunks [0, #heldLimit) the server holds (a prefix, from its accept). */
  #heldLimit = 0;
  /** The next chunk to send; it goes back when the server asks again. */
  #next = 0;
  /** Chunks sent at least once: each was hashed as it first went out. */
  #sent = 0;
  /** The prefix MD5 of every chunk sent so far, kept for resends. */
  #digests: Uint8Array;
  #prefix = new PrefixMd5();
  #md5: string | undefined;
  #asked = new Map<number, number>();
  #token: string | undefined;
  /** The proof went out (once, to the server's one challenge). */
  #proved = false;
  /** Why the session failed, once it did. */
  #failure: unknown;

  /** A sender for `offer`; nothing is sent until {@link offerFrame}. */
  constructor(offer: Offer) {
    this.offer = offer;
    this.chunks = chunkCount(offer.size, offer.chunkSize);
    // 16 bytes a chunk: 256 KiB for 1 GiB in 64 KiB chunks.
    this.#digests = new Uint8Array(this.chunks * MD5_LENGTH);
  }

  /** The token the server gave, once accepted: it resumes this transfer if cut. */
  get token(): string | undefined {
    return this.#token;
  }

  /** The session's phase. */
  get phase(): SenderPhase {
    return this.#phase;
  }

  /**
   * The chunk to send next with {@link chunkFrame}, or `null` when every
   * chunk has gone out (then {@link endFrame}, once). It goes back when the
   * server asks for a chunk again: that chunk and all after it are sent
   * again, in order.
   */
  get next(): number | null {
    return this.#phase !== "idle" && this.#phase !== "proving" && this.#phase !== "failed" &&
        (this.#phase !== "offering" || this.eager) && this.#next < this.chunks
      ? this.#next
      : null;
  }

  /**
   * Whether the file's chunks go with the offer, before the server's
   * accept: a file of one chunk, not resumed by token nor offered to be
   * skipped (`update`: its data would go in vain). It costs at most
   * that chunk again if the server held it, and saves ten thousand small
   * files a round trip each. The server's receiver takes a DATA for a
   * chunk it holds as a duplicate.
   */
  get eager(): boolean {
    return this.chunks <= 1 && this.offer.resume === undefined && this.offer.update === undefined;
  }

  /** Whether the END may go now: every chunk sent, and accepted or eager. */
  get canEnd(): boolean {
    return (this.#phase === "sending" || (this.#phase === "offering" && this.eager)) &&
      this.#next === this.chunks && this.#md5 === undefined;
  }

  /** The whole file's MD5 (hexadecimal), once every chunk was hashed. */
  get md5(): string | undefined {
    return this.#md5;
  }

  /**
   * The PROOF frame answering the server's challenge: `proof` is
   * MD5(salt ‖ the file), hexadecimal. The server then answers DONE (up
   * to date) or ACCEPT (send the file).
   */
  proofFrame(proof: string): Uint8Array {
    this.#refuseIfFailed();
    if (this.#phase !== "proving") throw new Error("No challenge to answer");
    this.#go("offering");
    this.#proved = true;
    return encodeJson(MsgType.PROOF, { proof });
  }

  /** The OFFER frame that opens the session. */
  offerFrame(): Uint8Array {
    this.#refuseIfFailed();
    if (this.#phase !== "idle") throw new Error("The offer was already sent");
    this.#go("offering");
    this.#proved = this.offer.proof !== undefined;
    return encodeJson(MsgType.OFFER, { ...this.offer, check: CHUNK_CHECK });
  }

  /**
   * Takes bytes the server sent and returns what they mean. Throws
   * {@link ProtocolError} for a message the server may not send now, and
   * {@link UserError} when the server refuses or fails the transfer.
   */
  receive(bytes: Uint8Array): SenderEvent[] {
    this.#refuseIfFailed();
    try {
      this.#decoder.push(bytes);
      const events: SenderEvent[] = [];
      for (let f = this.#decoder.next(); f !== null; f = this.#decoder.next()) {
        this.#take(f, events);
      }
      return events;
    } catch (err) {
      this.fail(err);
      throw err;
    }
  }

  /**
   * Ends the session as failed with `error` (the server's, or the
   * shell's: the file could not be read): it takes no more input.
   */
  fail(error: unknown): void {
    if (this.#phase === "failed") return;
    this.#failure = error;
    this.#go("failed");
  }

  /** The session's failure, if it failed: every later input is refused with it. */
  get failure(): unknown {
    return this.#failure;
  }

  /**
   * Throws when the session failed: it takes no more input, and says the
   * failure that ended it again, each time.
   */
  #refuseIfFailed(): void {
    if (this.#phase === "failed") throw this.#failure;
  }

  /** Moves to phase `to`, which {@link TRANSITIONS} must allow. */
  #go(to: SenderPhase): void {
    if (!TRANSITIONS[this.#phase].includes(to)) {
      throw new Error(`A sender cannot go from ${this.#phase} to ${to}`);
    }
    this.#phase = to;
  }

  /** Takes one frame of the server's, adding what it means to `events`. */
  #take(f: { type: number; payload: Uint8Array }, events: SenderEvent[]): void {
    if (f.type === MsgType.ERROR) {
      const why = decodeError(f.payload);
      // Before its accept, the server's error refuses the offer (an eager
      // file's chunk may have gone already).
      throw new UserError(
        this.#phase === "offering" || this.#token === undefined
          ? `Server refused ${this.offer.name}: ${why}`
          : `Server failed the transfer: ${why}`,
      );
    }
    if (
      this.#phase === "offering" && f.type === MsgType.CHALLENGE && this.offer.update &&
      !this.#proved
    ) {
      this.#go("proving");
      events.push({ type: "challenge", salt: decodeChallenge(f.payload) });
    } else if (this.#phase === "offering" && f.type === MsgType.DONE && this.#proved) {
      // The client proved it holds the file the server stores: nothing to send.
      const done = decodeDone(f.payload);
      if (!done.upToDate || done.bytes !== this.offer.size) {
        throw new ProtocolError("Server skipped the file but names another size");
      }
      this.#md5 = done.md5;
      this.#go("done");
      events.push({ type: "done", done });
    } else if (
      this.#phase === "offering" || (this.#phase === "ending" && this.eager && !this.#token)
    ) {
      if (f.type !== MsgType.ACCEPT) {
        throw new ProtocolError(`Expected the server's accept, got frame type ${f.type}`);
      }
      const accept = decodeAccept(f.payload, this.chunks);
      // Only a resumed offer, or a folder entry (its partial is named by
      // its path, size and time), finds chunks already held.
      if (!this.offer.resume && this.offer.mtime === undefined && accept.held.length > 0) {
        throw new ProtocolError("Server claims to hold chunks of a transfer never started");
      }
      // Chunks are checked by prefix MD5, so a server holds a prefix.
      if (accept.held.length > 1 || (accept.held.length === 1 && accept.held[0][0] !== 0)) {
        throw new ProtocolError("Server claims to hold chunks that do not start the file");
      }
      // An eager file's chunk went already: as DATA, whatever is held.
      if (!(this.eager && this.#sent > 0)) this.#heldLimit = accept.held[0]?.[1] ?? 0;
      this.#token = accept.token;
      if (this.#phase === "offering") this.#go("sending");
      events.push({ type: "accepted", held: accept.held, token: accept.token });
    } else if (
      f.type === MsgType.NACK && (this.#phase === "sending" || this.#phase === "ending")
    ) {
      const index = decodeNack(f.payload);
      if (index >= this.#sent) {
        throw new ProtocolError(`Server asked for chunk ${index}, which was not sent`);
      }
      // A server of ours fails a transfer after MAX_CHUNK_RETRIES bad
      // copies of a chunk (one more for a held copy that differs): more
      // requests than that are a flood.
      const asked = (this.#asked.get(index) ?? 0) + 1;
      if (asked > MAX_CHUNK_RETRIES + 1) {
        throw new ProtocolError(`Server asked for chunk ${index} ${asked} times`);
      }
      this.#asked.set(index, asked);
      // Go back: the server dropped what came after it.
      this.#next = Math.min(this.#next, index);
      this.#heldLimit = Math.min(this.#heldLimit, index);
      events.push({ type: "resend", index });
    } else if (f.type === MsgType.DONE && this.#phase === "ending") {
      const done = decodeDone(f.payload);
      if (done.upToDate) throw new ProtocolError("Server skipped a file it was sent");
      if (done.md5 !== this.#md5) {
        throw new UserError(`Server stored MD5 ${done.md5}, but the file's MD5 is ${this.#md5}`);
      }
      this.#go("done");
      events.push({ type: "done", done });
    } else {
      throw new ProtocolError(`Unexpected frame type ${f.type} from the server`);
    }
  }

  /** Whether the server holds chunk `index` (so it is confirmed by a CHECK). */
  isHeld(index: number): boolean {
    return index < this.#heldLimit;
  }

  /**
   * The frame for chunk {@link next}: a CHECK (check value only) when the
   * server holds it, else a DATA frame. `frame` holds the chunk's bytes at
   * offset {@link DATA_OFFSET} (the file is read straight into it) and gets
   * its header filled in, so no byte is copied. The core hashes each chunk
   * once, the first time it is sent, into the file's running MD5.
   */
  chunkFrame(index: number, frame: Uint8Array, length: number): Uint8Array {
    this.#refuseIfFailed();
    const early = this.#phase === "offering" && this.eager;
    if (this.#phase !== "sending" && this.#phase !== "ending" && !early) {
      throw new Error(`Cannot send a chunk while ${this.#phase}`);
    }
    if (index !== this.next) throw new Error(`Chunk ${index} sent out of order`);
    const data = frame.subarray(DATA_OFFSET, DATA_OFFSET + length);
    const again = index < this.#sent;
    let digest: Uint8Array;
    if (again) {
      digest = this.#digests.subarray(index * MD5_LENGTH, (index + 1) * MD5_LENGTH);
    } else {
      digest = this.#prefix.push(data);
      this.#digests.set(digest, index * MD5_LENGTH);
      this.#sent++;
    }
    this.#next++;
    if (this.isHeld(index)) {
      this.counters.chunksSkipped++;
      return encodeCheck(index, digest);
    }
    if (again) this.counters.chunksResent++;
    else this.counters.chunksSent++;
    return fillDataFrame(frame, index, digest, length);
  }

  /** The END frame with the whole file's MD5, once every chunk was sent. */
  endFrame(): Uint8Array {
    this.#refuseIfFailed();
    if (!this.canEnd) throw new Error("END before every chunk was sent");
    this.#go("ending");
    this.#md5 = toHex(this.#prefix.digest());
    return encodeJson(MsgType.END, { md5: this.#md5 });
  }

  /**
   * Call when the server closed the connection. Throws {@link UserError}
   * unless the transfer was confirmed.
   */
  closed(): void {
    if (this.#phase === "done") return;
    throw new UserError(
      this.#phase === "offering"
        ? "Server closed the connection without answering"
        : "Server closed the connection before confirming the file",
    );
  }
}

/** Where a chunk's bytes start in a DATA frame. */
export const DATA_OFFSET: number = HEADER_LENGTH + DATA_PREFIX;
