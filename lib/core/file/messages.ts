/**
 * The File-TCP protocol: message types, their payload codecs and the limits
 * both sides enforce. Pure functions only; sockets live in `tcp/`.
 *
 * A transfer, as the client sees it:
 *
 * 1. client → `OFFER` {name, size, chunkSize, check: "md5-prefix", resume?: the
 *    token of a cut transfer, update?: true (`--update`)}
 * 2. server → `ACCEPT` {token, held: the chunks it already holds verified, a
 *    prefix [[0, n]] or none}
 *    or `ERROR`, or, to an offer with `update` for a file it stores with
 *    that size (by its digest book, the file unchanged since), a
 *    `CHALLENGE` {salt}: the client answers `PROOF` {proof: MD5(salt ‖ its
 *    file)}, and the server answers `DONE` {md5, storedAs, bytes,
 *    upToDate: true} if the proof matches what it kept (nothing moves),
 *    else `ACCEPT` (see `proof.ts`: misses are limited per address).
 *    An `update` offer it does not skip replaces the stored copy. The token names this transfer's partial data; only an
 *    offer that carries it resumes that data, so no other client can find,
 *    probe or damage it. Without a valid token nothing is held.
 * 3. client → for each chunk in order: `CHECK` (index, check value) if the
 *    server holds it, else `DATA` (index, check value, bytes). A chunk's
 *    check value is the MD5 of the file from its first byte to the chunk's
 *    last (its prefix MD5): each side hashes the file once, and the last
 *    chunk's check value is the whole file's MD5.
 * 4. server → `NACK` (index) for a chunk whose check value did not match (or
 *    whose held copy differs); it drops the chunks after it, and the client
 *    goes back and sends that chunk and all after it again (go-back-N)
 * 5. client → `END` {md5 of the whole file}
 * 6. server → `DONE` {md5, storedAs, …} once every chunk is verified and the
 *    whole-file MD5 matches, or `ERROR`
 *
 * @module
 */
import { ProtocolError } from "../errors.ts";
import { encodeFrame, type FrameLimits, HEADER_LENGTH, writeHeader } from "../wire/frame.ts";
import { isCount, jsonBytes } from "../wire/json.ts";
import { MD5_LENGTH } from "../crypto/md5.ts";
import { printable } from "../wire/text.ts";

/** Message types of the File-TCP protocol. */
export const MsgType = {
  OFFER: 1,
  ACCEPT: 2,
  DATA: 3,
  CHECK: 4,
  NACK: 5,
  END: 6,
  DONE: 7,
  ERROR: 8,
  /**
   * A link frame: `[u32 stream id][inner frames]`. A connection that opens
   * with one carries many transfers at once, each an independent session
   * on its own stream (see {@link encodeStream}).
   */
  STREAM: 9,
  /** Server → client: prove you hold the stored file (`--update`): {salt}. */
  CHALLENGE: 10,
  /** Client → server: {proof}, the MD5 of the salt and then the file. */
  PROOF: 11,
} as const;

/**
 * What an offer's `check` names: each chunk's check value is the MD5 of the
 * file up to the end of the chunk. Clients before it sent each chunk's own
 * MD5; a server refuses their offers with a message that says so.
 */
export const CHUNK_CHECK = "md5-prefix";

/** Default File-TCP port (the original project's). */
export const FILE_PORT = 4545;

/** Smallest chunk size a client may offer (the original project's 1024). */
export const MIN_CHUNK_SIZE = 1024;
/** Largest chunk size a client may offer. */
export const MAX_CHUNK_SIZE = 1024 * 1024;
/** Default chunk size: large enough that per-chunk costs vanish. */
export const DEFAULT_CHUNK_SIZE = 64 * 1024;
/** Most chunks one transfer may have; bounds the server's state per transfer. */
export const MAX_CHUNKS = 1 << 21;
/** Most held ranges an ACCEPT lists; a server with more lists fewer (safe). */
export const MAX_HELD_RANGES = 4096;
/** How many times one chunk may fail its MD5 before the transfer fails. */
export const MAX_CHUNK_RETRIES = 3;

