/**
 * Native bindings: PortAudio through Deno FFI.
 *
 * @module
 */
export * from "./portaudio/mod.ts";
