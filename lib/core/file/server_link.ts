/**
 * The File-TCP server's side of one connection, with no I/O, in the style
 * of h11's `Connection`: the client's bytes in, the transfers they belong
 * to out, one piece at a time.
 *
 * - It sniffs the first frame: a connection that opens with a STREAM
 *   frame carries many transfers, each on its own stream; one that opens
 *   with anything else carries one transfer ({@link SINGLE}); a client
 *   that opens with a code's handshake at a server without a code is told
 *   so ({@link CodeSentToPlain}).
 * - It demultiplexes STREAM frames, without holding a frame whole
 *   ({@link LinkSplitter}): a new stream id opens a transfer, bytes for a
 *   stream that ended are dropped, and more than {@link MAX_OPEN_STREAMS}
 *   transfers open or being stored at once end the connection.
 * - It holds the connection's budget ({@link StreamBudget}): what the
 *   transfers' decoders hold, and their whole messages, the idle timeout's
 *   progress.
 *
 * ```text
 * sniffing ──first 4 bytes──▶ single     (one transfer, id SINGLE)
 *     │                  └──▶ streams    (STREAM frames: open ─▶ ended | storing ─▶ stored)
 *     └──a code's handshake──▶ CodeSentToPlain
 * ```
 *
 * The shell pushes each read ({@link ServerLink.push}), takes pieces with
 * {@link ServerLink.next} until it returns null, gives each piece to its
 * transfer's receiver core and reports back what the transfer holds and
 * whether it ended ({@link ServerLink.fed}), and, once a transfer stored
 * in the background is done, {@link ServerLink.stored}.
 *
 * @module
 */
import { ProtocolError, UserError } from "../errors.ts";
import { concatBytes } from "../wire/frame.ts";
import { SecureStream } from "../crypto/secure_stream.ts";
import { MAX_OPEN_STREAMS, MsgType } from "./messages.ts";
import { type LinkPiece, LinkSplitter } from "./link_splitter.ts";
import { StreamBudget } from "./stream_budget.ts";

/** The id of a one-transfer connection's transfer (stream ids are never negative). */
export const SINGLE = -1;

/** How a connection is used, once its first frame showed it. */
export type LinkMode = "sniffing" | "single" | "streams";

/** Bytes for one transfer: `opens` on its first piece (the shell makes its session then). */
export interface TransferPiece {
  /** The transfer's stream id, or {@link SINGLE}. */
  id: number;
  /** Its bytes: a view valid until the next push. */
  bytes: Uint8Array;
  /** The first piece of a new transfer. */
  opens: boolean;
}

/** Where a transfer is after it took a piece, as the shell reports it. */
export type TransferOutcome = "open" | "storing" | "ended";

/** A client with a code reached this server, which has none: told so, and logged. */
export class CodeSentToPlain extends UserError {
  /** What the client is told. */
  readonly toClient = "Server does not use a code: run without --code or SOCKETS_CODE";
  /** The error the server logs. */
  constructor() {
    super("A client sent a code to this server, which has none");
  }
}

/** The server's side of one File-TCP connection. */
export class ServerLink {
  #mode: LinkMode = "sniffing";
  /** The first bytes, until they show how the connection is used. */
  #head: Uint8Array = new Uint8Array(0);
  #splitter: LinkSplitter | undefined;
  #pieces: LinkPiece[] = [];
  #at = 0;
  /** Transfers taking bytes. */
  #open = new Set<number>();
  /** Transfers verified and being stored: they count as open until stored. */
  #storing = new Set<number>();
  /** Streams opened so far: ids grow, so one ended is never opened again. */
  #lastId = -1;
  #budget = new StreamBudget();
  /** A one-transfer connection's transfer was opened. */
  #singleOpened = false;
  /** A one-transfer connection's whole messages. */
  #messages = 0;

  /** How the connection is used: known once its first frame's type came. */
  get mode(): LinkMode {
    return this.#mode;
  }