/** Bytes before the data in a DATA frame: index (4) and MD5 (16). */
export const DATA_PREFIX: number = 4 + MD5_LENGTH;

/** Largest OFFER payload: room for a path of {@link MAX_PATH_BYTES} escaped as JSON. */
export const MAX_OFFER_BYTES = 16 * 1024;
/** Longest path below a folder's root an offer may name, in UTF-8 bytes. */
export const MAX_PATH_BYTES = 3800;
/** Deepest path below a folder's root an offer may name, in components. */
export const MAX_PATH_DEPTH = 128;
/**
 * Largest DONE payload: room for a pack's failed files, each message cut to
 * 200 characters by the server.
 */
export const MAX_DONE_BYTES: number = 4096 + 256 * 1024;
/** Largest pack of small files (`kind: "pack"`) an offer may make. */
export const MAX_PACK_BYTES: number = 4 * 1024 * 1024;

/** Frame limits for what a server accepts from a client. */
export const SERVER_LIMITS: FrameLimits = {
  maxPayload: {
    [MsgType.OFFER]: MAX_OFFER_BYTES,
    [MsgType.DATA]: DATA_PREFIX + MAX_CHUNK_SIZE,
    [MsgType.CHECK]: DATA_PREFIX,
    [MsgType.END]: 1024,
    [MsgType.PROOF]: 128,
    [MsgType.ERROR]: 1024,
  },
};

/**
 * Frame limits of a transfer before its offer: offer-sized frames only (a
 * stranger's stream holds no chunk's worth of memory before it offered).
 */
export const BEFORE_OFFER_LIMITS: FrameLimits = {
  maxPayload: { [MsgType.OFFER]: MAX_OFFER_BYTES, [MsgType.ERROR]: 1024 },
};

/** Frame limits of a transfer once offered: its DATA frames no larger than its chunks. */
export function offeredLimits(chunkSize: number): FrameLimits {
  return {
    maxPayload: {
      ...SERVER_LIMITS.maxPayload,
      [MsgType.DATA]: DATA_PREFIX + Math.min(chunkSize, MAX_CHUNK_SIZE),
    },
  };
}

/** Bytes before a stream's inner frames in a STREAM frame: the stream id. */
export const STREAM_PREFIX = 4;

/** Most transfers a client may have open at once on one connection. */
export const MAX_OPEN_STREAMS = 32;

/** Frame limits of a connection's link frames, as a server reads them. */
export const SERVER_LINK_LIMITS: FrameLimits = {
  maxPayload: {
    [MsgType.STREAM]: STREAM_PREFIX + HEADER_LENGTH + DATA_PREFIX + MAX_CHUNK_SIZE,
    [MsgType.ERROR]: 1024,
  },
};

/** Frame limits of a connection's link frames, as a client reads them. */
export const CLIENT_LINK_LIMITS: FrameLimits = {
  maxPayload: {
    [MsgType.STREAM]: STREAM_PREFIX + HEADER_LENGTH + MAX_DONE_BYTES,
    [MsgType.ERROR]: 1024,
  },
};

/** Frame limits for what a client accepts from a server. */
export const CLIENT_LIMITS: FrameLimits = {
  maxPayload: {
    [MsgType.ACCEPT]: 64 + MAX_HELD_RANGES * 24,
    [MsgType.NACK]: 4,
    [MsgType.DONE]: MAX_DONE_BYTES,
    [MsgType.CHALLENGE]: 128,
    [MsgType.ERROR]: 1024,
  },
};

