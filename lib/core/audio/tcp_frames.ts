/**
 * Audio-TCP messages, carried in the shared frame format (`frame.ts`).
 * No I/O.
 *
 * - server → client `HELLO` (JSON): the stream's format and id.
 * - server → client `BLOCK`: sequence (u32), capture time (f64, ms since
 *   the Unix epoch), MD5 of the samples (16 bytes), samples (16-bit LE).
 *
 * A client sends nothing; any byte it sends is a protocol error.
 *
 * @module
 */
import { type AudioSpec, blockBytes, validateSpec } from "./spec.ts";
import { ProtocolError, UserError } from "../errors.ts";
import { type FrameLimits, HEADER_LENGTH, writeHeader } from "../wire/frame.ts";
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

/** The stream description a server sends first. */
export interface Hello extends AudioSpec {
  /** Random id of this capture; a new id means the server restarted. */
  streamId: number;
  /** Always "s16le". */
  format: "s16le";
}

/** Encodes a HELLO frame. */
export function encodeHello(hello: Hello): Uint8Array {
  const body = new TextEncoder().encode(JSON.stringify(hello));
  const out = new Uint8Array(HEADER_LENGTH + body.length);
  writeHeader(out, AudioMsg.HELLO, body.length);
  out.set(body, HEADER_LENGTH);
  return out;
}

/** Decodes and validates a HELLO payload. */
export function decodeHello(payload: Uint8Array): Hello {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(payload));
  } catch {
    throw new ProtocolError("Server hello is not valid JSON");
  }
  if (typeof o !== "object" || o === null || o.format !== "s16le") {
    throw new ProtocolError("Server hello has an unknown sample format");
  }
  if (typeof o.streamId !== "number") throw new ProtocolError("Server hello has no stream id");
  let spec: AudioSpec;
  try {
    spec = validateSpec({
      rate: o.rate as number,
      channels: o.channels as number,
      block: o.block as number,
    });
  } catch (err) {
    throw new ProtocolError(`Server hello is unusable: ${(err as UserError).message}`);
  }
  return { ...spec, streamId: o.streamId, format: "s16le" };
}

/** Encodes a BLOCK frame (computes the MD5 once, for every listener). */
export function encodeBlock(seq: number, captured: number, samples: Int16Array): Uint8Array {
  const data = new Uint8Array(samples.buffer, samples.byteOffset, samples.byteLength);
  const out = new Uint8Array(HEADER_LENGTH + BLOCK_PREFIX + data.length);
  writeHeader(out, AudioMsg.BLOCK, BLOCK_PREFIX + data.length);
  const v = new DataView(out.buffer, HEADER_LENGTH);
  v.setUint32(0, seq >>> 0);
  v.setFloat64(4, captured);
  out.set(md5(data), HEADER_LENGTH + 12);
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
