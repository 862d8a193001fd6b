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
  let timer: ReturnType<typeof setTimeout> | undefined;
  const arm = () => {
    if (options.idleMs === undefined) return;
    clearTimeout(timer);
    timer = setTimeout(() => {
      idle = true;
      try {
        conn.close();
      } catch {
        // Already closed.
      }
    }, options.idleMs);
  };
  try {
    while (true) {
      arm();
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
      options.onBytes?.(n);
      decoder.push(buf.subarray(0, n));
      let frame: Frame | null;
      while ((frame = decoder.next()) !== null) {
        clearTimeout(timer);
        yield frame;
      }
    }
  } finally {
    clearTimeout(timer);
  }
}
