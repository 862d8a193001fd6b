/**
 * Test helpers: temporary directories, random files, a TCP relay that can
 * corrupt or cut a stream, and running a tool as a user would.
 */
import { join } from "node:path";
import { decodeFragment, type Fragment, isRejected } from "../../lib/core/audio/udp/datagrams.ts";
import {
  FrameDecoder,
  type FrameLimits,
  HEADER_LENGTH,
  writeHeader,
} from "../../lib/core/wire/frame.ts";
import {
  DATA_PREFIX,
  MsgType,
  SERVER_LIMITS,
  SERVER_LINK_LIMITS,
  STREAM_PREFIX,
} from "../../lib/core/file/messages.ts";
import { writeAll } from "../../lib/io/streams.ts";
import { encodeWavHeader, parseWavHeader } from "../../lib/core/audio/format/wav.ts";
import { ToneGenerator } from "../../lib/core/audio/format/tone.ts";
import type { ListenerTable } from "../../lib/core/audio/udp/server.ts";
import type { UdpSubscriber } from "../../lib/core/audio/udp/client.ts";
import { AUDIO_PROTOCOL, type StreamFormat } from "../../lib/core/audio/format/stream_format.ts";

/** A small stream for session tests: 64-frame blocks of 8 kHz mono (8 ms each). */
export const TEST_FORMAT: StreamFormat = {
  rate: 8000,
  channels: 1,
  block: 64,
  streamId: 42,
  format: "s16le",
  protocol: AUDIO_PROTOCOL,
};

/** The repository root. */
export const ROOT = new URL("../..", import.meta.url).pathname;

/** A temporary directory removed when disposed. */
export async function tempDir(): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempDir({ prefix: "sockets-test-" });
  return {
    path,
    async [Symbol.asyncDispose]() {
      await Deno.remove(path, { recursive: true }).catch(() => {});
    },
  };
}

/** Writes `size` pseudo-random bytes (seeded) to `path`. */
export async function randomFile(path: string, size: number, seed = 1): Promise<Uint8Array> {
  const data = new Uint8Array(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    data[i] = x & 0xff;
  }
  await Deno.writeFile(path, data);
  return data;
}

/** Options of {@link startRelay}. */
export interface RelayOptions {
  /** Which direction is decoded frame by frame (the other is copied as is). */
  inspect?: "toServer" | "toClient";
  /** Frame limits of the inspected direction (default: the file server's). */
  limits?: FrameLimits;
  /**
   * Called for each frame of the inspected direction; returns the offset in
   * the payload of a byte to flip, or null to forward it intact.
   */
  corrupt?: (type: number, payload: Uint8Array) => number | null;
  /** Cut both directions after this many inspected-direction bytes. */
  cutAfter?: number;
  /** Stop forwarding (but keep the connections open) after this many bytes. */
  stallAfter?: number;
  /** Hold the inspected direction for `pause.ms` once `pause.after` bytes went through. */
  pause?: { after: number; ms: number };
}

/** A TCP relay between a client and a server, for fault injection. */
export interface Relay extends AsyncDisposable {
  port: number;
  /** Frames corrupted so far. */
  corrupted: number;
  /** Closes the relay and its connections. */
  close(): Promise<void>;
}

/**
 * Starts a relay on loopback that forwards to `target`. It decodes one
 * direction's frames so it can flip a byte inside chosen frames, as a
 * faulty path or memory would, or cut or stall the stream.
 */
