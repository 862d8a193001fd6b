/**
 * Audio-TCP's counterpart of the UDP jitter buffer: blocks arrive in order
 * (TCP sees to that), so play-out decisions follow arrival, and this only
 * notices what is missing or corrupted. It produces the same decisions and
 * counters as {@link JitterBuffer}, so the play-out shell and the report
 * treat both transports alike. No I/O.
 *
 * @module
 */
import { newOrderCounters, type OrderCounters, type PlayoutDecision } from "./jitter_buffer.ts";
import { ProtocolError } from "../../errors.ts";

/** Gaps up to this many blocks are filled with concealment; larger ones are a resync. */
export const MAX_FILL_BLOCKS = 50;

/**
 * Gaps a recording fills (it keeps the slot timeline across a
 * reconnection): over six minutes of 1024-frame blocks at 44.1 kHz.
 */
export const MAX_TIMELINE_FILL = 1 << 14;

/**
 * A jump in sequence numbers beyond this many blocks (over three hours of
 * 512-frame blocks at 44.1 kHz) is no reconnection's gap: the server is
 * broken or hostile ({@link SequenceTracker.push} throws).
 */
export const MAX_JUMP_BLOCKS = 1 << 20;

/** A block as a transport delivers it. */
export interface ArrivedBlock {
  /** Block sequence number. */
  seq: number;
  /** Capture time of the block's first sample, ms, on the sender's clock. */
  captured: number;
  /** False when it failed its MD5: concealed, never played. */
  intact: boolean;
  /** The samples. */
  samples: Int16Array;
}

/**
 * Turns blocks that arrive in order into play-out decisions. One tracker
 * serves a whole client session, across reconnections: blocks missed while
 * reconnecting to the same stream are counted lost and concealed.
 */
export class SequenceTracker {
  /** Counters of the whole session. */
  readonly counters: OrderCounters = newOrderCounters();
  #blockMs = 0;
  #expected: number | undefined;
  #lastCaptured: number | undefined;
  #streamId: number | undefined;
  #fill: number;

  /** A tracker filling gaps up to `fill` blocks (default {@link MAX_FILL_BLOCKS}). */
  constructor(fill: number = MAX_FILL_BLOCKS) {
    this.#fill = fill;
  }

  /**
   * Call with each hello: the stream's id and its block duration in ms. The
   * same id (a reconnection) carries on; a new id (a restarted server)
   * starts a new sequence.
   */
  stream(streamId: number, blockMs: number): void {
    if (streamId !== this.#streamId) this.#expected = this.#lastCaptured = undefined;
    this.#streamId = streamId;
    this.#blockMs = blockMs;
  }

  /**
   * The decisions one arriving block leads to: concealments for the blocks
   * missing before it (up to {@link MAX_FILL_BLOCKS}), then the block itself
   * (played, or concealed if it failed its MD5). A block from before a
   * resync is dropped.
   *
   * A block that failed its MD5 may have a damaged header too, so its
   * sequence number and capture time are not believed: TCP keeps order,
   * so it takes the slot expected next. A jump beyond
   * {@link MAX_JUMP_BLOCKS} throws {@link ProtocolError}.
   */
  push(b: ArrivedBlock): PlayoutDecision[] {
    const out: PlayoutDecision[] = [];
    const c = this.counters;
    if (!b.intact) {
      c.corrupted++;
      if (this.#expected === undefined) return out; // Nothing to place it by.
      const seq = this.#expected;
      this.#expected = (seq + 1) >>> 0;
      const captured = this.#lastCaptured! + this.#blockMs;
      this.#lastCaptured = captured;
      out.push({ kind: "conceal", seq, captured, reason: "corrupted" });
      return out;
    }
    if (this.#expected !== undefined && b.seq !== this.#expected) {
      const gap = (b.seq - this.#expected) >>> 0;
      if (gap >= 0x80000000) {
        c.duplicate++; // A stale block from before a resync: drop it.
        return out;
      }
      if (gap > MAX_JUMP_BLOCKS) {
        throw new ProtocolError(`Server's block numbers jumped by ${gap}`);
      }
      c.lost += gap;
      if (gap <= this.#fill) {
        for (let i = gap; i > 0; i--) {
          const seq = (b.seq - i) >>> 0;
          out.push({
            kind: "conceal",
            seq,
            captured: b.captured - i * this.#blockMs,
            reason: "missing",
          });
        }
      }
    }
    this.#expected = (b.seq + 1) >>> 0;
    this.#lastCaptured = b.captured;
    out.push({ kind: "play", seq: b.seq, captured: b.captured, samples: b.samples });
    return out;
  }
}
