/**
 * Audio sources and sinks: the thin I/O layer over devices (PortAudio),
 * tones and WAV files that every audio tool plugs into. A source yields
 * blocks of 16-bit samples at real time; a sink takes them.
 *
 * @module
 */
import { now } from "./clock.ts";
import { type AudioEndpoint, parseEndpoint, selectDevice } from "../core/audio/format/endpoint.ts";
import { type AudioSpec, blockMs, validateSpec } from "../core/audio/format/spec.ts";
import { UsageError, UserError } from "../core/errors.ts";
import { describeError, readError } from "./errors.ts";
import { ToneGenerator } from "../core/audio/format/tone.ts";
import { encodeWavHeader, parseWavHeader, WAV_HEADER_LENGTH } from "../core/audio/format/wav.ts";
import { resolveUserPath } from "./paths.ts";
import { readFullSync } from "./streams.ts";
import { type AudioStream, PortAudio } from "../../native/mod.ts";

/** One block of audio. */
export interface AudioBlock {
  /** Interleaved 16-bit samples, `spec.block * spec.channels` of them. */
  samples: Int16Array;
  /** When the block was captured (ms, `performance.timeOrigin`-based wall clock). */
  captured: number;
}

/** Where audio comes from. */
export interface AudioSource extends AsyncDisposable {
  /** The format it delivers. */
  readonly spec: AudioSpec;
  /** A description for logs, e.g. `tone 440 Hz` or `device 1 (pulse)`. */
  readonly label: string;
  /** The next block, or `null` at the end (WAV files end; devices and tones do not). */
  read(): Promise<AudioBlock | null>;
  /** Input overflows so far (devices only). */
  readonly overflows: number;
  /** Releases the source. Idempotent. */
  close(): Promise<void>;
}

/** Where audio goes. */
export interface AudioSink extends AsyncDisposable {
  /** A description for logs. */
  readonly label: string;
  /** Plays or stores one block (of any whole number of frames). */
  write(samples: Int16Array): Promise<void>;
  /**
   * Devices only: frames written and not yet played, counted from the
   * emptiest the device has been (so up to a constant). A sink without it
   * has no clock of its own (a file) and takes blocks as they are decided.
   */
  queuedFrames?(): number;
  /** Output underflows so far (devices only). */
  readonly underflows: number;
  /** Finishes and releases the sink. Idempotent. */
  close(): Promise<void>;
}

/** Waits until `performance.now()` reaches `at` ms. */
function sleepUntil(at: number): Promise<void> {
  const wait = at - performance.now();
  return wait > 0 ? new Promise((r) => setTimeout(r, wait)) : Promise.resolve();
}

/** Paces blocks at real time: block k is released at start + k × block duration. */
class Pacer {
  #start = performance.now();
  #count = 0;
  #ms: number;
  constructor(spec: AudioSpec) {
    this.#ms = blockMs(spec);
  }
  async next(): Promise<void> {
    this.#count++;
    await sleepUntil(this.#start + this.#count * this.#ms);
  }
}

/** An idempotent async close of a file, calling `then` the first time. */
function closeOnce(file: Deno.FsFile, then?: () => void): () => Promise<void> {
  let closed = false;
  return () => {
    if (!closed) {
      closed = true;
      file.close();
      then?.();
    }
    return Promise.resolve();
  };
}

/** Opens an input SPEC (see `lib/core/audio/format/endpoint.ts`) with `spec` for devices and tones. */
export async function openSource(text: string, spec: AudioSpec): Promise<AudioSource> {
  const ep = parseEndpoint(text, "input");
  validateSpec(spec);
  switch (ep.kind) {
    case "tone":
      return toneSource(ep.hz, spec);
    case "wav":
      return await wavSource(resolveUserPath(ep.path), spec.block);
    case "device":
      return await deviceSource(ep, spec);
    default:
      throw new UsageError(`Cannot read audio from ${text}`);
  }
}

/** Opens an output SPEC for audio of format `spec`. */
export async function openSink(text: string, spec: AudioSpec): Promise<AudioSink> {
  const ep = parseEndpoint(text, "output");
  validateSpec(spec);
  switch (ep.kind) {
    case "null":
      return nullSink();
    case "wav":
      return await wavSink(resolveUserPath(ep.path), spec);
    case "device":
      return await deviceSink(ep, spec);
    default:
      throw new UsageError(`Cannot write audio to ${text}`);
  }
}

function toneSource(hz: number, spec: AudioSpec): AudioSource {
  const gen = new ToneGenerator(hz, spec.rate, spec.channels);
  const pacer = new Pacer(spec);
  return {
    spec,
    label: `tone ${hz} Hz`,
    overflows: 0,
    async read() {
      const samples = gen.next(spec.block);
      await pacer.next();
      return { samples, captured: now() - blockMs(spec) };
    },
    close: () => Promise.resolve(),
    [Symbol.asyncDispose]: () => Promise.resolve(),
  };
}

async function wavSource(path: string, block: number): Promise<AudioSource> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (err) {
    throw readError(err, path, "WAV file");
  }
  try {
    const head = new Uint8Array(4096);
    const n = readFullSync(file, head);
    const info = parseWavHeader(head.subarray(0, n), path);
    const spec = validateSpec({ rate: info.rate, channels: info.channels, block });
    const size = (await file.stat()).size;
    let left = Math.min(info.dataLength, size - info.dataOffset);
    file.seekSync(info.dataOffset, Deno.SeekMode.Start);
    const pacer = new Pacer(spec);
    const bytes = block * spec.channels * 2;
    let closed = false;
    const close = closeOnce(file, () => closed = true);
    return {
      spec,
      label: `${path} (${spec.rate} Hz, ${spec.channels} ch)`,
      overflows: 0,
      async read() {
        if (left <= 0 || closed) return null;
        // A short last block is padded with silence to a whole block.
        const buf = new Uint8Array(bytes);
        const got = readFullSync(file, buf.subarray(0, Math.min(bytes, left)));
        left -= got;
        if (got === 0) return null;
        await pacer.next();
        return { samples: new Int16Array(buf.buffer), captured: now() - blockMs(spec) };
      },
      close,
      [Symbol.asyncDispose]: close,
    };
  } catch (err) {
    file.close();
    throw err;
  }
}

