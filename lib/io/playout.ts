/**
 * What both audio clients share: the play-out side. The transport's
 * ordering core (the TCP sequence tracker or the UDP jitter buffer) decides
 * what each slot holds; this hands those decisions to the sink, skipping
 * what would play too late, conceals what cannot be played, and draws the
 * live status line.
 *
 * @module
 */
import { type AudioSink, openSink } from "./audio_io.ts";
import { now } from "./clock.ts";
import { type AudioSpec, blockMs, describeSpec } from "../core/audio/format/spec.ts";
import { Concealer } from "../core/audio/stages/conceal.ts";
import { parseEndpoint } from "../core/audio/format/endpoint.ts";
import type { OrderCounters, PlayoutDecision } from "../core/audio/stages/jitter_buffer.ts";
import { sameSpec } from "../core/audio/format/stream_format.ts";
import { UserError } from "../core/errors.ts";
import type { ClockEstimate } from "../core/audio/stages/clock_sync.ts";
import { RateMatcher } from "../core/audio/stages/rate_match.ts";
import { statusLine, type StreamReport, StreamStats } from "../core/report/stream_report.ts";

/** Options shared by the audio clients. */
export interface PlayoutOptions {
  /** Output SPEC (see `lib/core/audio/format/endpoint.ts`). */
  output: string;
  /**
   * A block that would reach the sink later than this after capture (ms) is
   * late: counted and skipped, so one stall (a TCP retransmission, a sink
   * that is slow to start) does not delay the rest of the session. A
   * function is asked at each block (a jitter target that moves).
   */
  lateMs: number | (() => number);
  /** Draw a live status line on stderr (default: when stderr is a terminal). */
  status?: boolean;
  /** Keep the slot timeline (default: for a file or `null`, {@link keepsTimeline}). */
  keepTimeline?: boolean;
  /** Where warnings go (default stderr). */
  log?: (line: string) => void;
}

/** Drift beyond this, ppm (0.5%), is a broken clock: warned about, not followed. */
export const MAX_DRIFT_PPM = 5000;

/** One entry waiting for the sink: a block, or a concealment in place of one. */
interface Pending {
  /** Samples to play, or null for a concealment. */
  samples: Int16Array | null;
  /** Frames of a stretch (concealment while the slot waits), instead of a block's. */
  stretch?: number;
  /** Capture time of the (missing) block, ms since the epoch. */
  captured: number;
}

/**
 * The play-out side of an audio client. The transport hands it the ordering
 * core's decisions as they are made ({@link Playout.decide}, which never
 * waits); a writer of its own hands them to the sink. So a sink that stalls (a device that is slow to start)
 * never stops the client reading the network; when it resumes, the blocks
 * that waited too long are skipped as late.
 *
 * Two outputs, two promises. A sound device plays live: stretches fill a
 * growing target's wait, squeezed blocks shrink it, late slots are
 * skipped, and the report counts each. A file (`FILE.wav`, or `null`)
 * keeps the stream's slot timeline ({@link keepsTimeline}): slot k holds
 * block k exactly as sent, or a concealment of exactly one block's length;
 * nothing is written for a stretch and no slot is skipped.
 */
export class Playout implements AsyncDisposable {
  /** Counters of the session, across reconnections. */
  readonly stats: StreamStats;
  #options: PlayoutOptions;
  #sink: AudioSink | undefined;
  #spec: AudioSpec | undefined;
  #concealer: Concealer | undefined;
  #lastStatus = 0;
  #tty: boolean;
  #queue: Pending[] = [];
  #wake: (() => void) | undefined;
  #writer: Promise<void> | undefined;
  #closing = false;
  #matcher: RateMatcher | undefined;
  #warnedDrift = false;
  #timeline: boolean;

  /**
   * Creates the play-out side; the sink opens at {@link begin}. `order` is
   * the ordering core's counters, reported beside the sink's.
   */
  constructor(transport: "tcp" | "udp", order: OrderCounters, options: PlayoutOptions) {
    this.stats = new StreamStats(transport, order, now());
    this.#options = options;
    this.#tty = options.status ?? Deno.stderr.isTerminal();
    this.#timeline = options.keepTimeline ?? keepsTimeline(options.output);
  }

