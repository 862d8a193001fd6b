/**
 * Typed errors of the PortAudio binding.
 *
 * @module
 */

/** PortAudio error codes this binding treats specially (portaudio.h, PaErrorCode). */
export const PaErrorCode = {
  paNoError: 0,
  paInvalidChannelCount: -9998,
  paInvalidSampleRate: -9997,
  paInvalidDevice: -9996,
  paSampleFormatNotSupported: -9994,
  paBadIODeviceCombination: -9993,
  paDeviceUnavailable: -9985,
  paOutputUnderflowed: -9980,
  paInputOverflowed: -9981,
  paNotInitialized: -10000,
} as const;

/** A PortAudio call failed; carries PortAudio's error code and text. */
export class PortAudioError extends Error {
  /** PortAudio's PaError code (negative). */
  readonly code: number;
  /** The function that failed, e.g. `Pa_OpenStream`. */
  readonly call: string;

  /** Creates an error for `call` failing with PortAudio's `code` and `text`. */
  constructor(call: string, code: number, text: string, context?: string) {
    super(`${context ?? `PortAudio ${call} failed`}: ${text} (PortAudio error ${code})`);
    this.name = "PortAudioError";
    this.code = code;
    this.call = call;
  }
}

/** The PortAudio library could not be loaded. */
export class PortAudioLoadError extends Error {
  /** Creates a load error with a one-line fix. */
  constructor(message: string) {
    super(message);
    this.name = "PortAudioLoadError";
  }
}
