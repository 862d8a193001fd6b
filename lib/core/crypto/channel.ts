/**
 * Sealing with an AEAD after the handshake: ChaCha20-Poly1305 (RFC 8439)
 * through `node:crypto`, Deno's native implementation. No I/O.
 *
 * Each direction has its own 32-byte key, derived from SPAKE2's Ke with
 * HKDF-SHA256, so the two directions never share a nonce. The nonce is
 * four zero bytes and a 64-bit count of the messages sealed under the key:
 * it never repeats, and the opener, which expects each count in turn,
 * rejects a replayed, dropped or reordered message as tampering.
 *
 * @module
 */
import { createCipheriv, createDecipheriv } from "node:crypto";
import { hkdf } from "@noble/hashes/hkdf.js";
import { sha256 } from "@noble/hashes/sha2.js";

/** Bytes the AEAD adds to each message (its tag). */
export const TAG_LENGTH = 16;

/** The two directions' keys of a session. */
export interface SessionKeys {
  /** Seals what the server sends. */
  serverToClient: Uint8Array;
  /** Seals what the client sends. */
  clientToServer: Uint8Array;
}

/** Each direction's key from SPAKE2's Ke, for one protocol (`context`). */
export function sessionKeys(ke: Uint8Array, context: string): SessionKeys {
  const key = (dir: string) =>
    hkdf(sha256, ke, undefined, new TextEncoder().encode(`sockets ${context} ${dir}`), 32);
  return { serverToClient: key("server to client"), clientToServer: key("client to server") };
}

/**
 * Seals under an explicit 12-byte nonce, for datagrams, which carry what
 * their nonce is made of (the caller sees to it that a nonce never repeats
 * under a key). Ciphertext then tag.
 */
export function sealAt(
  key: Uint8Array,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array,
): Uint8Array {
  const out = new Uint8Array(plaintext.length + TAG_LENGTH);
  sealTo(out, 0, key, nonce, plaintext, aad);
  return out;
}

/** Seals into `out` at `offset`: ciphertext then tag. The one place that seals. */
function sealTo(
  out: Uint8Array,
  offset: number,
  key: Uint8Array,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array,
): void {
  const c = createCipheriv("chacha20-poly1305", key, nonce, { authTagLength: TAG_LENGTH });
  c.setAAD(aad, { plaintextLength: plaintext.length });
  const body = c.update(plaintext);
  out.set(body, offset);
  out.set(c.final(), offset + body.length); // empty for a stream cipher
  out.set(c.getAuthTag(), offset + plaintext.length);
}

/** Opens what {@link sealAt} sealed, or null if it fails its tag. */
export function openAt(
  key: Uint8Array,
  nonce: Uint8Array,
  sealed: Uint8Array,
  aad: Uint8Array,
): Uint8Array | null {
  if (sealed.length < TAG_LENGTH) return null;
  const body = sealed.subarray(0, sealed.length - TAG_LENGTH);
  const d = createDecipheriv("chacha20-poly1305", key, nonce, { authTagLength: TAG_LENGTH });
  d.setAAD(aad, { plaintextLength: body.length });
  d.setAuthTag(sealed.subarray(sealed.length - TAG_LENGTH));
  try {
    const a = d.update(body);
    const rest = d.final(); // checks the tag; empty for a stream cipher
    if (rest.length === 0) return new Uint8Array(a.buffer, a.byteOffset, a.length);
    const out = new Uint8Array(a.length + rest.length);
    out.set(a, 0);
    out.set(rest, a.length);
    return out;
  } catch {
    return null;
  }
}

function nonce(count: bigint): Uint8Array {
  const n = new Uint8Array(12);
  new DataView(n.buffer).setBigUint64(4, count);
  return n;
}

/** Seals one direction's messages, each under the next nonce. */
export class Sealer {
  #key: Uint8Array;
  #count = 0n;

  /** A sealer under `key` (32 bytes). */
  constructor(key: Uint8Array) {
    this.#key = key;
  }

  /** `plaintext` sealed, bound to `aad`: ciphertext then tag. */
  seal(plaintext: Uint8Array, aad: Uint8Array): Uint8Array {
    const out = new Uint8Array(plaintext.length + TAG_LENGTH);
    this.sealInto(out, 0, plaintext, aad);
    return out;
  }

  /**
   * Seals `plaintext` into `out` at `offset` (ciphertext then tag,
   * `plaintext.length + TAG_LENGTH` bytes), so a caller can put a header
   * before it without another copy.
   */
  sealInto(out: Uint8Array, offset: number, plaintext: Uint8Array, aad: Uint8Array): void {
    sealTo(out, offset, this.#key, nonce(this.#count++), plaintext, aad);
  }
}

/** Opens one direction's messages, each expected under the next nonce. */
export class Opener {
  #key: Uint8Array;
  #count = 0n;

  /** An opener under `key` (32 bytes). */
  constructor(key: Uint8Array) {
    this.#key = key;
  }

  /**
   * The plaintext of `sealed` (bound to `aad`), or null when it was not
   * sealed under this key at the expected count: changed on the way,
   * replayed, reordered, or from someone without the key.
   */
  open(sealed: Uint8Array, aad: Uint8Array): Uint8Array | null {
    const plain = openAt(this.#key, nonce(this.#count), sealed, aad);
    if (plain) this.#count++;
    return plain;
  }
}
