/**
 * WAV (RIFF, PCM 16-bit) headers: encode and parse, no I/O.
 *
 * @module
 */
import { UserError } from "../../errors.ts";

/** Length of the canonical header {@link encodeWavHeader} writes. */
export const WAV_HEADER_LENGTH = 44;

/** What a WAV header says. */
export interface WavInfo {
  /** Sample rate, Hz. */
  rate: number;
  /** Channels. */
  channels: number;
  /** Bits per sample (16 is the only one accepted). */
  bitsPerSample: number;
  /** Offset of the first sample byte. */
  dataOffset: number;
  /** Bytes of sample data the header claims. */
  dataLength: number;
}

/** The canonical 44-byte header for 16-bit PCM with `dataLength` bytes. */
export function encodeWavHeader(rate: number, channels: number, dataLength: number): Uint8Array {
  const h = new Uint8Array(WAV_HEADER_LENGTH);
  const v = new DataView(h.buffer);
  const ascii = (at: number, s: string) => {
    for (let i = 0; i < 4; i++) h[at + i] = s.charCodeAt(i);
  };
  ascii(0, "RIFF");
  v.setUint32(4, 36 + dataLength, true);
  ascii(8, "WAVE");
  ascii(12, "fmt ");
  v.setUint32(16, 16, true);
  v.setUint16(20, 1, true); // PCM
  v.setUint16(22, channels, true);
  v.setUint32(24, rate, true);
  v.setUint32(28, rate * channels * 2, true);
  v.setUint16(32, channels * 2, true);
  v.setUint16(34, 16, true);
  ascii(36, "data");
  v.setUint32(40, dataLength, true);
  return h;
}

/**
 * Parses the header at the start of `bytes` (which should hold at least the
 * first few KiB of the file). Throws {@link UserError} for anything but
 * 16-bit PCM.
 */
export function parseWavHeader(bytes: Uint8Array, name = "file"): WavInfo {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tag = (at: number) => String.fromCharCode(...bytes.subarray(at, at + 4));
  if (bytes.length < 12 || tag(0) !== "RIFF" || tag(8) !== "WAVE") {
    throw new UserError(`${name} is not a WAV file`);
  }
  let at = 12;
  let fmt: { channels: number; rate: number; bits: number; format: number } | undefined;
  while (at + 8 <= bytes.length) {
    const id = tag(at);
    const size = v.getUint32(at + 4, true);
    if (id === "fmt " && at + 24 <= bytes.length) {
      fmt = {
        format: v.getUint16(at + 8, true),
        channels: v.getUint16(at + 10, true),
        rate: v.getUint32(at + 12, true),
        bits: v.getUint16(at + 22, true),
      };
    } else if (id === "data") {
      if (!fmt) throw new UserError(`${name} has no format chunk before its data`);
      const pcm = fmt.format === 1 || fmt.format === 0xfffe;
      if (!pcm || fmt.bits !== 16) {
        throw new UserError(`${name} is not 16-bit PCM (format ${fmt.format}, ${fmt.bits} bits)`);
      }
      return {
        rate: fmt.rate,
        channels: fmt.channels,
        bitsPerSample: fmt.bits,
        dataOffset: at + 8,
        dataLength: size,
      };
    }
    at += 8 + size + (size & 1);
  }
  throw new UserError(`${name} has no data chunk in its first ${bytes.length} bytes`);
}
