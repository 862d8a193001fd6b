/**
 * Progress display for long transfers: a redrawn bar with throughput and ETA
 * on a terminal, plain lines (at most one a second) otherwise.
 *
 * @module
 */
import { formatBytes, formatDuration, formatRate } from "../core/report/format.ts";

/**
 * Renders one progress line (pure; no I/O). With no `total` (not counted
 * beforehand) it says how much moved and how fast.
 */
export function renderProgress(
  label: string,
  done: number,
  total: number | undefined,
  seconds: number,
  width = 24,
): string {
  if (total === undefined) return `${label}: ${formatBytes(done)} ${formatRate(done, seconds)}`;
  const frac = total > 0 ? Math.min(1, done / total) : 1;
  const filled = Math.round(frac * width);
  const bar = "#".repeat(filled) + "-".repeat(width - filled);
  const rate = seconds > 0 ? done / seconds : 0;
  const eta = rate > 0 ? (total - done) / rate : Infinity;
  return `${label} [${bar}] ${(frac * 100).toFixed(0).padStart(3)}% ` +
    `${formatBytes(done)}/${formatBytes(total)} ${formatRate(done, seconds)} ETA ${
      formatDuration(eta)
    }`;
}

/** Writes progress to stderr: a redrawn line on a terminal, else plain lines. */
export class ProgressReporter {
  #label: string;
  #total: number | undefined;
  #start = performance.now();
  #last = performance.now();
  #tty: boolean;
  #encoder = new TextEncoder();
  #shown = false;

  /**
   * Starts the clock for a transfer of `total` bytes.
   *
   * @param label What is moving (a file name).
   * @param total Bytes expected (unknown when not counted beforehand).
   * @param tty Whether to redraw one line (default: stderr is a terminal).
   */
  constructor(label: string, total: number | undefined, tty = Deno.stderr.isTerminal()) {
    this.#label = label;
    this.#total = total;
    this.#tty = tty;
  }

  /** Reports `done` bytes so far; draws at most 10 times a second (tty) or once a second. */
  update(done: number): void {
    const now = performance.now();
    const every = this.#tty ? 100 : 1000;
    if (now - this.#last < every) return;
    this.#last = now;
    this.#draw(done, now);
  }

  /** Clears the redrawn line (tty) so a summary can follow. */
  finish(): void {
    if (this.#tty && this.#shown) this.#write("\r\x1b[2K");
  }

  #draw(done: number, now: number) {
    const line = renderProgress(this.#label, done, this.#total, (now - this.#start) / 1000);
    this.#shown = true;
    this.#write(this.#tty ? `\r\x1b[2K${line}` : `${line}\n`);
  }

  #write(text: string) {
    Deno.stderr.writeSync(this.#encoder.encode(text));
  }
}
