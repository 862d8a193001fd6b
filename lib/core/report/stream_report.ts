/**
 * The counters and latency figures every audio client keeps, the live
 * status line, the summary and the `--report` JSON. Both transports use the
 * same field names so their reports compare directly. No I/O.
 *
 * @module
 */
import type { OrderCounters } from "../audio/stages/jitter_buffer.ts";
import type { ClockEstimate } from "../audio/stages/clock_sync.ts";

/** Latency percentiles in milliseconds. */
export interface LatencySummary {
  /** Median. */
  p50: number;
  /** 95th percentile. */
  p95: number;
  /** 99th percentile. */
  p99: number;
  /** Largest value seen. */
  max: number;
}

/** The start of a session the settled latency leaves out, ms. */
export const SETTLED_MS = 5000;

/** The fields every client report has. */
export interface StreamReportFields {
  /** Which transport the session used. */
  transport: "tcp" | "udp";
  /** Intact blocks handed to the sink. */
  blocks_received: number;
  /** Blocks that never arrived. */
  blocks_lost: number;
  /** Blocks that failed their MD5 (concealed, never played). */
  blocks_corrupted: number;
  /** Concealments handed to the sink in place of missing or corrupted blocks. */
  blocks_concealed: number;
  /** Blocks that arrived too late to play (skipped). */
  blocks_late: number;
  /** Of `blocks_late`, blocks the sink side skipped because it fell behind. */
  blocks_sink_late: number;
  /** Concealments the sink side skipped because it fell behind (their slots are not heard). */
  concealments_skipped: number;
  /** Bytes received from the network, headers included. */
  bytes_received: number;
  /** Length of the session in seconds. */
  duration_s: number;
  /** Times the client reconnected or rejoined a restarted server. */
  reconnects: number;
  /** Capture-to-sink latency of the blocks played, ms, on the client's clock. */
  latency_ms: LatencySummary;
  /** The same, of the blocks played after the first {@link SETTLED_MS} of the session (null: none). */
  latency_settled_ms: LatencySummary | null;
  /** The server's clock minus the client's, as estimated by clock sync, ms (null: no sync). */
  clock_offset_ms: number | null;
  /** How much faster the sender's clock runs than the client's, ppm (null: no sync). */
  clock_drift_ppm: number | null;
  /** The lowest round trip of the clock sync, ms; the offset is within half of it (null: no sync). */
  clock_rtt_ms: number | null;
}

/** The client report (`--report FILE.json`): the common fields and a transport's own. */
export interface StreamReport extends StreamReportFields {
  /** A transport's own fields, e.g. `fragments_per_block`. */
  [extra: string]: unknown;
}

/**
 * Latency histogram in 0.1 ms bins up to 10 s (bounded memory whatever the
 * session length); larger values land in the last bin, and `max` is exact.
 */
export class LatencyHistogram {
  /** Width of one bin, ms. */
  static readonly BIN_MS = 0.1;
  #bins = new Uint32Array(100_000);
  #count = 0;
  #max = 0;

