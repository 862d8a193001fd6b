/**
 * The automatic jitter target's settings and what it reports (`--latency
 * auto`, `jitter_buffer.ts`), shared with Audio-TCP's automatic bound
 * (`auto_bound.ts`). No I/O.
 *
 * @module
 */

/**
 * A calm spell: this long with no stretch, no late block and no rebuilt
 * block lets the target shrink, ms; a block rebuilt this recently makes a
 * missing one worth waiting for, for repairs.
 */
export const CALM_MS = 3000;
/**
 * Coming down after a calm spell, the target stops this far above the
 * slowest transit measured, ms: a loaded machine's next spike is seldom
 * more, and a stretch after a calm spell is a glitch a clean path should
 * not have.
 */
export const HEADROOM_MS = 4;
/** The automatic target starts this many blocks above the capture time... */
const START_BLOCKS = 3;
/** ...and at least this much above one block's length, ms. */
const START_SLACK_MS = 30;
/**
 * The safe start holds this long before the target may come down, ms: a
 * listener joining with others has seen few transits, and its first
 * seconds are the ones a glitch spoils.
 */
export const START_HOLD_MS = 5000;

/**
 * Where an automatic target starts for blocks of `blockMs`: a margin a
 * clean path never misses (three blocks, at least a block and 30 ms;
 * measured on loopback with three listeners joining at once, README).
 */
export function safeStartMs(blockMs: number): number {
  return Math.max(START_BLOCKS * blockMs, blockMs + START_SLACK_MS);
}

/** An automatic jitter target (`--latency auto`). */
export interface AutoTarget {
  /** Largest target, ms. */
  maxMs: number;
  /** Added to the measured need, ms (default 0.5). */
  marginMs?: number;
  /** Sample rate and channels of the blocks (for squeezing). */
  rate: number;
  /** Interleaved channels. */
  channels: number;
  /**
   * How much later than its own arrival repair data for block `seq` can
   * come, ms (forward error correction; default none). Waited for only
   * when the block was lost rather than late: a later block came, or a
   * block was rebuilt in the last {@link CALM_MS}.
   */
  recoveryMs?: (seq: number) => number;
  /** The newest block any part of which has come (fragments before reassembly). */
  heardOf?: () => number | undefined;
  /** Where the target starts, ms (default {@link safeStartMs}; within `maxMs`). */
  startMs?: number;
}

/** Fresh {@link TargetCounters}: no target yet, nothing counted. */
export function newTargetCounters(): TargetCounters {
  return { minMs: Infinity, maxMs: -Infinity, stretches: 0, squeezed: 0 };
}

/** How the target moved over a session. */
export interface TargetCounters {
  /** Lowest target, ms. */
  minMs: number;
  /** Highest target, ms. */
  maxMs: number;
  /** Stretches (the target grew at a missing slot). */
  stretches: number;
  /** Blocks squeezed (the target shrank). */
  squeezed: number;
}