  /**
   * Starts (or resumes after a reconnection) a stream. Opens the sink on the
   * first call; a later stream must have the same format, or this throws
   * {@link FormatChangedError}.
   */
  async begin(spec: AudioSpec): Promise<void> {
    if (!this.#spec) {
      this.stats.startAt(now());
      this.#sink = await openSink(this.#options.output, spec);
      this.#spec = spec;
      this.#concealer = new Concealer(spec.channels);
      if (this.#sink.queuedFrames) {
        this.#matcher = new RateMatcher({
          rate: spec.rate,
          channels: spec.channels,
          maxPpm: MAX_DRIFT_PPM,
        });
      }
      this.#writer = this.#write();
    } else if (!sameSpec(spec, this.#spec)) {
      throw new FormatChangedError(this.#spec, spec);
    }
  }

  /** Queues what the ordering core decided for one slot. Never waits. */
  decide(d: PlayoutDecision): void {
    if (d.kind === "stretch") {
      if (this.#timeline) return; // a file keeps slots, not waits
      const frames = Math.round((d.ms * this.#spec!.rate) / 1000);
      if (frames > 0) this.#push({ samples: null, captured: d.captured, stretch: frames });
      return;
    }
    this.#push({ samples: d.kind === "play" ? d.samples : null, captured: d.captured });
  }

  /**
   * The transport's latest clock estimate (null: none). Drift beyond
   * {@link MAX_DRIFT_PPM} is warned about once and not followed further.
   */
  set clock(estimate: ClockEstimate | null) {
    this.stats.clock = estimate;
    if (estimate && Math.abs(estimate.driftPpm) > MAX_DRIFT_PPM && !this.#warnedDrift) {
      this.#warnedDrift = true;
      const pct = (estimate.driftPpm / 1e4).toFixed(2);
      (this.#options.log ?? ((line: string) => console.error(line)))(
        `warning: the server's clock runs ${pct}% off the client's, beyond the ` +
          `${MAX_DRIFT_PPM / 1e4}% followed; expect late or concealed blocks`,
      );
    }
  }

  /** The report so far; with a sound device, also how its rate was matched. */
  report(): StreamReport {
    const r = this.stats.report(now());
    const m = this.#matcher;
    if (!m) return r;
    return {
      ...r,
      rate_correction_ppm: Math.round(m.recentPpm),
      sink_queue_error_ms: Math.round((m.errorFrames / this.#spec!.rate) * 10000) / 10,
      frames_added: m.framesAdded,
      frames_removed: m.framesRemoved,
    };
  }

  /** Plays what is still queued and on time, then closes the sink. Idempotent. */
  async close(): Promise<void> {
    if (this.#closing) return await this.#writer;
    this.#closing = true;
    this.#wake?.();
    await this.#writer;
    if (this.#tty && this.#lastStatus > 0) {
      Deno.stderr.writeSync(new TextEncoder().encode("\r\x1b[2K"));
    }
    await this.#sink?.close();
  }

  /** Same as {@link close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #lateMs(): number {
    const late = this.#options.lateMs;
    return typeof late === "number" ? late : late();
  }

  #push(entry: Pending) {
    // Anything queued longer than the latency bound (as it is now: it may
    // follow the path) would be skipped anyway.
    const most = Math.ceil(this.#lateMs() / blockMs(this.#spec!)) + 8;
    if (this.#queue.length >= most && !this.#timeline) {
      // The sink is far behind: the oldest entry can no longer be on time.
      this.#skipped(this.#queue.shift()!);
    }
    this.#queue.push(entry);
    this.#wake?.();
  }

  /**
   * Counts an entry the sink side skipped because it fell behind: a block
   * that was there counts late, a concealment counts skipped.
   */
  #skipped(e: Pending): void {
    if (e.stretch) return; // a wait filled, not a slot
    if (e.samples) this.stats.sinkLate++;
    else this.stats.concealSkipped++;
  }

  /** The sink side: plays queued entries in order, skipping late ones. */
  async #write(): Promise<void> {
    const st = this.stats;
    const length = this.#spec!.block * this.#spec!.channels;
    while (true) {
      const e = this.#queue.shift();
      if (!e) {
        if (this.#closing) return;
        await new Promise<void>((r) => this.#wake = r);
        this.#wake = undefined;
        continue;
      }
      const latency = now() - e.captured;
      if (e.stretch) {
        // The jitter target grew: fill the wait, not counted as a block.
        await this.#sink!.write(this.#concealer!.conceal(e.stretch * this.#spec!.channels));
        continue;
      }
      if (latency > this.#lateMs() && !this.#timeline) {
        // The sink fell behind (a stall, a slow start). Playing this would
        // delay everything after it, and so would most entries queued
        // behind it: skip down to a cushion of the newest (half the latency
        // bound), so the session is live again at once and the sink does
        // not run dry, which makes some devices restart and stall again.
        this.#skipped(e);
        const cushion = Math.max(1, Math.floor(this.#lateMs() / blockMs(this.#spec!) / 2));
        while (this.#queue.length > cushion) this.#skipped(this.#queue.shift()!);
        continue;
      }
      let block: Int16Array;
      if (e.samples) {
        st.received++;
        st.played(latency, now());
        this.#concealer!.good(e.samples);
        block = e.samples;
      } else {
        st.concealed++;
        block = this.#concealer!.conceal(length);
      }
      if (this.#matcher) {
        // What waits ahead of this block: the rest of the queue and the device's buffer.
        const held = this.#queue.length * this.#spec!.block + this.#sink!.queuedFrames!();
        block = this.#matcher.next(block, held, this.#followedDrift());
      }
      await this.#sink!.write(block);
      this.#drawStatus();
    }
  }

  /** The drift to follow: the estimate, unless beyond what is followed. */
  #followedDrift(): number {
    const d = this.stats.clock?.driftPpm ?? 0;
    return Math.abs(d) > MAX_DRIFT_PPM ? 0 : d;
  }

  #drawStatus() {
    if (!this.#tty) return;
    const t = performance.now();
    if (t - this.#lastStatus < 250) return;
    this.#lastStatus = t;
    Deno.stderr.writeSync(new TextEncoder().encode(`\r\x1b[2K${statusLine(this.report())}`));
  }
}

/**
 * Whether an output SPEC keeps the stream's slot timeline (a file or
 * `null`) rather than playing live (a sound device).
 */
export function keepsTimeline(output: string): boolean {
  return parseEndpoint(output, "output").kind !== "device";
}

/** A server came back with another audio format; the client cannot follow it. */
export class FormatChangedError extends UserError {
  /** Creates the error naming both formats. */
  constructor(from: AudioSpec, to: AudioSpec) {
    super(
      `Server changed format from ${describeSpec(from)} to ${describeSpec(to)}; restart the client`,
    );
    this.name = "FormatChangedError";
  }
}
