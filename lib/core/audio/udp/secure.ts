/**
 * Audio-UDP with a shared code, with no I/O: the handshake's datagrams and
 * both sides' state, and the sealing of the stream.
 *
 * After the cookie has proven the client's address (so the server still
 * answers an unproven address with less than it sent), the client runs
 * SPAKE2 with the server:
 *
 * ```text
 * client → PAKE_INIT    cookie, pB                      (85 bytes)
 * server → PAKE_REPLY   pA, cA                          (101 bytes, to a proven address)
 * client → PAKE_CONFIRM cookie, cB                      (52 bytes)
 * server → KEY          count, sealed(stream key ‖ the stream's format)
 * server → WRONG_CODE   instead, when cB does not match (4 bytes)
 * server → NEEDS_CODE   to a proven plain SUBSCRIBE (4 bytes)
 * server → SYNC_SEALED  count, sealed(t1 ‖ t2 ‖ t3)     (clock sync answers)
 * server → THROTTLED    too many wrong codes from the address (4 bytes)
 * server → NO_CODE      a server without a code, to a PAKE_INIT (4 bytes)
 * ```
 *
 * KEY and SYNC_SEALED are sealed under the listener's own key (from the
 * PAKE), with an explicit count as the nonce, and a count not above the
 * last one is refused (replay). Every DATA datagram is sealed once, for
 * every listener, under the stream key: the nonce is the stream id, block
 * sequence and fragment index, unique in a stream; the 40-byte header is
 * the associated data. A REPAIR datagram is sealed the same way, its
 * nonce the stream id, group and repair index behind a 0xff that no
 * fragment index has, its 16-byte header the associated data. A listener's
 * extra cost to the server is one handshake and a KEY, never a step per block.
 *
 * @module
 */
import { CodeMismatch } from "../../crypto/secure_stream.ts";
import {
  CONFIRM_LENGTH,
  confirmationsMatch,
  SHARE_LENGTH,
  type Spake2,
} from "../../crypto/spake2.ts";
import { codeExchange } from "../../crypto/code.ts";
import { openAt, sealAt, sessionKeys, TAG_LENGTH } from "../../crypto/channel.ts";
import { COOKIE_LENGTH, DATA_HEADER, newDatagram } from "./datagrams.ts";
import { REPAIR_HEADER } from "../stages/fec.ts";

/** Datagram types of the coded handshake (beside `UdpMsg`). */
export const SecureUdpMsg = {
  PAKE_INIT: 8,
  PAKE_REPLY: 9,
  PAKE_CONFIRM: 10,
  KEY: 11,
  NEEDS_CODE: 12,
  WRONG_CODE: 13,
  SYNC_SEALED: 14,
  THROTTLED: 15,
  NO_CODE: 16,
} as const;

/** Bytes a sealed DATA datagram adds to a plain one (the tag). */
export const DATA_TAG: number = TAG_LENGTH;

const CONTEXT = "audio-udp";

function datagram(type: number, parts: Uint8Array[]): Uint8Array {
  const out = newDatagram(type, 4 + parts.reduce((n, p) => n + p.length, 0));
  let at = 4;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A 4-byte datagram of `type` (NEEDS_CODE, WRONG_CODE). */
export function bareDatagram(type: number): Uint8Array {
  return datagram(type, []);
}

function countBytes(count: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, count);
  return b;
}

/** The nonce of a listener-key datagram: a marker and its count. */
function listenerNonce(count: bigint): Uint8Array {
  const n = new Uint8Array(12);
  const v = new DataView(n.buffer);
  v.setUint32(0, 0xffffffff);
  v.setBigUint64(4, count);
  return n;
}

/** The nonce of a DATA datagram: stream id, sequence, fragment index. */
function dataNonce(d: Uint8Array): Uint8Array {
  const n = new Uint8Array(12);
  n.set(d.subarray(4, 14), 0); // stream id, seq, index (below 256)
  return n;
}

/** A REPAIR's nonce: stream id, group, then 0xff (no fragment index has it) and its index. */
function repairNonce(d: Uint8Array): Uint8Array {
  const n = new Uint8Array(12);
  n.set(d.subarray(4, 12), 0);
  n[8] = 0xff;
  n[9] = d[15];
  return n;
}

function sealStream(key: Uint8Array, d: Uint8Array, head: number, nonce: Uint8Array): Uint8Array {
  const body = sealAt(key, nonce, d.subarray(head), d.subarray(0, head));
  const out = new Uint8Array(head + body.length);
  out.set(d.subarray(0, head), 0);
  out.set(body, head);
  return out;
}

function openStream(
  key: Uint8Array,
  d: Uint8Array,
  head: number,
  nonce: (d: Uint8Array) => Uint8Array,
): Uint8Array | null {
  if (d.length <= head + TAG_LENGTH) return null;
  const body = openAt(key, nonce(d), d.subarray(head), d.subarray(0, head));
  if (!body) return null;
  const out = new Uint8Array(head + body.length);
  out.set(d.subarray(0, head), 0);
  out.set(body, head);
  return out;
}

/** Seals a plain DATA datagram under the stream key: header in clear (AAD), body sealed. */
export function sealData(streamKey: Uint8Array, d: Uint8Array): Uint8Array {
  return sealStream(streamKey, d, DATA_HEADER, dataNonce(d));
}

