/**
 * Native bindings through Deno FFI: PortAudio, OpenSSL's libcrypto, and
 * Linux's libc (`openat2` and the `*at` calls).
 *
 * @module
 */
export * from "./portaudio/mod.ts";
export * from "./openssl/mod.ts";
export * from "./libc/mod.ts";
