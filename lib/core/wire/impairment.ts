/**
 * A deterministic network impairment model for datagrams: seeded random
 * loss (with bursts), duplication, reordering, corruption, delay and
 * jitter. No I/O: a datagram in, what to deliver and when out. The same
 * seed and input give the same decisions, so tests and benches repeat.
 *
 * @module
 */

/** Impairments; probabilities are 0 to 1, times in ms. */
export interface ImpairmentConfig {
  /** Chance a datagram is dropped. */
  loss?: number;
  /** Mean length of a loss burst in datagrams (1 = independent losses). */
  burst?: number;
  /** Chance a datagram is delivered twice. */
  duplicate?: number;
  /** Chance a datagram is held back behind later ones. */
  reorder?: number;
  /** Chance one byte of a datagram's payload (past `protect` bytes) is flipped. */
  corrupt?: number;
  /** Bytes at the start never corrupted (a header), default 0. */
  protect?: number;
  /**
   * Chance one bit of the protected header is flipped, past its first four
   * bytes (magic, version and type), so the datagram still looks like one
   * of its kind with a damaged field.
   */
  corruptHeader?: number;
  /** Fixed delay. */
  delay?: number;
  /** Extra delay drawn uniformly from 0 to this. */
  jitter?: number;
}

/** One delivery of a datagram. */
export interface Delivery {
  /** The bytes to deliver (a copy if corrupted). */
  data: Uint8Array;
  /** How long to hold them first. */
  delayMs: number;
}

/** What happened to one datagram. */
export interface Fate {
  /** The datagram was dropped. */
  dropped: boolean;
  /** It is delivered twice. */
  duplicated: boolean;
  /** It is held back behind later ones. */
  reordered: boolean;
  /** One byte of its payload was flipped. */
  corrupted: boolean;
  /** One bit of its header was flipped. */
  headerCorrupted: boolean;
}

/** Counters of what the model did. */
export interface ImpairmentCounters {
  /** Datagrams decided on. */
  seen: number;
  /** Dropped. */
  dropped: number;
  /** Delivered twice. */
  duplicated: number;
  /** Held back behind later ones. */
  reordered: number;
  /** Corrupted. */
  corrupted: number;
  /** Header corrupted. */
  headerCorrupted: number;
}

/** Extra delay a reordered datagram gets, so later ones overtake it. */
const REORDER_MS = 4;

/** The impairment model. */
export class Impairment {
  /** What the model has done so far. */
  readonly counters: ImpairmentCounters = {
    seen: 0,
    dropped: 0,
    duplicated: 0,
    reordered: 0,
    corrupted: 0,
    headerCorrupted: 0,
  };
  #c: Required<ImpairmentConfig>;
  #state: number;
  #inBurst = false;

  /** Creates a model with these impairments and a random seed. */
  constructor(config: ImpairmentConfig, seed = 1) {
    this.#c = {
      loss: config.loss ?? 0,
      burst: Math.max(1, config.burst ?? 1),
      duplicate: config.duplicate ?? 0,
      reorder: config.reorder ?? 0,
      corrupt: config.corrupt ?? 0,
      protect: config.protect ?? 0,
      corruptHeader: config.corruptHeader ?? 0,
      delay: config.delay ?? 0,
      jitter: config.jitter ?? 0,
    };
    this.#state = (seed >>> 0) || 1;
  }

  /** A uniform number in [0, 1) from the seeded generator (mulberry32). */
  random(): number {
    let t = (this.#state = (this.#state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Decides the fate of one datagram and what to deliver. */
  decide(datagram: Uint8Array): { fate: Fate; deliveries: Delivery[] } {
    const c = this.#c;
    this.counters.seen++;
    const fate: Fate = {
      dropped: false,
      duplicated: false,
      reordered: false,
      corrupted: false,
      headerCorrupted: false,
    };
    // Loss with bursts: once in a burst, stay with probability 1 - 1/burst.
    // The entry rate is set so the long-run loss rate equals `loss`.
    const enter = c.burst > 1 ? c.loss / (c.burst * (1 - c.loss) + c.loss) : c.loss;
    this.#inBurst = this.#inBurst ? this.random() < 1 - 1 / c.burst : this.random() < enter;
    if (this.#inBurst) {
      fate.dropped = true;
      this.counters.dropped++;
      return { fate, deliveries: [] };
    }
    let data = datagram;
    if (this.random() < c.corrupt && datagram.length > c.protect) {
      data = datagram.slice();
      const at = c.protect + Math.floor(this.random() * (datagram.length - c.protect));
      data[at] ^= 1 << Math.floor(this.random() * 8);
      fate.corrupted = true;
      this.counters.corrupted++;
    }
    if (c.corruptHeader > 0 && c.protect > 4 && datagram.length >= c.protect) {
      // Drawn only when asked for, so other configurations repeat as before.
      if (this.random() < c.corruptHeader) {
        if (data === datagram) data = datagram.slice();
        const bit = Math.floor(this.random() * (c.protect - 4) * 8);
        data[4 + (bit >> 3)] ^= 1 << (bit & 7);
        fate.headerCorrupted = true;
        this.counters.headerCorrupted++;
      }
    }
    let delay = c.delay + this.random() * c.jitter;
    if (this.random() < c.reorder) {
      delay += REORDER_MS;
      fate.reordered = true;
      this.counters.reordered++;
    }
    const deliveries = [{ data, delayMs: delay }];
    if (this.random() < c.duplicate) {
      deliveries.push({ data, delayMs: delay + this.random() * (c.jitter + 1) });
      fate.duplicated = true;
      this.counters.duplicated++;
    }
    return { fate, deliveries };
  }
}

/** Parses `0.05`, `5%` into a probability; null if invalid. */
export function parseProbability(text: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(%?)\s*$/.exec(text);
  if (!m) return null;
  const v = Number(m[1]) / (m[2] ? 100 : 1);
  return v >= 0 && v <= 1 ? v : null;
}
