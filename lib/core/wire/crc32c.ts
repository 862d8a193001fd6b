/**
 * CRC32C (Castagnoli, the iSCSI and SCTP checksum, RFC 3720): a short check
 * that catches every burst of damage up to 32 bits and all but one in 2³²
 * of the rest. Table-driven, eight bytes a step ("slicing by 8"). Not a
 * defence against anyone who means harm: a code's AEAD is that. No I/O.
 *
 * @module
 */

/** Bytes of a CRC32C. */
export const CRC32C_LENGTH = 4;

const POLY = 0x82f63b78; // reflected 0x1EDC6F41

function tables(): Uint32Array[] {
  const t = Array.from({ length: 8 }, () => new Uint32Array(256));
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t[0][n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) {
    for (let s = 1; s < 8; s++) t[s][n] = (t[s - 1][n] >>> 8) ^ t[0][t[s - 1][n] & 0xff];
  }
  return t;
}

const [T0, T1, T2, T3, T4, T5, T6, T7] = tables();

/** The CRC32C of `data`, as an unsigned 32-bit number. */
export function crc32c(data: Uint8Array): number {
  let c = 0xffffffff;
  let i = 0;
  const end8 = data.length - (data.length % 8);
  for (; i < end8; i += 8) {
    c ^= data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24);
    c = T7[c & 0xff] ^ T6[(c >>> 8) & 0xff] ^ T5[(c >>> 16) & 0xff] ^ T4[c >>> 24] ^
      T3[data[i + 4]] ^ T2[data[i + 5]] ^ T1[data[i + 6]] ^ T0[data[i + 7]];
  }
  for (; i < data.length; i++) c = T0[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
