/**
 * MD5 helpers over `node:crypto`, which is native and the fastest MD5 Deno
 * offers. MD5 here detects accidental corruption; it is not a defence
 * against an attacker who can rewrite both data and digest.
 *
 * @module
 */
import { createHash, type Hash } from "node:crypto";

/** Length of an MD5 digest in bytes. */
export const MD5_LENGTH = 16;

/** The MD5 digest of `data` as 16 bytes. */
export function md5(data: Uint8Array): Uint8Array {
  const digest = createHash("md5").update(data).digest();
  return new Uint8Array(digest.buffer, digest.byteOffset, MD5_LENGTH);
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
  #hash: Hash = createHash("md5");
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
    return this.#hash.digest("hex");
  }
}
