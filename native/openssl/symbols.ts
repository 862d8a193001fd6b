/**
 * The one typed table of libcrypto symbols this binding uses (OpenSSL 3,
 * `evp.h` and `err.h`): the EVP AEAD interface for ChaCha20-Poly1305 and
 * the EVP digest interface for MD5. `size_t` is `usize`.
 *
 * @module
 */

/** Every libcrypto function this binding calls. */
export const SYMBOLS = {
  OpenSSL_version_num: { parameters: [], result: "u64" },
  ERR_get_error: { parameters: [], result: "u64" },
  ERR_error_string_n: { parameters: ["u64", "buffer", "usize"], result: "void" },
  EVP_chacha20_poly1305: { parameters: [], result: "pointer" },
  EVP_CIPHER_CTX_new: { parameters: [], result: "pointer" },
  EVP_CIPHER_CTX_free: { parameters: ["pointer"], result: "void" },
  // ctx, cipher, engine, key, iv, enc (1 seal, 0 open, -1 unchanged)
  EVP_CipherInit_ex: {
    parameters: ["pointer", "pointer", "pointer", "buffer", "buffer", "i32"],
    result: "i32",
  },
  // ctx, out (null for additional data), out length*, in, in length
  EVP_CipherUpdate: { parameters: ["pointer", "buffer", "buffer", "buffer", "i32"], result: "i32" },
  EVP_CipherFinal_ex: { parameters: ["pointer", "buffer", "buffer"], result: "i32" },
  // ctx, EVP_CTRL_AEAD_*, arg, ptr
  EVP_CIPHER_CTX_ctrl: { parameters: ["pointer", "i32", "i32", "buffer"], result: "i32" },
  EVP_md5: { parameters: [], result: "pointer" },
  EVP_MD_CTX_new: { parameters: [], result: "pointer" },
  EVP_MD_CTX_free: { parameters: ["pointer"], result: "void" },
  EVP_MD_CTX_copy_ex: { parameters: ["pointer", "pointer"], result: "i32" },
  EVP_DigestInit_ex: { parameters: ["pointer", "pointer", "pointer"], result: "i32" },
  EVP_DigestUpdate: { parameters: ["pointer", "buffer", "usize"], result: "i32" },
  EVP_DigestFinal_ex: { parameters: ["pointer", "buffer", "buffer"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The loaded symbols' type. */
export type LibcryptoSymbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** `EVP_CTRL_AEAD_GET_TAG` (evp.h). */
export const EVP_CTRL_AEAD_GET_TAG = 0x10;
/** `EVP_CTRL_AEAD_SET_TAG` (evp.h). */
export const EVP_CTRL_AEAD_SET_TAG = 0x11;