  /** Whole messages the connection's transfers took: the idle timeout's progress. */
  get progress(): number {
    return this.#mode === "streams" ? this.#budget.messages : this.#messages;
  }

  /** Transfers open now (not those being stored): what a connection that fails ends. */
  get open(): number[] {
    return [...this.#open];
  }

  /**
   * Takes one read's bytes (after any unsealing); then call {@link next}
   * until it returns null. Throws {@link CodeSentToPlain} for a client
   * that opens with a code's handshake, {@link ProtocolError} for a bad
   * link frame.
   */
  push(bytes: Uint8Array): void {
    if (this.#at < this.#pieces.length) throw new Error("Take every piece before the next push");
    this.#pieces = [];
    this.#at = 0;
    if (this.#mode === "sniffing") {
      // The fourth byte of the first frame is its type: wait for it.
      if (this.#head.length + bytes.length < 4) {
        this.#head = concatBytes([this.#head, bytes]);
        return;
      }
      if (this.#head.length > 0) bytes = concatBytes([this.#head, bytes]);
      this.#head = new Uint8Array(0);
      if (SecureStream.isStart(bytes)) throw new CodeSentToPlain();
      this.#mode = bytes[3] === MsgType.STREAM ? "streams" : "single";
      if (this.#mode === "streams") this.#splitter = new LinkSplitter();
    }
    if (this.#splitter) this.#pieces = this.#splitter.push(bytes);
    else this.#pieces = [{ type: "stream", id: SINGLE, bytes }];
  }

  /**
   * The next piece of the pushed bytes for a transfer, or null when they
   * are all taken. Bytes for a stream that ended are dropped. Throws
   * {@link UserError} when the client gave up (an ERROR on the link), and
   * {@link ProtocolError} for a stream past {@link MAX_OPEN_STREAMS}.
   */
  next(): TransferPiece | null {
    while (this.#at < this.#pieces.length) {
      const piece = this.#pieces[this.#at++];
      if (piece.type === "error") throw new UserError(`Client gave up: ${piece.message}`);
      const { id, bytes } = piece;
      if (this.#open.has(id)) return { id, bytes, opens: false };
      if (id === SINGLE) {
        // A one-transfer connection's transfer opens once, and ends the connection.
        if (this.#singleOpened) continue;
        this.#singleOpened = true;
        this.#open.add(id);
        return { id, bytes, opens: true };
      }
      // A stream that ended (stored or failed) may still have bytes in flight.
      if (id <= this.#lastId) continue;
      if (this.#open.size + this.#storing.size >= MAX_OPEN_STREAMS) {
        throw new ProtocolError(`Client opened more than ${MAX_OPEN_STREAMS} transfers at once`);
      }
      this.#lastId = id;
      this.#open.add(id);
      return { id, bytes, opens: true };
    }
    this.#pieces = [];
    this.#at = 0;
    return null;
  }

  /**
   * Records what transfer `id` holds after it took a piece: `buffered`
   * bytes of unfinished messages, `messages` more whole ones, and whether
   * it is still open, being stored, or ended. Throws {@link ProtocolError}
   * once the connection's transfers hold more than a chunk's frame.
   */
  fed(id: number, buffered: number, messages: number, outcome: TransferOutcome): void {
    if (id === SINGLE) this.#messages += messages;
    else this.#budget.update(id, outcome === "open" ? buffered : 0, messages);
    if (outcome === "open") return;
    this.#open.delete(id);
    if (outcome === "storing") this.#storing.add(id);
  }

  /** A transfer that was being stored is done: it no longer counts as open. */
  stored(id: number): void {
    this.#storing.delete(id);
  }

  /**
   * Call when the client closed its side: throws {@link ProtocolError} if
   * a link frame was cut short. Returns the transfers left open, which
   * the shell ends (each receiver says what was left undone).
   */
  finish(): number[] {
    this.#splitter?.finish();
    const open = this.open;
    this.#open.clear();
    return open;
  }
}
