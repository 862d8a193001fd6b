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
 * With an automatic target ({@link AutoTarget}) the target follows the
 * path. It starts at a safe margin ({@link safeStartMs}: three blocks,
 * at least a block and 30 ms), so that a clean path never misses a slot
 * from the first one, or higher when the first block's transit (at most
 * one block's length and a millisecond) needs it, and holds it for 5 s
 * at least. When a slot
 * falls due with its block missing and the largest transit measured over
 * the last blocks (late parts of blocks it did not wait for among them),
 * plus the time repair data for that block needs, says it
 * may still come, the buffer stretches: it asks for that many
 * milliseconds of concealment and keeps the slot, so the target grows at
 * once and at a moment that is a concealment anyway. After a calm spell
 * (no stretch, no late block and no block rebuilt from repair data for
 * {@link CALM_MS}) it shrinks slowly
 * towards what the path needs, squeezing played blocks by at most 1% of
 * their frames (linear interpolation, a pitch change no one hears) or, in
 * a quiet block, by up to half of them. Either way there is no step in
 * the waveform.
 *
 * A recording keeps the stream's slot timeline instead
 * ({@link JitterOptions.keepTimeline}, fixed target or automatic): slot k holds block k exactly as sent,
 * or a concealment of one block's length. Nothing is squeezed: the target
 * comes down in steps (later slots fall due earlier; a file has no clock
 * to hear it), stretches are waits the sink writes nothing for, and slots
 * skipped when the stream jumps ahead are concealed in place.
 *
 * @module
 */
import { before } from "./sequence.ts";
import { stretch } from "./rate_match.ts";
import {
  type AutoTarget,
  CALM_MS,
  HEADROOM_MS,
  newTargetCounters,
  safeStartMs,
  START_HOLD_MS,
  type TargetCounters,
} from "./auto_target.ts";

export {
  type AutoTarget,
  CALM_MS,
  HEADROOM_MS,
  newTargetCounters,
  safeStartMs,
  type TargetCounters,
} from "./auto_target.ts";

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
  /** When it was complete, ms, on the same clock as `captured` (for the automatic target). */
  arrived?: number;
  /** Rebuilt from repair data: its wait says what recovery needs, not the path's transit. */
  recovered?: boolean;
}

/**
 * What to do at a play-out slot. A `stretch` is concealment of `ms`
 * milliseconds played while the slot keeps waiting (the target grew).
 */
export type PlayoutDecision =
  | { kind: "play"; seq: number; captured: number; samples: Int16Array }
  | { kind: "conceal"; seq: number; captured: number; reason: "missing" | "corrupted" }
  | { kind: "stretch"; seq: number; captured: number; ms: number };

