/**
 * Installs OpenSSL's libcrypto (through FFI) as the provider of
 * ChaCha20-Poly1305 and MD5 when Deno grants `--allow-ffi` and the library
 * loads; otherwise the tools keep `node:crypto`. Same bytes either way:
 * libcrypto is faster for bulk data (here ChaCha20-Poly1305 at 2.9 GB/s
 * against 0.5, MD5 at 0.60 against 0.51), which is what lets an encrypted
 * File-TCP keep up with a plain one.
 *
 * `SOCKETS_CRYPTO=node` keeps `node:crypto` even when libcrypto loads; a
 * `LIBCRYPTO_PATH` that does not load is an error (a user who names a
 * library means it).
 *
 * @module
 */
import {
  type CryptoProvider,
  cryptoProvider,
  NODE_CRYPTO,
  setCryptoProvider,
} from "../core/crypto/provider.ts";
import {
  ChaCha20Poly1305,
  LIBCRYPTO_PATH_VARIABLE,
  loadLibcrypto,
  Md5Context,
} from "../../native/mod.ts";
import { UserError } from "../core/errors.ts";
import { grantedEnv } from "./env.ts";

/** The libcrypto provider. */
export const OPENSSL_CRYPTO: CryptoProvider = {
  name: "OpenSSL libcrypto (FFI)",
  md5: () => new Md5Context(),
  chacha20poly1305: (key) => new ChaCha20Poly1305(key),
};

let tried = false;

/**
 * Uses libcrypto if it can (once per process) and returns the name of the
 * provider in use. Never prompts: without the permission or the library,
 * `node:crypto` stays. Throws {@link UserError} only when `LIBCRYPTO_PATH`
 * names a library that does not load.
 */
export function useNativeCrypto(): string {
  if (!tried) {
    tried = true;
    if (wanted() && Deno.permissions.querySync({ name: "ffi" }).state === "granted") {
      try {
        loadLibcrypto();
        setCryptoProvider(OPENSSL_CRYPTO);
      } catch (err) {
        // A library the user named and that does not load is an error;
        // no libcrypto where we looked is not.
        if (named()) throw new UserError(err instanceof Error ? err.message : String(err));
        setCryptoProvider(NODE_CRYPTO);
      }
    }
  }
  return cryptoProvider().name;
}

function named(): boolean {
  return !!grantedEnv(LIBCRYPTO_PATH_VARIABLE);
}

function wanted(): boolean {
  return grantedEnv("SOCKETS_CRYPTO") !== "node";
}
