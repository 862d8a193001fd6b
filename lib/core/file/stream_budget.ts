/**
 * What one File-TCP connection may make the server hold for it, with no
 * I/O: the bytes its streams' decoders hold that are not yet whole
 * messages, summed across its streams, and its progress as whole messages
 * of its transfers (not link frames: a STREAM frame carrying one byte of a
 * message is no progress).
 *
 * A client of ours puts whole messages in each STREAM frame, so its
 * streams hold nothing between frames; a stranger who leaves each of 32
 * streams one byte short of a 1 MiB chunk is closed at
 * {@link MAX_CONNECTION_HELD} instead of holding 32 MiB.
 *
 * @module
 */
import { ProtocolError } from "../errors.ts";
import { DATA_PREFIX, MAX_CHUNK_SIZE } from "./messages.ts";
import { HEADER_LENGTH } from "../wire/frame.ts";

/** Most bytes of unfinished messages one connection's streams may hold together: a chunk's frame. */
export const MAX_CONNECTION_HELD: number = HEADER_LENGTH + DATA_PREFIX + MAX_CHUNK_SIZE;

/** One connection's budget: what its streams hold, and its progress. */
export class StreamBudget {
  #held = new Map<number, number>();
  #total = 0;
  #messages = 0;

  /** Bytes of unfinished messages the connection's streams hold now. */
  get held(): number {
    return this.#total;
  }

  /** Whole messages its transfers took so far: the idle timeout's progress. */
  get messages(): number {
    return this.#messages;
  }

  /**
   * Records stream `id` after it took bytes: it holds `buffered` bytes of
   * unfinished messages and took `messages` more whole ones. Throws
   * {@link ProtocolError} once the connection holds over
   * {@link MAX_CONNECTION_HELD}.
   */
  update(id: number, buffered: number, messages: number): void {
    this.#messages += messages;
    this.#total += buffered - (this.#held.get(id) ?? 0);
    if (buffered > 0) this.#held.set(id, buffered);
    else this.#held.delete(id);
    if (this.#total > MAX_CONNECTION_HELD) {
      throw new ProtocolError(
        `Client's transfers hold ${this.#total} bytes of unfinished messages, over the limit of ${MAX_CONNECTION_HELD}`,
      );
    }
  }

  /** Forgets stream `id` (it ended): what it held is no longer counted. */
  drop(id: number): void {
    this.#total -= this.#held.get(id) ?? 0;
    this.#held.delete(id);
  }
}
