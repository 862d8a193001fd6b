/**
 * SPAKE2 (RFC 9382), the ciphersuite SPAKE2-P256-SHA256-HKDF-HMAC, as an
 * I/O-free core: the code's scalar and a secret scalar in, a share out;
 * the peer's share in, keys and key confirmations out. The curve, hash,
 * HKDF and HMAC are `@noble/curves` and `@noble/hashes` (audited, pinned
 * in `deno.lock`); this file only composes them as the RFC says:
 *
 * ```text
 * A: pA = x·P + w·M        B: pB = y·P + w·N
 * A: K = x·(pB − w·N)      B: K = y·(pA − w·M)      (cofactor 1)
 * TT = len(A)‖A ‖ len(B)‖B ‖ len(pA)‖pA ‖ len(pB)‖pB ‖ len(K)‖K ‖ len(w)‖w
 * Ke ‖ Ka = SHA-256(TT)
 * KcA ‖ KcB = HKDF-SHA256(Ka, salt none, "ConfirmationKeys" ‖ AAD, 32 bytes)
 * cA = HMAC(KcA, TT)       cB = HMAC(KcB, TT)
 * ```
 *
 * `len` is 8 bytes, little-endian; points are uncompressed (65 bytes).
 * The secret scalars are drawn by the shell, so that this core stays
 * deterministic and is tested against the RFC's vectors. Nothing moves
 * before each side has checked the other's confirmation; a wrong code
 * shows as a confirmation that does not match, and tells the guesser
 * nothing about the code but "not this one".
 *
 * This is the foundation of the shared code of issue 13; the tools do not
 * use it yet.
 *
 * @module
 */
import { p256 } from "@noble/curves/nist.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { hkdf } from "@noble/hashes/hkdf.js";
import { hmac } from "@noble/hashes/hmac.js";
import { ProtocolError } from "../errors.ts";

const Point = p256.Point;
type Point = typeof Point.BASE;

/** The group's order. */
export const ORDER: bigint = Point.Fn.ORDER;

/** M and N for P-256, RFC 9382 section 6 (SEC 1 compressed). */
const M = Point.fromHex("02886e2f97ace46e55ba9dd7242579f2993b64e16ef3dcab95afd497333d8fa12f");
const N = Point.fromHex("03d8bbd6c639c62937b04d997f38c3770719c629d7014d49a24b4f98baa1292b49");

/** Bytes of a share: an uncompressed P-256 point. */
export const SHARE_LENGTH = 65;
/** Bytes of a key confirmation (HMAC-SHA256). */
export const CONFIRM_LENGTH = 32;

/** Which side of the exchange: A sends pA (the server here), B sends pB. */
export type Spake2Role = "A" | "B";

/** What both sides derive once they have each other's share. */
export interface Spake2Keys {
  /** The transcript TT. */
  transcript: Uint8Array;
  /** The shared key Ke (16 bytes): what the session's keys come from. */
  ke: Uint8Array;
  /** Ka, from which the confirmation keys come. */
  ka: Uint8Array;
  /** A's confirmation key. */
  kcA: Uint8Array;
  /** B's confirmation key. */
  kcB: Uint8Array;
  /** The confirmation this side sends. */
  ownConfirmation: Uint8Array;
  /** The confirmation this side expects from the peer. */
  peerConfirmation: Uint8Array;
}

/** One side of a SPAKE2 exchange. */
export class Spake2 {
  #role: Spake2Role;
  #w: bigint;
  #secret: bigint;
  #idA: Uint8Array;
  #idB: Uint8Array;
  #aad: Uint8Array;
  #share: Uint8Array;

