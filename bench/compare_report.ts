/**
 * The comparison's results: row shape, sanity checks, the Markdown table
 * and the SVG chart. No I/O.
 *
 * Each row is one way of streaming the same source at one loss rate: a
 * {@link Variant}. Our rows carry the client's report; a peer's row
 * (GStreamer) carries only what our yardstick measures from outside, the
 * share of the source's blocks that came out intact, and says what it
 * could not measure.
 *
 * @module
 */
import type { StreamReport, StreamReportFields } from "../lib/core/report/stream_report.ts";

/** How loss was made for a row. */
export type LossMethod = "netns+nftables" | "udp relay" | "loopback" | "not measured";

/**
 * The rows, in the order they run and print:
 * - `tcp`: Audio-TCP, playing every block as TCP delivers it.
 * - `udp`: Audio-UDP with no recovery and a fixed three-block target (what
 *   it was before FEC).
 * - `udp+fec`: Audio-UDP as it runs by default: Reed-Solomon FEC and
 *   `--latency auto`.
 * - `gst-rtp`: GStreamer's RTP L16 through `rtpjitterbuffer`.
 * - `gst-rtp+ulpfec`: the same with `rtpulpfecenc`/`rtpulpfecdec`.
 */
export const VARIANTS = ["tcp", "udp", "udp+fec", "gst-rtp", "gst-rtp+ulpfec"] as const;

/** One of {@link VARIANTS}. */
export type Variant = typeof VARIANTS[number];

/**
 * One run: a variant at a loss rate, with the client report's fields
 * (absent when not measured).
 */
export interface CompareRow extends Partial<Omit<StreamReportFields, "transport">> {
  /** A transport's own report fields (e.g. `fragments_per_block`). */
  [extra: string]: unknown;
  /** Which way of streaming. */
  variant: Variant;
  /** The transport under it. */
  transport: "tcp" | "udp";
  /** Packet loss rate asked for, 0 to 1. */
  loss: number;
  /** Mean loss burst length in datagrams (1: independent losses). */
  burst?: number;
  /** How the loss was made. */
  method: LossMethod;
  /** Whether the row was run (false: not measured, with a note). */
  measured: boolean;
  /** Why a row is not measured, or what in it is not. */
  note?: string;
  /** Bytes through the client's interface, both directions, or null if not counted. */
  wire_bytes: number | null;
  /** Frames per block and seconds, for the sanity checks. */
  block: number;
  /** Seconds the client ran. */
  seconds: number;
  /** Share of the source's blocks in the session that were played intact, 0 to 1. */
  intact_share?: number;
  /** Runs this row stands for (its figures are the median run's). */
  runs?: number;
  /** Lowest and highest of each figure over the runs. */
  spread?: Partial<Record<SpreadKey, [number, number]>>;
}

/** The figures whose spread over repeated runs is reported. */
export type SpreadKey =
  | "intact_share"
  | "blocks_received"
  | "blocks_lost"
  | "blocks_late"
  | "blocks_concealed"
  | "p50"
  | "p99";

const SPREAD_KEYS: SpreadKey[] = [
  "intact_share",
  "blocks_received",
  "blocks_lost",
  "blocks_late",
  "blocks_concealed",
  "p50",
  "p99",
];

function figure(r: CompareRow, key: SpreadKey): number | undefined {
  if (key === "p50" || key === "p99") return r.latency_ms?.[key];
  const v = r[key];
  return typeof v === "number" ? v : undefined;
}

/** The share played intact from a client report's counts: played over every slot of the source. */
export function intactShare(
  r: Pick<
    StreamReportFields,
    "blocks_received" | "blocks_lost" | "blocks_late" | "blocks_corrupted"
  >,
): number {
  const slots = r.blocks_received + r.blocks_lost + r.blocks_late + r.blocks_corrupted;
  return slots === 0 ? 0 : r.blocks_received / slots;
}

/**
 * One row from repeated runs of a variant at a loss rate: the run with the
 * median p50 latency (a peer's rows, which have none: the median share
 * intact), with `runs` and each figure's lowest and highest.
 */
export function combineRuns(runs: CompareRow[]): CompareRow {
  const measured = runs.filter((r) => r.measured);
  if (measured.length === 0) return { ...runs[0], runs: runs.length };
  const key: SpreadKey = measured.every((r) => r.latency_ms) ? "p50" : "intact_share";
  const sorted = [...measured].sort((a, b) => (figure(a, key) ?? 0) - (figure(b, key) ?? 0));
  const median = sorted[Math.floor((sorted.length - 1) / 2)];
  const spread: Partial<Record<SpreadKey, [number, number]>> = {};
  for (const k of SPREAD_KEYS) {
    const v = measured.map((r) => figure(r, k));
    if (v.every((x) => x !== undefined)) {
      spread[k] = [Math.min(...(v as number[])), Math.max(...(v as number[]))];
    }
  }
  return { ...median, runs: measured.length, spread };
}

