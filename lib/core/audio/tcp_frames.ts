/**
 * Audio-TCP frames, carried in the shared frame format (`frame.ts`).
 * No I/O.
 *
 * - server → client `HELLO`: the stream's format and id (`stream_format.ts`).
 * - server → client `BLOCK`: sequence (u32), capture time (f64, ms since
 *   the Unix epoch), MD5 of the samples (16 bytes), samples (16-bit LE).
 *
 * A client sends nothing; any byte it sends is a protocol error.
 *
 * @module
 */
import { type AudioSpec, blockBytes } from "./spec.ts";
import { encodeStreamFormat, parseStreamFormat, type StreamFormat } from "./stream_format.ts";
import { ProtocolError } from "../errors.ts";
import type { StreamBlock } from "./broadcaster.ts";
import { encodeFrame, type FrameLimits, HEADER_LENGTH, writeHeader } from "../wire/frame.ts";
import { bytesEqual, md5, MD5_LENGTH } from "../wire/md5.ts";

/** Audio-TCP message types. */
export const AudioMsg = { HELLO: 16, BLOCK: 17 } as const;

/** Bytes before the samples in a BLOCK payload. */
export const BLOCK_PREFIX: number = 4 + 8 + MD5_LENGTH;

/** Largest block payload any valid spec produces. */
const MAX_BLOCK_PAYLOAD = BLOCK_PREFIX + 16384 * 8 * 2;

/** What a client accepts from a server. */
export const AUDIO_CLIENT_LIMITS: FrameLimits = {
  maxPayload: { [AudioMsg.HELLO]: 1024, [AudioMsg.BLOCK]: MAX_BLOCK_PAYLOAD },
};

/** What a server accepts from a client: nothing. */
export const AUDIO_SERVER_LIMITS: FrameLimits = { maxPayload: {} };

/** The stream description a server sends first (the shared {@link StreamFormat}). */
export type Hello = StreamFormat;

/** Encodes a HELLO frame. */
export function encodeHello(hello: Hello): Uint8Array {
  return encodeFrame(AudioMsg.HELLO, encodeStreamFormat(hello));
}

/** Decodes and validates a HELLO payload; throws {@link ProtocolError} if unusable. */
export function decodeHello(payload: Uint8Array): Hello {
  const f = parseStreamFormat(payload);
  if (typeof f === "string") throw new ProtocolError(`Server hello ${f}`);
  return {
    rate: f.rate,
    channels: f.channels,
    block: f.block,
    streamId: f.streamId,
    format: f.format,
  };
}

/** Encodes a BLOCK frame from a numbered, digested block (once, for every listener). */
export function encodeBlock(block: StreamBlock): Uint8Array {
  const data = block.bytes;
  const out = new Uint8Array(HEADER_LENGTH + BLOCK_PREFIX + data.length);
  writeHeader(out, AudioMsg.BLOCK, BLOCK_PREFIX + data.length);
  const v = new DataView(out.buffer, HEADER_LENGTH);
  v.setUint32(0, block.seq >>> 0);
  v.setFloat64(4, block.captured);
  out.set(block.digest, HEADER_LENGTH + 12);
  out.set(data, HEADER_LENGTH + BLOCK_PREFIX);
  return out;
}

/** A received block. */
export interface ReceivedBlock {
  /** Block sequence number. */
  seq: number;
  /** Capture time of the block's first sample, ms since the epoch. */
  captured: number;
  /** Whether the MD5 matched; a block that did not is never played. */
  intact: boolean;
  /** The samples (a copy; safe to keep). */
  samples: Int16Array;
}

/** Decodes a BLOCK payload for a stream of format `spec`. */
export function decodeBlock(payload: Uint8Array, spec: AudioSpec): ReceivedBlock {
  if (payload.length !== BLOCK_PREFIX + blockBytes(spec)) {
    throw new ProtocolError(
      `Block of ${payload.length - BLOCK_PREFIX} bytes; the stream's blocks have ${
        blockBytes(spec)
      }`,
    );
  }
  const v = new DataView(payload.buffer, payload.byteOffset, payload.length);
  const data = payload.slice(BLOCK_PREFIX);
  return {
    seq: v.getUint32(0),
    captured: v.getFloat64(4),
    intact: bytesEqual(md5(data), payload.subarray(12, BLOCK_PREFIX)),
    samples: new Int16Array(data.buffer),
  };
}
