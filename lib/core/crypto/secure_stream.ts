/**
 * A shared code over a framed byte stream (File-TCP, and later Audio-TCP),
 * as an I/O-free core: bytes in, events and bytes out. It runs the SPAKE2
 * handshake with key confirmation, then seals every frame of the protocol
 * inside it with ChaCha20-Poly1305, one direction's key each way.
 *
 * ```text
 * client → PAKE (pB, 65 bytes)
 * server → PAKE (pA) and CONFIRM (cA, 32 bytes)
 * client → CONFIRM (cB)                 (only if cA was right)
 * either → SEALED (the inner protocol's frame, sealed; the outer header is the AAD)
 * server → REFUSED (text) instead, when the code does not match or guesses are throttled
 * ```
 *
 * Nothing of the inner protocol moves before both confirmations were
 * checked: a wrong code ends the session on both sides with "The code does
 * not match" before a server has made any file. A sealed frame that fails
 * to open (changed, replayed, reordered, injected) is reported as
 * tampering, distinct from an MD5 failure of the data inside.
 *
 * @module
 */
import { ProtocolError, UserError } from "../errors.ts";
import {
  encodeFrame,
  FRAME_MAGIC,
  FRAME_VERSION,
  FrameDecoder,
  HEADER_LENGTH,
  writeHeader,
} from "../wire/frame.ts";
import { printable } from "../wire/text.ts";
import { CONFIRM_LENGTH, confirmationsMatch, SHARE_LENGTH, type Spake2 } from "./spake2.ts";
import { codeExchange } from "./code.ts";
import { Opener, Sealer, sessionKeys, TAG_LENGTH } from "./channel.ts";

/**
 * Frame types of the secure layer (apart from every protocol's own).
 * `NEEDS_CODE` (empty) is what a coded server whose clients speak last
 * (Audio-TCP) sends first, so a plain client learns why it hears nothing.
 */
export const SecureMsg = {
  PAKE: 32,
  CONFIRM: 33,
  SEALED: 34,
  REFUSED: 35,
  NEEDS_CODE: 36,
} as const;

/** The code on the two sides differs. */
export class CodeMismatch extends UserError {
  /** The one line both sides print. */
  constructor() {
    super("The code does not match");
    this.name = "CodeMismatch";
  }
}

/** A sealed frame failed to open: changed on the way, replayed or injected. */
export class Tampered extends UserError {
  /** Says which side saw it. */
  constructor(from: string) {
    super(`A frame from the ${from} failed its authentication: tampered with on the way`);
    this.name = "Tampered";
  }
}

/** A plain client reached a server that has a code. */
export class CodeRequired extends UserError {
  /** Says how to give one. */
  constructor() {
    super("This server needs a code: give it with --code or SOCKETS_CODE");
    this.name = "CodeRequired";
  }
}

/** What the peer's bytes mean. */
export type SecureEvent =
  /** Bytes to send to the peer. */
  | { type: "send"; bytes: Uint8Array }
  /** Both confirmations checked: the inner protocol may start. */
  | { type: "ready" }
  /** A frame of the inner protocol, opened. */
  | { type: "data"; bytes: Uint8Array };

/** Options of a {@link SecureStream}. */
export interface SecureStreamOptions {
  /** The shared code. */
  code: string;
  /** The protocol, bound into the keys and confirmations (`file-tcp`). */
  context: string;
  /** 48 random bytes for the secret scalar, drawn by the shell. */
  random: Uint8Array;
  /** Largest frame of the inner protocol, header included. */
  maxInner: number;
  /**
   * A client's: the frame type of the inner protocol's plain refusal (its
   * ERROR, whose payload is text). A server that refuses before any
   * handshake (busy, no code) says so in it, and the client shows its words.
   */
  plainRefusal?: number;
}

/** Bytes of the sealed frame that carries an inner frame of `innerLength` bytes. */
export function sealedLength(innerLength: number): number {
  return HEADER_LENGTH + innerLength + TAG_LENGTH;
}

/** One side of a coded stream. */
export class SecureStream {
  #role: "server" | "client";
  #pake: Spake2;
  #context: string;
  #decoder: FrameDecoder;
  #sealer: Sealer | undefined;
  #opener: Opener | undefined;
  #expected: Uint8Array | undefined;
  #own: Uint8Array | undefined;
  #ready = false;
  #sawFrame = false;
  #plainRefusal: number | undefined;