  /** Adds one latency in ms. */
  add(ms: number): void {
    const v = Math.max(0, ms);
    const bin = Math.min(this.#bins.length - 1, Math.floor(v / LatencyHistogram.BIN_MS));
    this.#bins[bin]++;
    this.#count++;
    if (v > this.#max) this.#max = v;
  }

  /** Number of values added. */
  get count(): number {
    return this.#count;
  }

  /** The `q` quantile (0..1) in ms, to the bin's upper edge; 0 when empty. */
  quantile(q: number): number {
    if (this.#count === 0) return 0;
    const rank = Math.ceil(q * this.#count);
    let seen = 0;
    for (let i = 0; i < this.#bins.length; i++) {
      seen += this.#bins[i];
      if (seen >= rank) return Math.min(this.#max, (i + 1) * LatencyHistogram.BIN_MS);
    }
    return this.#max;
  }

  /** p50, p95, p99 and max, rounded to 0.1 ms. */
  summary(): LatencySummary {
    const r = (x: number) => Math.round(x * 10) / 10;
    return {
      p50: r(this.quantile(0.5)),
      p95: r(this.quantile(0.95)),
      p99: r(this.quantile(0.99)),
      max: r(this.#max),
    };
  }
}

/**
 * Counters of one client session, across reconnections. The ordering side
 * (the TCP sequence tracker or the UDP jitter buffer) keeps `order`; the
 * play-out side counts what reached the sink; the transport shell counts
 * bytes and reconnections and may add fields of its own.
 */
export class StreamStats {
  /** Which transport the session uses. */
  readonly transport: "tcp" | "udp";
  /** Lost, late, corrupted, reordered and duplicate blocks, as the ordering core counts them. */
  readonly order: OrderCounters;
  /** Intact blocks handed to the sink. */
  received = 0;
  /** Concealments handed to the sink. */
  concealed = 0;
  /** Concealments the sink side skipped (the sink fell behind). */
  concealSkipped = 0;
  /** Blocks the sink side skipped as late (the sink fell behind). */
  sinkLate = 0;
  /** Bytes received from the network. */
  bytes = 0;
  /** Reconnections and rejoins. */
  reconnects = 0;
  /** Capture-to-sink latency of the blocks played. */
  readonly latency: LatencyHistogram = new LatencyHistogram();
  /** The same, after the first {@link SETTLED_MS} of the session (an automatic target has settled). */
  readonly settled: LatencyHistogram = new LatencyHistogram();
  /** The latest clock sync estimate (null: none, or a server without sync). */
  clock: ClockEstimate | null = null;
  /** Transport-specific fields, reported as they are. */
  extra: Record<string, unknown> = {};
  #startedAt: number;

  /** Starts counting at `startedAt` (ms, any clock the caller keeps using). */
  constructor(transport: "tcp" | "udp", order: OrderCounters, startedAt: number) {
    this.transport = transport;
    this.order = order;
    this.#startedAt = startedAt;
  }

  /**
   * Counts the session's time from `at` instead: the moment the stream
   * began (its description arrived), the same event for both transports,
   * so that their durations and block counts compare.
   */
  startAt(at: number): void {
    this.#startedAt = at;
  }

  /** A block played `ms` after its capture, at `at` (ms, the clock given at the start). */
  played(ms: number, at: number): void {
    this.latency.add(ms);
    if (at - this.#startedAt >= SETTLED_MS) this.settled.add(ms);
  }

  /** The report with every field, at `now` (ms, the clock given at the start). */
  report(now: number): StreamReport {
    return {
      transport: this.transport,
      blocks_received: this.received,
      blocks_lost: this.order.lost,
      blocks_corrupted: this.order.corrupted,
      blocks_concealed: this.concealed,
      blocks_late: this.order.late + this.sinkLate,
      blocks_sink_late: this.sinkLate,
      concealments_skipped: this.concealSkipped,
      bytes_received: this.bytes,
      duration_s: Math.round((now - this.#startedAt) / 10) / 100,
      reconnects: this.reconnects,
      latency_ms: this.latency.summary(),
      latency_settled_ms: this.settled.count > 0 ? this.settled.summary() : null,
      clock_offset_ms: this.clock ? round(this.clock.offsetMs, 10) : null,
      clock_drift_ppm: this.clock ? round(this.clock.driftPpm, 1) : null,
      clock_rtt_ms: this.clock ? round(this.clock.rttMs, 100) : null,
      ...this.extra,
    };
  }
}

function round(x: number, per: number): number {
  return Math.round(x * per) / per;
}

/** The clock sync in a few words: `clock +300.2 ms, +3000 ppm`, or `clock not synced`. */
export function clockText(r: StreamReport): string {
  if (r.clock_offset_ms === null) return "clock not synced";
  const sign = (x: number) => (x >= 0 ? "+" : "") + x;
  return `clock ${sign(r.clock_offset_ms)} ms, ${sign(Math.round(r.clock_drift_ppm ?? 0))} ppm`;
}

/** The one-line live status. */
export function statusLine(r: StreamReport): string {
  return `${r.transport}: ${r.blocks_received} received, ${r.blocks_lost} lost, ` +
    `${r.blocks_corrupted} corrupted, ${r.blocks_concealed} concealed, ${r.blocks_late} late; ` +
    `latency p50 ${r.latency_ms.p50} ms p99 ${r.latency_ms.p99} ms; ${clockText(r)}`;
}

/** The end-of-session summary (several lines). */
export function summaryText(r: StreamReport): string {
  const extra = Object.entries(r)
    .filter(([k]) => k.startsWith("fragments_") || k === "blocks_reordered")
    .map(([k, v]) => `${k} ${v}`);
  return [
    `${r.transport} session: ${r.duration_s} s, ${r.bytes_received} bytes, ${r.reconnects} reconnects`,
    `blocks: ${r.blocks_received} received, ${r.blocks_lost} lost, ${r.blocks_corrupted} corrupted, ` +
    `${r.blocks_concealed} concealed, ${r.blocks_late} late`,
    `latency (capture to sink): p50 ${r.latency_ms.p50} ms, p95 ${r.latency_ms.p95} ms, ` +
    `p99 ${r.latency_ms.p99} ms, max ${r.latency_ms.max} ms`,
    r.clock_offset_ms === null
      ? "clock: not synced (the server does not answer clock sync)"
      : `clock: server ${r.clock_offset_ms} ms from the client's, drift ${r.clock_drift_ppm} ppm, ` +
        `round trip ${r.clock_rtt_ms} ms (offset good to half of it)`,
    ...(extra.length ? [extra.join(", ")] : []),
  ].join("\n");
}