/** What a client offers to send. */
export interface Offer {
  /** The file's name as the client sent it (the server sanitises it). */
  name: string;
  /** Size in bytes. */
  size: number;
  /** Chunk size in bytes. */
  chunkSize: number;
  /** The token the server gave for this file's earlier, cut transfer. */
  resume?: string;
  /**
   * `--update`: a server that stores a file of this size at this name
   * challenges the client to prove it holds the same content, and answers
   * DONE (up to date) if it does; otherwise the file replaces the stored
   * copy instead of being stored beside it. (An MD5 here, as clients
   * before proofs sent, is taken as `true`: an MD5 alone never skips a file.)
   */
  update?: true;
  /**
   * With `update`: MD5(salt ‖ the file), the salt the server's first
   * challenge on this connection named (one salt per server directory),
   * so that a small file needs no challenge of its own.
   */
  proof?: string;
  /**
   * A folder's entry: the path below the folder (`name`), one string per
   * component. The server stores it under `received-NAME/` with the same
   * components, each checked on its own (see `safeRelativePath`).
   */
  path?: string[];
  /** Permission bits to give the stored file (`mode & 0o777`; owners are not kept). */
  mode?: number;
  /**
   * `"dir"`: an empty folder of a tree (size 0, no data); the server makes
   * it. `"pack"`: many small files of the folder `name`, their manifest and
   * bytes as the transfer's data (`pack.ts`), at most {@link MAX_PACK_BYTES}.
   */
  kind?: "dir" | "pack";
  /**
   * The file's modification time (ms) when offered. With the path and
   * size it names a folder entry's partial data: a cut entry resumes when
   * offered again unchanged, with no token to keep (the chunks' checks
   * still decide what is kept).
   */
  mtime?: number;
}

/** The server's answer to an offer: chunks it already holds verified. */
export interface Accept {
  /** The token that resumes this transfer if it is cut. */
  token: string;
  /** Half-open ranges [start, end) of chunk indices. */
  held: [number, number][];
}

/** The client's closing message. */
export interface End {
  /** MD5 of the whole file, hexadecimal. */
  md5: string;
}

/** The server's confirmation. */
export interface Done {
  /** MD5 of the stored file, hexadecimal. */
  md5: string;
  /** Name of the stored file inside the server's directory. */
  storedAs: string;
  /** File size in bytes. */
  bytes: number;
  /** The server already stored this file (`--update`): nothing was sent. */
  upToDate?: boolean;
  /**
   * A pack's files the server could not store (the others are stored):
   * each its index in the pack and why, in one line.
   */
  failed?: [number, string][];
  /**
   * A pack's files' MD5s, hexadecimal, each computed by the server from
   * the bytes it stored, in the pack's order; empty for a file it could
   * not store.
   */
  md5s?: string[];
}

/** Encodes a frame whose payload is JSON. */
export function encodeJson(type: number, value: unknown): Uint8Array {
  return encodeFrame(type, jsonBytes(value));
}

/** Encodes an ERROR frame carrying a one-line message. */
export function encodeError(message: string): Uint8Array {
  let body = new TextEncoder().encode(message.replace(/[\r\n]+/g, " "));
  if (body.length > 1024) body = body.subarray(0, 1024);
  const out = new Uint8Array(HEADER_LENGTH + body.length);
  writeHeader(out, MsgType.ERROR, body.length);
  out.set(body, HEADER_LENGTH);
  return out;
}

/**
 * Decodes an ERROR payload to text safe for a terminal: control and
 * bidirectional characters become `?`.
 */
export function decodeError(payload: Uint8Array): string {
  return printable(new TextDecoder().decode(payload));
}

/** Encodes a CHECK frame. */
export function encodeCheck(index: number, digest: Uint8Array): Uint8Array {
  const out = new Uint8Array(HEADER_LENGTH + DATA_PREFIX);
  writeHeader(out, MsgType.CHECK, DATA_PREFIX);
  new DataView(out.buffer).setUint32(HEADER_LENGTH, index);
  out.set(digest, HEADER_LENGTH + 4);
  return out;
}

/**
 * Fills in the header, index and digest of a DATA frame whose chunk bytes
 * are already at `frame[HEADER_LENGTH + DATA_PREFIX ..]`, so the file can be
 * read straight into the frame with no copy.
 */
export function fillDataFrame(
  frame: Uint8Array,
  index: number,
  digest: Uint8Array,
  dataLength: number,
): Uint8Array {
  writeHeader(frame, MsgType.DATA, DATA_PREFIX + dataLength);
  new DataView(frame.buffer, frame.byteOffset).setUint32(HEADER_LENGTH, index);
  frame.set(digest, HEADER_LENGTH + 4);
  return frame.subarray(0, HEADER_LENGTH + DATA_PREFIX + dataLength);
}

