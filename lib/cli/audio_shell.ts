/**
 * The command-line shell both audio transports share: their common flags,
 * and the run loops of a server tool (until its source ends or Ctrl-C) and
 * a client tool (Ctrl-C stops it cleanly, then the summary and `--report`).
 *
 * @module
 */
import { type AudioSource, openSource } from "../io/audio_io.ts";
import { type AudioSpec, DEFAULT_SPEC, validateSpec } from "../core/audio/format/spec.ts";
import { UsageError } from "../core/errors.ts";
import {
  type FlagSpec,
  HOST_FLAG,
  onShutdown,
  parseCount,
  parsePort,
  parseSecondsFlag,
  portFlag,
} from "./flags.ts";
import { resolveUserPath } from "../io/paths.ts";
import { type StreamReport, summaryText } from "../core/report/stream_report.ts";

/** Default audio port, for both transports (the original project's). */
export const AUDIO_PORT = 4444;

/** Flags every audio server has, with the transport's default block size. */
export function serverFlags(block: number): {
  host: FlagSpec;
  port: FlagSpec;
  input: FlagSpec;
  rate: FlagSpec;
  channels: FlagSpec;
  block: FlagSpec;
  "max-per-host": FlagSpec;
} {
  return {
    host: HOST_FLAG,
    port: portFlag(AUDIO_PORT),
    "max-per-host": {
      type: "string",
      default: "8",
      value: "N",
      help: "most listeners from one host at once",
    } as FlagSpec,
    input: {
      type: "string",
      default: "default",
      value: "SPEC",
      help: "default, N, NAME, tone[:HZ] or FILE.wav",
    } as FlagSpec,
    ...audioFlags(block),
  };
}

/** Flags every audio client has. */
export const CLIENT_FLAGS = {
  host: HOST_FLAG,
  port: portFlag(AUDIO_PORT),
  output: {
    type: "string",
    default: "default",
    value: "SPEC",
    help: "default, N, NAME, FILE.wav or null",
  } as FlagSpec,
  duration: {
    type: "string",
    default: "",
    value: "SECONDS",
    help: "stop after this long",
  } as FlagSpec,
  report: {
    type: "string",
    default: "",
    value: "FILE.json",
    help: "write the report as JSON",
  } as FlagSpec,
};

/** A running audio server of either transport, with its own counters. */
export interface AudioServer<Stats> extends AsyncDisposable {
  /** Address it listens on. */
  readonly addr: Deno.NetAddr;
  /** Format of the audio it serves. */
  readonly spec: AudioSpec;
  /** The transport's own counters. */
  readonly stats: Stats;
  /** Current number of listeners. */
  readonly listeners: number;
  /** Resolves when the source ends (a WAV file) or the server is closed. */
  readonly finished: Promise<void>;
  /** Stops capturing, disconnects listeners and closes the source. Idempotent. */
  close(): Promise<void>;
}

/**
 * Opens the source the flags name, starts a server on it, prints
 * `describe` (which says "listening on HOST:PORT"), serves until the source
 * ends or Ctrl-C, and prints `summary`.
 */
export async function runServerTool<S extends AudioServer<unknown>>(
  flags: {
    host: string;
    port: string;
    input: string;
    rate: string;
    channels: string;
    block: string;
    "max-per-host": string;
  },
  start: (source: AudioSource, host: string, port: number, maxPerHost: number) => S,
  describe: (server: S, source: AudioSource) => string,
  summary: (server: S) => string,
): Promise<void> {
  const port = parsePort(flags.port);
  const maxPerHost = parseCount("max-per-host", flags["max-per-host"]);
  const spec: AudioSpec = specFromFlags(flags);
  const source = await openSource(flags.input, spec);
  let server: S;
  try {
    server = start(source, flags.host, port, maxPerHost);
  } catch (err) {
    await source.close();
    throw err;
  }
  console.log(describe(server, source));
  const off = onShutdown(() => server.close());
  await server.finished;
  off();
  await server.close();
  console.log(summary(server));
}

/**
 * Runs a client session until `--duration` or Ctrl-C, then prints the
 * summary and writes `--report` if asked.
 */
export async function runClientTool(
  flags: { duration: string; report: string },
  run: (duration: number | undefined, signal: AbortSignal) => Promise<StreamReport>,
): Promise<void> {
  const controller = new AbortController();
  const off = onShutdown(() => controller.abort());
  const duration = flags.duration ? parseSecondsFlag("duration", flags.duration) : undefined;
  const report = await run(duration, controller.signal);
  off();
  console.log(summaryText(report));
  if (flags.report) {
    await Deno.writeTextFile(resolveUserPath(flags.report), JSON.stringify(report, null, 2) + "\n");
  }
}

/** The `--rate`, `--channels` and `--block` flags, with a tool's default block. */
export function audioFlags(
  block: number = DEFAULT_SPEC.block,
): { rate: FlagSpec; channels: FlagSpec; block: FlagSpec } {
  return {
    rate: {
      type: "string",
      default: String(DEFAULT_SPEC.rate),
      value: "HZ",
      help: "sample rate",
    } as FlagSpec,
    channels: {
      type: "string",
      default: String(DEFAULT_SPEC.channels),
      value: "N",
      help: "channels",
    } as FlagSpec,
    block: {
      type: "string",
      default: String(block),
      value: "FRAMES",
      help: "frames per block",
    } as FlagSpec,
  };
}

/** Reads the audio flags into a validated spec. */
export function specFromFlags(flags: { rate: string; channels: string; block: string }): AudioSpec {
  const num = (name: string, text: string) => {
    if (!/^\d+$/.test(text)) {
      throw new UsageError(`--${name} ${JSON.stringify(text)} is not a whole number`);
    }
    return Number(text);
  };
  return validateSpec({
    rate: num("rate", flags.rate),
    channels: num("channels", flags.channels),
    block: num("block", flags.block),
  });
}
