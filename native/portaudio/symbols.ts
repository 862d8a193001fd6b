/**
 * The one typed table of PortAudio symbols this binding uses (portaudio.h,
 * v19). C `unsigned long` and `long` are 64-bit on Linux and macOS but
 * 32-bit on Windows, so their FFI types follow the platform.
 *
 * @module
 */

/** FFI type of C `unsigned long` on this platform. */
export const ULONG = Deno.build.os === "windows" ? "u32" : "u64";
/** FFI type of C `long` on this platform. */
export const LONG = Deno.build.os === "windows" ? "i32" : "i64";

/** Blocking I/O calls run on a separate thread so the event loop keeps serving sockets. */
const io = { nonblocking: true } as const;

/** Every PortAudio function this binding calls. */
export const SYMBOLS = {
  Pa_Initialize: { parameters: [], result: "i32" },
  Pa_Terminate: { parameters: [], result: "i32" },
  Pa_GetVersion: { parameters: [], result: "i32" },
  Pa_GetVersionText: { parameters: [], result: "pointer" },
  Pa_GetErrorText: { parameters: ["i32"], result: "pointer" },
  Pa_GetHostApiCount: { parameters: [], result: "i32" },
  Pa_GetDefaultHostApi: { parameters: [], result: "i32" },
  Pa_GetHostApiInfo: { parameters: ["i32"], result: "pointer" },
  Pa_GetDeviceCount: { parameters: [], result: "i32" },
  Pa_GetDefaultInputDevice: { parameters: [], result: "i32" },
  Pa_GetDefaultOutputDevice: { parameters: [], result: "i32" },
  Pa_GetDeviceInfo: { parameters: ["i32"], result: "pointer" },
  Pa_IsFormatSupported: { parameters: ["pointer", "pointer", "f64"], result: "i32" },
  Pa_OpenStream: {
    // stream**, in params*, out params*, rate, frames per buffer, flags, callback, user data
    parameters: ["buffer", "pointer", "pointer", "f64", ULONG, ULONG, "pointer", "pointer"],
    result: "i32",
    ...io,
  },
  Pa_StartStream: { parameters: ["pointer"], result: "i32", ...io },
  Pa_StopStream: { parameters: ["pointer"], result: "i32", ...io },
  Pa_AbortStream: { parameters: ["pointer"], result: "i32", ...io },
  Pa_CloseStream: { parameters: ["pointer"], result: "i32", ...io },
  Pa_IsStreamActive: { parameters: ["pointer"], result: "i32" },
  Pa_IsStreamStopped: { parameters: ["pointer"], result: "i32" },
  Pa_GetStreamInfo: { parameters: ["pointer"], result: "pointer" },
  Pa_GetStreamTime: { parameters: ["pointer"], result: "f64" },
  Pa_ReadStream: { parameters: ["pointer", "buffer", ULONG], result: "i32", ...io },
  Pa_WriteStream: { parameters: ["pointer", "buffer", ULONG], result: "i32", ...io },
  Pa_GetStreamReadAvailable: { parameters: ["pointer"], result: LONG },
  Pa_GetStreamWriteAvailable: { parameters: ["pointer"], result: LONG },
  Pa_GetSampleSize: { parameters: [ULONG], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The loaded library's functions. */
export type PortAudioSymbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];
