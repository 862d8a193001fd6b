/**
 * The MD5 every audio block carries, over both transports, from audio
 * protocol 3 on: it covers the block's header as well as its samples, so no
 * field that decides what is played, and when, is trusted unchecked.
 *
 * ```text
 * MD5( stream id u32 | sequence u32 | capture time f64 |
 *      rate u32 | channels u16 | frames per block u16 | samples )
 * ```
 *
 * A block whose stream id, sequence number or capture time was flipped on
 * the way fails its check like one whose samples were, and is concealed;
 * it never lands in another block's slot, never moves the play-out point.
 * (Before protocol 3 the MD5 covered the samples only.) MD5 has no key: it
 * proves a block arrived intact, not who sent it; the clients accept
 * blocks only from the server they asked.
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { AudioSpec } from "./spec.ts";
import { MD5_LENGTH } from "../../crypto/md5.ts";

/** What a block's MD5 binds it to besides its own header: its stream and format. */
export interface BlockContext extends AudioSpec {
  /** Random id of the server's capture. */
  streamId: number;
}

/** Bytes of header the digest covers before the samples. */
const COVERED = 24;

/** The MD5 of one block: its header, its stream's format and its samples. */
export function blockDigest(
  context: BlockContext,
  seq: number,
  captured: number,
  samples: Uint8Array,
): Uint8Array {
  const head = new Uint8Array(COVERED);
  const v = new DataView(head.buffer);
  v.setUint32(0, context.streamId >>> 0);
  v.setUint32(4, seq >>> 0);
  v.setFloat64(8, captured);
  v.setUint32(16, context.rate);
  v.setUint16(20, context.channels);
  v.setUint16(22, context.block);
  const d = createHash("md5").update(head).update(samples).digest();
  return new Uint8Array(d.buffer, d.byteOffset, MD5_LENGTH);
}

/** One captured block, ready for every transport. */
export interface StreamBlock {
  /** Block sequence number (32-bit, wraps). */
  seq: number;
  /** Capture time of the block's first sample, ms, on the sender's clock. */
  captured: number;
  /** MD5 of the block, header and samples ({@link blockDigest}). */
  digest: Uint8Array;
  /** The samples as bytes (16-bit little-endian). */
  bytes: Uint8Array;
  /** The samples. */
  samples: Int16Array;
}
