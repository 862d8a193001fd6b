/**
 * The per-datagram check of Audio-UDP without a code: every DATA and
 * REPAIR datagram ends with a CRC32C (`wire/crc32c.ts`) of all its bytes
 * before it, so a datagram damaged on the way (a flipped payload byte, a
 * flipped header bit that still parses) is dropped and counted, and
 * forward error correction rebuilds its fragment like a lost one. The
 * stream's format says the check is there (`check: "crc32c"`). With a
 * code the AEAD tag does this and more, so sealed datagrams carry none.
 *
 * ```text
 * DATA or REPAIR without a code: the datagram as before, then its CRC32C (u32, big-endian)
 * ```
 *
 * The block's MD5 stays the proof of what is played: this check only
 * turns damage into an erasure early, where repairs can still help.
 *
 * @module
 */
import { crc32c, CRC32C_LENGTH } from "../../wire/crc32c.ts";

/** The check's name in the stream's format. */
export const DATAGRAM_CHECK = "crc32c";
/** Bytes the check adds to a datagram. */
export const CHECK_LENGTH: number = CRC32C_LENGTH;

/** `d` followed by its CRC32C. */
export function addCheck(d: Uint8Array): Uint8Array {
  const out = new Uint8Array(d.length + CHECK_LENGTH);
  out.set(d);
  new DataView(out.buffer).setUint32(d.length, crc32c(d));
  return out;
}

/** The datagram without its check (a view), or null when the check fails. */
export function stripCheck(d: Uint8Array): Uint8Array | null {
  if (d.length <= CHECK_LENGTH) return null;
  const body = d.subarray(0, d.length - CHECK_LENGTH);
  const want = new DataView(d.buffer, d.byteOffset, d.length).getUint32(body.length);
  return crc32c(body) === want ? body : null;
}
