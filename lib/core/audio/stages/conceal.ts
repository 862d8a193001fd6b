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

  /** Samples (`length`, interleaved) to play instead of a missing block or while one waits. */
  conceal(length: number): Int16Array {
    const out = new Int16Array(length);
    this.#missing++;
    const last = this.#last;
    if (this.#missing === 1 && last && last.length > 0) {
      // The last good block again (from its start, repeated if it is
      // shorter: a squeezed block or a longer stretch), fading out.
      const ch = this.#channels;
      const frames = length / ch;
      const lastFrames = last.length / ch;
      for (let f = 0; f < frames; f++) {
        const gain = 0.5 * (1 - f / frames);
        const from = (f % lastFrames) * ch;
        for (let c = 0; c < ch; c++) out[f * ch + c] = Math.round(last[from + c] * gain);
      }
    }
    return out;
  }
}
