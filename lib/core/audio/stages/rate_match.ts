/**
 * Drift compensation for a sound device, with no I/O: plays the sender's
 * audio at the rate it arrives, although the device plays at its own.
 *
 * The sender's clock and the client's (or the two sound cards' crystals)
 * differ by tens to thousands of ppm, so a device fed every block as it
 * arrives either runs dry or queues ever more audio. Before each block is
 * written, {@link RateMatcher.next} is told how many frames wait ahead of
 * it (the play-out queue plus the device's own buffer) and the drift the
 * clock sync measured; it stretches or squeezes the block by whole frames,
 * by linear interpolation across the block, so the frames waiting stay
 * where they were when the stream settled. The drift is followed directly
 * (feed-forward), and what waits is pulled back to its level over about
 * half a minute (feedback), which also covers a device crystal that differs
 * from the client's clock.
 *
 * Why interpolation rather than slipping single frames: a dropped or
 * repeated frame is a step in the waveform, a click on a pure tone, while
 * stretching one block by a frame changes its pitch by less than 0.1% for
 * 20 ms, which no one hears. With no drift and a steady queue no block is
 * touched: the output stays sample-exact.
 *
 * @module
 */

/** Options of a {@link RateMatcher}. */
export interface RateMatchOptions {
  /** Sample rate, Hz. */
  rate: number;
  /** Interleaved channels. */
  channels: number;
  /** Largest correction followed, ppm (default 5000: 0.5%). */
  maxPpm?: number;
  /**
   * Blocks to let pass, then to watch, before the level to hold is set
   * (default: about three seconds each; a device often stalls as it starts).
   */
  settleBlocks?: number;
  /** Seconds over which an excess or shortfall is worked off (default 30). */
  horizonS?: number;
}

/** Drifts smaller than this, ppm, are not measurable and not followed. */
const MEASURABLE_PPM = 10;

/** Seconds of audio {@link RateMatcher.recentPpm} is taken over. */
const RECENT_S = 10;

/** Keeps a device's queue level while the sender's audio runs at its own rate. */
export class RateMatcher {
  /** Frames removed (the sender ran fast) so far. */
  framesRemoved = 0;
  /** Frames added (the sender ran slow) so far. */
  framesAdded = 0;
  /** Frames of the sender's audio taken in so far. */
  framesIn = 0;
  #o: Required<RateMatchOptions>;
  #settling: number[] = [];
  #blocks = 0;
  #target: number | undefined;
  #smoothed: number | undefined;
  #acc = 0;
  /** [frames in, net frames removed] about once a second, the newest ten seconds. */
  #marks: [number, number][] = [];

  /** A matcher for audio of `rate` Hz and `channels` channels. */
  constructor(options: RateMatchOptions) {
    this.#o = {
      maxPpm: 5000,
      settleBlocks: 0,
      horizonS: 30,
      ...options,
    };
  }

  /** The correction over the whole session so far, ppm (positive: played faster). */
  get meanPpm(): number {
    return this.framesIn ? ((this.framesRemoved - this.framesAdded) / this.framesIn) * 1e6 : 0;
  }

  /**
   * The correction in force: over the newest ten seconds of audio, ppm
   * (the session's {@link meanPpm} until ten seconds have passed). The
   * mean trails it, since the first seconds pass before the drift is known.
   */
  get recentPpm(): number {
    const first = this.#marks[0];
    if (!first || this.#marks.length < RECENT_S + 1) return this.meanPpm;
    const net = this.framesRemoved - this.framesAdded;
    return ((net - first[1]) / (this.framesIn - first[0])) * 1e6;
  }

  /** How far the queue (smoothed) is from the level it holds, frames (0 while settling). */
  get errorFrames(): number {
    return this.#target === undefined ? 0 : this.#smoothed! - this.#target;
  }

  /**
   * The block to write in place of `samples`, given the frames waiting
   * ahead of it and the sender's drift (ppm, positive: its audio runs
   * faster than the client's clock).
   */
  next(samples: Int16Array, heldFrames: number, driftPpm: number): Int16Array {
    const o = this.#o;
    const frames = samples.length / o.channels;
    this.framesIn += frames;
    const last = this.#marks[this.#marks.length - 1];
    if (!last || this.framesIn - last[0] >= o.rate) {
      this.#marks.push([this.framesIn, this.framesRemoved - this.framesAdded]);
      if (this.#marks.length > RECENT_S + 1) this.#marks.shift();
    }
    const settle = o.settleBlocks || Math.ceil((3 * o.rate) / frames);
    this.#smoothed = this.#smoothed === undefined
      ? heldFrames
      : this.#smoothed + 0.02 * (heldFrames - this.#smoothed);
    if (this.#target === undefined && ++this.#blocks > settle) {
      // The level to hold: the median of the second stretch.
      this.#settling.push(heldFrames);
      if (this.#settling.length >= settle) {
        const sorted = this.#settling.sort((a, b) => a - b);
        this.#target = sorted[Math.floor(sorted.length / 2)];
        this.#smoothed = this.#target;
        this.#settling = [];
      }
    }
    const forward = Math.abs(driftPpm) >= MEASURABLE_PPM ? driftPpm : 0;
    let back = 0;
    if (this.#target !== undefined) {
      const error = this.#smoothed - this.#target;
      // A block either way is the queue's own wobble (a sound server takes
      // audio in chunks): leave it.
      if (Math.abs(error) > frames) {
        back = ((error - Math.sign(error) * frames) / (o.rate * o.horizonS)) * 1e6;
      }
    }
    const ppm = Math.max(-o.maxPpm, Math.min(o.maxPpm, forward + back));
    this.#acc += (frames * ppm) / 1e6;
    const k = Math.trunc(this.#acc);
    if (k === 0 || frames - k < 2) return samples;
    this.#acc -= k;
    if (k > 0) this.framesRemoved += k;
    else this.framesAdded -= k;
    return stretch(samples, o.channels, frames - k);
  }
}

/**
 * `samples` (interleaved, `channels` wide) resampled to `frames` frames by
 * linear interpolation; the first and last frames are kept, so consecutive
 * blocks still join.
 */
export function stretch(samples: Int16Array, channels: number, frames: number): Int16Array {
  const n = samples.length / channels;
  const out = new Int16Array(frames * channels);
  const step = frames > 1 ? (n - 1) / (frames - 1) : 0;
  for (let j = 0; j < frames; j++) {
    const pos = j * step;
    const i = Math.min(Math.floor(pos), n - 2);
    const f = pos - i;
    for (let c = 0; c < channels; c++) {
      const a = samples[i * channels + c];
      const b = samples[(i + 1) * channels + c];
      out[j * channels + c] = Math.round(a + (b - a) * f);
    }
  }
  return out;
}
