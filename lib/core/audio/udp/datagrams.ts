/**
 * Audio-UDP datagrams: codecs and the return-routability cookie. No I/O.
 *
 * Every datagram starts with `"SU"`, a version byte and a type byte.
 *
 * ```text
 * DATA (server → client), one fragment of a block:
 *   0 magic "SU"  2 version  3 type=1
 *   4 stream id u32   8 block sequence u32   12 fragment index u16   14 fragment count u16
 *   16 capture time f64 (ms since the epoch)
 *   24 MD5 of the block, its header and stream as well (16 bytes, `block_digest.ts`)
 *   40 fragment bytes
 * SUBSCRIBE (client → server): 4 cookie (16 bytes, zero at first)
 *   20 t1 f64 (a clock sync request: the client's clock; 0 for none)
 *   28 flags u8 (bit 0: the client has the stream's format), padded to 64 bytes
 * CHALLENGE (server → client): 4 cookie (16 bytes)
 * FORMAT (server → client): 4 MD5 of the JSON (16 bytes)
 *   20 the stream format's JSON (`stream_format.ts`) with `mtu`
 * BYE (client → server): 4 cookie (16 bytes)
 * FULL (server → client): 4 bytes only; the listener cap is reached
 * SYNC (server → client): 4 t1 echoed, 12 t2, 20 t3 (f64 each, `clock_sync.ts`)
 * REPAIR (server → client): a Reed-Solomon repair fragment (`fec.ts`)
 * ```
 *
 * Without a code, DATA and REPAIR datagrams end with a CRC32C of the rest
 * (`datagram_check.ts`), announced by the format's `check: "crc32c"`; a
 * datagram that fails it is dropped as damaged.
 *
 * A block is cut into `fragments` pieces of one size (the last may be
 * shorter): as many as the MTU needs, or more when forward error
 * correction wants finer pieces.
 *
 * Clock sync rides on the subscription: every SUBSCRIBE a proven listener
 * sends (the renewal each second, and a short burst at the start) carries
 * a request, and the server answers it with a SYNC, 28 bytes, only to
 * addresses that echoed a valid cookie. A proven listener that has the
 * format gets only the SYNC, so sync costs one small datagram each way a
 * second.
 *
 * A server answers an address it has not verified only with a CHALLENGE no
 * larger than what that address sent; audio goes only to addresses that
 * echoed a valid cookie, so the server cannot be used to flood a forged
 * source address.
 *
 * @module
 */
import { createHmac } from "node:crypto";
import {
  encodeStreamFormat,
  parseStreamFormat,
  type StreamFormat,
} from "../format/stream_format.ts";
import { bytesEqual, md5, MD5_LENGTH } from "../../crypto/md5.ts";
import { blockBytes } from "../format/spec.ts";
import { DATAGRAM_CHECK } from "../stages/datagram_check.ts";
import {
  decodeSyncReply,
  SYNC_REPLY_LENGTH,
  type SyncReply,
  writeSyncReply,
} from "../stages/clock_sync.ts";

/** `"SU"`. */
export const UDP_MAGIC = 0x5355;
/**
 * Datagram format version (2: clock sync on SUBSCRIBE, the SYNC datagram;
 * 3: the block MD5 covers the header, `block_digest.ts`; 4: fragments of
 * one size, the REPAIR datagram and the format's `fragments` and `fec`;
 * 5: the per-datagram check, the format's `check`).
 */
export const UDP_VERSION = 5;
/** Datagram types. */
export const UdpMsg = {
  DATA: 1,
  SUBSCRIBE: 2,
  CHALLENGE: 3,
  FORMAT: 4,
  BYE: 5,
  FULL: 6,
  SYNC: 7,
  REPAIR: 17,
} as const;
/** Bytes before the fragment bytes in a DATA datagram. */
export const DATA_HEADER = 40;
/** Cookie length. */
export const COOKIE_LENGTH = 16;
/** A SUBSCRIBE is padded to this size, so that the answer is never larger. */
export const SUBSCRIBE_LENGTH = 64;
/** Smallest `--mtu` (bytes in one datagram). */
export const MIN_MTU = 128;
/** Largest `--mtu`. */
export const MAX_MTU = 65000;
/** Most fragments a block may have (bounds reassembly memory). */
export const MAX_FRAGMENTS = 256;