/** Transits of this many recent blocks set what the automatic target needs. */
const TRANSIT_WINDOW = 128;
/** A missing block with nothing after it yet is waited for in steps this long, ms. */
const INCH_MS = 0.5;
/** ...up to this far past the slowest transit in the window, ms. */
const GRACE_MS = 5;
/** Samples at or below this magnitude count as quiet (about −54 dBFS). */
const QUIET = 64;
/** Most slots a recording conceals in place when the stream jumps ahead (else it rejoins). */
const MOST_OWED = 4096;

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
  /** Follow the path instead of keeping `targetMs` (which is then only the start). */
  auto?: AutoTarget;
  /** How the target moved, to keep counting into (kept across a stream restart). */
  target?: TargetCounters;
  /**
   * Keep the slot timeline (a recording): never squeeze a block (an
   * automatic target comes down in steps instead), and conceal in place
   * the slots skipped when the stream jumps ahead.
   */
  keepTimeline?: boolean;
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
  #auto: AutoTarget | undefined;
  #transits: number[] = [];
  #troubleAt = -Infinity;
  #rebuiltAt = -Infinity;
  #stretching: number | undefined;
  #lastLate: number | undefined;
  /** Concealments owed to slots skipped over (a recording keeps them). */
  #owed: PlayoutDecision[] = [];
  #keepTimeline: boolean;
  /** The slot after the last one decided before the stream stopped. */
  #stoppedAt: number | undefined;
  /** How the target moved (with a fixed target, it stays put). */
  readonly target: TargetCounters;

  /** Creates an empty jitter buffer; it joins the stream at the first block. */
  constructor(options: JitterOptions) {
    this.#target = options.targetMs;
    this.#blockMs = options.blockMs;
    this.#window = options.window ?? 64;
    this.counters = options.counters ?? newOrderCounters();
    this.#auto = options.auto;
    this.#keepTimeline = options.keepTimeline ?? false;
    this.target = options.target ?? newTargetCounters();
    // An automatic target counts from where the first block sets it.
    if (!this.#auto) this.#setTarget(this.#target);
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
    // A rebuilt block, intact or not, says the path loses datagrams.
    if (b.recovered && b.arrived !== undefined) this.#rebuiltAt = b.arrived;
    if (!b.intact) return this.#corrupted(b);
    const joining = this.#next === undefined;
    if (joining && this.#keepTimeline && this.#stoppedAt !== undefined) {
      // A recording has decided the slots before the stop: never again.
      if (before(b.seq, this.#stoppedAt)) {
        return this.#concealed.delete(b.seq) ? this.#late(b) : "stale";
      }
    }
    if (joining) {
      this.#next = b.seq; // Join the stream at the first block received.
      this.#rejoin(b);
    }
    if (this.#auto && b.arrived !== undefined) {
      const transit = b.arrived - b.captured;
      if (b.recovered) {
        // The path needs recovery: no shrinking for a while.
        this.#troubleAt = b.arrived;
      } else {
        if (joining && this.#transits.length === 0) {
          // Start at what the block's own length needs: a first block held
          // up while the sockets warm would otherwise set seconds of
          // latency. A path slower than that is followed at once (below).
          // The safe start holds for START_HOLD_MS at least: the calm
          // spell that lets it come down ends no sooner.
          this.#troubleAt = b.arrived + START_HOLD_MS - CALM_MS;
          const start = Math.min(
            this.#auto.maxMs,
            this.#auto.startMs ?? safeStartMs(this.#blockMs),
          );
          this.#setTarget(Math.max(start, this.#need(Math.min(transit, this.#blockMs + 1), 0)));
        }
        this.#observe(transit);
      }
    }
    if (before(b.seq, this.#next!)) return this.#concealed.delete(b.seq) ? this.#late(b) : "stale";
    const held = this.#buffer.get(b.seq);
    if (held?.intact) {
      this.counters.duplicate++;
      return "duplicate";
    }
    if (!before(b.seq, this.#next! + this.#window)) {
      // Far ahead (the play-out fell behind): skip to it.
      while (before(this.#next!, b.seq)) this.#skip();
    }
    if (this.#highest !== undefined && before(b.seq, this.#highest)) this.counters.reordered++;
    else this.#highest = b.seq;
    if (!this.#anchor || !before(b.seq, this.#anchor.seq)) {
      this.#anchor = { seq: b.seq, captured: b.captured };
    }
    this.#buffer.set(b.seq, b);
    return "queued";
  }

  /** A block that came after its slot was concealed: counted late. */
  #late(b: JitterBlock): "late" {
    this.counters.late++;
    if (b.arrived !== undefined) this.#troubleAt = b.arrived;
    return "late";
  }

  /**
   * Part of block `seq` arrived at `arrived` (same clock as `captured`)
   * after its slot was played or concealed. Reassembly drops such late
   * parts, so this is how an automatic target learns the transit of
   * blocks it did not wait for; once per block.
   */
  lateArrival(seq: number, captured: number, arrived: number): void {
    if (!this.#auto || seq === this.#lastLate || this.#next === undefined) return;
    if (!before(seq, this.#next)) return;
    this.#lastLate = seq;
    this.#troubleAt = arrived;
    this.#observe(arrived - captured);
  }

  /** One more transit into the window the automatic target follows. */
  #observe(transit: number): void {
    this.#transits.push(transit);
    if (this.#transits.length > TRANSIT_WINDOW) this.#transits.shift();
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
    if (this.#owed.length > 0) return this.#owed[0].captured; // past: at once
    if (this.#next === undefined || !this.#anchor) return null;
    return this.#capturedOf(this.#next) + this.#target;
  }

  /** The decision for the next slot if it is due at `now`, else null. */
  pop(now: number): PlayoutDecision | null {
    if (this.#owed.length > 0) return this.#owed.shift()!;
    const due = this.nextDue();
    if (due === null || now < due) return null;
    const seq = this.#next!;
    const captured = this.#capturedOf(seq);
    const b = this.#buffer.get(seq);
    if (!b && this.#auto && this.#transits.length > 0) {
      // Missing: if the path says it may still come, wait for it (grow).
      const maxTransit = this.#maxTransit();
      const later = this.#laterArrived(seq);
      const lost = later || now - this.#rebuiltAt < CALM_MS;
      let want = this.#need(maxTransit, lost ? this.#auto.recoveryMs?.(seq) ?? 0 : 0);
      if (!later) {
        // Nothing after it has come either: it may be late, not lost. Wait
        // in small steps, a little past the slowest transit seen.
        want = Math.max(
          want,
          Math.min(this.#target + INCH_MS, this.#need(maxTransit + GRACE_MS, 0)),
        );
      }
      if (want > this.#target + 0.05) {
        const ms = want - this.#target;
        this.#setTarget(want);
        if (this.#stretching !== seq) this.target.stretches++;
        this.#stretching = seq;
        this.#troubleAt = now;
        return { kind: "stretch", seq, captured, ms };
      }
    }
    this.#next = seq + 1;
    this.#expire();
    if (b) {
      this.#buffer.delete(seq);
      this.#missingRun = 0;
      if (!b.intact) return { kind: "conceal", seq, captured, reason: "corrupted" };
      return { kind: "play", seq, captured: b.captured, samples: this.#squeeze(b.samples, now) };
    }
    this.#concealed.add(seq);
    if (++this.#missingRun > this.#window && this.#buffer.size === 0) {
      // The stream stopped: stop concealing and rejoin at the next block.
      this.#stoppedAt = seq + 1;
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

  /** The target a transit and a recovery time need, within the largest allowed (0.1 ms steps). */
  #need(transit: number, recoveryMs: number): number {
    const a = this.#auto!;
    const ms = transit + recoveryMs + (a.marginMs ?? 0.5);
    return Math.min(a.maxMs, Math.ceil(ms * 10) / 10);
  }

  /** Whether a block after `seq` has come, whole or in part: then `seq` was lost, not late. */
  #laterArrived(seq: number): boolean {
    const heard = this.#auto?.heardOf?.();
    return (this.#highest !== undefined && before(seq, this.#highest)) ||
      (heard !== undefined && before(seq, heard));
  }

  /** The transit the target must cover: the largest of the window's. */
  #maxTransit(): number {
    let max = -Infinity;
    for (const t of this.#transits) if (t > max) max = t;
    return max;
  }

  #setTarget(ms: number): void {
    this.#target = ms;
    if (ms < this.target.minMs) this.target.minMs = ms;
    if (ms > this.target.maxMs) this.target.maxMs = ms;
  }

  /**
   * A block to play, squeezed when the target may shrink: after a calm
   * spell, by at most 1% of its frames, or up to half of them when quiet.
   */
  #squeeze(samples: Int16Array, now: number): Int16Array {
    const a = this.#auto;
    if (!a || now - this.#troubleAt < CALM_MS || this.#transits.length === 0) return samples;
    const excess = this.#target - this.#need(this.#maxTransit() + HEADROOM_MS, 0);
    if (excess < 0.5) return samples;
    if (this.#keepTimeline) {
      // A recording: the target steps down (a block's length at most), nothing played changes.
      this.#setTarget(this.#target - Math.min(excess, this.#blockMs));
      return samples;
    }
    const frames = samples.length / a.channels;
    let quiet = true;
    for (let i = 0; i < samples.length && quiet; i++) quiet = Math.abs(samples[i]) <= QUIET;
    const most = quiet ? Math.floor(frames / 2) : Math.max(1, Math.floor(frames / 100));
    const cut = Math.min(most, Math.floor((excess * a.rate) / 1000));
    if (cut < 1) return samples;
    this.#setTarget(this.#target - (cut * 1000) / a.rate);
    this.target.squeezed++;
    return stretch(samples, a.channels, frames - cut);
  }

  #capturedOf(seq: number): number {
    const a = this.#anchor!;
    return a.captured + ((seq - a.seq) | 0) * this.#blockMs;
  }

  #skip() {
    const seq = this.#next!;
    const b = this.#buffer.get(seq);
    if (!this.#buffer.delete(seq)) this.#concealed.add(seq);
    if (this.#keepTimeline && this.#owed.length < MOST_OWED) {
      // A recording keeps the slot: its block if it came, else a concealment.
      const captured = this.#capturedOf(seq);
      this.#owed.push(
        b?.intact
          ? { kind: "play", seq, captured: b.captured, samples: b.samples }
          : { kind: "conceal", seq, captured, reason: b ? "corrupted" : "missing" },
      );
    }
    this.#next = seq + 1;
    this.#expire();
  }

  /**
   * Rejoining after the stream stopped at block `b`: a recording conceals
   * the slots between in place (when not too many), so it keeps its timeline.
   */
  #rejoin(b: JitterBlock): void {
    const from = this.#stoppedAt;
    this.#stoppedAt = undefined;
    if (!this.#keepTimeline || from === undefined) return;
    const gap = (b.seq - from) | 0;
    if (gap <= 0 || gap > MOST_OWED) return;
    for (let k = 0; k < gap; k++) {
      const captured = b.captured - (gap - k) * this.#blockMs;
      this.#owed.push({ kind: "conceal", seq: (from + k) >>> 0, captured, reason: "missing" });
    }
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
