/**
 * A phase-continuous sine generator, and level and frequency estimates for
 * checking what arrived. No I/O.
 *
 * @module
 */

/** Generates blocks of a sine tone as 16-bit interleaved samples. */
export class ToneGenerator {
  #phase = 0;
  #step: number;
  #amplitude: number;
  #channels: number;

  /**
   * Creates a generator; see the parameters.
   *
   * @param hz Frequency.
   * @param rate Sample rate.
   * @param channels Channels (the same tone on each).
   * @param amplitude Peak as a fraction of full scale (default 0.5).
   */
  constructor(hz: number, rate: number, channels = 1, amplitude = 0.5) {
    this.#step = (2 * Math.PI * hz) / rate;
    this.#amplitude = Math.round(amplitude * 32767);
    this.#channels = channels;
  }

  /** The next `frames` frames. */
  next(frames: number): Int16Array {
    const out = new Int16Array(frames * this.#channels);
    for (let f = 0; f < frames; f++) {
      const s = Math.round(Math.sin(this.#phase) * this.#amplitude);
      for (let c = 0; c < this.#channels; c++) out[f * this.#channels + c] = s;
      this.#phase += this.#step;
      if (this.#phase > 2 * Math.PI) this.#phase -= 2 * Math.PI;
    }
    return out;
  }
}

/** Root-mean-square level of samples as a fraction of full scale. */
export function rmsLevel(samples: Int16Array): number {
  if (samples.length === 0) return 0;
  let sum = 0;
  for (const s of samples) sum += s * s;
  return Math.sqrt(sum / samples.length) / 32768;
}

/**
 * Estimates the dominant frequency of mono samples from their rising zero
 * crossings (good for a clean tone, which is what the checks need).
 */
export function estimateFrequency(samples: Int16Array, rate: number): number {
  let first = -1;
  let last = -1;
  let count = 0;
  for (let i = 1; i < samples.length; i++) {
    if (samples[i - 1] < 0 && samples[i] >= 0) {
      if (first < 0) first = i;
      else count++;
      last = i;
    }
  }
  return count > 0 ? (count * rate) / (last - first) : 0;
}