/** A decoded DATA fragment. */
export interface Fragment {
  /** Random id of the server's capture. */
  streamId: number;
  /** Block sequence number. */
  seq: number;
  /** Index of this fragment in its block. */
  index: number;
  /** Fragments in the block. */
  count: number;
  /** Capture time of the block's first sample, ms since the epoch. */
  captured: number;
  /** MD5 of the whole block. A view into the datagram. */
  digest: Uint8Array;
  /** This fragment's bytes. A view into the datagram. */
  data: Uint8Array;
  /** Rebuilt from repair data rather than received (`fec.ts`). */
  recovered?: boolean;
}

/** Forward error correction a stream carries (`fec.ts`). */
export interface FecParams {
  /** The code: Reed-Solomon over GF(256). */
  scheme: "rs-gf256";
  /** Consecutive blocks whose fragments one group of repairs covers. */
  blocks: number;
  /** Repair fragments per group. */
  repair: number;
}

/** The stream format a server announces over UDP: the shared one plus its MTU. */
export interface UdpFormat extends StreamFormat {
  /** Largest datagram the server sends, bytes. */
  mtu: number;
  /** Fragments per block (absent: as many as the MTU needs). */
  fragments?: number;
  /** Forward error correction, or absent/null for none. */
  fec?: FecParams | null;
  /** The check each DATA and REPAIR datagram ends with (`datagram_check.ts`), or absent for none. */
  check?: "crc32c";
}

/**
 * Why a datagram was refused. Datagram decoders return this instead of
 * throwing: one bad datagram says nothing about the next, so the session
 * counts it and goes on.
 */
export interface Rejected {
  /** What is wrong with it, for logs and tests. */
  rejected: string;
}

/** Whether a decoder's answer is a {@link Rejected}. */
export function isRejected<T extends object>(x: T | Rejected): x is Rejected {
  return "rejected" in x;
}

function reject(why: string): Rejected {
  return { rejected: why };
}

/** Type of a datagram, or null if it is not ours (bad magic, version or size). */
export function datagramType(d: Uint8Array): number | null {
  if (d.length < 4) return null;
  if (((d[0] << 8) | d[1]) !== UDP_MAGIC || d[2] !== UDP_VERSION) return null;
  return d[3];
}

/** A datagram of `length` bytes with our magic, version and `type` filled in. */
export function newDatagram(type: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  out[0] = UDP_MAGIC >> 8;
  out[1] = UDP_MAGIC & 0xff;
  out[2] = UDP_VERSION;
  out[3] = type;
  return out;
}

/** Most bytes of block data one DATA datagram carries at `mtu`. */
export function fragmentSize(mtu: number): number {
  return mtu - DATA_HEADER;
}

/** Number of fragments a block of `bytes` needs at `mtu`. */
export function fragmentCount(bytes: number, mtu: number): number {
  return Math.max(1, Math.ceil(bytes / fragmentSize(mtu)));
}

/** Bytes in each fragment but the last when a block of `bytes` is cut into `count`. */
export function pieceSize(bytes: number, count: number): number {
  return Math.ceil(bytes / count);
}

/**
 * Whether a block of `bytes` cut into `count` pieces fits datagrams of
 * `mtu` bytes, every piece holding at least one byte.
 */
export function piecesFit(bytes: number, count: number, mtu: number): boolean {
  const size = pieceSize(bytes, count);
  return count <= MAX_FRAGMENTS && size <= fragmentSize(mtu) && size * (count - 1) < bytes;
}

/** Fragments per block of a format: as announced, or as many as its MTU needs. */
export function fragmentsOf(f: { mtu: number; fragments?: number }, bytes: number): number {
  return f.fragments ?? fragmentCount(bytes, f.mtu);
}

/**
 * Splits one block into DATA datagrams of at most `mtu` bytes each, in
 * `count` pieces of one size (default: as few as the MTU allows).
 * `digest` is the block's MD5, computed once by the caller.
 */
export function fragmentBlock(
  streamId: number,
  seq: number,
  captured: number,
  digest: Uint8Array,
  block: Uint8Array,
  mtu: number,
  count: number = fragmentCount(block.length, mtu),
): Uint8Array[] {
  if (!piecesFit(block.length, count, mtu)) {
    throw new RangeError(`A block cannot be cut into ${count} fragments at MTU ${mtu}`);
  }
  const size = pieceSize(block.length, count);
  const out: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const part = block.subarray(i * size, Math.min(block.length, (i + 1) * size));
    const d = newDatagram(UdpMsg.DATA, DATA_HEADER + part.length);
    const v = new DataView(d.buffer);
    v.setUint32(4, streamId >>> 0);
    v.setUint32(8, seq >>> 0);
    v.setUint16(12, i);
    v.setUint16(14, count);
    v.setFloat64(16, captured);
    d.set(digest, 24);
    d.set(part, DATA_HEADER);
    out.push(d);
  }
  return out;
}