/** Opens a sealed DATA datagram back to its plain form, or null if it fails its tag. */
export function openData(streamKey: Uint8Array, d: Uint8Array): Uint8Array | null {
  return openStream(streamKey, d, DATA_HEADER, dataNonce);
}

/** Seals a plain REPAIR datagram under the stream key, as {@link sealData} does DATA. */
export function sealRepair(streamKey: Uint8Array, d: Uint8Array): Uint8Array {
  return sealStream(streamKey, d, REPAIR_HEADER, repairNonce(d));
}

/** Opens a sealed REPAIR datagram, or null if it fails its tag. */
export function openRepair(streamKey: Uint8Array, d: Uint8Array): Uint8Array | null {
  return openStream(streamKey, d, REPAIR_HEADER, repairNonce);
}

/** What a listener-key datagram carried, opened, or null (tampered, replayed). */
function openCounted(
  key: Uint8Array,
  d: Uint8Array,
  last: { count: bigint },
): Uint8Array | null {
  if (d.length < 4 + 8 + TAG_LENGTH) return null;
  const count = new DataView(d.buffer, d.byteOffset + 4, 8).getBigUint64(0);
  if (count <= last.count) return null;
  const plain = openAt(key, listenerNonce(count), d.subarray(12), d.subarray(0, 12));
  if (plain) last.count = count;
  return plain;
}

/** The server's state for one listener's handshake and, once joined, its key. */
export class ServerHandshake {
  #pake: Spake2;
  #expected: Uint8Array | undefined;
  #s2c: Uint8Array | undefined;
  #count = 0n;
  /** Whether the listener's confirmation matched. */
  confirmed = false;

  /** A handshake for `code`, with 48 random bytes from the shell. */
  constructor(code: string, random: Uint8Array) {
    this.#pake = codeExchange("server", code, CONTEXT, random);
  }

  /** Answers a PAKE_INIT's share: the PAKE_REPLY (throws on a hostile share). */
  reply(init: Uint8Array): Uint8Array {
    const share = init.subarray(4 + COOKIE_LENGTH, 4 + COOKIE_LENGTH + SHARE_LENGTH);
    const keys = this.#pake.finish(share);
    this.#expected = keys.peerConfirmation;
    this.#s2c = sessionKeys(keys.ke, CONTEXT).serverToClient;
    return datagram(SecureUdpMsg.PAKE_REPLY, [this.#pake.share, keys.ownConfirmation]);
  }

  /** Whether a PAKE_CONFIRM's confirmation matches (then the listener may join). */
  confirm(d: Uint8Array): boolean {
    if (!this.#expected || d.length < 4 + COOKIE_LENGTH + CONFIRM_LENGTH) return false;
    const c = d.subarray(4 + COOKIE_LENGTH, 4 + COOKIE_LENGTH + CONFIRM_LENGTH);
    this.confirmed = confirmationsMatch(c, this.#expected);
    return this.confirmed;
  }

  /** A datagram sealed under the listener's key (KEY, SYNC_SEALED). */
  seal(type: number, plaintext: Uint8Array): Uint8Array {
    const count = ++this.#count;
    const head = datagram(type, [countBytes(count)]);
    return datagram(type, [
      countBytes(count),
      sealAt(this.#s2c!, listenerNonce(count), plaintext, head),
    ]);
  }
}

/** The listener's side of the handshake. */
export class ClientHandshake {
  #pake: Spake2;
  #s2c: Uint8Array | undefined;
  #own: Uint8Array | undefined;
  #last = { count: 0n };

  /** A handshake for `code`, with 48 random bytes from the shell. */
  constructor(code: string, random: Uint8Array) {
    this.#pake = codeExchange("client", code, CONTEXT, random);
  }

  /** The PAKE_INIT to send with the server's cookie. */
  init(cookie: Uint8Array): Uint8Array {
    return datagram(SecureUdpMsg.PAKE_INIT, [cookie, this.#pake.share]);
  }

  /**
   * Takes the PAKE_REPLY: throws {@link CodeMismatch} when the server's
   * confirmation does not match; else the PAKE_CONFIRM to send.
   */
  confirm(reply: Uint8Array, cookie: Uint8Array): Uint8Array {
    if (reply.length !== 4 + SHARE_LENGTH + CONFIRM_LENGTH) throw new CodeMismatch();
    const keys = this.#pake.finish(reply.subarray(4, 4 + SHARE_LENGTH));
    if (!confirmationsMatch(reply.subarray(4 + SHARE_LENGTH), keys.peerConfirmation)) {
      throw new CodeMismatch();
    }
    this.#s2c = sessionKeys(keys.ke, CONTEXT).serverToClient;
    this.#own = keys.ownConfirmation;
    return datagram(SecureUdpMsg.PAKE_CONFIRM, [cookie, this.#own]);
  }

  /** Whether the server's confirmation was checked. */
  get keyed(): boolean {
    return this.#s2c !== undefined;
  }

  /** Opens a KEY or SYNC_SEALED, or null (tampered, replayed, too early). */
  open(d: Uint8Array): Uint8Array | null {
    return this.#s2c ? openCounted(this.#s2c, d, this.#last) : null;
  }
}
