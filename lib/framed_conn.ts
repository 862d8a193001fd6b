/**
 * The thin socket shell around {@link FrameDecoder}: reads a connection,
 * yields whole frames, and closes an idle connection.
 *
 * @module
 */
import { UserError } from "./errors.ts";
import { type Frame, FrameDecoder, type FrameLimits } from "./frame.ts";
import { type Reader } from "./io.ts";

/** Options for {@link readFrames}. */
export interface ReadFramesOptions {
  /** Close the connection when no byte arrives for this many milliseconds. */
  idleMs?: number;
  /** Called with the number of bytes of every read (for counters). */
  onBytes?: (n: number) => void;
  /** Size of the read buffer (default 256 KiB). */
  readSize?: number;
}

/**
 * Yields the frames a peer sends until it closes the connection. Each
 * frame's payload is valid until the loop asks for the next one. Throws
 * {@link ProtocolError} on bad frames or a stream cut mid-frame, and
 * {@link UserError} when the peer stays idle past `idleMs`.
 */
export async function* readFrames(
  conn: Reader & { close(): void },
  limits: FrameLimits,
  options: ReadFramesOptions = {},
): AsyncGenerator<Frame> {
  const decoder = new FrameDecoder(limits);
  const buf = new Uint8Array(options.readSize ?? 256 * 1024);
  let idle = false;
  // One coarse interval instead of a timer re-armed on every read: a live
  // stream reads ~90 times a second, and timer churn costs more than the read.
  let last = performance.now();
  const timer = options.idleMs === undefined ? undefined : setInterval(() => {
    if (performance.now() - last < options.idleMs!) return;
    idle = true;
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  }, Math.max(10, options.idleMs / 4));
  try {
    while (true) {
      let n: number | null;
      try {
        n = await conn.read(buf);
      } catch (err) {
        if (idle) {
          throw new UserError(`Connection idle for ${options.idleMs! / 1000} s; closed it`);
        }
        throw err;
      }
      if (n === null) {
        if (idle) {
          throw new UserError(`Connection idle for ${options.idleMs! / 1000} s; closed it`);
        }
        decoder.finish();
        return;
      }
      last = performance.now();
      options.onBytes?.(n);
      decoder.push(buf.subarray(0, n));
      let frame: Frame | null;
      while ((frame = decoder.next()) !== null) {
        yield frame;
        last = performance.now(); // Time the consumer took is not the peer's idleness.
      }
    }
  } finally {
    clearInterval(timer);
  }
}