/** Decodes a DATA datagram, or says why it is refused. */
export function decodeFragment(d: Uint8Array): Fragment | Rejected {
  if (datagramType(d) !== UdpMsg.DATA) return reject("not an Audio-UDP data datagram");
  if (d.length <= DATA_HEADER) return reject("data datagram too short");
  const v = new DataView(d.buffer, d.byteOffset, d.length);
  const index = v.getUint16(12);
  const count = v.getUint16(14);
  const captured = v.getFloat64(16);
  if (count === 0 || count > MAX_FRAGMENTS) return reject(`impossible fragment count ${count}`);
  if (index >= count) return reject(`fragment index ${index} not below count ${count}`);
  if (!Number.isFinite(captured)) return reject("capture time is not a finite number");
  return {
    streamId: v.getUint32(4),
    seq: v.getUint32(8),
    index,
    count,
    captured,
    digest: d.subarray(24, 24 + MD5_LENGTH),
    data: d.subarray(DATA_HEADER),
  };
}

/** What a SUBSCRIBE may carry besides the cookie. */
export interface SubscribeOptions {
  /** A BYE instead (the listener leaves). */
  bye?: boolean;
  /** A clock sync request stamped with the client's clock (only with a cookie). */
  t1?: number;
  /** The client has the stream's format, so the server need not resend it. */
  haveFormat?: boolean;
}

/** A SUBSCRIBE (or a BYE) carrying `cookie` (zeros at first). */
export function encodeSubscribe(
  cookie: Uint8Array | null,
  options: SubscribeOptions = {},
): Uint8Array {
  const d = newDatagram(
    options.bye ? UdpMsg.BYE : UdpMsg.SUBSCRIBE,
    options.bye ? 4 + COOKIE_LENGTH : SUBSCRIBE_LENGTH,
  );
  if (cookie) d.set(cookie, 4);
  if (!options.bye) {
    const v = new DataView(d.buffer);
    v.setFloat64(20, options.t1 ?? 0);
    v.setUint8(28, options.haveFormat ? 1 : 0);
  }
  return d;
}

/**
 * The clock sync request in a SUBSCRIBE (`t1`, or null for none, or when
 * not a finite number) and whether the client has the format.
 */
export function decodeSubscribe(d: Uint8Array): { t1: number | null; haveFormat: boolean } {
  if (d.length < SUBSCRIBE_LENGTH) return { t1: null, haveFormat: false };
  const v = new DataView(d.buffer, d.byteOffset, d.length);
  const t1 = v.getFloat64(20);
  return { t1: t1 !== 0 && Number.isFinite(t1) ? t1 : null, haveFormat: (d[28] & 1) === 1 };
}

/** A SYNC datagram answering a clock sync request. */
export function encodeSync(r: SyncReply): Uint8Array {
  const d = newDatagram(UdpMsg.SYNC, 4 + SYNC_REPLY_LENGTH);
  writeSyncReply(d, 4, r);
  return d;
}

/** Decodes a SYNC datagram, or says why it is refused. */
export function decodeSync(d: Uint8Array): SyncReply | Rejected {
  if (datagramType(d) !== UdpMsg.SYNC) return reject("not a sync datagram");
  return decodeSyncReply(d.subarray(4)) ?? reject("sync datagram of the wrong size");
}

/** The cookie in a SUBSCRIBE, BYE or CHALLENGE, or null if malformed. */
export function decodeCookie(d: Uint8Array): Uint8Array | null {
  return d.length >= 4 + COOKIE_LENGTH ? d.subarray(4, 4 + COOKIE_LENGTH) : null;
}

/** A CHALLENGE carrying `cookie` (20 bytes: smaller than any SUBSCRIBE). */
export function encodeChallenge(cookie: Uint8Array): Uint8Array {
  const d = newDatagram(UdpMsg.CHALLENGE, 4 + COOKIE_LENGTH);
  d.set(cookie, 4);
  return d;
}

/** A FULL datagram (the server has as many listeners as it takes). */
export function encodeFull(): Uint8Array {
  return newDatagram(UdpMsg.FULL, 4);
}

/** A FORMAT datagram: the format's JSON after its MD5. */
export function encodeFormat(f: UdpFormat): Uint8Array {
  const body = encodeStreamFormat(f);
  const d = newDatagram(UdpMsg.FORMAT, 4 + MD5_LENGTH + body.length);
  d.set(md5(body), 4);
  d.set(body, 4 + MD5_LENGTH);
  return d;
}

/**
 * Decodes a FORMAT datagram, or says why it is refused: a format whose MD5
 * fails (a damaged stream id would look like a server restart) among them.
 */