export function startRelay(target: number, options: RelayOptions = {}): Relay {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const tasks: Promise<void>[] = [];
  const stalls = new Set<() => void>();
  const relay: Relay = {
    port: (listener.addr as Deno.NetAddr).port,
    corrupted: 0,
    async close() {
      listener.close();
      for (const c of conns) closeQuietly(c);
      for (const release of stalls) release();
      await Promise.allSettled(tasks);
    },
    [Symbol.asyncDispose]() {
      return this.close();
    },
  };
  tasks.push(
    (async () => {
      for await (const client of listener) {
        const server = await Deno.connect({ hostname: "127.0.0.1", port: target });
        conns.add(client);
        conns.add(server);
        const closed = Promise.withResolvers<void>();
        const cut = () => {
          closeQuietly(client);
          closeQuietly(server);
          closed.resolve();
        };
        stalls.add(closed.resolve);
        const toClient = options.inspect === "toClient";
        const [from, to] = toClient ? [server, client] : [client, server];
        // The other direction: forwarded as is.
        tasks.push(
          (toClient ? client : server).readable
            .pipeTo((toClient ? server : client).writable).catch(() => {}).finally(cut),
        );
        tasks.push(
          (async () => {
            // A file client's frames come on streams: a STREAM frame that
            // holds one whole frame is shown to `corrupt` as that frame.
            const dec = new FrameDecoder(
              options.limits ??
                { maxPayload: { ...SERVER_LIMITS.maxPayload, ...SERVER_LINK_LIMITS.maxPayload } },
            );
            const buf = new Uint8Array(256 * 1024);
            let forwarded = 0;
            while (true) {
              const n = await from.read(buf);
              if (n === null) break;
              dec.push(buf.subarray(0, n));
              for (let f = dec.next(); f; f = dec.next()) {
                const out = new Uint8Array(HEADER_LENGTH + f.payload.length);
                writeHeader(out, f.type, f.payload.length);
                out.set(f.payload, HEADER_LENGTH);
                const at = corruptAt(options, f.type, f.payload);
                if (at !== null) {
                  out[HEADER_LENGTH + at] ^= 0x20;
                  relay.corrupted++;
                }
                if (options.cutAfter !== undefined && forwarded + out.length > options.cutAfter) {
                  await writeAll(to, out.subarray(0, options.cutAfter - forwarded));
                  cut();
                  return;
                }
                if (
                  options.stallAfter !== undefined && forwarded + out.length > options.stallAfter
                ) {
                  await writeAll(to, out.subarray(0, options.stallAfter - forwarded));
                  await closed.promise; // until the relay or a peer closes
                  return;
                }
                if (options.pause && forwarded <= options.pause.after) {
                  if (forwarded + out.length > options.pause.after) {
                    await new Promise((r) => setTimeout(r, options.pause!.ms));
                  }
                }
                await writeAll(to, out);
                forwarded += out.length;
              }
            }
            await to.closeWrite().catch(() => {});
          })().catch(() => {}).finally(cut),
        );
      }
    })().catch(() => {}),
  );
  return relay;
}

/** Where `options.corrupt` flips a byte of a frame's payload, looking inside a STREAM frame. */
function corruptAt(options: RelayOptions, type: number, payload: Uint8Array): number | null {
  if (!options.corrupt) return null;
  if (type !== MsgType.STREAM || options.limits) return options.corrupt(type, payload);
  const at = STREAM_PREFIX + HEADER_LENGTH;
  if (payload.length < at) return null;
  const view = new DataView(payload.buffer, payload.byteOffset);
  const inner = payload.subarray(at);
  if (view.getUint32(STREAM_PREFIX + 4) !== inner.length) return null;
  const hit = options.corrupt(view.getUint8(STREAM_PREFIX + 3), inner);
  return hit === null ? null : at + hit;
}

/**
 * A `corrupt` callback for the file protocol: flips a byte in the data of
 * DATA frames for which `choose(index, attempt)` is true.
 */
export function corruptChunks(
  choose: (index: number, attempt: number) => boolean,
): RelayOptions["corrupt"] {
  const attempts = new Map<number, number>();
  return (type, payload) => {
    if (type !== MsgType.DATA || payload.length <= DATA_PREFIX) return null;
    const index = new DataView(payload.buffer, payload.byteOffset).getUint32(0);
    const attempt = attempts.get(index) ?? 0;
    attempts.set(index, attempt + 1);
    return choose(index, attempt) ? DATA_PREFIX + 7 : null;
  };
}

function closeQuietly(c: Deno.Conn) {
  try {
    c.close();
  } catch {
    // Already closed.
  }
}

