/**
 * The counters and latency figures every audio client keeps, the live
 * status line, the summary and the `--report` JSON. Both transports use the
 * same field names so their reports compare directly. No I/O.
 *
 * @module
 */

/** Latency percentiles in milliseconds. */
export interface LatencySummary {
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

/** The fields every client report has. */
export interface StreamReportFields {
  transport: "tcp" | "udp";
  blocks_received: number;
  blocks_lost: number;
  blocks_corrupted: number;
  blocks_concealed: number;
  blocks_late: number;
  bytes_received: number;
  duration_s: number;
  reconnects: number;
  latency_ms: LatencySummary;
}

/** The client report (`--report FILE.json`): the common fields and a transport's own. */
export interface StreamReport extends StreamReportFields {
  [extra: string]: unknown;
}

/**
 * Latency histogram in 0.1 ms bins up to 10 s (bounded memory whatever the
 * session length); larger values land in the last bin, and `max` is exact.
 */
export class LatencyHistogram {
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

/** Counters of one client session, across reconnections. */
export class StreamStats {
  readonly transport: "tcp" | "udp";
  received = 0;
  lost = 0;
  corrupted = 0;
  concealed = 0;
  late = 0;
  bytes = 0;
  reconnects = 0;
  readonly latency = new LatencyHistogram();
  /** Transport-specific counters, reported as they are. */
  readonly extra: Record<string, number> = {};
  #start = performance.now();

  constructor(transport: "tcp" | "udp") {
    this.transport = transport;
  }

  /** The report with every field. */
  report(): StreamReport {
    return {
      transport: this.transport,
      blocks_received: this.received,
      blocks_lost: this.lost,
      blocks_corrupted: this.corrupted,
      blocks_concealed: this.concealed,
      blocks_late: this.late,
      bytes_received: this.bytes,
      duration_s: Math.round((performance.now() - this.#start) / 10) / 100,
      reconnects: this.reconnects,
      latency_ms: this.latency.summary(),
      ...this.extra,
    };
  }
}

/** The one-line live status. */
export function statusLine(r: StreamReport): string {
  return `${r.transport}: ${r.blocks_received} received, ${r.blocks_lost} lost, ` +
    `${r.blocks_corrupted} corrupted, ${r.blocks_concealed} concealed, ${r.blocks_late} late; ` +
    `latency p50 ${r.latency_ms.p50} ms p99 ${r.latency_ms.p99} ms`;
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
    ...(extra.length ? [extra.join(", ")] : []),
  ].join("\n");
}
