/**
 * ChaCha20-Poly1305 and MD5 from the system's OpenSSL 3 through Deno FFI:
 * the same primitives as `node:crypto` (RFC 8439 and RFC 1321, audited
 * code, none written here), several times faster for bulk data because
 * libcrypto uses the CPU's vector instructions.
 *
 * Each object owns its OpenSSL contexts through `#private` handles;
 * `close()` frees them and is idempotent, `using` closes them, and a
 * finalizer frees any left open.
 *
 * @module
 */
import { OpenSslError } from "./errors.ts";
import { loadLibcrypto } from "./library.ts";
import { EVP_CTRL_AEAD_GET_TAG, EVP_CTRL_AEAD_SET_TAG, type LibcryptoSymbols } from "./symbols.ts";

/** Bytes of a ChaCha20-Poly1305 tag. */
const TAG = 16;

/** Frees contexts that their owner never closed. */
const finalizer = new FinalizationRegistry<() => void>((free) => free());

/** Throws {@link OpenSslError} for `call` unless it returned 1. */
function check(lib: LibcryptoSymbols, call: string, result: number): void {
  if (result === 1) return;
  const code = lib.ERR_get_error();
  const text = new Uint8Array(256);
  lib.ERR_error_string_n(code, text, BigInt(text.length));
  const end = text.indexOf(0);
  throw new OpenSslError(
    call,
    code,
    new TextDecoder().decode(text.subarray(0, end < 0 ? 256 : end)),
  );
}

/** A context pointer, or an error naming the call that failed to make it. */
function made(lib: LibcryptoSymbols, call: string, p: Deno.PointerValue): Deno.PointerObject {
  if (p === null) check(lib, call, 0);
  return p!;
}

/** ChaCha20-Poly1305 (RFC 8439) under one 32-byte key. */
export class ChaCha20Poly1305 {
  #lib: LibcryptoSymbols;
  #seal: Deno.PointerObject;
  #open: Deno.PointerObject;
  #closed = false;
  #length = new Uint8Array(4);
  #scratch = new Uint8Array(TAG);

  /** Contexts for sealing and opening under `key` (32 bytes). */
  constructor(key: Uint8Array) {
    if (key.length !== 32) throw new RangeError("ChaCha20-Poly1305 takes a 32-byte key");
    const lib = this.#lib = loadLibcrypto();
    const cipher = lib.EVP_chacha20_poly1305();
    this.#seal = made(lib, "EVP_CIPHER_CTX_new", lib.EVP_CIPHER_CTX_new());
    this.#open = made(lib, "EVP_CIPHER_CTX_new", lib.EVP_CIPHER_CTX_new());
    const seal = this.#seal;
    const open = this.#open;
    finalizer.register(this, () => {
      lib.EVP_CIPHER_CTX_free(seal);
      lib.EVP_CIPHER_CTX_free(open);
    }, this);
    check(lib, "EVP_CipherInit_ex", lib.EVP_CipherInit_ex(seal, cipher, null, key, null, 1));
    check(lib, "EVP_CipherInit_ex", lib.EVP_CipherInit_ex(open, cipher, null, key, null, 0));
  }

