/**
 * Typed errors of the libcrypto binding.
 *
 * @module
 */

/** A libcrypto call failed; carries OpenSSL's packed error code and text. */
export class OpenSslError extends Error {
  /** OpenSSL's packed error code (`ERR_get_error`), 0 when it queued none. */
  readonly code: bigint;
  /** The function that failed, e.g. `EVP_CipherInit_ex`. */
  readonly call: string;

  /** Creates an error for `call` failing with OpenSSL's `code` and `text`. */
  constructor(call: string, code: bigint, text: string) {
    super(`OpenSSL ${call} failed: ${text} (OpenSSL error 0x${code.toString(16)})`);
    this.name = "OpenSslError";
    this.code = code;
    this.call = call;
  }
}

/** libcrypto could not be loaded. */
export class LibcryptoLoadError extends Error {
  /** Creates a load error with a one-line fix. */
  constructor(message: string) {
    super(message);
    this.name = "LibcryptoLoadError";
  }
}
