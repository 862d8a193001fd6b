/**
 * The first stage of both audio transports' servers, with no I/O: one
 * {@link Broadcaster} numbers each captured block and computes its MD5 once,
 * whatever the number of listeners; each transport then fans it out (TCP
 * through a `ListenerSession` per connection, UDP through the listener
 * table).
 *
 * @module
 */
import { type BlockContext, blockDigest, type StreamBlock } from "../format/block_digest.ts";

export type { StreamBlock } from "../format/block_digest.ts";
/** Numbers and digests the blocks of one capture. */
export class Broadcaster {
  #seq = 0;
  #context: BlockContext;

  /** A broadcaster for one capture: its stream id and format. */
  constructor(context: BlockContext) {
    this.#context = context;
  }

  /** Takes the next captured block. */
  next(samples: Int16Array, captured: number): StreamBlock {
    const bytes = new Uint8Array(samples.buffer, samples.byteOffset, samples.byteLength);
    const seq = this.#seq;
    this.#seq = (this.#seq + 1) >>> 0;
    return {
      seq,
      captured,
      digest: blockDigest(this.#context, seq, captured, bytes),
      bytes,
      samples,
    };
  }
}
