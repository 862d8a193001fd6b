/**
 * Layouts of the PortAudio structs this binding reads and writes, for
 * 64-bit Linux, macOS and Windows. Every field offset is the same on the
 * three; only `PaSampleFormat` (C `unsigned long`) is 4 bytes on Windows
 * and 8 elsewhere, and on Windows its upper 4 bytes are padding, so writing
 * a 32-bit value followed by 4 zero bytes is right for all three. A test
 * checks these offsets against `portaudio.h` with a C compiler.
 *
 * @module
 */

/** Offsets and sizes of the structs, in bytes. */
export const LAYOUT = {
  PaHostApiInfo: {
    size: 32,
    structVersion: 0,
    type: 4,
    name: 8,
    deviceCount: 16,
    defaultInputDevice: 20,
    defaultOutputDevice: 24,
  },
  PaDeviceInfo: {
    size: 72,
    structVersion: 0,
    name: 8,
    hostApi: 16,
    maxInputChannels: 20,
    maxOutputChannels: 24,
    defaultLowInputLatency: 32,
    defaultLowOutputLatency: 40,
    defaultHighInputLatency: 48,
    defaultHighOutputLatency: 56,
    defaultSampleRate: 64,
  },
  PaStreamParameters: {
    size: 32,
    device: 0,
    channelCount: 4,
    sampleFormat: 8,
    suggestedLatency: 16,
    hostApiSpecificStreamInfo: 24,
  },
  PaStreamInfo: { size: 32, structVersion: 0, inputLatency: 8, outputLatency: 16, sampleRate: 24 },
} as const;

/** A host API (ALSA, CoreAudio, WASAPI…). */
export interface HostApiInfo {
  /** Index in PortAudio's list. */
  index: number;
  /** PaHostApiTypeId. */
  type: number;
  /** Name, e.g. "ALSA". */
  name: string;
  /** Number of devices. */
  deviceCount: number;
  /** Default input device (global index), or -1. */
  defaultInputDevice: number;
  /** Default output device (global index), or -1. */
  defaultOutputDevice: number;
}

/** An audio device. */
export interface DeviceInfo {
  /** Global device index. */
  index: number;
  /** Device name. */
  name: string;
  /** Index of its host API. */
  hostApi: number;
  /** Most input channels (0 for an output-only device). */
  maxInputChannels: number;
  /** Most output channels (0 for an input-only device). */
  maxOutputChannels: number;
  /** Default low input latency in seconds. */
  defaultLowInputLatency: number;
  /** Default low output latency in seconds. */
  defaultLowOutputLatency: number;
  /** Default high input latency in seconds. */
  defaultHighInputLatency: number;
  /** Default high output latency in seconds. */
  defaultHighOutputLatency: number;
  /** Default sample rate in Hz. */
  defaultSampleRate: number;
}

/** Actual latencies and rate of an open stream. */
export interface StreamInfo {
  /** Input latency in seconds (0 for an output stream). */
  inputLatency: number;
  /** Output latency in seconds (0 for an input stream). */
  outputLatency: number;
  /** Actual sample rate in Hz. */
  sampleRate: number;
}

function cString(view: Deno.UnsafePointerView, offset: number): string {
  const p = view.getPointer(offset);
  return p === null ? "" : Deno.UnsafePointerView.getCString(p);
}

/** Reads a PaHostApiInfo. */
export function readHostApiInfo(ptr: Deno.PointerObject, index: number): HostApiInfo {
  const v = new Deno.UnsafePointerView(ptr);
  const L = LAYOUT.PaHostApiInfo;
  return {
    index,
    type: v.getInt32(L.type),
    name: cString(v, L.name),
    deviceCount: v.getInt32(L.deviceCount),
    defaultInputDevice: v.getInt32(L.defaultInputDevice),
    defaultOutputDevice: v.getInt32(L.defaultOutputDevice),
  };
}

/** Reads a PaDeviceInfo. */
export function readDeviceInfo(ptr: Deno.PointerObject, index: number): DeviceInfo {
  const v = new Deno.UnsafePointerView(ptr);
  const L = LAYOUT.PaDeviceInfo;
  return {
    index,
    name: cString(v, L.name),
    hostApi: v.getInt32(L.hostApi),
    maxInputChannels: v.getInt32(L.maxInputChannels),
    maxOutputChannels: v.getInt32(L.maxOutputChannels),
    defaultLowInputLatency: v.getFloat64(L.defaultLowInputLatency),
    defaultLowOutputLatency: v.getFloat64(L.defaultLowOutputLatency),
    defaultHighInputLatency: v.getFloat64(L.defaultHighInputLatency),
    defaultHighOutputLatency: v.getFloat64(L.defaultHighOutputLatency),
    defaultSampleRate: v.getFloat64(L.defaultSampleRate),
  };
}

/** Reads a PaStreamInfo. */
export function readStreamInfo(ptr: Deno.PointerObject): StreamInfo {
  const v = new Deno.UnsafePointerView(ptr);
  const L = LAYOUT.PaStreamInfo;
  return {
    inputLatency: v.getFloat64(L.inputLatency),
    outputLatency: v.getFloat64(L.outputLatency),
    sampleRate: v.getFloat64(L.sampleRate),
  };
}

/** Stream parameters to encode. */
export interface StreamParameters {
  device: number;
  channelCount: number;
  sampleFormat: number;
  suggestedLatency: number;
}

/** Encodes a PaStreamParameters into a new buffer (keep it alive during the call). */
export function encodeStreamParameters(p: StreamParameters): Uint8Array<ArrayBuffer> {
  const L = LAYOUT.PaStreamParameters;
  const buf = new Uint8Array(L.size);
  const v = new DataView(buf.buffer);
  v.setInt32(L.device, p.device, true);
  v.setInt32(L.channelCount, p.channelCount, true);
  v.setUint32(L.sampleFormat, p.sampleFormat, true); // upper 4 bytes stay 0
  v.setFloat64(L.suggestedLatency, p.suggestedLatency, true);
  // hostApiSpecificStreamInfo stays NULL.
  return buf;
}
