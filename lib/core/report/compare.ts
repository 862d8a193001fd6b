/**
 * The TCP-versus-UDP comparison's results: row shape, sanity checks, the
 * Markdown table and the SVG chart. No I/O.
 *
 * @module
 */
import type { StreamReport, StreamReportFields } from "./stream_report.ts";

/** How loss was made for a row. */
export type LossMethod = "netns+nftables" | "udp relay" | "loopback" | "not measured";

/**
 * One run: a transport at a loss rate, with the client report's fields
 * (absent when not measured).
 */
export interface CompareRow extends Partial<Omit<StreamReportFields, "transport">> {
  /** A transport's own report fields (e.g. `fragments_per_block`). */
  [extra: string]: unknown;
  /** Which transport. */
  transport: "tcp" | "udp";
  /** Packet loss rate asked for, 0 to 1. */
  loss: number;
  /** How the loss was made. */
  method: LossMethod;
  /** Whether the row was run (false: not measured, with a note). */
  measured: boolean;
  /** Why a row is not measured. */
  note?: string;
  /** Bytes through the client's interface, both directions, or null if not counted. */
  wire_bytes: number | null;
  /** Frames per block and seconds, for the sanity checks. */
  block: number;
  /** Seconds the client ran. */
  seconds: number;
  /** Runs this row stands for (its figures are the median run's). */
  runs?: number;
  /** Lowest and highest of each figure over the runs. */
  spread?: Partial<Record<SpreadKey, [number, number]>>;
}

/** The figures whose spread over repeated runs is reported. */
export type SpreadKey =
  | "blocks_received"
  | "blocks_lost"
  | "blocks_late"
  | "blocks_concealed"
  | "p50"
  | "p99";

const SPREAD_KEYS: SpreadKey[] = [
  "blocks_received",
  "blocks_lost",
  "blocks_late",
  "blocks_concealed",
  "p50",
  "p99",
];

function figure(r: CompareRow & StreamReport, key: SpreadKey): number {
  return key === "p50" || key === "p99" ? r.latency_ms[key] : r[key];
}

/**
 * One row from repeated runs of a transport at a loss rate: the run with
 * the median p50 latency, with `runs` and each figure's lowest and highest.
 */
export function combineRuns(runs: CompareRow[]): CompareRow {
  const measured = runs.filter((r) => r.measured && r.latency_ms) as (CompareRow & StreamReport)[];
  if (measured.length === 0) return { ...runs[0], runs: runs.length };
  const sorted = [...measured].sort((a, b) => a.latency_ms.p50 - b.latency_ms.p50);
  const median = sorted[Math.floor((sorted.length - 1) / 2)];
  const spread: Partial<Record<SpreadKey, [number, number]>> = {};
  for (const key of SPREAD_KEYS) {
    const v = measured.map((r) => figure(r, key));
    spread[key] = [Math.min(...v), Math.max(...v)];
  }
  return { ...median, runs: measured.length, spread };
}

/** `v`, and when runs disagreed, their range: `12 (10–15)`. */
function withSpread(row: CompareRow, key: SpreadKey, v: number, unit = ""): string {
  const s = row.spread?.[key];
  return s && s[0] !== s[1] ? `${v}${unit} (${s[0]}–${s[1]})` : `${v}${unit}`;
}

/**
 * Checks a row for sanity; returns the problems (empty when sane):
 * percentiles ordered, counts whole and not negative, blocks adding up to
 * no more than were captured, concealments matching what they stand for.
 */
export function sanityProblems(row: CompareRow, rate = 44100): string[] {
  if (!row.measured) return row.latency_ms ? ["an unmeasured row has results"] : [];
  if (!row.latency_ms) return ["a measured row has no results"];
  const r = row as CompareRow & StreamReport;
  const out: string[] = [];
  const l = r.latency_ms;
  if (!(l.p50 <= l.p95 && l.p95 <= l.p99 && l.p99 <= l.max)) {
    out.push(`percentiles out of order: ${JSON.stringify(l)}`);
  }
  const counts = [
    r.blocks_received,
    r.blocks_lost,
    r.blocks_corrupted,
    r.blocks_concealed,
    r.blocks_late,
    r.bytes_received,
  ];
  if (!counts.every((c) => Number.isInteger(c) && c >= 0)) {
    out.push("a count is not a whole number");
  }
  const captured = (row.seconds * rate) / row.block;
  const accounted = r.blocks_received + r.blocks_lost + r.blocks_late + r.blocks_corrupted;
  if (accounted > captured * 1.1 + 5) {
    out.push(`${accounted} blocks accounted for, but only about ${Math.round(captured)} captured`);
  }
  if (r.blocks_received === 0) out.push("no block was played");
  const concealedFor = r.transport === "udp"
    ? r.blocks_lost + r.blocks_late + r.blocks_corrupted
    : r.blocks_lost + r.blocks_corrupted;
  if (
    r.transport === "udp" ? r.blocks_concealed !== concealedFor : r.blocks_concealed > concealedFor
  ) {
    out.push(`${r.blocks_concealed} concealed for ${concealedFor} missing or corrupted blocks`);
  }
  return out;
}

const pct = (p: number) => `${+(p * 100).toFixed(2)}%`;

