/**
 * Audio-UDP client: subscribes to an Audio-UDP server, reassembles each
 * block from its fragments, checks its MD5, and plays it through a jitter
 * buffer with a target latency. Lost fragments are rebuilt from the
 * server's Reed-Solomon repairs; corrupted blocks are never played; gaps
 * are concealed; blocks that come after their slot are counted late. The
 * target follows the path (`--latency auto`, the default) or stays fixed.
 *
 * Run: `deno task audio-udp-client [--host 127.0.0.1] [--port 4444] [--output default] [--latency auto|MS]`
 *
 * @module
 */
import { blockMs } from "../lib/core/audio/format/spec.ts";
import { type SubscriberEvent, UdpSubscriber } from "../lib/core/audio/udp/client.ts";
import { UserError } from "../lib/core/errors.ts";
import type { StreamReport } from "../lib/core/report/stream_report.ts";
import { now } from "../lib/io/clock.ts";
import { closeQuietly, describeError } from "../lib/io/errors.ts";
import { openUdpClientSocket, resolveUdpServer, sameAddress } from "../lib/io/net.ts";
import { keepsTimeline, Playout } from "../lib/io/playout.ts";
import { parseFlags, parsePort, parseSecondsFlag, runMain } from "../lib/cli/flags.ts";
import { CLIENT_FLAGS, runClientTool } from "../lib/cli/audio_shell.ts";
import { CODE_FLAG, resolveCode, withCodePrompt } from "../lib/cli/code.ts";

/** Options of {@link runAudioUdpClient}. */
export interface AudioUdpClientOptions {
  /** Address to bind or connect to (default 127.0.0.1). */
  host?: string;
  /** Port (0 for a server picks a free one). */
  port: number;
  /** Output SPEC: default, N, NAME, FILE.wav or null. */
  output: string;
  /** Target latency, ms, or "auto" (the default: it follows the path). */
  latencyMs?: number | "auto";
  /** Stop after this many seconds (default: until stopped). */
  duration?: number;
  /** Live status line (default: when stderr is a terminal). */
  status?: boolean;
  /** Stops the client early. */
  signal?: AbortSignal;
  /** Where log lines go (default stdout for servers, stderr for clients). */
  log?: (line: string) => void;
  /** Called with the client's own address once bound (for tests). */
  onBound?: (addr: Deno.NetAddr) => void;
  /** The server's code: the session is then authenticated and encrypted. */
  code?: string;
  /** Give up when the server answers nothing for this long, ms (default 5000). */
  timeoutMs?: number;
}

const RENEW_MS = 1000;
const EARLY_MS = 1;
/** A slot this far past due means the process stalled, ms. */
const BEHIND_MS = 5;

