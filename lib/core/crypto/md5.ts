/**
 * MD5 helpers over the {@link cryptoProvider} in use: `node:crypto`, or
 * OpenSSL's libcrypto when a shell installed it (faster for bulk data). MD5 here detects accidental corruption; it is not a defence
 * against an attacker who can rewrite both data and digest.
 *
 * @module
 */
import { cryptoProvider, type Md5State } from "./provider.ts";

/** Length of an MD5 digest in bytes. */
export const MD5_LENGTH = 16;

/** The MD5 digest of `data` as 16 bytes. */
export function md5(data: Uint8Array): Uint8Array {
  const h = cryptoProvider().md5();
  h.update(data);
  return h.digest();
}

/** Lower-case hexadecimal form of bytes (as `md5sum` prints digests). */
export function toHex(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

/** Whether two byte arrays hold the same bytes. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** An incremental MD5 over a stream of byte arrays. */
export class Md5Stream {
  #hash: Md5State = cryptoProvider().md5();
  #done = false;

  /** Feeds more bytes. */
  update(data: Uint8Array): this {
    if (this.#done) throw new Error("MD5 stream was already finished");
    this.#hash.update(data);
    return this;
  }

  /** Finishes and returns the digest as hexadecimal. */
  hex(): string {
    this.#done = true;
    return toHex(this.#hash.digest());
  }
}

/** A trial step of a {@link PrefixMd5}: the digest it would have, kept only on commit. */
export interface PrefixTrial {
  /** MD5 of everything fed before plus the trial's bytes. */
  readonly digest: Uint8Array;
  /** Keeps the trial's bytes fed, so the next step starts after them. */
  commit(): void;
}

/**
 * The MD5 of a growing prefix of a stream, one pass over the bytes: each
 * step gives the digest of everything fed so far (node:crypto's
 * `Hash.copy()` finishes a copy and leaves the running state alone). The
 * File-TCP protocol checks every chunk by the MD5 of the file up to its
 * end, so each side hashes the file once and the last chunk's check value
 * is the whole file's MD5, exactly as `md5sum` prints it.
 */
export class PrefixMd5 {
  // Made on first use: an offer refused before any data costs no hash state
  // (a native one, with OpenSSL, which the garbage collector cannot see).
  #state: Md5State | undefined;
  #length = 0;

  get #hash(): Md5State {
    return this.#state ??= cryptoProvider().md5();
  }

  set #hash(state: Md5State) {
    this.#state = state;
  }

  /** Bytes fed so far. */
  get length(): number {
    return this.#length;
  }

  /** Feeds `data` and returns the MD5 of everything fed so far. */
  push(data: Uint8Array): Uint8Array {
    this.#hash.update(data);
    this.#length += data.length;
    return this.digest();
  }

  /** The MD5 of everything fed so far (the stream stays open). */
  digest(): Uint8Array {
    return this.#hash.copy().digest();
  }

  /**
   * The MD5 that feeding `data` would give, without feeding it: a receiver
   * compares it with the sender's claim and commits only bytes that match.
   */
  trial(data: Uint8Array): PrefixTrial {
    const next = this.#hash.copy();
    next.update(data);
    return {
      digest: next.copy().digest(),
      commit: () => {
        this.#hash = next;
        this.#length += data.length;
      },
    };
  }
}
