/**
 * The shared code's handshake on a TCP connection, for every TCP tool:
 * the shell around {@link SecureStream}. Each side reads until both
 * confirmations were checked, then hands the tool a ready stream (and any
 * sealed frames that came in the same reads) to seal and open the rest.
 *
 * @module
 */
import { UserError } from "../core/errors.ts";
import {
  CodeMismatch,
  CodeRequired,
  type SecureEvent,
  SecureStream,
} from "../core/crypto/secure_stream.ts";
import type { GuessLimiter } from "../core/crypto/guess_limiter.ts";
import { closeQuietly } from "./errors.ts";
import { writeAll } from "./streams.ts";
import { concatBytes } from "../core/wire/frame.ts";

/** A connection that has proven the code. */
export interface CodedConn {
  /** Seals what the tool sends and opens what it receives. */
  secure: SecureStream;
  /** Frames of the tool's protocol that came with the handshake, opened. */
  early: Uint8Array[];
}

/** Options of {@link acceptCoded} and {@link connectCoded}. */
export interface CodedOptions {
  /** The shared code. */
  code: string;
  /** The protocol (`file-tcp`, `audio-tcp`), bound into the keys. */
  context: string;
  /** Largest frame of the protocol inside, header included. */
  maxInner: number;
  /** How long the handshake may take, ms (default 5000). */
  timeoutMs?: number;
  /** A server whose clients speak last sends NEEDS_CODE first (Audio-TCP). */
  announce?: boolean;
  /** A client's: the type of its protocol's plain ERROR (see {@link SecureStream}). */
  plainRefusal?: number;
}

/**
 * Runs the handshake until ready; `start` is the client's first message.
 * Throws what the core throws, or a {@link UserError} when the peer leaves
 * or the time runs out.
 */
async function handshake(
  conn: Deno.Conn,
  secure: SecureStream,
  timeoutMs: number,
  sent: () => void,
): Promise<Uint8Array[]> {
  const early: Uint8Array[] = [];
  // The handshake is small messages each way and the tool's first frame
  // follows the last at once: without this, Nagle holds it for the peer's
  // delayed ACK (40 ms on Linux).
  if ("setNoDelay" in conn) (conn as Deno.TcpConn).setNoDelay(true);
  const timer = setTimeout(() => closeQuietly(conn), timeoutMs);
  try {
    const buf = new Uint8Array(4096);
    while (!secure.ready) {
      const n = await conn.read(buf).catch(() => null);
      if (n === null) {
        throw new UserError(
          `The peer left before the handshake finished (or took over ${timeoutMs / 1000} s)`,
        );
      }
      const events: SecureEvent[] = secure.receive(buf.subarray(0, n));
      // One write for all a step sends (the server's share and
      // confirmation): two small writes wait on each other's ACK (Nagle).
      const out: Uint8Array[] = [];
      for (const e of events) {
        if (e.type === "send") out.push(e.bytes);
        else if (e.type === "data") early.push(e.bytes);
      }
      if (out.length > 0) {
        sent(); // before the peer can see it
        await writeAll(conn, out.length === 1 ? out[0] : concatBytes(out));
      }
    }
    return early;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The server's side: checks the guess limiter for `host`, runs the
 * handshake, and on failure tells the client why (a plain client in its
 * own protocol's words through `plainRefusal`), counts a failed guess, and
 * throws.
 */
export async function acceptCoded(
  conn: Deno.Conn,
  host: string,
  guesses: GuessLimiter,
  options: CodedOptions,
  plainRefusal: (message: string) => Uint8Array,
): Promise<CodedConn> {
  const secure = new SecureStream("server", {
    code: options.code,
    context: options.context,
    random: crypto.getRandomValues(new Uint8Array(48)),
    maxInner: options.maxInner,
  });
  try {
    const throttled = guesses.check(host, Date.now());
    if (throttled) throw new UserError(throttled);
    // A handshake is a guess at the code from its start (so that the
    // connections begun at once from one address are all counted), given
    // back when the peer's confirmation matches.
    guesses.failed(host, Date.now());
    if (options.announce) await writeAll(conn, SecureStream.announcement());
    const early = await handshake(conn, secure, options.timeoutMs ?? 5000, () => {});
    guesses.refund(host, Date.now());
    return { secure, early };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const refusal = err instanceof CodeRequired
      ? plainRefusal(message)
      : SecureStream.refusal(message);
    await writeAll(conn, refusal).catch(() => {});
    throw err;
  }
}

/** The client's side: runs the handshake; on failure tells the server why and throws. */
export async function connectCoded(conn: Deno.Conn, options: CodedOptions): Promise<CodedConn> {
  const secure = new SecureStream("client", {
    code: options.code,
    context: options.context,
    random: crypto.getRandomValues(new Uint8Array(48)),
    maxInner: options.maxInner,
    plainRefusal: options.plainRefusal,
  });
  await writeAll(conn, secure.start());
  try {
    const early = await handshake(conn, secure, options.timeoutMs ?? 5000, () => {});
    return { secure, early };
  } catch (err) {
    if (err instanceof CodeMismatch) {
      await writeAll(conn, SecureStream.refusal(err.message)).catch(() => {});
    }
    throw err;
  }
}
