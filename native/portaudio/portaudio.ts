/**
 * A thin, typed PortAudio binding: devices, format checks and blocking-API
 * streams whose reads and writes run off the event loop.
 *
 * ```ts
 * using pa = PortAudio.open();
 * await using mic = await pa.openStream({ direction: "input", device: pa.defaultInputDevice() });
 * await mic.start();
 * const block = new Int16Array(512);
 * await mic.read(block);
 * ```
 *
 * @module
 */
import { PaErrorCode, PortAudioError } from "./errors.ts";
import { loadPortAudio } from "./library.ts";
import { quietly, quietlySync } from "./quiet.ts";
import {
  type DeviceInfo,
  encodeStreamParameters,
  type HostApiInfo,
  readDeviceInfo,
  readHostApiInfo,
  readStreamInfo,
  type StreamInfo,
} from "./structs.ts";
import type { PortAudioSymbols } from "./symbols.ts";

/** PortAudio sample formats (PaSampleFormat bits). */
export const SampleFormat = {
  float32: 0x00000001,
  int32: 0x00000002,
  int16: 0x00000008,
} as const;

/** Sample format names this binding supports. */
export type SampleFormatName = keyof typeof SampleFormat;

/** Bytes per sample of each format. */
export const SAMPLE_FORMAT_BYTES: Record<SampleFormatName, number> = {
  float32: 4,
  int32: 4,
  int16: 2,
};

/** `paNoDevice`. */
export const NO_DEVICE: number = -1;

/** Options of {@link PortAudio.openStream}. */
export interface StreamOptions {
  /** Capture or playback. */
  direction: "input" | "output";
  /** Device index (default: the default device for the direction). */
  device?: number;
  /** Sample rate in Hz (default 44100). */
  sampleRate?: number;
  /** Channels (default 1). */
  channels?: number;
  /** Sample format (default int16). */
  format?: SampleFormatName;
  /** Frames per buffer (default 512). */
  framesPerBuffer?: number;
  /** Suggested latency in seconds (default: the device's default low latency). */
  latency?: number;
}

function toNumber(v: number | bigint): number {
  return typeof v === "bigint" ? Number(v) : v;
}

/** An initialised PortAudio. Terminated when the last user closes. */
export class PortAudio implements Disposable {
  static #users = 0;
  #lib: PortAudioSymbols;
  #closed = false;

  private constructor(lib: PortAudioSymbols) {
    this.#lib = lib;
  }

  /**
   * Loads the library (see `PORTAUDIO_PATH`) and initialises PortAudio.
   * Throws {@link PortAudioLoadError} or {@link PortAudioError}.
   */
  static open(): PortAudio {
    const lib = loadPortAudio();
    if (PortAudio.#users === 0) {
      const code = quietlySync(() => lib.Pa_Initialize());
      check(lib, "Pa_Initialize", code, "Could not initialise PortAudio");
    }
    PortAudio.#users++;
    return new PortAudio(lib);
  }

  /** PortAudio's version number, e.g. 1246976 for 19.6.0. */
  get version(): number {
    return this.#lib.Pa_GetVersion();
  }

