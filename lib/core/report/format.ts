/**
 * Number formatting shared by every report and progress line.
 *
 * @module
 */

/** Formats a byte count with a binary unit: `3.1 MiB`. */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${units[u]}`;
}

/** Formats a rate in decimal megabytes per second: `512.3 MB/s`. */
export function formatRate(bytes: number, seconds: number): string {
  const rate = seconds > 0 ? bytes / seconds / 1e6 : 0;
  return `${rate.toFixed(1)} MB/s`;
}

/** Formats seconds as `m:ss` (or `h:mm:ss`). */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "--:--";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

/**
 * Parses a size such as `1048576`, `512K`, `10M`, `2G` or `1T` (binary
 * units, case-insensitive, optional `B`/`iB`). Returns `null` if invalid.
 */
export function parseSize(text: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*$/i.exec(text);
  if (!m) return null;
  const power = " kmgt".indexOf(m[2].toLowerCase() || " ");
  const value = Math.floor(Number(m[1]) * 1024 ** power);
  return Number.isSafeInteger(value) ? value : null;
}
