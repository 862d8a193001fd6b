/**
 * Sequence-number arithmetic with wrap-around (32-bit, as on the wire).
 *
 * @module
 */

/** Whether sequence number `a` comes before `b` (with wrap-around). */
export function before(a: number, b: number): boolean {
  return ((a - b) | 0) < 0;
}
