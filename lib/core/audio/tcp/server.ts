/**
 * The Audio-TCP server's core, with no I/O: a {@link ListenerSession} per
 * connection takes the blocks a `Broadcaster` numbered and queues their
 * frames for one listener.
 *
 * @module
 */
import { ProtocolError } from "../../errors.ts";
import { FrameDecoder } from "../../wire/frame.ts";
import {
  AUDIO_SERVER_LIMITS,
  AudioMsg,
  decodeSyncRequest,
  encodeSyncReplyFrame,
} from "./frames.ts";

/** Options of a {@link ListenerSession}. */
export interface ListenerSessionOptions {
  /** The first frame every listener gets (the hello). */
  hello: Uint8Array;
  /** Blocks a listener may have queued before its oldest are dropped. */
  queueBlocks: number;
  /** A listener that takes nothing for this long (ms) with blocks waiting is stuck. */
  stuckMs: number;
}

/** Clock sync requests a listener may send at once, and then per second. */
export const SYNC_BURST = 10;
/** Clock sync requests per second a listener may keep sending. */
export const SYNC_PER_SECOND = 2;

/**
 * One Audio-TCP listener as the server sees it: a bounded queue of frames
 * (when full, the oldest is dropped, so a slow listener never delays
 * capture or anyone else), stuck detection from the times passed in, and
 * the rule that a listener sends nothing but clock sync requests, at most
 * {@link SYNC_BURST} at once and {@link SYNC_PER_SECOND} a second after.
 * A sync reply goes out ahead of the queued blocks, stamped when taken.
 */
export class ListenerSession {
  #queue: Uint8Array[];
  #limit: number;
  #stuckMs: number;
  #lastProgress: number | undefined;
  #decoder = new FrameDecoder(AUDIO_SERVER_LIMITS);
  #syncs: { t1: number; t2: number }[] = [];
  #tokens = SYNC_BURST;
  #tokensAt: number | undefined;

  /** A session whose first frame is the hello. */
  constructor(options: ListenerSessionOptions) {
    this.#queue = [options.hello];
    this.#limit = options.queueBlocks;
    this.#stuckMs = options.stuckMs;
  }

  /** Frames waiting to be written. */
  get pending(): number {
    return this.#queue.length;
  }

  /**
   * Bytes the listener sent, at `now` (the server's clock, the one its
   * capture times use). Clock sync requests are answered through
   * {@link take}; anything else, or requests too fast, throws
   * {@link ProtocolError} and ends the session.
   */
  receive(bytes: Uint8Array, now: number): void {
    this.#decoder.push(bytes);
    for (let f = this.#decoder.next(); f !== null; f = this.#decoder.next()) {
      if (f.type !== AudioMsg.SYNC) throw new ProtocolError("Listener sent a frame");
      const t1 = decodeSyncRequest(f.payload);
      const elapsed = this.#tokensAt === undefined ? 0 : Math.max(0, now - this.#tokensAt);
      this.#tokens = Math.min(SYNC_BURST, this.#tokens + (elapsed / 1000) * SYNC_PER_SECOND);
      this.#tokensAt = now;
      if (this.#tokens < 1) {
        throw new ProtocolError(
          `Listener sent clock sync requests faster than ${SYNC_PER_SECOND} a second`,
        );
      }
      this.#tokens--;
      this.#syncs.push({ t1, t2: now });
    }
  }

  /** Whether a sync reply is waiting to be taken. */
  get syncPending(): boolean {
    return this.#syncs.length > 0;
  }

  /** Queues a frame at `now`; returns true when the oldest was dropped to make room. */
  push(frame: Uint8Array, now: number): boolean {
    if (this.#queue.length === 0) this.#lastProgress = now;
    this.#lastProgress ??= now;
    let dropped = false;
    if (this.#queue.length >= this.#limit) {
      this.#queue.shift();
      dropped = true;
    }
    this.#queue.push(frame);
    return dropped;
  }

  /**
   * The next frame to write, if any: a sync reply first (stamped `now`, the
   * server's clock), then the queue. Taking a queued frame counts as progress.
   */
  take(now: number): Uint8Array | undefined {
    const sync = this.#syncs.shift();
    if (sync) return encodeSyncReplyFrame({ ...sync, t3: now });
    const frame = this.#queue.shift();
    if (frame) this.#lastProgress = now;
    return frame;
  }

  /** Whether frames have waited with no progress for longer than the stuck limit. */
  stuck(now: number): boolean {
    return this.#queue.length > 0 && this.#lastProgress !== undefined &&
      now - this.#lastProgress > this.#stuckMs;
  }
}
