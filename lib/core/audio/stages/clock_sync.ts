/**
 * Clock sync between an audio client and its server, NTP style, with no
 * I/O: the client stamps a request (t1, its clock), the server stamps
 * receipt and reply (t2, t3, its clock), the client stamps the answer (t4).
 * From each exchange:
 *
 * ```text
 * offset = ((t2 - t1) + (t3 - t4)) / 2     the server's clock minus the client's
 * rtt    = (t4 - t1) - (t3 - t2)           the round trip, server time excluded
 * ```
 *
 * An offset is exact when the two directions take equally long; otherwise
 * it is off by half their difference, so never by more than half the round
 * trip. {@link ClockSync} keeps a window of exchanges, splits it into
 * stretches of time and keeps from each the exchange with the lowest round
 * trip (a delayed exchange never wins its stretch, so it cannot move the
 * estimate), and fits a line through those: its value now is the offset,
 * its slope the drift (how much faster the server's clock runs than the
 * client's). Newest exchanges that all disagree with the fit by far more
 * than their round trip mean the server's clock stepped: the window starts
 * over from them.
 *
 * It also says when to ask: a request every
 * {@link ClockSyncOptions.burstGapMs} until a short burst of answers came
 * back (backing off while none comes), then one a second. Answers to
 * requests it did not make, or made twice, are refused.
 *
 * @module
 */

/** What the sync knows: the server's clock as seen from the client's. */
export interface ClockEstimate {
  /** The server's clock minus the client's, ms, now. */
  offsetMs: number;
  /** How much faster the server's clock runs than the client's, parts per million. */
  driftPpm: number;
  /** The lowest round trip among the exchanges the estimate rests on, ms. */
  rttMs: number;
  /** Exchanges in the window. */
  samples: number;
}

/** Options of a {@link ClockSync}; the defaults suit one exchange a second. */
export interface ClockSyncOptions {
  /** Answers to gather in the burst at the start (default 5). */
  burst?: number;
  /** Time between the burst's requests, and between retries before any answer, ms (default 40). */
  burstGapMs?: number;
  /** Time between requests after the burst, ms (default 1000). */
  intervalMs?: number;
  /** Exchanges kept (default 120: two minutes). */
  window?: number;
  /** Stretches the window is split into, each giving its best exchange (default 12). */
  stretches?: number;
  /** Shortest span of exchanges a drift is fitted over, ms (default 2000). */
  minDriftSpanMs?: number;
}

/** One exchange, reduced. */
interface Sample {
  /** The client's time at the middle of the exchange. */
  at: number;
  offset: number;
  rtt: number;
}

/** The fitted line, offset(at) = a + b (at - x0), and the round trip it rests on. */
interface Fit {
  a: number;
  b: number;
  x0: number;
  rtt: number;
}

/** Most requests awaiting an answer; older ones are forgotten. */
const MAX_OUTSTANDING = 16;
/** Newest exchanges that must all disagree with the fit before it counts as a step. */
const STEP_SAMPLES = 3;
/** A step is a disagreement larger than this plus twice the exchange's round trip, ms. */
const STEP_MS = 5;

/** The clock-sync core of one client session (start a new one after a reconnection). */
export class ClockSync {
  #o: Required<ClockSyncOptions>;
  #samples: Sample[] = [];
  #outstanding: number[] = [];
  #answered = 0;
  #unanswered = 0;
  #nextAt: number | undefined;
  #lastT1 = -Infinity;
  #fit: Fit | undefined;