  /**
   * One side, with the code's scalar `w`, a secret scalar drawn uniformly
   * from 1 to {@link ORDER} − 1 ({@link scalarFromBytes} of random bytes), the two
   * identities and any associated data bound into the confirmation keys.
   */
  constructor(
    role: Spake2Role,
    w: bigint,
    secret: bigint,
    ids: { a: Uint8Array; b: Uint8Array },
    aad: Uint8Array = new Uint8Array(0),
  ) {
    if (w <= 0n || w >= ORDER || secret <= 0n || secret >= ORDER) {
      throw new RangeError("SPAKE2 scalars must be from 1 to the group order less one");
    }
    this.#role = role;
    this.#w = w;
    this.#secret = secret;
    this.#idA = ids.a;
    this.#idB = ids.b;
    this.#aad = aad;
    const blind = role === "A" ? M : N;
    this.#share = Point.BASE.multiply(secret).add(blind.multiply(w)).toBytes(false);
  }

  /** This side's share (pA or pB), to send. */
  get share(): Uint8Array {
    return this.#share;
  }

  /**
   * Takes the peer's share; throws {@link ProtocolError} if it is not a
   * point of the curve (or the identity). Returns the keys and the
   * confirmations to exchange.
   */
  finish(peer: Uint8Array): Spake2Keys {
    if (peer.length !== SHARE_LENGTH) throw new ProtocolError("Peer's share has the wrong length");
    let q: Point;
    try {
      q = Point.fromBytes(peer);
      q.assertValidity();
    } catch {
      throw new ProtocolError("Peer's share is not a point of the curve");
    }
    if (q.equals(Point.ZERO)) throw new ProtocolError("Peer's share is the identity");
    const unblind = this.#role === "A" ? N : M;
    const k = q.subtract(unblind.multiply(this.#w)).multiply(this.#secret);
    if (k.equals(Point.ZERO)) throw new ProtocolError("Peer's share gives the identity");
    const [pA, pB] = this.#role === "A" ? [this.#share, peer] : [peer, this.#share];
    const transcript = concatLengthPrefixed([
      this.#idA,
      this.#idB,
      pA,
      pB,
      k.toBytes(false),
      scalarBytes(this.#w),
    ]);
    const hashed = sha256(transcript);
    const ke = hashed.slice(0, 16);
    const ka = hashed.slice(16);
    const info = new Uint8Array([...new TextEncoder().encode("ConfirmationKeys"), ...this.#aad]);
    const kc = hkdf(sha256, ka, undefined, info, 32);
    const kcA = kc.slice(0, 16);
    const kcB = kc.slice(16);
    const cA = hmac(sha256, kcA, transcript);
    const cB = hmac(sha256, kcB, transcript);
    return {
      transcript,
      ke,
      ka,
      kcA,
      kcB,
      ownConfirmation: this.#role === "A" ? cA : cB,
      peerConfirmation: this.#role === "A" ? cB : cA,
    };
  }
}

/** Whether two confirmations are equal, in time that does not depend on where they differ. */
export function confirmationsMatch(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

/**
 * A scalar from 48 uniformly random bytes (the shell draws them), reduced
 * modulo the order: the bias is under 2^-128. Never 0.
 */
export function scalarFromBytes(bytes: Uint8Array): bigint {
  if (bytes.length < 48) throw new RangeError("A scalar needs 48 random bytes");
  let v = 0n;
  for (const b of bytes) v = (v << 8n) | BigInt(b);
  return (v % (ORDER - 1n)) + 1n;
}

/** `len(x) ‖ x` for each part, len as 8 bytes little-endian. */
function concatLengthPrefixed(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + 8 + p.length, 0));
  const v = new DataView(out.buffer);
  let at = 0;
  for (const p of parts) {
    v.setBigUint64(at, BigInt(p.length), true);
    out.set(p, at + 8);
    at += 8 + p.length;
  }
  return out;
}

/** A scalar as 32 big-endian bytes. */
function scalarBytes(s: bigint): Uint8Array {
  const out = new Uint8Array(32);
  for (let i = 31; i >= 0; i--) {
    out[i] = Number(s & 0xffn);
    s >>= 8n;
  }
  return out;
}