  /** PortAudio's version text. */
  get versionText(): string {
    return cstr(this.#lib.Pa_GetVersionText());
  }

  /** The host APIs (ALSA, JACK, CoreAudio, WASAPI…). */
  hostApis(): HostApiInfo[] {
    this.#open();
    const n = this.#lib.Pa_GetHostApiCount();
    if (n < 0) throw error(this.#lib, "Pa_GetHostApiCount", n);
    const out = [];
    for (let i = 0; i < n; i++) {
      const p = this.#lib.Pa_GetHostApiInfo(i);
      if (p) out.push(readHostApiInfo(p, i));
    }
    return out;
  }

  /** Every device. */
  devices(): DeviceInfo[] {
    this.#open();
    const n = this.#lib.Pa_GetDeviceCount();
    if (n < 0) throw error(this.#lib, "Pa_GetDeviceCount", n);
    const out = [];
    for (let i = 0; i < n; i++) {
      const p = this.#lib.Pa_GetDeviceInfo(i);
      if (p) out.push(readDeviceInfo(p, i));
    }
    return out;
  }

  /** One device, or `null` if the index is out of range. */
  device(index: number): DeviceInfo | null {
    this.#open();
    const p = this.#lib.Pa_GetDeviceInfo(index);
    return p ? readDeviceInfo(p, index) : null;
  }

  /** The default input device's index, or {@link NO_DEVICE}. */
  defaultInputDevice(): number {
    this.#open();
    return this.#lib.Pa_GetDefaultInputDevice();
  }

  /** The default output device's index, or {@link NO_DEVICE}. */
  defaultOutputDevice(): number {
    this.#open();
    return this.#lib.Pa_GetDefaultOutputDevice();
  }

  /**
   * Whether a device supports a format. Returns `null` when it does, else
   * PortAudio's reason.
   */
  formatUnsupported(options: StreamOptions): string | null {
    this.#open();
    const params = this.#params(options);
    const ptr = Deno.UnsafePointer.of(params.buf);
    const code = this.#lib.Pa_IsFormatSupported(
      options.direction === "input" ? ptr : null,
      options.direction === "output" ? ptr : null,
      params.rate,
    );
    return code === 0 ? null : text(this.#lib, code);
  }

  /** Opens a blocking-API stream (not started). */
  async openStream(options: StreamOptions): Promise<AudioStream> {
    this.#open();
    const params = this.#params(options);
    const ptr = Deno.UnsafePointer.of(params.buf);
    const out = new BigUint64Array(1);
    const frames = options.framesPerBuffer ?? 512;
    const code = await quietly(() =>
      this.#lib.Pa_OpenStream(
        out,
        options.direction === "input" ? ptr : null,
        options.direction === "output" ? ptr : null,
        params.rate,
        ulong(frames),
        ulong(0),
        null,
        null,
      )
    );
    const dev = this.device(params.device);
    check(
      this.#lib,
      "Pa_OpenStream",
      code,
      `Could not open ${options.direction} device ${params.device}` +
        (dev ? ` (${dev.name})` : "") +
        ` at ${params.rate} Hz, ${params.channels} channel(s), ${params.format}`,
    );
    params.buf.fill(0); // Keep the buffer alive until the call returned.
    const handle = Deno.UnsafePointer.create(out[0]);
    if (!handle) throw new PortAudioError("Pa_OpenStream", -1, "returned no stream");
    PortAudio.#users++;
    return new AudioStream(this.#lib, handle, {
      direction: options.direction,
      sampleRate: params.rate,
      channels: params.channels,
      format: params.format,
      framesPerBuffer: frames,
    }, () => {
      PortAudio.#release(this.#lib);
    });
  }

  /** Releases this user; PortAudio terminates when the last is gone. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    PortAudio.#release(this.#lib);
  }

  /** Same as {@link close}. */
  [Symbol.dispose](): void {
    this.close();
  }

  static #release(lib: PortAudioSymbols): void {
    PortAudio.#users--;
    if (PortAudio.#users === 0) lib.Pa_Terminate();
  }

  #open(): void {
    if (this.#closed) throw new Error("PortAudio handle is closed");
  }

  #params(options: StreamOptions) {
    const input = options.direction === "input";
    const device = options.device ??
      (input ? this.defaultInputDevice() : this.defaultOutputDevice());
    if (device === NO_DEVICE) {
      throw new PortAudioError(
        "Pa_GetDefault" + (input ? "Input" : "Output") + "Device",
        PaErrorCode.paInvalidDevice,
        "no such device",
        `There is no default ${options.direction} device`,
      );
    }
    const info = this.device(device);
    if (!info) {
      throw new PortAudioError(
        "Pa_GetDeviceInfo",
        PaErrorCode.paInvalidDevice,
        "invalid device",
        `There is no audio device ${device}`,
      );
    }
    const format = options.format ?? "int16";
    const channels = options.channels ?? 1;
    const rate = options.sampleRate ?? 44100;
    const buf = encodeStreamParameters({
      device,
      channelCount: channels,
      sampleFormat: SampleFormat[format],
      suggestedLatency: options.latency ??
        (input ? info.defaultLowInputLatency : info.defaultLowOutputLatency),
    });
    return { buf, device, channels, rate, format };
  }
}

/** Fixed properties of an open stream. */
export interface StreamFormat {
  /** Capture or playback. */
  direction: "input" | "output";
  /** Sample rate, Hz. */
  sampleRate: number;
  /** Channels. */
  channels: number;
  /** Sample format. */
  format: SampleFormatName;
  /** Frames per buffer. */
  framesPerBuffer: number;
}

/** A PortAudio blocking-API stream. `close()` is idempotent. */
export class AudioStream implements AsyncDisposable {
  /** Direction, rate, channels, format and frames per buffer. */
  readonly format: StreamFormat;
  /** Input overflows seen by {@link read} (data was lost before we read). */
  overflows = 0;
  /** Output underflows seen by {@link write} (the device ran dry). */
  underflows = 0;
  #lib: PortAudioSymbols;
  #handle: Deno.PointerObject | null;
  #busy: Promise<unknown> = Promise.resolve();
  #onClose: () => void;
  #closing: Promise<void> | undefined;

  /** @internal Use {@link PortAudio.openStream}. */
  constructor(
    lib: PortAudioSymbols,
    handle: Deno.PointerObject,
    format: StreamFormat,
    onClose: () => void,
  ) {
    this.#lib = lib;
    this.#handle = handle;
    this.format = format;
    this.#onClose = onClose;
  }

  /** Bytes per frame (channels × sample size). */
  get bytesPerFrame(): number {
    return this.format.channels * SAMPLE_FORMAT_BYTES[this.format.format];
  }

  /** Whether the stream is closed. */
  get closed(): boolean {
    return this.#handle === null;
  }