/** The results as a Markdown table. */
export function markdownTable(rows: CompareRow[]): string {
  const head = "| transport | loss | method | played | lost | late | corrupted | concealed | " +
    "latency p50 | p95 | p99 | max | reconnects | wire bytes |";
  const lines = [head, "|" + " --- |".repeat(14)];
  for (const row of rows) {
    const r = row as CompareRow & StreamReport;
    if (!row.measured || !r.latency_ms) {
      lines.push(
        `| ${row.transport} | ${pct(row.loss)} | not measured: ${row.note ?? ""} |` +
          " |".repeat(11),
      );
      continue;
    }
    const l = r.latency_ms;
    const f = (key: SpreadKey, v: number, unit = "") => withSpread(row, key, v, unit);
    lines.push(
      `| ${row.transport} | ${pct(row.loss)} | ${row.method} | ${
        f("blocks_received", r.blocks_received)
      } | ` +
        `${f("blocks_lost", r.blocks_lost)} | ${
          f("blocks_late", r.blocks_late)
        } | ${r.blocks_corrupted} | ` +
        `${f("blocks_concealed", r.blocks_concealed)} | ` +
        `${f("p50", l.p50, " ms")} | ${l.p95} ms | ${
          f("p99", l.p99, " ms")
        } | ${l.max} ms | ${r.reconnects} | ` +
        `${row.wire_bytes ?? "n/a"} |`,
    );
  }
  const runs = Math.max(...rows.map((r) => r.runs ?? 1));
  if (runs > 1) {
    lines.push(
      "",
      `Each row is the median (by p50) of ${runs} runs, interleaved; a range in brackets is the lowest and highest over the runs.`,
    );
  }
  return lines.join("\n");
}

/** Latency percentiles (p50, p99) against loss for both transports, as SVG. */
export function latencyChart(rows: CompareRow[]): string {
  const W = 640;
  const H = 400;
  const M = { left: 64, right: 150, top: 40, bottom: 48 };
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const measured = rows.filter((r) => r.measured && r.latency_ms) as (CompareRow & StreamReport)[];
  const losses = [...new Set(rows.map((r) => r.loss))].sort((a, b) => a - b);
  const maxLoss = Math.max(...losses, 0.01);
  const values = measured.flatMap((r) => [r.latency_ms.p50, r.latency_ms.p99]);
  const top = Math.max(10, ...values);
  // Log scale from 1 ms to the next power of ten above the largest value.
  const decades = Math.ceil(Math.log10(top));
  const x = (loss: number) => M.left + (loss / maxLoss) * pw;
  const y = (ms: number) => M.top + ph - (Math.log10(Math.max(1, ms)) / decades) * ph;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${M.left}" y="22" font-size="15">Capture-to-sink latency against packet loss</text>`,
    `<line x1="${M.left}" y1="${M.top + ph}" x2="${M.left + pw}" y2="${
      M.top + ph
    }" stroke="black"/>`,
    `<line x1="${M.left}" y1="${M.top}" x2="${M.left}" y2="${M.top + ph}" stroke="black"/>`,
  ];
  for (let d = 0; d <= decades; d++) {
    const ms = 10 ** d;
    parts.push(
      `<line x1="${M.left}" y1="${y(ms)}" x2="${M.left + pw}" y2="${y(ms)}" stroke="#ddd"/>`,
      `<text x="${M.left - 8}" y="${y(ms) + 4}" text-anchor="end">${ms} ms</text>`,
    );
  }
  for (const loss of losses) {
    parts.push(
      `<text x="${x(loss)}" y="${M.top + ph + 18}" text-anchor="middle">${pct(loss)}</text>`,
    );
  }
  parts.push(
    `<text x="${M.left + pw / 2}" y="${H - 10}" text-anchor="middle">packet loss</text>`,
  );
  const series = [
    { transport: "tcp", key: "p50", color: "#1f77b4", dash: "" },
    { transport: "tcp", key: "p99", color: "#1f77b4", dash: "6 4" },
    { transport: "udp", key: "p50", color: "#d62728", dash: "" },
    { transport: "udp", key: "p99", color: "#d62728", dash: "6 4" },
  ] as const;
  series.forEach((s, i) => {
    const pts = measured.filter((r) => r.transport === s.transport)
      .sort((a, b) => a.loss - b.loss)
      .map((r) => [x(r.loss), y(r.latency_ms[s.key])]);
    if (pts.length > 1) {
      parts.push(
        `<polyline fill="none" stroke="${s.color}" stroke-width="2" stroke-dasharray="${s.dash}" points="${
          pts.map((p) => p.join(",")).join(" ")
        }"/>`,
      );
    }
    for (const [px, py] of pts) {
      parts.push(`<circle cx="${px}" cy="${py}" r="3" fill="${s.color}"/>`);
    }
    const ly = M.top + 10 + i * 20;
    parts.push(
      `<line x1="${W - M.right + 12}" y1="${ly}" x2="${
        W - M.right + 40
      }" y2="${ly}" stroke="${s.color}" stroke-width="2" stroke-dasharray="${s.dash}"/>`,
      `<text x="${W - M.right + 46}" y="${ly + 4}">${s.transport.toUpperCase()} ${s.key}</text>`,
    );
  });
  const missing = rows.filter((r) => !r.measured);
  if (missing.length) {
    parts.push(
      `<text x="${W - M.right + 12}" y="${M.top + 100}" fill="#666">not measured:</text>`,
      ...missing.map((r, i) =>
        `<text x="${W - M.right + 12}" y="${M.top + 116 + i * 14}" fill="#666">${r.transport} ${
          pct(r.loss)
        }</text>`
      ),
    );
  }
  parts.push("</svg>");
  return parts.join("\n") + "\n";
}