const pct = (p: number) => `${+(p * 100).toFixed(2)}%`;

/** `v`, and when runs disagreed, their range: `12 (10–15)`. */
function withSpread(
  row: CompareRow,
  key: SpreadKey,
  v: number,
  show: (x: number) => string = String,
): string {
  const s = row.spread?.[key];
  if (!s || s[0] === s[1]) return show(v);
  // The range in bare numbers (units once, on the figure).
  const bare = (x: number) => key === "intact_share" ? `${+(x * 100).toFixed(2)}` : String(x);
  return `${show(v)} (${bare(s[0])}–${bare(s[1])})`;
}

/**
 * Checks a row for sanity; returns the problems (empty when sane):
 * percentiles ordered, counts whole and not negative, blocks adding up to
 * no more than were captured, concealments matching what they stand for,
 * the share intact matching the counts.
 */
export function sanityProblems(row: CompareRow, rate = 44100): string[] {
  if (!row.measured) {
    return row.blocks_received !== undefined ? ["an unmeasured row has results"] : [];
  }
  const out: string[] = [];
  const captured = (row.seconds * rate) / row.block;
  const share = row.intact_share;
  if (share === undefined || !(share >= 0 && share <= 1)) out.push("no share intact from 0 to 1");
  if (!row.latency_ms) {
    // A peer measured from outside: blocks intact of the source sent.
    const got = row.blocks_received ?? -1;
    const lost = row.blocks_lost ?? -1;
    if (!(Number.isInteger(got) && got >= 0 && Number.isInteger(lost) && lost >= 0)) {
      out.push("a count is not a whole number");
    } else if (got + lost > captured * 1.1 + 5) {
      out.push(`${got + lost} blocks accounted for, but only about ${Math.round(captured)} sent`);
    }
    if (got === 0) out.push("no block was played");
    return out;
  }
  const r = row as CompareRow & StreamReport;
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
    return out;
  }
  const accounted = r.blocks_received + r.blocks_lost + r.blocks_late + r.blocks_corrupted;
  if (accounted > captured * 1.1 + 5) {
    out.push(`${accounted} blocks accounted for, but only about ${Math.round(captured)} captured`);
  }
  if (r.blocks_received === 0) out.push("no block was played");
  // Every slot whose block was missing, came late or was corrupted is
  // concealed, or its concealment skipped by a sink that fell behind
  // (blocks the sink skipped are late but were never concealed; over TCP a
  // lost block may fall in a reconnection, with no slot, and a late one is
  // from before a resync).
  const sinkLate = typeof r.blocks_sink_late === "number" ? r.blocks_sink_late : 0;
  const skipped = typeof r.concealments_skipped === "number" ? r.concealments_skipped : 0;
  const concealed = r.blocks_concealed + skipped;
  const concealedFor = r.transport === "udp"
    ? r.blocks_lost + r.blocks_late - sinkLate + r.blocks_corrupted
    : r.blocks_lost + r.blocks_corrupted;
  if (r.transport === "udp" ? concealed !== concealedFor : concealed > concealedFor) {
    out.push(
      `${r.blocks_concealed} concealed` + (skipped > 0 ? ` and ${skipped} skipped` : "") +
        ` for ${concealedFor} missing or corrupted blocks`,
    );
  }
  if (share !== undefined && Math.abs(share - intactShare(r)) > 1e-9) {
    out.push(`share intact ${share} does not match the counts (${intactShare(r)})`);
  }
  return out;
}

/** The jitter target of a row in a few words. */
function targetText(r: CompareRow): string {
  if (typeof r.target_note === "string") return r.target_note;
  const range = r.target_latency_range_ms as [number, number] | null | undefined;
  if (r.target_latency_auto === true && range) return `auto ${range[0]}–${range[1]} ms`;
  if (typeof r.target_latency_ms === "number") return `${r.target_latency_ms} ms`;
  return "–";
}

/** Repair bytes over audio bytes received, for rows that carry repairs. */
function overheadText(r: CompareRow): string {
  const repair = r.repair_bytes;
  if (typeof repair !== "number" || repair === 0 || !r.bytes_received) return "–";
  return `${Math.round((repair / (r.bytes_received - repair)) * 1000) / 10}%`;
}