  /** Starts the stream. */
  start(): Promise<void> {
    return this.#call("Pa_StartStream", (h) => this.#lib.Pa_StartStream(h));
  }

  /** Stops after pending output has played. */
  stop(): Promise<void> {
    return this.#call("Pa_StopStream", (h) => this.#lib.Pa_StopStream(h));
  }

  /** Stops at once, discarding pending output. */
  abort(): Promise<void> {
    return this.#call("Pa_AbortStream", (h) => this.#lib.Pa_AbortStream(h));
  }

  /**
   * Reads `frames` frames (default: the buffer's length in frames) into
   * `buffer`, waiting off the event loop. An input overflow is counted in
   * {@link overflows}, not thrown.
   */
  read(buffer: ArrayBufferView<ArrayBuffer>, frames?: number): Promise<void> {
    const n = frames ?? buffer.byteLength / this.bytesPerFrame;
    this.#checkSize(buffer, n);
    return this.#call("Pa_ReadStream", async (h) => {
      const code = await this.#lib.Pa_ReadStream(h, buffer, ulong(n));
      if (code === PaErrorCode.paInputOverflowed) {
        this.overflows++;
        return 0;
      }
      return code;
    });
  }

  /**
   * Writes `frames` frames from `buffer`, waiting off the event loop while
   * the device has no room. An output underflow is counted, not thrown.
   */
  write(buffer: ArrayBufferView<ArrayBuffer>, frames?: number): Promise<void> {
    const n = frames ?? buffer.byteLength / this.bytesPerFrame;
    this.#checkSize(buffer, n);
    return this.#call("Pa_WriteStream", async (h) => {
      const code = await this.#lib.Pa_WriteStream(h, buffer, ulong(n));
      if (code === PaErrorCode.paOutputUnderflowed) {
        this.underflows++;
        return 0;
      }
      return code;
    });
  }

  /** Frames that can be read without waiting. */
  readAvailable(): number {
    const n = toNumber(this.#lib.Pa_GetStreamReadAvailable(this.#live()));
    if (n < 0) throw error(this.#lib, "Pa_GetStreamReadAvailable", n);
    return n;
  }

  /** Frames that can be written without waiting. */
  writeAvailable(): number {
    const n = toNumber(this.#lib.Pa_GetStreamWriteAvailable(this.#live()));
    if (n < 0) throw error(this.#lib, "Pa_GetStreamWriteAvailable", n);
    return n;
  }

  /** Actual latencies and sample rate. */
  info(): StreamInfo {
    const p = this.#lib.Pa_GetStreamInfo(this.#live());
    if (!p) throw new PortAudioError("Pa_GetStreamInfo", -1, "returned nothing");
    return readStreamInfo(p);
  }

  /** The stream's clock in seconds. */
  time(): number {
    return this.#lib.Pa_GetStreamTime(this.#live());
  }

  /** Whether the stream is running. */
  isActive(): boolean {
    return this.#lib.Pa_IsStreamActive(this.#live()) === 1;
  }

  /**
   * Closes the stream (discarding pending output) once any read or write in
   * flight has returned. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.#busy.catch(() => {});
      const h = this.#handle;
      if (!h) return;
      this.#handle = null;
      try {
        await this.#lib.Pa_CloseStream(h);
      } finally {
        this.#onClose();
      }
    })();
    return this.#closing;
  }

  /** Same as {@link close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #live(): Deno.PointerObject {
    if (!this.#handle || this.#closing) throw new Error("Audio stream is closed");
    return this.#handle;
  }

  #checkSize(buffer: ArrayBufferView, frames: number) {
    if (!Number.isInteger(frames) || frames * this.bytesPerFrame > buffer.byteLength) {
      throw new RangeError(`Buffer of ${buffer.byteLength} bytes cannot hold ${frames} frames`);
    }
  }

  /** Runs one call at a time; close() waits for the one in flight. */
  #call(
    name: string,
    fn: (h: Deno.PointerObject) => number | Promise<number>,
  ): Promise<void> {
    const h = this.#live();
    const run = this.#busy.catch(() => {}).then(async () => {
      if (this.#closing) throw new Error("Audio stream is closed");
      const code = await fn(h);
      check(this.#lib, name, code);
    });
    this.#busy = run;
    return run;
  }
}

function ulong(n: number): number | bigint {
  return Deno.build.os === "windows" ? n : BigInt(n);
}

function cstr(p: Deno.PointerValue): string {
  return p ? Deno.UnsafePointerView.getCString(p) : "";
}

function text(lib: PortAudioSymbols, code: number): string {
  return cstr(lib.Pa_GetErrorText(code));
}

function error(lib: PortAudioSymbols, call: string, code: number, context?: string) {
  return new PortAudioError(call, code, text(lib, code), context);
}

function check(lib: PortAudioSymbols, call: string, code: number, context?: string): void {
  if (code < 0) throw error(lib, call, code, context);
}
