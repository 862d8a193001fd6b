/**
 * Where the bulk primitives come from: ChaCha20-Poly1305 for sealing and
 * MD5 for the checks. The default is `node:crypto` (Deno's native Rust
 * implementations); a shell may install a faster provider of the same
 * primitives (the tools install OpenSSL's libcrypto through FFI when Deno
 * grants `--allow-ffi`), before any session starts. Both give the same
 * bytes: the choice changes speed only, never what is on the wire.
 *
 * @module
 */
import { createCipheriv, createDecipheriv, createHash, type Hash } from "node:crypto";

/** ChaCha20-Poly1305 (RFC 8439) under one 32-byte key. */
export interface KeyedAead {
  /** Seals into `out` at `offset`: ciphertext, then the 16-byte tag. */
  sealInto(
    out: Uint8Array,
    offset: number,
    nonce: Uint8Array,
    plaintext: Uint8Array,
    aad: Uint8Array,
  ): void;
  /**
   * The plaintext of `sealed` (ciphertext then tag), or null when its tag
   * fails. With `inPlace` a provider may write the plaintext over the
   * ciphertext and return a view of it (`sealed` is then consumed).
   */
  open(
    nonce: Uint8Array,
    sealed: Uint8Array,
    aad: Uint8Array,
    inPlace?: boolean,
  ): Uint8Array | null;
}

/** An MD5 in progress. */
export interface Md5State {
  /** Feeds more bytes. */
  update(data: Uint8Array): unknown;
  /** A second MD5 that continues from this one's state. */
  copy(): Md5State;
  /** Finishes: the 16-byte digest. */
  digest(): Uint8Array;
}

/** A source of the bulk primitives. */
export interface CryptoProvider {
  /** What it is, for logs and benchmarks. */
  readonly name: string;
  /** ChaCha20-Poly1305 under `key`. */
  chacha20poly1305(key: Uint8Array): KeyedAead;
  /** A fresh MD5. */
  md5(): Md5State;
}

const TAG = 16;

function nodeMd5(hash: Hash): Md5State {
  return {
    update: (data) => hash.update(data),
    copy: () => nodeMd5(hash.copy()),
    digest: () => {
      const d = hash.digest();
      return new Uint8Array(d.buffer, d.byteOffset, d.length);
    },
  };
}

/** The default provider: `node:crypto`. */
export const NODE_CRYPTO: CryptoProvider = {
  name: "node:crypto",
  md5: () => nodeMd5(createHash("md5")),
  chacha20poly1305: (key) => ({
    sealInto(out, offset, nonce, plaintext, aad) {
      const c = createCipheriv("chacha20-poly1305", key, nonce, { authTagLength: TAG });
      c.setAAD(aad, { plaintextLength: plaintext.length });
      const body = c.update(plaintext);
      out.set(body, offset);
      out.set(c.final(), offset + body.length); // empty for a stream cipher
      out.set(c.getAuthTag(), offset + plaintext.length);
    },
    open(nonce, sealed, aad) {
      if (sealed.length < TAG) return null;
      const body = sealed.subarray(0, sealed.length - TAG);
      const d = createDecipheriv("chacha20-poly1305", key, nonce, { authTagLength: TAG });
      d.setAAD(aad, { plaintextLength: body.length });
      d.setAuthTag(sealed.subarray(sealed.length - TAG));
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
    },
  }),
};

let current: CryptoProvider = NODE_CRYPTO;

/** The provider in use. */
export function cryptoProvider(): CryptoProvider {
  return current;
}

/** Installs `provider` for every session started after this call. */
export function setCryptoProvider(provider: CryptoProvider): void {
  current = provider;
}