/** Runs a client session and returns its report. */
export async function runAudioUdpClient(options: AudioUdpClientOptions): Promise<StreamReport> {
  const host = options.host ?? "127.0.0.1";
  const where = `${host}:${options.port}`;
  const log = options.log ?? ((line: string) => console.error(line));
  // Datagrams are taken from this host and port only.
  const server = await resolveUdpServer(host, options.port);
  const socket = openUdpClientSocket(server.hostname);
  options.onBound?.(socket.addr as Deno.NetAddr);
  const sub = new UdpSubscriber({
    latencyMs: options.latencyMs,
    keepTimeline: keepsTimeline(options.output),
    renewMs: RENEW_MS,
    answerTimeoutMs: options.timeoutMs,
    code: options.code === undefined
      ? undefined
      : { code: options.code, random: crypto.getRandomValues(new Uint8Array(48)) },
  });
  let playout: Playout | undefined;
  let done = false;
  let failure: unknown;
  let wake: (() => void) | undefined;
  let deadline: ReturnType<typeof setTimeout> | undefined;
  /** Datagrams read so far (the play-out side waits for the socket to drain after a stall). */
  let datagrams = 0;
  const send = (d: Uint8Array) => socket.send(d, server).catch(() => {});
  const stop = () => {
    if (done) return;
    done = true;
    wake?.();
    // Say goodbye so the server stops sending at once (best effort).
    const bye = sub.bye();
    (bye ? send(bye) : Promise.resolve()).finally(() => closeQuietly(socket));
  };
  options.signal?.addEventListener("abort", stop);

  // Acts on what the session core says.
  const act = async (events: SubscriberEvent[]) => {
    for (const e of events) {
      if (e.type === "send") send(e.datagram);
      else if (e.type === "block") wake?.();
      else if (e.type === "full") {
        failure = new UserError(`Server at ${where} is full; try again later`);
        stop();
      } else if (e.type === "refused") {
        failure = new UserError(e.message);
        stop();
      } else if (e.type === "silent") {
        failure = new UserError(
          e.streaming
            ? `Server at ${where} stopped answering`
            : `No answer from ${where} (is an Audio-UDP server running there?)`,
        );
        stop();
      } else if (!e.restarted) {
        // The jitter buffer decides what is late on arrival. The sink side
        // keeps its own bound, two blocks past the target, for a sink that
        // stalls (a sound device slow to start) after the jitter buffer
        // released a block.
        const slack = 2 * blockMs(e.format);
        playout = new Playout("udp", sub.counters, {
          output: options.output,
          lateMs: () => (sub.targetMs ?? sub.maxLatencyMs) + slack,
          status: options.status,
          log,
        });
        await playout.begin(e.format);
        if (options.duration !== undefined) {
          deadline = setTimeout(stop, options.duration * 1000);
        }
        wake?.();
      } else {
        await playout!.begin(e.format);
        log(`server at ${where} restarted; rejoined its new stream`);
        wake?.();
      }
    }
  };

  // Subscribe now; the core renews and syncs clocks every second (with a
  // short burst at the start) and notices silence.
  send(sub.start(now()));
  let renew: ReturnType<typeof setTimeout> | undefined;
  const tick = () => {
    if (done) return;
    act(sub.tick(now()));
    if (playout) playout.clock = sub.clock(now());
    renew = setTimeout(tick, Math.max(1, Math.min(sub.nextTick() - now(), RENEW_MS)));
  };
  renew = setTimeout(tick, RENEW_MS);

  const receiving = (async () => {
    for await (const [d, a] of socket) {
      datagrams++;
      const events = sub.receive(d, sameAddress(a, server), now());
      // A challenge answered starts the sync burst: tick at its pace.
      if (events.some((e) => e.type === "send")) {
        clearTimeout(renew);
        renew = setTimeout(tick, Math.max(1, sub.nextTick() - now()));
      }
      await act(events);
    }
  })().catch((err) => {
    if (!done) failure = err;
    stop();
  });

  // Play-out: one slot per block, at capture time plus the target latency.
  const playing = (async () => {
    while (!done) {
      const due = sub.nextDue();
      // Slots are released up to EARLY_MS before they are due: timers wake
      // a millisecond or so late, and the sink hop takes a little more.
      const wait = due === null ? 1000 : due - EARLY_MS - now();
      if (wait > 0) {
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, Math.min(wait, 1000));
        });
        wake = undefined;
        continue;
      }
      if (due !== null && now() - due > BEHIND_MS) await drained(() => datagrams);
      const decision = sub.pop(now() + EARLY_MS);
      if (decision) playout!.decide(decision);
    }
  })();

  await Promise.all([receiving, playing]);
  clearTimeout(renew);
  clearTimeout(deadline);
  options.signal?.removeEventListener("abort", stop);
  if (failure && !playout) throw failure;
  if (failure) log(describeError(failure));
  if (!playout) throw new UserError(`No stream from ${where}`);
  sub.finish();
  playout.clock = sub.clock(now());
  await playout.close();
  playout.stats.bytes = sub.bytes;
  playout.stats.reconnects = sub.restarts;
  playout.stats.extra = sub.reportFields();
  return playout.report();
}

/**
 * Behind (the process stalled): datagrams that came meanwhile may wait
 * unread in the socket. Yields until a turn reads none (`count` is what
 * was read so far), so a block that is there is played rather than
 * concealed.
 */
async function drained(count: () => number): Promise<void> {
  for (let i = 0, seen = -1; i < 256 && seen !== count(); i++) {
    seen = count();
    await new Promise((r) => setTimeout(r, 0));
  }
}

const FLAGS = {
  ...CLIENT_FLAGS,
  code: CODE_FLAG,
  timeout: {
    type: "string",
    default: "5",
    value: "SECONDS",
    help: "give up on a server that answers nothing for this long",
  },
  latency: {
    type: "string",
    default: "auto",
    value: "auto|MS",
    help: "jitter buffer target, capture to play-out (auto follows the path)",
  },
} as const;

if (import.meta.main) {
  runMain(async () => {
    const { flags } = parseFlags(Deno.args, FLAGS, {
      usage: "deno task audio-udp-client",
      summary: "Play live audio from an Audio-UDP server, checking every block's MD5.",
    });
    const code = resolveCode(flags.code);
    await runClientTool(
      flags,
      (duration, signal) =>
        withCodePrompt(code, (code) =>
          runAudioUdpClient({
            code,
            host: flags.host,
            port: parsePort(flags.port),
            output: flags.output,
            latencyMs: flags.latency === "auto"
              ? "auto"
              : parseSecondsFlag("latency", flags.latency, "milliseconds (or auto)"),
            duration,
            timeoutMs: parseSecondsFlag("timeout", flags.timeout) * 1000,
            signal,
          })),
    );
  });
}
