/**
 * Audio-TCP's automatic latency bound (`--latency auto`, the default), with
 * no I/O: how late after capture a block may reach a sound device before
 * it is skipped. TCP delivers every block, but a lost segment holds up
 * everything behind it until it is sent again, so the bound follows the
 * path as the UDP jitter target does (`jitter_buffer.ts`): it starts at
 * {@link TCP_AUTO_START_MS}, grows at once when a block arrives later than
 * it allows (a stall: the blocks behind it are then played, not skipped;
 * growing on arrival is what makes every stall safe), and after a
 * calm spell ({@link CALM_MS} with no stall) comes down, a little with
 * each block, towards the slowest arrival measured plus headroom, never
 * below {@link TCP_AUTO_MIN_MS}.
 *
 * It follows arrivals, not the sink: a sound device that stalls on its own
 * still has its late blocks skipped, so the session is live again at once.
 *
 * @module
 */
import { CALM_MS, HEADROOM_MS } from "./auto_target.ts";

/**
 * Where Audio-TCP's automatic bound starts, ms: the old fixed default. A
 * stall of the path is covered from the first block, since the bound
 * grows when a block arrives, before the sink side checks it; a higher
 * start would only let a sound device slow to start pile up a backlog
 * (which upset the drift matcher in the two-clock test).
 */
export const TCP_AUTO_START_MS = 100;
/** Largest automatic bound, ms. */
export const TCP_AUTO_MAX_MS = 2000;
/**
 * Lowest automatic bound, ms: the old fixed default. A sound device holds
 * tens of ms of its own, so a bound nearer the path's arrivals would skip
 * blocks that were on time (and upset the drift matcher).
 */
export const TCP_AUTO_MIN_MS = 100;
/**
 * Arrivals in the first this many ms after the first block are not
 * followed: the client is still opening its sink (a sound device can hold
 * the process for a moment), so a block late then says nothing of the path.
 */
export const TCP_AUTO_WARMUP_MS = 1000;
/** Arrivals of this many recent blocks set what the bound needs. */
const WINDOW = 128;
/** The bound comes down by at most this much a block, ms. */
const STEP_MS = 1;

/** Options of an {@link AutoBound}. */
export interface AutoBoundOptions {
  /** Where the bound starts, ms (default {@link TCP_AUTO_START_MS}). */
  startMs?: number;
  /** Largest bound, ms (default {@link TCP_AUTO_MAX_MS}). */
  maxMs?: number;
  /** Lowest bound it comes down to, ms (default {@link TCP_AUTO_MIN_MS}). */
  minMs?: number;
}

/** A latency bound that follows the path's arrivals. */
export class AutoBound {
  /** Times the bound grew at a stall. */
  grew = 0;
  /** Lowest bound so far, ms. */
  minMs: number;
  /** Highest bound so far, ms. */
  maxMsSeen: number;
  #ms: number;
  #max: number;
  #min: number;
  #arrivals: number[] = [];
  #troubleAt: number | undefined;
  #firstAt: number | undefined;

  /** A bound at its start. */
  constructor(options: AutoBoundOptions = {}) {
    this.#max = options.maxMs ?? TCP_AUTO_MAX_MS;
    this.#min = options.minMs ?? TCP_AUTO_MIN_MS;
    this.#ms = Math.min(this.#max, options.startMs ?? TCP_AUTO_START_MS);
    this.minMs = this.maxMsSeen = this.#ms;
  }

  /** The bound now, ms. */
  get ms(): number {
    return this.#ms;
  }

  /** A block arrived `latency` ms after its capture, at `now` (ms). */
  observe(latency: number, now: number): void {
    this.#firstAt ??= now;
    if (now - this.#firstAt < TCP_AUTO_WARMUP_MS) return;
    this.#troubleAt ??= now; // the calm spell counts from the end of the warm-up
    this.#arrivals.push(latency);
    if (this.#arrivals.length > WINDOW) this.#arrivals.shift();
    if (latency + HEADROOM_MS > this.#ms) {
      // A stall: cover it at once (within the largest bound).
      this.#set(Math.min(this.#max, Math.ceil(latency + HEADROOM_MS)));
      this.#troubleAt = now;
      this.grew++;
      return;
    }
    if (now - this.#troubleAt < CALM_MS) return;
    const need = Math.max(this.#min, Math.max(...this.#arrivals) + HEADROOM_MS);
    if (this.#ms > need) this.#set(Math.max(need, this.#ms - STEP_MS));
  }

  #set(ms: number): void {
    this.#ms = ms;
    if (ms < this.minMs) this.minMs = ms;
    if (ms > this.maxMsSeen) this.maxMsSeen = ms;
  }
}
