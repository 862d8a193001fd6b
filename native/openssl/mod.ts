/**
 * OpenSSL 3's libcrypto through Deno FFI: ChaCha20-Poly1305 and MD5.
 *
 * @module
 */
export { ChaCha20Poly1305, Md5Context } from "./crypto.ts";
export { LibcryptoLoadError, OpenSslError } from "./errors.ts";
export { LIBCRYPTO_PATH_VARIABLE, libcryptoCandidates, loadLibcrypto } from "./library.ts";
export {
  EVP_CTRL_AEAD_GET_TAG,
  EVP_CTRL_AEAD_SET_TAG,
  type LibcryptoSymbols,
  SYMBOLS as LIBCRYPTO_SYMBOLS,
} from "./symbols.ts";