  /** A sync that has asked nothing yet. */
  constructor(options: ClockSyncOptions = {}) {
    this.#o = {
      burst: options.burst ?? 5,
      burstGapMs: options.burstGapMs ?? 40,
      intervalMs: options.intervalMs ?? 1000,
      window: options.window ?? 120,
      stretches: options.stretches ?? 12,
      minDriftSpanMs: options.minDriftSpanMs ?? 2000,
    };
  }

  /** Whether at least one exchange was answered, so the mapping can be used. */
  get ready(): boolean {
    return this.#fit !== undefined;
  }

  /** When the next request is due (client ms), or `-Infinity` before the first. */
  nextDue(): number {
    return this.#nextAt ?? -Infinity;
  }

  /** Whether a request is due at `now`. */
  due(now: number): boolean {
    return now >= this.nextDue();
  }

  /**
   * Records a request sent at `now` and returns its t1 (the time to put in
   * it: `now`, nudged up if needed so that every t1 is unique).
   */
  stamp(now: number): number {
    const t1 = now > this.#lastT1 ? now : this.#lastT1 + 0.001;
    this.#lastT1 = t1;
    this.#outstanding.push(t1);
    if (this.#outstanding.length > MAX_OUTSTANDING) this.#outstanding.shift();
    // In the burst, ask again soon; while unanswered, back off (40, 80,
    // 160 ms...) so that a slow path never sees a flood of requests.
    const unanswered = this.#unanswered++;
    const gap = this.#answered < this.#o.burst
      ? this.#o.burstGapMs * 2 ** Math.min(unanswered, 10)
      : this.#o.intervalMs;
    this.#nextAt = now + Math.min(gap, this.#o.intervalMs);
    return t1;
  }

  /**
   * Takes an answer: the request's t1 as echoed, the server's t2 and t3,
   * and t4, the client's time it arrived. Returns why it was refused, or
   * null when it was used.
   */
  answer(t1: number, t2: number, t3: number, t4: number): string | null {
    if (![t1, t2, t3, t4].every(Number.isFinite)) return "a time is not a finite number";
    const i = this.#outstanding.indexOf(t1);
    if (i < 0) return "it answers no request of ours";
    this.#outstanding.splice(i, 1);
    if (t3 < t2) return "the server replied before it received";
    if (t4 < t1) return "it arrived before it was sent";
    const rtt = t4 - t1 - (t3 - t2);
    if (rtt < 0) return "the server took longer than the round trip";
    this.#answered++;
    this.#unanswered = 0;
    if (this.#answered <= this.#o.burst) {
      // Still in the burst: the next request need not wait out a back-off.
      this.#nextAt = Math.min(this.nextDue(), t1 + this.#o.burstGapMs);
    }
    this.#samples.push({ at: (t1 + t4) / 2, offset: (t2 - t1 + (t3 - t4)) / 2, rtt });
    if (this.#samples.length > this.#o.window) this.#samples.shift();
    if (this.#stepped()) this.#samples = this.#samples.slice(-STEP_SAMPLES);
    this.#fit = this.#fitOf(this.#samples);
    return null;
  }

  /** The estimate at client time `now`, or null before the first answer. */
  estimate(now: number): ClockEstimate | null {
    const f = this.#fit;
    if (!f) return null;
    return {
      offsetMs: f.a + f.b * (now - f.x0),
      driftPpm: f.b * 1e6,
      rttMs: f.rtt,
      samples: this.#samples.length,
    };
  }

  /**
   * The client's time of the server's time `serverMs`. Before the first
   * answer the clocks are taken to agree.
   */
  toLocal(serverMs: number): number {
    const f = this.#fit;
    if (!f) return serverMs;
    // server = local + a + b (local - x0), solved for local.
    return (serverMs - f.a + f.b * f.x0) / (1 + f.b);
  }

  #fitOf(samples: Sample[]): Fit {
    const points = this.#points(samples);
    const rtt = Math.min(...points.map((p) => p.rtt));
    const span = points[points.length - 1].at - points[0].at;
    if (points.length < 3 || span < this.#o.minDriftSpanMs) {
      // Too short for a slope: the newest of the best exchanges.
      const best = points.filter((p) => p.rtt <= rtt * 1.5 + 0.5).pop()!;
      return { a: best.offset, b: 0, x0: best.at, rtt };
    }
    // Least squares through the stretches' best exchanges.
    const n = points.length;
    const x0 = points.reduce((s, p) => s + p.at, 0) / n;
    const y0 = points.reduce((s, p) => s + p.offset, 0) / n;
    let sxy = 0;
    let sxx = 0;
    for (const p of points) {
      sxy += (p.at - x0) * (p.offset - y0);
      sxx += (p.at - x0) ** 2;
    }
    return { a: y0, b: sxx > 0 ? sxy / sxx : 0, x0, rtt };
  }

  /** The best exchange of each stretch, leaving out stretches that were all delayed. */
  #points(s: Sample[]): Sample[] {
    const k = Math.min(this.#o.stretches, s.length);
    const points: Sample[] = [];
    for (let j = 0; j < k; j++) {
      const part = s.slice(Math.floor((j * s.length) / k), Math.floor(((j + 1) * s.length) / k));
      points.push(part.reduce((m, p) => (p.rtt < m.rtt ? p : m)));
    }
    // A stretch whose best round trip is far above the quickest was
    // congested throughout: its offset is as skewed as its delay was
    // one-sided. The bound is the quickest's, not the median's: when most
    // stretches were congested (a stall at the start), the median is too.
    const quickest = Math.min(...points.map((p) => p.rtt));
    const kept = points.filter((p) => p.rtt <= 2 * quickest + 1);
    if (kept.length >= 3) return kept;
    // Too few: the three quickest, in time order.
    return [...points].sort((a, b) => a.rtt - b.rtt).slice(0, 3).sort((a, b) => a.at - b.at);
  }

  /** Whether the newest exchanges all disagree, one way, with the fit of those before. */
  #stepped(): boolean {
    if (this.#samples.length < 2 * STEP_SAMPLES) return false;
    const f = this.#fitOf(this.#samples.slice(0, -STEP_SAMPLES));
    const newest = this.#samples.slice(-STEP_SAMPLES);
    const residuals = newest.map((p) => p.offset - (f.a + f.b * (p.at - f.x0)));
    const far = newest.every((p, i) => Math.abs(residuals[i]) > STEP_MS + 2 * p.rtt);
    const sameSign = residuals.every((r) => Math.sign(r) === Math.sign(residuals[0]));
    return far && sameSign;
  }
}

/** A server's answer to a sync request: the request's t1 and its own t2 and t3, ms. */
export interface SyncReply {
  /** The client's time in the request, echoed. */
  t1: number;
  /** The server's time when the request arrived. */
  t2: number;
  /** The server's time when the reply left. */
  t3: number;
}

/** Bytes of an encoded {@link SyncReply}: three f64, big-endian. */
export const SYNC_REPLY_LENGTH = 24;

/** Writes a {@link SyncReply} into `target` at `offset` (both transports carry the same bytes). */
export function writeSyncReply(target: Uint8Array, offset: number, r: SyncReply): void {
  const v = new DataView(target.buffer, target.byteOffset + offset, SYNC_REPLY_LENGTH);
  v.setFloat64(0, r.t1);
  v.setFloat64(8, r.t2);
  v.setFloat64(16, r.t3);
}

/** Reads a {@link SyncReply} from exactly {@link SYNC_REPLY_LENGTH} bytes, or null. */
export function decodeSyncReply(bytes: Uint8Array): SyncReply | null {
  if (bytes.length !== SYNC_REPLY_LENGTH) return null;
  const v = new DataView(bytes.buffer, bytes.byteOffset, SYNC_REPLY_LENGTH);
  return { t1: v.getFloat64(0), t2: v.getFloat64(8), t3: v.getFloat64(16) };
}

/** Blocks held while waiting for the first sync answer; older ones are dropped. */
export const MAX_HELD_BLOCKS = 64;

/**
 * A client session's clock: the sync, and the blocks that arrive before
 * its first answer, held (at most {@link MAX_HELD_BLOCKS}, the oldest
 * dropped) and then handed on with their capture times on the client's
 * clock. Both audio clients' session cores play through one.
 */
export class SyncedTimeline<T extends { captured: number }> {
  /** The sync behind it. */
  readonly sync: ClockSync;
  #held: T[] = [];

  /** A timeline over `sync`. */
  constructor(sync: ClockSync) {
    this.sync = sync;
  }

  /** A block as it arrives: none while the clocks are unknown (it waits), else it on the client's clock. */
  arrive(block: T): T[] {
    if (this.sync.ready) return [this.#local(block)];
    this.#held.push(block);
    if (this.#held.length > MAX_HELD_BLOCKS) this.#held.shift();
    return [];
  }

  /**
   * A sync answer that arrived at `t4`: the blocks it releases (those held,
   * on the client's clock), or null when the sync refused it.
   */
  answer(r: SyncReply, t4: number): T[] | null {
    if (this.sync.answer(r.t1, r.t2, r.t3, t4) !== null) return null;
    return this.#held.splice(0).map((b) => this.#local(b));
  }

  #local(b: T): T {
    return { ...b, captured: this.sync.toLocal(b.captured) };
  }
}