async function wavSink(path: string, spec: AudioSpec): Promise<AudioSink> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { write: true, create: true, truncate: true });
  } catch (err) {
    throw new UserError(describeError(err, `Cannot write ${path}`));
  }
  let length = 0;
  file.writeSync(encodeWavHeader(spec.rate, spec.channels, 0));
  const sizes = new Uint8Array(4);
  const sizeView = new DataView(sizes.buffer);
  const close = closeOnce(file);
  return {
    label: path,
    underflows: 0,
    write(samples) {
      const bytes = new Uint8Array(samples.buffer, samples.byteOffset, samples.byteLength);
      file.seekSync(WAV_HEADER_LENGTH + length, Deno.SeekMode.Start);
      let off = 0;
      while (off < bytes.length) off += file.writeSync(bytes.subarray(off));
      length += bytes.length;
      // Sizes follow the data, so a killed program leaves a valid header
      // (at worst one block short of the data).
      sizeView.setUint32(0, 36 + length, true);
      file.seekSync(4, Deno.SeekMode.Start);
      file.writeSync(sizes);
      sizeView.setUint32(0, length, true);
      file.seekSync(40, Deno.SeekMode.Start);
      file.writeSync(sizes);
      return Promise.resolve();
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

function nullSink(): AudioSink {
  return {
    label: "null",
    underflows: 0,
    write: () => Promise.resolve(),
    close: () => Promise.resolve(),
    [Symbol.asyncDispose]: () => Promise.resolve(),
  };
}

async function openDevice(
  ep: Extract<AudioEndpoint, { kind: "device" }>,
  spec: AudioSpec,
  direction: "input" | "output",
): Promise<{ pa: PortAudio; stream: AudioStream; label: string }> {
  const pa = PortAudio.open();
  try {
    const devices = pa.devices();
    const index = selectDevice(
      ep.selector,
      direction,
      devices,
      direction === "input" ? pa.defaultInputDevice() : pa.defaultOutputDevice(),
    );
    const name = devices.find((d) => d.index === index)?.name ?? "?";
    const options = {
      direction,
      device: index,
      sampleRate: spec.rate,
      channels: spec.channels,
      format: "int16",
      framesPerBuffer: spec.block,
    } as const;
    const why = pa.formatUnsupported(options);
    if (why) {
      throw new UserError(
        `Device ${index} (${name}) cannot ${direction === "input" ? "capture" : "play"} ` +
          `${spec.rate} Hz, ${spec.channels} channel(s), 16-bit: ${why}`,
      );
    }
    const stream = await pa.openStream(options);
    await stream.start();
    return { pa, stream, label: `device ${index} (${name})` };
  } catch (err) {
    pa.close();
    throw err;
  }
}

async function deviceSource(
  ep: Extract<AudioEndpoint, { kind: "device" }>,
  spec: AudioSpec,
): Promise<AudioSource> {
  const { pa, stream, label } = await openDevice(ep, spec, "input");
  const close = async () => {
    await stream.close();
    pa.close();
  };
  return {
    spec,
    label,
    get overflows() {
      return stream.overflows;
    },
    async read() {
      const samples = new Int16Array(spec.block * spec.channels);
      await stream.read(samples);
      // The last sample was captured about now; the first one block earlier.
      return { samples, captured: now() - blockMs(spec) };
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

async function deviceSink(
  ep: Extract<AudioEndpoint, { kind: "device" }>,
  spec: AudioSpec,
): Promise<AudioSink> {
  const { pa, stream, label } = await openDevice(ep, spec, "output");
  let emptiest = 0;
  const close = async () => {
    // Play what is queued, then close.
    if (!stream.closed) await stream.stop().catch(() => {});
    await stream.close();
    pa.close();
  };
  return {
    label,
    get underflows() {
      return stream.underflows;
    },
    write: (samples) => stream.write(samples as Int16Array<ArrayBuffer>),
    queuedFrames() {
      const free = stream.writeAvailable();
      emptiest = Math.max(emptiest, free);
      return emptiest - free;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