/** Result of running a tool as a subprocess. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `deno run` on a tool with the given permissions and arguments. */
export async function runTool(
  script: string,
  args: string[],
  options: { permissions?: string[]; cwd?: string; env?: Record<string, string> } = {},
): Promise<RunResult> {
  const cmd = new Deno.Command(Deno.execPath(), {
    args: ["run", ...(options.permissions ?? ["-A"]), join(ROOT, script), ...args],
    cwd: options.cwd ?? ROOT,
    env: options.env,
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  });
  const out = await cmd.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Asserts a tool failed the way users should see: one line, no stack trace. */
export function oneLineError(r: RunResult): string {
  const lines = r.stderr.trim().split("\n");
  if (r.code === 0) throw new Error(`Expected failure, got exit 0: ${r.stdout}`);
  if (lines.length !== 1 || /^\s+at /m.test(r.stderr)) {
    throw new Error(`Expected one error line, got:\n${r.stderr}`);
  }
  return lines[0];
}

/** Polls `predicate` until true or `ms` pass. */
export async function waitFor(predicate: () => boolean, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > until) throw new Error("Timed out waiting");
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Reads a 16-bit PCM WAV file into its info and samples. */
export async function readWav(path: string) {
  const bytes = await Deno.readFile(path);
  const info = parseWavHeader(bytes, path);
  const data = bytes.slice(info.dataOffset, info.dataOffset + info.dataLength);
  return { info, size: bytes.length, samples: new Int16Array(data.buffer, 0, data.length >> 1) };
}

/** Writes mono 16-bit samples as a WAV file; returns the samples. */
export async function writeWav(path: string, samples: Int16Array, rate = 44100) {
  const header = encodeWavHeader(rate, 1, samples.byteLength);
  const out = new Uint8Array(header.length + samples.byteLength);
  out.set(header);
  out.set(new Uint8Array(samples.buffer, samples.byteOffset, samples.byteLength), header.length);
  await Deno.writeFile(path, out);
  return samples;
}

/** Writes `seconds` of a tone as a mono 16-bit WAV file. */
export function writeToneWav(path: string, hz: number, seconds: number, rate = 44100) {
  return writeWav(path, new ToneGenerator(hz, rate, 1).next(Math.round(seconds * rate)), rate);
}

/** The loud part of a recording: from the first sample over `threshold`, skipping `settle`. */
export function loudPart(samples: Int16Array, threshold = 1000, settle = 2048): Int16Array {
  const start = samples.findIndex((s) => Math.abs(s) > threshold);
  return start < 0 ? new Int16Array(0) : samples.subarray(start + settle);
}

/** Writes `seconds` of seeded noise (every block unique) as a mono 16-bit WAV. */
export function writeNoiseWav(path: string, seconds: number, rate = 44100, seed = 9) {
  return writeNoiseWavChannels(path, seconds, 1, rate, seed);
}

/** Writes `seconds` of seeded noise in `channels` interleaved channels; returns the samples. */
export async function writeNoiseWavChannels(
  path: string,
  seconds: number,
  channels: number,
  rate = 44100,
  seed = 9,
): Promise<Int16Array> {
  const n = Math.round(seconds * rate) * channels;
  const samples = new Int16Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    samples[i] = x % 8000;
  }
  const header = encodeWavHeader(rate, channels, samples.byteLength);
  const out = new Uint8Array(header.length + samples.byteLength);
  out.set(header);
  out.set(new Uint8Array(samples.buffer), header.length);
  await Deno.writeFile(path, out);
  return samples;
}

/**
 * Where a recording starts in its source, in blocks: the recording's first
 * block matched against each source block. -1 if none matches.
 */
export function alignBlocks(source: Int16Array, recording: Int16Array, block: number): number {
  const first = recording.subarray(0, block);
  for (let k = 0; (k + 1) * block <= source.length; k++) {
    const s = source.subarray(k * block, (k + 1) * block);
    if (s.every((v, i) => v === first[i])) return k;
  }
  return -1;
}

/** Compares a recording with its source block by block, from block `start`. */
export function compareBlocks(
  source: Int16Array,
  recording: Int16Array,
  block: number,
  start: number,
): { same: number; different: number[] } {
  let same = 0;
  const different: number[] = [];
  for (let b = 0; (b + 1) * block <= recording.length; b++) {
    const at = (start + b) * block;
    if (at + block > source.length) break;
    const r = recording.subarray(b * block, (b + 1) * block);
    const s = source.subarray(at, at + block);
    if (r.every((v, i) => v === s[i])) same++;
    else different.push(b);
  }
  return { same, different };
}

/** Decodes a DATA datagram the test expects to be valid; fails the test otherwise. */
export function fragment(d: Uint8Array): Fragment {
  const f = decodeFragment(d);
  if (isRejected(f)) throw new Error(`Expected a valid fragment: ${f.rejected}`);
  return f;
}

/** A TCP port on loopback that was free a moment ago. */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/**
 * Checks a recording against its source, block by block from where it
 * starts: each block is the source's block for that slot, or a concealment
 * (the block before at half level fading out, or silence); never another
 * block's audio, never damaged audio. A sink that fell behind drops slots
 * (counted late): the recording then goes on with a later source block,
 * and `skipped` counts the slots jumped. Returns how many of each.
 */
export function sourceOrConcealed(
  source: Int16Array,
  recording: Int16Array,
  block: number,
): { start: number; same: number; concealed: number; skipped: number; wrong: number[] } {
  const start = alignBlocks(source, recording, block);
  let same = 0;
  let concealed = 0;
  let skipped = 0;
  const wrong: number[] = [];
  if (start < 0) return { start, same, concealed, skipped, wrong: [0] };
  const sourceBlock = (k: number) => source.subarray(k * block, (k + 1) * block);
  for (let b = 0; (b + 1) * block <= recording.length; b++) {
    const at = start + skipped + b;
    if ((at + 1) * block > source.length) break;
    const got = recording.subarray(b * block, (b + 1) * block);
    if (got.every((v, i) => v === sourceBlock(at)[i])) {
      same++;
      continue;
    }
    const prev = recording.subarray(Math.max(0, b - 1) * block, Math.max(1, b) * block);
    const faded = b > 0 &&
      got.every((v, i) => Math.abs(v - Math.round(prev[i] * 0.5 * (1 - i / block))) <= 1);
    if (faded || got.every((v) => v === 0)) {
      concealed++;
      continue;
    }
    // A later source block: slots dropped before it. Never an earlier one.
    let k = 1;
    while (k <= 64 && (at + k + 1) * block <= source.length) {
      if (got.every((v, i) => v === sourceBlock(at + k)[i])) break;
      k++;
    }
    if (k <= 64 && (at + k + 1) * block <= source.length) {
      skipped += k;
      same++;
    } else wrong.push(b);
  }
  return { start, same, concealed, skipped, wrong };
}

