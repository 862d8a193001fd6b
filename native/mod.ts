/**
 * Native bindings through Deno FFI: PortAudio, and OpenSSL's libcrypto.
 *
 * @module
 */
export * from "./portaudio/mod.ts";
export * from "./openssl/mod.ts";