export function decodeFormat(d: Uint8Array): UdpFormat | Rejected {
  if (datagramType(d) !== UdpMsg.FORMAT) return reject("not a format datagram");
  const body = d.subarray(4 + MD5_LENGTH);
  if (d.length <= 4 + MD5_LENGTH || !bytesEqual(md5(body), d.subarray(4, 4 + MD5_LENGTH))) {
    return reject("format datagram fails its MD5");
  }
  const f = parseStreamFormat(body);
  if (typeof f === "string") return reject(`format ${f}`);
  const mtu = f.fields.mtu;
  if (!Number.isInteger(mtu) || (mtu as number) < MIN_MTU || (mtu as number) > MAX_MTU) {
    return reject(`format has an MTU outside ${MIN_MTU} to ${MAX_MTU}`);
  }
  const out: UdpFormat = {
    rate: f.rate,
    channels: f.channels,
    block: f.block,
    streamId: f.streamId,
    format: "s16le",
    protocol: f.protocol,
    mtu: mtu as number,
  };
  const bytes = blockBytes(out);
  const fragments = f.fields.fragments;
  if (fragments !== undefined) {
    if (
      !Number.isInteger(fragments) || (fragments as number) < 1 ||
      (fragments as number) > MAX_FRAGMENTS ||
      !piecesFit(bytes, fragments as number, out.mtu)
    ) return reject("format has a fragment count that does not fit its MTU");
    out.fragments = fragments as number;
  } else if (fragmentCount(bytes, out.mtu) > MAX_FRAGMENTS) {
    return reject(`format needs over ${MAX_FRAGMENTS} fragments a block`);
  }
  const check = f.fields.check;
  if (check !== undefined && check !== DATAGRAM_CHECK) {
    return reject("format has an unknown datagram check");
  }
  if (check !== undefined) out.check = DATAGRAM_CHECK;
  const fec = f.fields.fec;
  if (fec !== undefined && fec !== null) {
    const problem = fecProblem(fec, fragmentsOf(out, bytes));
    if (problem) return reject(`format ${problem}`);
    out.fec = fec as FecParams;
  }
  return out;
}

/** Most blocks one group of repairs may cover. */
export const MAX_FEC_BLOCKS = 16;

/**
 * What is wrong with FEC parameters for blocks of `fragments` fragments,
 * or null: the scheme must be known, a group 1 to {@link MAX_FEC_BLOCKS}
 * blocks, and sources plus repairs at most 256 (GF(256)).
 */
export function fecProblem(fec: unknown, fragments: number): string | null {
  if (typeof fec !== "object" || fec === null) return "has FEC that is not an object";
  const { scheme, blocks, repair } = fec as Record<string, unknown>;
  if (scheme !== "rs-gf256") return "has an unknown FEC scheme";
  if (!Number.isInteger(blocks) || (blocks as number) < 1 || (blocks as number) > MAX_FEC_BLOCKS) {
    return `has an FEC group outside 1 to ${MAX_FEC_BLOCKS} blocks`;
  }
  if (
    !Number.isInteger(repair) || (repair as number) < 1 ||
    (blocks as number) * fragments + (repair as number) > 256
  ) return "has FEC repairs that do not fit GF(256)";
  return null;
}

/**
 * Issues and checks cookies: an HMAC of the address and a time bucket under
 * a secret the server draws at start. A cookie is valid in its bucket and
 * the next (30 to 60 s).
 */
export class CookieJar {
  #secret: Uint8Array;
  #bucketMs: number;

  /**
   * Creates a jar. The caller draws `secret` (32 random bytes) so that this
   * core stays deterministic under test.
   */
  constructor(secret: Uint8Array, bucketMs = 30_000) {
    this.#secret = secret;
    this.#bucketMs = bucketMs;
  }

  /** The cookie for `address` (host and port) at time `now` (ms). */
  issue(address: string, now: number): Uint8Array {
    return this.#mac(address, Math.floor(now / this.#bucketMs));
  }

  /** Whether `cookie` is valid for `address` at `now`. */
  check(address: string, cookie: Uint8Array, now: number): boolean {
    const bucket = Math.floor(now / this.#bucketMs);
    return [bucket, bucket - 1].some((b) => equal(this.#mac(address, b), cookie));
  }

  #mac(address: string, bucket: number): Uint8Array {
    const h = createHmac("sha256", this.#secret).update(`${address}\0${bucket}`).digest();
    return new Uint8Array(h.buffer, h.byteOffset, COOKIE_LENGTH);
  }
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}