/** The results as a Markdown table. */
export function markdownTable(rows: CompareRow[]): string {
  const head = "| row | loss | method | intact | played | lost | late | corrupted | concealed | " +
    "recovered | latency p50 | p95 | p99 | max | jitter target | repair overhead | wire bytes |";
  const cols = 17;
  const lines = [head, "|" + " --- |".repeat(cols)];
  const lossText = (row: CompareRow) =>
    pct(row.loss) + (row.burst && row.burst > 1 ? ` (bursts of ${row.burst})` : "");
  const dash = (v: unknown) => (typeof v === "number" ? String(v) : "–");
  for (const row of rows) {
    if (!row.measured) {
      lines.push(
        `| ${row.variant} | ${lossText(row)} | not measured: ${row.note ?? ""} |` +
          " |".repeat(cols - 3),
      );
      continue;
    }
    const f = (key: SpreadKey, v: number, show?: (x: number) => string) =>
      withSpread(row, key, v, show);
    const r = row as CompareRow & Partial<StreamReport>;
    const l = r.latency_ms;
    const latency = l
      ? `${f("p50", l.p50, (x) => `${x} ms`)} | ${l.p95} ms | ${
        f("p99", l.p99, (x) => `${x} ms`)
      } | ${l.max} ms`
      : "not measured | | |";
    lines.push(
      `| ${row.variant} | ${lossText(row)} | ${row.method} | ` +
        `${f("intact_share", row.intact_share ?? 0, pct)} | ` +
        `${f("blocks_received", r.blocks_received ?? 0)} | ${
          f("blocks_lost", r.blocks_lost ?? 0)
        } | ` +
        `${l ? f("blocks_late", r.blocks_late ?? 0) : "–"} | ${
          l ? dash(r.blocks_corrupted) : "–"
        } | ` +
        `${l ? f("blocks_concealed", r.blocks_concealed ?? 0) : "–"} | ${
          dash(r.blocks_recovered)
        } | ` +
        `${latency} | ${targetText(row)} | ${overheadText(row)} | ${row.wire_bytes ?? "n/a"} |`,
    );
  }
  const runs = Math.max(...rows.map((r) => r.runs ?? 1));
  const notes = rows.filter((r) => r.measured && r.note).map((r) => r.note!);
  if (runs > 1) {
    lines.push(
      "",
      `Each row is the median (by p50, or by share intact where latency is not measured) of ${runs} runs, interleaved; a range in brackets is the lowest and highest over the runs.`,
    );
  }
  for (const n of new Set(notes)) lines.push("", n);
  return lines.join("\n");
}

const COLORS: Record<Variant, string> = {
  "tcp": "#1f77b4",
  "udp": "#d62728",
  "udp+fec": "#2ca02c",
  "gst-rtp": "#9467bd",
  "gst-rtp+ulpfec": "#ff7f0e",
};

/**
 * The chart, as SVG: above, latency p50 (solid) and p99 (dashed) against
 * loss for every row that measures it (log scale); below, the share of
 * blocks played intact against loss for every row.
 */