/** Encodes a NACK frame. */
export function encodeNack(index: number): Uint8Array {
  const out = new Uint8Array(HEADER_LENGTH + 4);
  writeHeader(out, MsgType.NACK, 4);
  new DataView(out.buffer).setUint32(HEADER_LENGTH, index);
  return out;
}

/** A chunk reference: DATA and CHECK payloads share this prefix. */
export interface ChunkRef {
  /** Chunk index in the file. */
  index: number;
  /** MD5 of the chunk, as the sender claims it (a view). */
  digest: Uint8Array;
  /** The chunk's bytes (empty for CHECK). A view; copy to keep. */
  data: Uint8Array;
}

/** Decodes a DATA or CHECK payload. */
export function decodeChunk(payload: Uint8Array): ChunkRef {
  if (payload.length < DATA_PREFIX) {
    throw new ProtocolError("Chunk frame is too short");
  }
  const view = new DataView(payload.buffer, payload.byteOffset);
  return {
    index: view.getUint32(0),
    digest: payload.subarray(4, DATA_PREFIX),
    data: payload.subarray(DATA_PREFIX),
  };
}

/** Decodes a NACK payload. */
export function decodeNack(payload: Uint8Array): number {
  if (payload.length !== 4) throw new ProtocolError("NACK frame has a bad length");
  return new DataView(payload.buffer, payload.byteOffset).getUint32(0);
}

/** Number of chunks a file of `size` bytes has at `chunkSize`. */
export function chunkCount(size: number, chunkSize: number): number {
  return Math.ceil(size / chunkSize);
}

/**
 * The chunk size a client should offer for a file: the requested size, grown
 * (in steps of 1 KiB) when the file would otherwise need over MAX_CHUNKS.
 */
export function chooseChunkSize(size: number, requested = DEFAULT_CHUNK_SIZE): number {
  const least = Math.ceil(size / MAX_CHUNKS / 1024) * 1024;
  return Math.min(MAX_CHUNK_SIZE, Math.max(requested, least, MIN_CHUNK_SIZE));
}

/** Whether `v` is a path below a folder as offers and packs carry it: 1 to {@link MAX_PATH_DEPTH} strings. */
export function isPathList(v: unknown): v is string[] {
  return Array.isArray(v) && v.length > 0 && v.length <= MAX_PATH_DEPTH &&
    v.every((c) => typeof c === "string");
}

/** Whether `v` is a file mode as offers and packs carry it: a count up to 0o7777. */
export function isMode(v: unknown): v is number {
  return isCount(v) && v <= 0o7777;
}

/** Where a stream's inner frames start in a STREAM frame. */
export const STREAM_OFFSET: number = HEADER_LENGTH + STREAM_PREFIX;

/** Wraps inner frames of stream `id` in a STREAM frame (a copy). */
export function encodeStream(id: number, inner: Uint8Array): Uint8Array {
  const out = new Uint8Array(STREAM_OFFSET + inner.length);
  out.set(inner, STREAM_OFFSET);
  return fillStreamFrame(out, id, inner.length);
}

/**
 * Fills in the header of a STREAM frame whose inner bytes are already at
 * `frame[STREAM_OFFSET ..]` (a DATA frame read straight into place), so
 * nothing is copied.
 */
export function fillStreamFrame(frame: Uint8Array, id: number, innerLength: number): Uint8Array {
  writeHeader(frame, MsgType.STREAM, STREAM_PREFIX + innerLength);
  new DataView(frame.buffer, frame.byteOffset).setUint32(HEADER_LENGTH, id);
  return frame.subarray(0, STREAM_OFFSET + innerLength);
}

/** A STREAM payload: which stream, and its inner bytes (a view). */
export interface StreamBytes {
  /** The stream (one transfer) the bytes belong to. */
  id: number;
  /** Inner frames, or part of them: the stream's own decoder frames them. */
  bytes: Uint8Array;
}

/** Decodes a STREAM payload. */
export function decodeStream(payload: Uint8Array): StreamBytes {
  if (payload.length < STREAM_PREFIX) throw new ProtocolError("Stream frame is too short");
  return {
    id: new DataView(payload.buffer, payload.byteOffset).getUint32(0),
    bytes: payload.subarray(STREAM_PREFIX),
  };
}
