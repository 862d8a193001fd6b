/**
 * The Audio-UDP jitter buffer. No I/O: blocks in (with the time they
 * arrived), play-out decisions out (with the time they are due).
 *
 * Block `n` is due at its capture time plus the target latency; the capture
 * time of a block that never came is estimated from the newest block seen.
 * Blocks that arrive out of order but in time are put back in order
 * (counted reordered). A block missing when due is concealed; if it comes
 * later it is counted late (not lost) and dropped; if it never comes it is
 * counted lost once it falls out of the window. Memory is bounded by the
 * window.
 *
 * A block that failed its MD5 proves nothing about its header either: its
 * sequence number and capture time may be the damaged bytes. It never
 * joins the stream, moves the play-out point or the clock, or skips ahead;
 * it only marks the slot it names, if that slot is in the window and
 * empty, as corrupted, and the intact block itself still takes the slot
 * if it comes.
 *
 * @module
 */
import { before } from "./sequence.ts";

/** A block handed to the jitter buffer. */
export interface JitterBlock {
  /** Block sequence number. */
  seq: number;
  /** Capture time of the block's first sample, ms since the epoch. */
  captured: number;
  /** False when it failed its MD5: its slot is concealed, never played. */
  intact: boolean;
  /** The block's samples. */
  samples: Int16Array;
}

/** What to do at a play-out slot. */
export type PlayoutDecision =
  | { kind: "play"; seq: number; captured: number; samples: Int16Array }
  | { kind: "conceal"; seq: number; captured: number; reason: "missing" | "corrupted" };

/**
 * What the ordering side of an audio client counts: the UDP jitter buffer
 * and the TCP sequence tracker keep the same counters.
 */
export interface OrderCounters {
  /** Blocks that arrived after a later block, in time to be played. */
  reordered: number;
  /** Blocks that arrived after their slot was concealed. */
  late: number;
  /** Blocks never received (counted once out of the window). */
  lost: number;
  /** Blocks received twice (or, over TCP, from before a resync). */
  duplicate: number;
  /** Blocks that failed their MD5 (concealed, never played). */
  corrupted: number;
}

/** A fresh set of {@link OrderCounters}, all zero. */
export function newOrderCounters(): OrderCounters {
  return { reordered: 0, late: 0, lost: 0, duplicate: 0, corrupted: 0 };
}

/** The jitter buffer's counters. */
export type JitterCounters = OrderCounters;

/** Options of a {@link JitterBuffer}. */
export interface JitterOptions {
  /** Target latency from capture to play-out, ms. */
  targetMs: number;
  /** Duration of one block, ms. */
  blockMs: number;
  /** Blocks remembered behind and ahead of the play-out point (default 64). */
  window?: number;
  /** Counters to keep counting into (kept across a stream restart). */
  counters?: OrderCounters;
}

/** Puts blocks in order and decides, slot by slot, what to play. */
export class JitterBuffer {
  /** What the jitter buffer has decided so far. */
  readonly counters: OrderCounters;
  #target: number;
  #blockMs: number;
  #window: number;
  #next: number | undefined;
  #anchor: { seq: number; captured: number } | undefined;
  #highest: number | undefined;
  #buffer = new Map<number, JitterBlock>();
  #concealed = new Set<number>();
  #missingRun = 0;

  /** Creates an empty jitter buffer; it joins the stream at the first block. */
  constructor(options: JitterOptions) {
    this.#target = options.targetMs;
    this.#blockMs = options.blockMs;
    this.#window = options.window ?? 64;
    this.counters = options.counters ?? newOrderCounters();
  }

  /** The target latency, ms. */
  get targetMs(): number {
    return this.#target;
  }

  /** The sequence number due next (undefined before the first block). */
  get next(): number | undefined {
    return this.#next;
  }

  /** Blocks waiting to be played. */
  get buffered(): number {
    return this.#buffer.size;
  }

  /** Takes a block; says whether it was queued, late or a duplicate. */
  push(b: JitterBlock): "queued" | "late" | "duplicate" | "stale" {
    if (!b.intact) return this.#corrupted(b);
    if (this.#next === undefined) {
      this.#next = b.seq; // Join the stream at the first block received.
    }
    if (before(b.seq, this.#next)) {
      if (this.#concealed.delete(b.seq)) {
        this.counters.late++;
        return "late";
      }
      return "stale";
    }
    const held = this.#buffer.get(b.seq);
    if (held?.intact) {
      this.counters.duplicate++;
      return "duplicate";
    }
    if (!before(b.seq, this.#next + this.#window)) {
      // Far ahead (the play-out fell behind): skip to it.
      while (before(this.#next, b.seq)) this.#skip();
    }
    if (this.#highest !== undefined && before(b.seq, this.#highest)) this.counters.reordered++;
    else this.#highest = b.seq;
    if (!this.#anchor || !before(b.seq, this.#anchor.seq)) {
      this.#anchor = { seq: b.seq, captured: b.captured };
    }
    this.#buffer.set(b.seq, b);
    return "queued";
  }

  /** A block that failed its MD5: counted, and at most marks an empty slot in the window. */
  #corrupted(b: JitterBlock): "queued" | "stale" {
    this.counters.corrupted++;
    const next = this.#next;
    if (
      next === undefined || before(b.seq, next) || !before(b.seq, next + this.#window) ||
      this.#buffer.has(b.seq)
    ) return "stale";
    this.#buffer.set(b.seq, b);
    return "queued";
  }

  /** When the next slot is due (ms, same clock as capture times), or null. */
  nextDue(): number | null {
    if (this.#next === undefined || !this.#anchor) return null;
    return this.#capturedOf(this.#next) + this.#target;
  }

  /** The decision for the next slot if it is due at `now`, else null. */
  pop(now: number): PlayoutDecision | null {
    const due = this.nextDue();
    if (due === null || now < due) return null;
    const seq = this.#next!;
    const captured = this.#capturedOf(seq);
    this.#next = seq + 1;
    this.#expire();
    const b = this.#buffer.get(seq);
    if (b) {
      this.#buffer.delete(seq);
      this.#missingRun = 0;
      return b.intact
        ? { kind: "play", seq, captured: b.captured, samples: b.samples }
        : { kind: "conceal", seq, captured, reason: "corrupted" };
    }
    this.#concealed.add(seq);
    if (++this.#missingRun > this.#window && this.#buffer.size === 0) {
      // The stream stopped: stop concealing and rejoin at the next block.
      this.#next = undefined;
      this.#anchor = undefined;
      this.#missingRun = 0;
    }
    return { kind: "conceal", seq, captured, reason: "missing" };
  }

  /** Ends the session: blocks still awaited are counted lost. */
  finish(): void {
    this.counters.lost += this.#concealed.size;
    this.#concealed.clear();
  }

  #capturedOf(seq: number): number {
    const a = this.#anchor!;
    return a.captured + ((seq - a.seq) | 0) * this.#blockMs;
  }

  #skip() {
    const seq = this.#next!;
    if (!this.#buffer.delete(seq)) this.#concealed.add(seq);
    this.#next = seq + 1;
    this.#expire();
  }

  #expire() {
    const edge = this.#next! - this.#window;
    for (const s of this.#concealed) {
      if (before(s, edge)) {
        this.#concealed.delete(s);
        this.counters.lost++;
      }
    }
  }
}