export function compareChart(rows: CompareRow[]): string {
  const W = 680;
  const PH = 300;
  const M = { left: 64, right: 170, top: 40, bottom: 48, gap: 70 };
  const H = M.top + PH + M.gap + PH + M.bottom;
  const pw = W - M.left - M.right;
  const measured = rows.filter((r) => r.measured);
  const losses = [...new Set(rows.map((r) => r.loss))].sort((a, b) => a - b);
  const maxLoss = Math.max(...losses, 0.01);
  const x = (loss: number) => M.left + (loss / maxLoss) * pw;
  const variants = VARIANTS.filter((v) => rows.some((r) => r.variant === v));
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
  ];
  const line = (pts: number[][], color: string, dash: string) => {
    if (pts.length > 1) {
      parts.push(
        `<polyline fill="none" stroke="${color}" stroke-width="2" stroke-dasharray="${dash}" points="${
          pts.map((p) => p.join(",")).join(" ")
        }"/>`,
      );
    }
    for (const [px, py] of pts) parts.push(`<circle cx="${px}" cy="${py}" r="3" fill="${color}"/>`);
  };
  const axes = (top: number, title: string) => {
    parts.push(
      `<text x="${M.left}" y="${top - 16}" font-size="15">${title}</text>`,
      `<line x1="${M.left}" y1="${top + PH}" x2="${M.left + pw}" y2="${top + PH}" stroke="black"/>`,
      `<line x1="${M.left}" y1="${top}" x2="${M.left}" y2="${top + PH}" stroke="black"/>`,
    );
    for (const loss of losses) {
      parts.push(
        `<text x="${x(loss)}" y="${top + PH + 18}" text-anchor="middle">${pct(loss)}</text>`,
      );
    }
    parts.push(
      `<text x="${M.left + pw / 2}" y="${top + PH + 36}" text-anchor="middle">packet loss</text>`,
    );
  };
  const legend = (top: number, items: { label: string; color: string; dash: string }[]) => {
    items.forEach((it, i) => {
      const ly = top + 10 + i * 20;
      parts.push(
        `<line x1="${W - M.right + 12}" y1="${ly}" x2="${
          W - M.right + 40
        }" y2="${ly}" stroke="${it.color}" stroke-width="2" stroke-dasharray="${it.dash}"/>`,
        `<text x="${W - M.right + 46}" y="${ly + 4}">${it.label}</text>`,
      );
    });
  };

  // Latency, log scale from 1 ms.
  const top1 = M.top;
  const withLatency = measured.filter((r) => r.latency_ms) as (CompareRow & StreamReport)[];
  const values = withLatency.flatMap((r) => [r.latency_ms.p50, r.latency_ms.p99]);
  const decades = Math.ceil(Math.log10(Math.max(10, ...values)));
  const y1 = (ms: number) => top1 + PH - (Math.log10(Math.max(1, ms)) / decades) * PH;
  axes(top1, "Capture-to-sink latency against packet loss");
  for (let d = 0; d <= decades; d++) {
    const ms = 10 ** d;
    parts.push(
      `<line x1="${M.left}" y1="${y1(ms)}" x2="${M.left + pw}" y2="${y1(ms)}" stroke="#ddd"/>`,
      `<text x="${M.left - 8}" y="${y1(ms) + 4}" text-anchor="end">${ms} ms</text>`,
    );
  }
  const latencyItems: { label: string; color: string; dash: string }[] = [];
  for (const v of variants) {
    const rs = withLatency.filter((r) => r.variant === v).sort((a, b) => a.loss - b.loss);
    if (rs.length === 0) continue;
    for (const [key, dash] of [["p50", ""], ["p99", "6 4"]] as const) {
      line(rs.map((r) => [x(r.loss), y1(r.latency_ms[key])]), COLORS[v], dash);
      latencyItems.push({ label: `${v} ${key}`, color: COLORS[v], dash });
    }
  }
  legend(top1, latencyItems);
  const noLatency = variants.filter((v) => !withLatency.some((r) => r.variant === v));
  if (noLatency.length) {
    parts.push(
      `<text x="${W - M.right + 12}" y="${
        top1 + 30 + latencyItems.length * 20
      }" fill="#666">latency not measured:</text>`,
      ...noLatency.map((v, i) =>
        `<text x="${W - M.right + 12}" y="${
          top1 + 46 + latencyItems.length * 20 + i * 14
        }" fill="#666">${v}</text>`
      ),
    );
  }

  // Share intact, linear from the lowest decile seen to 100%.
  const top2 = M.top + PH + M.gap;
  const shares = measured.map((r) => r.intact_share ?? 0);
  const floor = Math.min(0.9, Math.floor(Math.min(1, ...shares) * 10) / 10);
  const y2 = (share: number) => top2 + PH - ((share - floor) / (1 - floor)) * PH;
  axes(top2, "Share of blocks played intact against packet loss");
  for (let i = 0; i <= 5; i++) {
    const t = floor + (i * (1 - floor)) / 5;
    parts.push(
      `<line x1="${M.left}" y1="${y2(t)}" x2="${M.left + pw}" y2="${y2(t)}" stroke="#ddd"/>`,
      `<text x="${M.left - 8}" y="${y2(t) + 4}" text-anchor="end">${+(t * 100).toFixed(1)}%</text>`,
    );
  }
  const shareItems: { label: string; color: string; dash: string }[] = [];
  for (const v of variants) {
    const rs = measured.filter((r) => r.variant === v).sort((a, b) => a.loss - b.loss);
    if (rs.length === 0) continue;
    line(rs.map((r) => [x(r.loss), y2(r.intact_share ?? 0)]), COLORS[v], "");
    shareItems.push({ label: v, color: COLORS[v], dash: "" });
  }
  legend(top2, shareItems);
  const missing = rows.filter((r) => !r.measured);
  if (missing.length) {
    parts.push(
      `<text x="${W - M.right + 12}" y="${
        top2 + 30 + shareItems.length * 20
      }" fill="#666">not measured:</text>`,
      ...missing.map((r, i) =>
        `<text x="${W - M.right + 12}" y="${
          top2 + 46 + shareItems.length * 20 + i * 14
        }" fill="#666">${r.variant} ${pct(r.loss)}</text>`
      ),
    );
  }
  parts.push("</svg>");
  return parts.join("\n") + "\n";
}
