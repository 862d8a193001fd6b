/**
 * The one capture loop both audio servers run: read a block from the
 * source, number and digest it once ({@link Broadcaster}), hand it to the
 * transport's fan-out. Ends when the source ends or {@link Capture.stop}.
 *
 * @module
 */
import { Broadcaster, type StreamBlock } from "../core/audio/stages/broadcaster.ts";
import type { AudioSource } from "./audio_io.ts";

/** A running capture. */
export interface Capture {
  /** Resolves when the source ends or the capture is stopped. */
  readonly finished: Promise<void>;
  /** Stops after the block being read; idempotent. Resolves when stopped. */
  stop(): Promise<void>;
}

/** A random stream id, so listeners notice a restarted server. */
export function newStreamId(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0];
}

/** Starts capturing `source` as stream `streamId`, handing every block to `fanout`. */
export function startCapture(
  source: AudioSource,
  streamId: number,
  fanout: (block: StreamBlock) => void,
): Capture {
  const broadcaster = new Broadcaster({ ...source.spec, streamId });
  let stopping = false;
  const finished = (async () => {
    while (!stopping) {
      const block = await source.read();
      if (!block) break;
      fanout(broadcaster.next(block.samples, block.captured));
    }
  })();
  return {
    finished,
    stop: async () => {
      stopping = true;
      await finished.catch(() => {});
    },
  };
}
