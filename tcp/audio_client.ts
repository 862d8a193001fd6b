/**
 * Audio-TCP client: plays (or records) what an Audio-TCP server sends,
 * checking every block's MD5. A block that fails is concealed, never
 * played. It learns the format from the server, reconnects with backoff
 * when the stream breaks or the server restarts, and keeps counting.
 *
 * Run: `deno task audio-tcp-client [--host 127.0.0.1] [--port 4444] [--output default]`
 *
 * @module
 */
import { AUDIO_CLIENT_LIMITS, AudioMsg, decodeBlock, decodeHello } from "../lib/core/audio/tcp_frames.ts";
import { Playout } from "../lib/io/playout.ts";
import { ProtocolError, UserError } from "../lib/core/errors.ts";
import { describeError } from "../lib/io/errors.ts";
import { readFrames } from "../lib/io/framed_conn.ts";
import { connectTo } from "../lib/io/net.ts";
import type { StreamReport } from "../lib/core/report/stream_report.ts";
import { parseFlags, parsePort, parseSecondsFlag, runMain } from "../lib/cli/flags.ts";
import { CLIENT_FLAGS, runClientTool } from "../lib/cli/audio_shell.ts";

/** Options of {@link runAudioTcpClient}. */
export interface AudioTcpClientOptions {
  host?: string;
  port: number;
  /** Output SPEC. */
  output: string;
  /** Stop after this many seconds (default: until stopped). */
  duration?: number;
  /** Blocks later than this after capture are skipped and counted late, ms (default 100). */
  latencyMs?: number;
  /** Live status line (default: when stderr is a terminal). */
  status?: boolean;
  /** Stops the client early. */
  signal?: AbortSignal;
  /** Logs reconnections (default stderr). */
  log?: (line: string) => void;
}

const HELLO_TIMEOUT_MS = 5000;
const IDLE_MS = 5000;

/** Runs a client session to the end and returns its report. */
export async function runAudioTcpClient(options: AudioTcpClientOptions): Promise<StreamReport> {
  const host = options.host ?? "127.0.0.1";
  const log = options.log ?? ((line: string) => console.error(line));
  await using playout = new Playout("tcp", {
    output: options.output,
    lateMs: options.latencyMs ?? 100,
    status: options.status,
  });
  const deadline = performance.now() + (options.duration ?? Infinity) * 1000;
  let conn: Deno.TcpConn | undefined;
  let done = false;
  const stop = () => {
    done = true;
    try {
      conn?.close();
    } catch {
      // Already closed.
    }
  };
  options.signal?.addEventListener("abort", stop);
  const timer = Number.isFinite(deadline)
    ? setTimeout(stop, Math.max(0, deadline - performance.now()))
    : undefined;
  let backoff = 100;
  let connectedOnce = false;
  try {
    while (!done) {
      try {
        conn = await connectTo(host, options.port);
        if (done) break;
        conn.setNoDelay(true);
        await session(conn, playout, `${host}:${options.port}`, () => {
          connectedOnce = true;
          backoff = 100;
        });
        if (done) break;
        throw new UserError("Server closed the connection");
      } catch (err) {
        if (done) break;
        if (!connectedOnce) throw err;
        if (err instanceof UserError && /changed format/.test(err.message)) throw err;
        playout.stats.reconnects++;
        log(`${describeError(err)}; reconnecting in ${backoff} ms`);
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, 2000);
      } finally {
        try {
          conn?.close();
        } catch {
          // Already closed.
        }
      }
    }
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", stop);
  }
  return playout.report();
}

/** One connection: the hello, then blocks until the stream ends or breaks. */
async function session(
  conn: Deno.TcpConn,
  playout: Playout,
  where: string,
  connected: () => void,
): Promise<void> {
  const frames = readFrames(conn, AUDIO_CLIENT_LIMITS, {
    idleMs: IDLE_MS,
    onBytes: (n) => playout.stats.bytes += n,
  });
  let first;
  const helloTimer = setTimeout(() => conn.close(), HELLO_TIMEOUT_MS);
  try {
    first = await frames.next();
  } catch (err) {
    throw new UserError(`Peer at ${where} is not an Audio-TCP server: ${describeError(err)}`);
  } finally {
    clearTimeout(helloTimer);
  }
  if (first.done || first.value.type !== AudioMsg.HELLO) {
    throw new UserError(`Peer at ${where} is not an Audio-TCP server: it sent no hello`);
  }
  const hello = decodeHello(first.value.payload);
  await playout.begin(hello, hello.streamId);
  connected();
  for await (const f of frames) {
    if (f.type !== AudioMsg.BLOCK) throw new ProtocolError(`Unexpected frame type ${f.type}`);
    const b = decodeBlock(f.payload, hello);
    playout.block(b.seq, b.captured, b.samples, b.intact);
  }
}

const FLAGS = {
  ...CLIENT_FLAGS,
  latency: {
    type: "string",
    default: "100",
    value: "MS",
    help: "most capture-to-sink latency; later blocks are skipped and counted late",
  },
} as const;

if (import.meta.main) {
  runMain(async () => {
    const { flags } = parseFlags(Deno.args, FLAGS, {
      usage: "deno task audio-tcp-client",
      summary: "Play live audio from an Audio-TCP server, checking every block's MD5.",
    });
    await runClientTool(flags, (duration, signal) =>
      runAudioTcpClient({
        host: flags.host,
        port: parsePort(flags.port),
        output: flags.output,
        duration,
        latencyMs: parseSecondsFlag("latency", flags.latency, "milliseconds"),
        signal,
      }));
  });
}
