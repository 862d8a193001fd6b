/**
 * Text that came from a peer, made safe to print or to use as a name.
 *
 * @module
 */

/**
 * Characters never passed through from a peer: C0 and C1 controls, DEL,
 * and the bidirectional controls (U+061C, U+200E, U+200F, U+202A to U+202E,
 * U+2066 to U+2069) that make `evil‮txt.exe` read as `evilexe.txt`.
 */
// deno-lint-ignore no-control-regex
export const UNSAFE_CHARS = /[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/** `text` with every {@link UNSAFE_CHARS} character replaced by `?`. */
export function printable(text: string): string {
  return text.replace(UNSAFE_CHARS, "?");
}
