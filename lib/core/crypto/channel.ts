/**
 * Sealing with an AEAD after the handshake: ChaCha20-Poly1305 (RFC 8439)
 * from the {@link cryptoProvider} in use (`node:crypto` unless a shell
 * installed OpenSSL's). No I/O.
 *
 * Each direction has its own 32-byte key, derived from SPAKE2's Ke with
 * HKDF-SHA256, so the two directions never share a nonce. The nonce is
 * four zero bytes and a 64-bit count of the messages sealed under the key:
 * it never repeats, and the opener, which expects each count in turn,
 * rejects a replayed, dropped or reordered message as tampering.
 *
 * @module
 */
import { type CryptoProvider, cryptoProvider, type KeyedAead } from "./provider.ts";
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

/** The keyed AEAD for `key` from the provider in use, made once per key. */
const keyed = new WeakMap<Uint8Array, { provider: CryptoProvider; aead: KeyedAead }>();
function aeadFor(key: Uint8Array): KeyedAead {
  const provider = cryptoProvider();
  let k = keyed.get(key);
  if (!k || k.provider !== provider) {
    k = { provider, aead: provider.chacha20poly1305(key) };
    keyed.set(key, k);
  }
  return k.aead;
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
  aeadFor(key).sealInto(out, 0, nonce, plaintext, aad);
  return out;
}

/** Opens what {@link sealAt} sealed, or null if it fails its tag. */
export function openAt(
  key: Uint8Array,
  nonce: Uint8Array,
  sealed: Uint8Array,
  aad: Uint8Array,
): Uint8Array | null {
  return aeadFor(key).open(nonce, sealed, aad);
}

function nonce(count: bigint): Uint8Array {
  const n = new Uint8Array(12);
  new DataView(n.buffer).setBigUint64(4, count);
  return n;
}

/** Seals one direction's messages, each under the next nonce. */
export class Sealer {
  #aead: KeyedAead;
  #count = 0n;

  /** A sealer under `key` (32 bytes), from the provider in use now. */
  constructor(key: Uint8Array) {
    this.#aead = cryptoProvider().chacha20poly1305(key);
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
    this.#aead.sealInto(out, offset, nonce(this.#count++), plaintext, aad);
  }
}

/** Opens one direction's messages, each expected under the next nonce. */
export class Opener {
  #aead: KeyedAead;
  #count = 0n;

  /** An opener under `key` (32 bytes), from the provider in use now. */
  constructor(key: Uint8Array) {
    this.#aead = cryptoProvider().chacha20poly1305(key);
  }

  /**
   * The plaintext of `sealed` (bound to `aad`), or null when it was not
   * sealed under this key at the expected count: changed on the way,
   * replayed, reordered, or from someone without the key. `sealed` is
   * consumed: the plaintext may be written over it.
   */
  open(sealed: Uint8Array, aad: Uint8Array): Uint8Array | null {
    const plain = this.#aead.open(nonce(this.#count), sealed, aad, true);
    if (plain) this.#count++;
    return plain;
  }
}
