/**
 * PortAudio through Deno FFI.
 *
 * @module
 */
export * from "./portaudio.ts";
export * from "./errors.ts";
export { candidates, installHint, loadPortAudio, PATH_VARIABLE } from "./library.ts";
export type { DeviceInfo, HostApiInfo, StreamInfo } from "./structs.ts";
export { type PortAudioSymbols, SYMBOLS } from "./symbols.ts";
export { LAYOUT } from "./structs.ts";
