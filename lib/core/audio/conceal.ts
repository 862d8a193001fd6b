/**
 * Concealment of blocks that cannot be played (corrupted or lost): the
 * first missing block after a good one is that good block repeated at half
 * level with a fade-out, so a single gap is barely heard; any further
 * missing block in a row is silence. No I/O.
 *
 * @module
 */

/** Produces the block to play in place of a missing one. */
export class Concealer {
  #last: Int16Array | null = null;
  #missing = 0;
  #channels: number;

  /** Creates a concealer for interleaved audio of `channels` channels. */
  constructor(channels: number) {
    this.#channels = channels;
  }

  /** Remembers the last good block played. */
  good(samples: Int16Array): void {
    this.#last = samples;
    this.#missing = 0;
  }

  /** A block to play instead of a missing one of `length` samples. */
  conceal(length: number): Int16Array {
    const out = new Int16Array(length);
    this.#missing++;
    if (this.#missing === 1 && this.#last && this.#last.length === length) {
      const frames = length / this.#channels;
      for (let f = 0; f < frames; f++) {
        const gain = 0.5 * (1 - f / frames);
        for (let c = 0; c < this.#channels; c++) {
          const i = f * this.#channels + c;
          out[i] = Math.round(this.#last[i] * gain);
        }
      }
    }
    return out;
  }
}
