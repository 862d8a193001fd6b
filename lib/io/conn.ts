/**
 * The read loop every TCP shell shares: yields what a connection delivers,
 * as it arrives, for a session core to decode, and closes a connection that
 * stays idle.
 *
 * @module
 */
import { UserError } from "../core/errors.ts";
import { closeQuietly } from "./errors.ts";
import type { Reader } from "./streams.ts";

/** Options for {@link readChunks}. */
export interface ReadChunksOptions {
  /** Close the connection when no progress is made for this many milliseconds. */
  idleMs?: number;
  /**
   * Progress as the session core counts it (whole messages taken); the
   * idle clock restarts only when it grows. Default: any byte arriving.
   */
  progress?: () => number;
  /** Size of the read buffer (default 256 KiB). */
  readSize?: number;
  /** What the error says when the time runs out (default: the connection made no progress). */
  idleText?: string;
}

/**
 * Yields each read's bytes until the peer closes the connection. A yielded
 * view is valid until the loop asks for the next one (the buffer is
 * reused). Throws {@link UserError} when the peer stays idle past `idleMs`
 * (the time the consumer spends on a read does not count as idleness).
 */
export async function* readChunks(
  conn: Reader & { close(): void },
  options: ReadChunksOptions = {},
): AsyncGenerator<Uint8Array> {
  const buf = new Uint8Array(options.readSize ?? 256 * 1024);
  const idleMs = options.idleMs;
  let idle = false;
  // One coarse interval instead of a timer re-armed on every read: a live
  // stream reads ~90 times a second, and timer churn costs more than the read.
  let last = performance.now();
  // Progress made while no read returns (a client's writes) counts too.
  let seen = options.progress?.();
  const timer = idleMs === undefined ? undefined : setInterval(() => {
    const p = options.progress?.();
    if (p !== seen) {
      seen = p;
      last = performance.now();
    }
    if (performance.now() - last < idleMs) return;
    idle = true;
    closeQuietly(conn);
  }, Math.max(10, idleMs / 4));
  const idleError = () =>
    new UserError(
      options.idleText ?? (options.progress
        ? `Connection made no progress for ${idleMs! / 1000} s; closed it`
        : `Connection idle for ${idleMs! / 1000} s; closed it`),
    );
  try {
    while (true) {
      let n: number | null;
      try {
        n = await conn.read(buf);
      } catch (err) {
        if (idle) throw idleError();
        throw err;
      }
      if (n === null) {
        if (idle) throw idleError();
        return;
      }
      const before = options.progress?.();
      if (!options.progress) last = performance.now();
      yield buf.subarray(0, n);
      // Time the consumer spent on the bytes does not count as idleness.
      if (!options.progress || options.progress() !== before) last = performance.now();
    }
  } finally {
    clearInterval(timer);
  }
}