  /** One side; the client's first bytes are {@link start}'s. */
  constructor(role: "server" | "client", o: SecureStreamOptions) {
    this.#role = role;
    this.#context = o.context;
    this.#pake = codeExchange(
      role,
      o.code,
      o.context,
      o.random,
      new TextEncoder().encode(o.context),
    );
    this.#decoder = new FrameDecoder({
      maxPayload: {
        [SecureMsg.PAKE]: SHARE_LENGTH,
        [SecureMsg.CONFIRM]: CONFIRM_LENGTH,
        [SecureMsg.SEALED]: o.maxInner + TAG_LENGTH,
        [SecureMsg.REFUSED]: 1024,
        [SecureMsg.NEEDS_CODE]: 0,
        ...(o.plainRefusal === undefined ? {} : { [o.plainRefusal]: 1024 }),
      },
    });
    this.#plainRefusal = o.plainRefusal;
  }

  /** Whether the handshake is done and frames may be sealed. */
  get ready(): boolean {
    return this.#ready;
  }

  /** The client's first message. */
  start(): Uint8Array {
    if (this.#role !== "client") throw new Error("Only a client starts");
    return encodeFrame(SecureMsg.PAKE, this.#pake.share);
  }

  /**
   * Takes the peer's bytes. Throws {@link CodeMismatch}, {@link Tampered},
   * {@link CodeRequired} (a server given a plain client's frame) or
   * {@link ProtocolError}.
   */
  receive(bytes: Uint8Array): SecureEvent[] {
    try {
      this.#decoder.push(bytes);
    } catch (err) {
      throw this.#first(err);
    }
    const out: SecureEvent[] = [];
    while (true) {
      let f;
      try {
        f = this.#decoder.next();
      } catch (err) {
        throw this.#first(err);
      }
      if (f === null) break;
      this.#sawFrame = true;
      if (f.type === SecureMsg.REFUSED) {
        const why = printable(new TextDecoder().decode(f.payload));
        throw why === new CodeMismatch().message ? new CodeMismatch() : new UserError(why);
      }
      if (f.type === SecureMsg.NEEDS_CODE && this.#role === "client" && !this.#ready) continue;
      if (f.type === this.#plainRefusal && !this.#ready) {
        throw new UserError(printable(new TextDecoder().decode(f.payload)));
      }
      if (this.#ready) {
        if (f.type !== SecureMsg.SEALED) throw new ProtocolError(`Unexpected frame type ${f.type}`);
        const header = new Uint8Array(HEADER_LENGTH);
        writeHeader(header, SecureMsg.SEALED, f.payload.length);
        const inner = this.#opener!.open(f.payload, header);
        if (!inner) throw new Tampered(this.#role === "server" ? "client" : "server");
        out.push({ type: "data", bytes: inner });
        continue;
      }
      if (f.type === SecureMsg.PAKE && !this.#own) {
        const keys = this.#pake.finish(f.payload);
        const k = sessionKeys(keys.ke, this.#context);
        const [mine, theirs] = this.#role === "server"
          ? [k.serverToClient, k.clientToServer]
          : [k.clientToServer, k.serverToClient];
        this.#sealer = new Sealer(mine);
        this.#opener = new Opener(theirs);
        this.#own = keys.ownConfirmation;
        this.#expected = keys.peerConfirmation;
        if (this.#role === "server") {
          out.push({ type: "send", bytes: encodeFrame(SecureMsg.PAKE, this.#pake.share) });
          out.push({ type: "send", bytes: encodeFrame(SecureMsg.CONFIRM, this.#own) });
        }
      } else if (f.type === SecureMsg.CONFIRM && this.#expected) {
        if (!confirmationsMatch(f.payload, this.#expected)) throw new CodeMismatch();
        if (this.#role === "client") {
          out.push({ type: "send", bytes: encodeFrame(SecureMsg.CONFIRM, this.#own!) });
        }
        this.#ready = true;
        out.push({ type: "ready" });
      } else {
        throw new ProtocolError(`Unexpected frame type ${f.type} during the handshake`);
      }
    }
    return out;
  }

  /**
   * A frame of the inner protocol, sealed for the peer. With `into` (at
   * least {@link sealedLength} bytes), the frame is sealed into it and a
   * view of it returned: a sender that reuses its buffers allocates none.
   */
  seal(inner: Uint8Array, into?: Uint8Array): Uint8Array {
    if (!this.#ready) throw new Error("The handshake is not done");
    const length = sealedLength(inner.length);
    const out = into && into.length >= length ? into.subarray(0, length) : new Uint8Array(length);
    writeHeader(out, SecureMsg.SEALED, inner.length + TAG_LENGTH);
    this.#sealer!.sealInto(out, HEADER_LENGTH, inner, out.subarray(0, HEADER_LENGTH));
    return out;
  }

  /**
   * Whether `bytes` (a connection's first, at least 4) open a coded
   * client's handshake: what a server without a code tells apart from
   * its own protocol, to say what happened.
   */
  static isStart(bytes: Uint8Array): boolean {
    return bytes.length >= 4 && bytes[0] === FRAME_MAGIC >> 8 &&
      bytes[1] === (FRAME_MAGIC & 0xff) && bytes[2] === FRAME_VERSION &&
      bytes[3] === SecureMsg.PAKE;
  }

  /** The NEEDS_CODE frame a server sends first where its clients speak last. */
  static announcement(): Uint8Array {
    return encodeFrame(SecureMsg.NEEDS_CODE, new Uint8Array(0));
  }

  /** A REFUSED frame (sent in clear) saying why the server ends the session. */
  static refusal(why: string): Uint8Array {
    return encodeFrame(SecureMsg.REFUSED, new TextEncoder().encode(why.slice(0, 1000)));
  }

  /**
   * A first frame that is not ours: to a server, a plain client; to a
   * client, a server without a code answering in its own protocol.
   */
  #first(err: unknown): unknown {
    if (this.#sawFrame || !(err instanceof ProtocolError)) return err;
    return this.#role === "server"
      ? new CodeRequired()
      : new UserError("Server does not use a code: run without --code or SOCKETS_CODE");
  }
}
