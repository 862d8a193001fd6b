/**
 * The clock every audio shell passes into the cores: milliseconds since the
 * Unix epoch, monotonic within a process (the epoch at start plus
 * `performance.now()`), shared by processes on one machine.
 *
 * @module
 */

/** Current time in ms (epoch at start plus the monotonic clock). */
export function now(): number {
  return performance.timeOrigin + performance.now();
}