  /**
   * Seals `plaintext` bound to `aad` under `nonce` (12 bytes) into `out` at
   * `offset`: ciphertext, then the 16-byte tag.
   */
  sealInto(
    out: Uint8Array,
    offset: number,
    nonce: Uint8Array,
    plaintext: Uint8Array,
    aad: Uint8Array,
  ): void {
    const lib = this.#lib;
    const ctx = this.#live(this.#seal);
    if (out.length < offset + plaintext.length + TAG) throw new RangeError("Output is too short");
    check(lib, "EVP_CipherInit_ex", lib.EVP_CipherInit_ex(ctx, null, null, null, nonce, 1));
    if (aad.length > 0) {
      check(
        lib,
        "EVP_CipherUpdate",
        lib.EVP_CipherUpdate(ctx, null, this.#length, aad, aad.length),
      );
    }
    const body = out.subarray(offset, offset + plaintext.length);
    check(
      lib,
      "EVP_CipherUpdate",
      lib.EVP_CipherUpdate(ctx, body, this.#length, plaintext, plaintext.length),
    );
    const tag = out.subarray(offset + plaintext.length, offset + plaintext.length + TAG);
    check(lib, "EVP_CipherFinal_ex", lib.EVP_CipherFinal_ex(ctx, tag, this.#length));
    check(
      lib,
      "EVP_CIPHER_CTX_ctrl",
      lib.EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TAG, tag),
    );
  }

  /**
   * The plaintext of `sealed` (ciphertext then tag), or null when its tag
   * fails. With `inPlace`, the plaintext is written over the ciphertext
   * and returned as a view of it (no allocation; `sealed` is consumed).
   */
  open(nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array, inPlace = false): Uint8Array | null {
    const lib = this.#lib;
    const ctx = this.#live(this.#open);
    if (sealed.length < TAG) return null;
    const n = sealed.length - TAG;
    const tag = sealed.subarray(n);
    check(lib, "EVP_CipherInit_ex", lib.EVP_CipherInit_ex(ctx, null, null, null, nonce, 0));
    check(
      lib,
      "EVP_CIPHER_CTX_ctrl",
      lib.EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, TAG, tag),
    );
    if (aad.length > 0) {
      check(
        lib,
        "EVP_CipherUpdate",
        lib.EVP_CipherUpdate(ctx, null, this.#length, aad, aad.length),
      );
    }
    const body = sealed.subarray(0, n);
    const out = inPlace ? body : new Uint8Array(n);
    check(lib, "EVP_CipherUpdate", lib.EVP_CipherUpdate(ctx, out, this.#length, body, n));
    // Final checks the tag: 0 means it failed (no error worth raising).
    if (lib.EVP_CipherFinal_ex(ctx, this.#scratch, this.#length) !== 1) {
      lib.ERR_get_error();
      return null;
    }
    return out;
  }

  /** Frees the contexts; idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    finalizer.unregister(this);
    this.#lib.EVP_CIPHER_CTX_free(this.#seal);
    this.#lib.EVP_CIPHER_CTX_free(this.#open);
  }

  /** Closes, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  #live(ctx: Deno.PointerObject): Deno.PointerObject {
    if (this.#closed) throw new Error("ChaCha20-Poly1305 context is closed");
    return ctx;
  }
}

/** An MD5 (RFC 1321) in progress; {@link copy} forks it, {@link digest} ends it. */
export class Md5Context {
  #lib: LibcryptoSymbols;
  #ctx: Deno.PointerObject;
  #closed = false;

  /** A fresh MD5, or a copy of `from`'s state. */
  constructor(from?: Md5Context) {
    const lib = this.#lib = loadLibcrypto();
    const ctx = this.#ctx = made(lib, "EVP_MD_CTX_new", lib.EVP_MD_CTX_new());
    finalizer.register(this, () => lib.EVP_MD_CTX_free(ctx), this);
    if (from) check(lib, "EVP_MD_CTX_copy_ex", lib.EVP_MD_CTX_copy_ex(ctx, from.#live()));
    else check(lib, "EVP_DigestInit_ex", lib.EVP_DigestInit_ex(ctx, lib.EVP_md5(), null));
  }

  /** Feeds more bytes. */
  update(data: Uint8Array): this {
    const lib = this.#lib;
    check(lib, "EVP_DigestUpdate", lib.EVP_DigestUpdate(this.#live(), data, BigInt(data.length)));
    return this;
  }

  /** A second MD5 that continues from this one's state. */
  copy(): Md5Context {
    return new Md5Context(this);
  }

  /** Finishes: the 16-byte digest. The context is closed after. */
  digest(): Uint8Array {
    const out = new Uint8Array(16);
    const lib = this.#lib;
    check(lib, "EVP_DigestFinal_ex", lib.EVP_DigestFinal_ex(this.#live(), out, null));
    this.close();
    return out;
  }

  /** Frees the context; idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    finalizer.unregister(this);
    this.#lib.EVP_MD_CTX_free(this.#ctx);
  }

  /** Closes, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  #live(): Deno.PointerObject {
    if (this.#closed) throw new Error("MD5 context is closed");
    return this.#ctx;
  }
}