/**
 * Checks a recording against the stream's slot timeline: slot k of the
 * recording (`block` samples, interleaved) holds source block `start + k`
 * exactly, or a concealment (silence, or the slot before at half level
 * fading out, per channel); never another block, a shifted one or part of
 * one. `start` is where the recording's first block is in the source.
 */
export function slotTimeline(
  source: Int16Array,
  recording: Int16Array,
  block: number,
  channels = 1,
): { start: number; slots: number; same: number; concealed: number; wrong: number[] } {
  const start = alignBlocks(source, recording, block);
  let same = 0;
  let concealed = 0;
  let slots = 0;
  const wrong: number[] = [];
  if (start < 0) return { start, slots, same, concealed, wrong: [0] };
  const frames = block / channels;
  for (let b = 0; (b + 1) * block <= recording.length; b++) {
    const at = (start + b) * block;
    if (at + block > source.length) break;
    slots++;
    const got = recording.subarray(b * block, (b + 1) * block);
    if (got.every((v, i) => v === source[at + i])) {
      same++;
      continue;
    }
    const prev = recording.subarray(Math.max(0, b - 1) * block, Math.max(1, b) * block);
    const faded = b > 0 &&
      got.every((v, i) =>
        Math.abs(v - Math.round(prev[i] * 0.5 * (1 - Math.floor(i / channels) / frames))) <= 1
      );
    if (faded || got.every((v) => v === 0)) concealed++;
    else wrong.push(b);
  }
  if (recording.length % block !== 0) wrong.push(Math.floor(recording.length / block));
  return { start, slots, same, concealed, wrong };
}

/**
 * Runs a subscriber's handshake with a listener table in memory, at time
 * `at` on both sides (not 0: a sync request stamped 0 reads as none):
 * subscribe, challenge, subscribe with the cookie, format and the first
 * sync answer. Returns once neither side has anything more to send, with
 * the subscriber's events (`refused: MESSAGE` for a refusal) and the
 * types of the server's datagrams.
 */
export function joinInMemory(
  table: ListenerTable<string>,
  sub: UdpSubscriber,
  key: string,
  at = 1,
): { events: string[]; replies: number[] } {
  const events: string[] = [];
  const replies: number[] = [];
  let toServer = [sub.start(at)];
  while (toServer.length > 0) {
    const got = toServer.flatMap((d) => table.receive(d, key, key, at));
    replies.push(...got.map((d) => d[3]));
    toServer = [];
    for (const d of got) {
      for (const e of sub.receive(d, true, at)) {
        events.push(e.type === "refused" ? `refused: ${e.message}` : e.type);
        if (e.type === "send") toServer.push(e.datagram);
      }
    }
  }
  return { events, replies };
}

/** Whether `needle` occurs in `hay`. */
export function contains(hay: Uint8Array, needle: Uint8Array): boolean {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}

/**
 * A TCP tap for one connection: forwards both ways and keeps what each
 * side sent, `toServer` and `toClient`.
 */
export function tap(target: number) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const seen = { toServer: [] as Uint8Array[], toClient: [] as Uint8Array[] };
  const keep = (into: Uint8Array[]) =>
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, c) {
        into.push(chunk.slice());
        c.enqueue(chunk);
      },
    });
  let conns: Deno.Conn[] = [];
  const done = (async () => {
    const client = await listener.accept();
    const server = await Deno.connect({ hostname: "127.0.0.1", port: target });
    conns = [client, server];
    await Promise.allSettled([
      client.readable.pipeThrough(keep(seen.toServer)).pipeTo(server.writable),
      server.readable.pipeThrough(keep(seen.toClient)).pipeTo(client.writable),
    ]);
  })();
  const concat = (parts: Uint8Array[]) => {
    const all = new Uint8Array(parts.reduce((n, b) => n + b.length, 0));
    let at = 0;
    for (const b of parts) all.set(b, (at += b.length) - b.length);
    return all;
  };
  return {
    port: (listener.addr as Deno.NetAddr).port,
    toServer: () => concat(seen.toServer),
    toClient: () => concat(seen.toClient),
    close: async () => {
      listener.close();
      for (const c of conns) closeQuietly(c);
      await done.catch(() => {});
    },
  };
}
