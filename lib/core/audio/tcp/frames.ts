/**
 * Audio-TCP frames, carried in the shared frame format (`frame.ts`).
 * No I/O.
 *
 * - server → client `HELLO`: the stream's format and id (`stream_format.ts`).
 * - server → client `BLOCK`: sequence (u32), capture time (f64, ms since
 *   the Unix epoch on the server's clock), the block's MD5 (16 bytes; from
 *   protocol 3 over its header, stream and samples, `block_digest.ts`;
 *   before, over the samples), samples (16-bit LE).
 * - client → server `SYNC` (protocol 2): t1 (f64), the client's clock when
 *   it sent the request.
 * - server → client `SYNC_REPLY` (protocol 2): t1 echoed, t2 and t3 (f64),
 *   the server's clock when the request arrived and when the reply left
 *   (`clock_sync.ts`).
 *
 * A client sends only SYNC requests, and only to a server whose hello says
 * protocol 2; anything else it sends is a protocol error, and so are
 * requests faster than the server allows.
 *
 * @module
 */
import { type AudioSpec, blockBytes } from "../format/spec.ts";
import {
  encodeStreamFormat,
  parseStreamFormat,
  type StreamFormat,
} from "../format/stream_format.ts";
import { ProtocolError } from "../../errors.ts";
import { encodeFrame, type FrameLimits, HEADER_LENGTH, writeHeader } from "../../wire/frame.ts";
import { SecureMsg } from "../../crypto/secure_stream.ts";
import { bytesEqual, md5, MD5_LENGTH } from "../../crypto/md5.ts";
import { blockDigest, type StreamBlock } from "../format/block_digest.ts";
import {
  decodeSyncReply,
  SYNC_REPLY_LENGTH,
  type SyncReply,
  writeSyncReply,
} from "../stages/clock_sync.ts";

/** Audio-TCP message types. */
export const AudioMsg = { HELLO: 16, BLOCK: 17, SYNC: 18, SYNC_REPLY: 19 } as const;

/** Bytes in a SYNC request's payload (t1). */
export const SYNC_REQUEST_LENGTH = 8;

/** Bytes before the samples in a BLOCK payload. */
export const BLOCK_PREFIX: number = 4 + 8 + MD5_LENGTH;

/** Largest block payload any valid spec produces. */
const MAX_BLOCK_PAYLOAD = BLOCK_PREFIX + 16384 * 8 * 2;

/** What a client accepts from a server. */
export const AUDIO_CLIENT_LIMITS: FrameLimits = {
  maxPayload: {
    [AudioMsg.HELLO]: 1024,
    [AudioMsg.BLOCK]: MAX_BLOCK_PAYLOAD,
    [AudioMsg.SYNC_REPLY]: SYNC_REPLY_LENGTH,
    // A coded server's first word to a plain client: it needs a code.
    [SecureMsg.NEEDS_CODE]: 0,
  },
};

/** Largest frame a server sends a client, header included. */
export const MAX_SERVER_FRAME: number = HEADER_LENGTH + MAX_BLOCK_PAYLOAD;

/** What a server accepts from a client: clock sync requests, nothing else. */
export const AUDIO_SERVER_LIMITS: FrameLimits = {
  maxPayload: { [AudioMsg.SYNC]: SYNC_REQUEST_LENGTH },
};

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
    protocol: f.protocol,
  };
}

/** Encodes a SYNC request stamped `t1` (the client's clock). */
export function encodeSyncRequest(t1: number): Uint8Array {
  const payload = new Uint8Array(SYNC_REQUEST_LENGTH);
  new DataView(payload.buffer).setFloat64(0, t1);
  return encodeFrame(AudioMsg.SYNC, payload);
}

/** Decodes a SYNC request's t1; throws {@link ProtocolError} if malformed. */
export function decodeSyncRequest(payload: Uint8Array): number {
  if (payload.length !== SYNC_REQUEST_LENGTH) {
    throw new ProtocolError(`Clock sync request of ${payload.length} bytes`);
  }
  const t1 = new DataView(payload.buffer, payload.byteOffset, 8).getFloat64(0);
  if (!Number.isFinite(t1)) throw new ProtocolError("Clock sync request's time is not a number");
  return t1;
}

/** Decodes a SYNC_REPLY payload; throws {@link ProtocolError} if malformed. */
export function decodeSyncReplyFrame(payload: Uint8Array): SyncReply {
  const r = decodeSyncReply(payload);
  if (!r) throw new ProtocolError("Malformed clock sync reply");
  return r;
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
  /** Capture time of the block's first sample, ms since the epoch (as decoded: the server's clock). */
  captured: number;
  /** Whether the MD5 matched; a block that did not is never played. */
  intact: boolean;
  /** The samples (a copy; safe to keep). */
  samples: Int16Array;
}

/**
 * Decodes a BLOCK payload of the stream `hello` announced. A capture time
 * that is not a finite number throws {@link ProtocolError}: no server of
 * ours sends one.
 */
export function decodeBlock(payload: Uint8Array, hello: Hello): ReceivedBlock {
  const spec: AudioSpec = hello;
  if (payload.length !== BLOCK_PREFIX + blockBytes(spec)) {
    throw new ProtocolError(
      `Block of ${payload.length - BLOCK_PREFIX} bytes; the stream's blocks have ${
        blockBytes(spec)
      }`,
    );
  }
  const v = new DataView(payload.buffer, payload.byteOffset, payload.length);
  const data = payload.slice(BLOCK_PREFIX);
  const seq = v.getUint32(0);
  const captured = v.getFloat64(4);
  if (!Number.isFinite(captured)) throw new ProtocolError("Block's capture time is not a number");
  const digest = (hello.protocol ?? 1) >= 3 ? blockDigest(hello, seq, captured, data) : md5(data);
  return {
    seq,
    captured,
    intact: bytesEqual(digest, payload.subarray(12, BLOCK_PREFIX)),
    samples: new Int16Array(data.buffer),
  };
}

/** Encodes a SYNC_REPLY frame. */
export function encodeSyncReplyFrame(r: SyncReply): Uint8Array {
  const out = new Uint8Array(HEADER_LENGTH + SYNC_REPLY_LENGTH);
  writeHeader(out, AudioMsg.SYNC_REPLY, SYNC_REPLY_LENGTH);
  writeSyncReply(out, HEADER_LENGTH, r);
  return out;
}
