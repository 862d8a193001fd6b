/**
 * Audio-UDP client: subscribes to an Audio-UDP server, reassembles each
 * block from its fragments, checks its MD5, and plays it through a jitter
 * buffer with a target latency. Corrupted blocks are never played; gaps are
 * concealed; blocks that come after their slot are counted late.
 *
 * Run: `deno task audio-udp-client [--host 127.0.0.1] [--port 4444] [--output default] [--latency MS]`
 *
 * @module
 */
import { Playout } from "../lib/io/playout.ts";
import { blockBytes, blockMs } from "../lib/core/audio/spec.ts";
import { UserError } from "../lib/core/errors.ts";
import { describeError } from "../lib/io/errors.ts";
import { JitterBuffer } from "../lib/core/audio/jitter_buffer.ts";
import { Reassembler } from "../lib/core/audio/reassembly.ts";
import { now } from "../lib/io/audio_io.ts";
import type { StreamReport } from "../lib/core/report/stream_report.ts";
import {
  datagramType,
  decodeCookie,
  decodeFormat,
  decodeFragment,
  encodeSubscribe,
  UdpMsg,
} from "../lib/core/audio/udp_datagrams.ts";
import { parseFlags, parsePort, parseSecondsFlag, runMain } from "../lib/cli/flags.ts";
import { CLIENT_FLAGS, runClientTool } from "../lib/cli/audio_shell.ts";

/** Options of {@link runAudioUdpClient}. */
export interface AudioUdpClientOptions {
  host?: string;
  port: number;
  output: string;
  /** Target latency, ms (default: three blocks). */
  latencyMs?: number;
  duration?: number;
  status?: boolean;
  signal?: AbortSignal;
  log?: (line: string) => void;
  /** Called with the client's own address once bound (for tests). */
  onBound?: (addr: Deno.NetAddr) => void;
}

/** Give up when the server has not answered for this long, ms. */
const ANSWER_TIMEOUT_MS = 5000;
const RENEW_MS = 1000;
const EARLY_MS = 1;

/** Runs a client session and returns its report. */
export async function runAudioUdpClient(options: AudioUdpClientOptions): Promise<StreamReport> {
  const host = options.host ?? "127.0.0.1";
  const where = `${host}:${options.port}`;
  const log = options.log ?? ((line: string) => console.error(line));
  const server: Deno.NetAddr = { transport: "udp", hostname: host, port: options.port };
  let socket: Deno.DatagramConn;
  try {
    const loopback = /^(127\.|localhost$|::1$)/.test(host);
    socket = Deno.listenDatagram({
      hostname: loopback ? "127.0.0.1" : host.includes(":") ? "::" : "0.0.0.0",
      port: 0,
      transport: "udp",
    });
  } catch (err) {
    throw new UserError(describeError(err, "Could not open a UDP socket"));
  }
  options.onBound?.(socket.addr as Deno.NetAddr);
  // Until the server states the format, latency defaults to three blocks.
  let playout: Playout | undefined;
  let jitter: JitterBuffer | undefined;
  let reasm: Reassembler | undefined;
  let streamId: number | undefined;
  let cookie: Uint8Array | null = null;
  let lastAnswer = performance.now();
  let done = false;
  let failure: unknown;
  let wake: (() => void) | undefined;
  const invalid = { datagrams: 0 };
  const send = (d: Uint8Array) => socket.send(d, server).catch(() => {});
  const stop = () => {
    if (done) return;
    done = true;
    wake?.();
    // Say goodbye so the server stops sending at once (best effort).
    const bye = cookie ? send(encodeSubscribe(cookie, true)) : Promise.resolve();
    bye.finally(() => {
      try {
        socket.close();
      } catch {
        // Already closed.
      }
    });
  };
  options.signal?.addEventListener("abort", stop);

  // Subscribe now and renew every second.
  send(encodeSubscribe(null));
  const renew = setInterval(() => {
    if (performance.now() - lastAnswer > ANSWER_TIMEOUT_MS) {
      failure = new UserError(
        playout
          ? `Server at ${where} stopped answering`
          : `No answer from ${where} (is an Audio-UDP server running there?)`,
      );
      stop();
      return;
    }
    send(encodeSubscribe(cookie));
  }, RENEW_MS);
  let deadline: ReturnType<typeof setTimeout> | undefined;

  const receiving = (async () => {
    for await (const [d, a] of socket) {
      const from = a as Deno.NetAddr;
      if (from.port !== options.port) {
        invalid.datagrams++;
        continue;
      }
      const type = datagramType(d);
      if (type === UdpMsg.DATA && reasm && jitter && playout) {
        const f = decodeFragment(d);
        if (!f || f.streamId !== streamId) {
          invalid.datagrams++;
          continue;
        }
        lastAnswer = performance.now();
        playout.stats.bytes += d.length;
        const b = reasm.push(f);
        if (!b) continue;
        if (!b.intact) playout.stats.corrupted++;
        jitter.push(b);
        wake?.();
      } else if (type === UdpMsg.CHALLENGE) {
        const c = decodeCookie(d);
        if (!c) {
          invalid.datagrams++;
          continue;
        }
        cookie = c.slice();
        lastAnswer = performance.now();
        send(encodeSubscribe(cookie));
      } else if (type === UdpMsg.FULL && !playout) {
        failure = new UserError(`Server at ${where} is full; try again later`);
        stop();
      } else if (type === UdpMsg.FORMAT) {
        const fmt = decodeFormat(d);
        if (!fmt) {
          invalid.datagrams++;
          continue;
        }
        lastAnswer = performance.now();
        if (fmt.streamId === streamId) continue;
        // First format, or the server restarted: (re)start the stream.
        if (!playout) {
          const targetMs = options.latencyMs ?? Math.ceil(3 * blockMs(fmt));
          // The jitter buffer decides what is late on arrival. The sink side
          // keeps its own bound, two blocks past the target, for a sink that
          // stalls (a sound device slow to start) after the jitter buffer
          // released a block.
          playout = new Playout("udp", {
            output: options.output,
            lateMs: targetMs + 2 * blockMs(fmt),
            status: options.status,
          });
          await playout.begin(fmt, fmt.streamId);
          playout.stats.extra.target_latency_ms = targetMs;
          jitter = new JitterBuffer({ targetMs, blockMs: blockMs(fmt) });
          if (options.duration !== undefined) {
            deadline = setTimeout(stop, options.duration * 1000);
          }
        } else {
          await playout.begin(fmt, fmt.streamId);
          playout.stats.reconnects++;
          log(`server at ${where} restarted; rejoined its new stream`);
          jitter = new JitterBuffer({
            targetMs: playout.stats.extra.target_latency_ms,
            blockMs: blockMs(fmt),
          });
        }
        streamId = fmt.streamId;
        reasm = new Reassembler(blockBytes(fmt), fmt.mtu);
        playout.stats.extra.fragments_per_block = reasm.fragmentsPerBlock;
        wake?.();
      } else {
        invalid.datagrams++;
      }
    }
  })().catch((err) => {
    if (!done) failure = err;
    stop();
  });

  // Play-out: one slot per block, at capture time plus the target latency.
  const playing = (async () => {
    while (!done) {
      const due = jitter?.nextDue() ?? null;
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
      const decision = jitter!.pop(now() + EARLY_MS);
      if (!decision) continue;
      reasm!.setFloor(jitter!.next ?? decision.seq + 1);
      if (decision.kind === "play") playout!.play(decision.samples, decision.captured);
      else playout!.conceal(decision.captured);
    }
  })();

  await Promise.all([receiving, playing]);
  clearInterval(renew);
  clearTimeout(deadline);
  options.signal?.removeEventListener("abort", stop);
  if (failure && !playout) throw failure;
  if (failure) log(describeError(failure));
  if (!playout) throw new UserError(`No stream from ${where}`);
  jitter?.finish();
  await playout.close();
  const st = playout.stats;
  const jc = jitter?.counters;
  if (jc) {
    st.lost = jc.lost;
    st.late += jc.late; // Blocks late at the jitter buffer, plus any the sink side skipped.
    st.extra.blocks_reordered = jc.reordered;
  }
  const rc = reasm?.counters;
  st.extra.fragments_received = rc?.fragments ?? 0;
  st.extra.fragments_duplicate = rc?.duplicates ?? 0;
  st.extra.fragments_expired = rc?.expired ?? 0;
  st.extra.datagrams_invalid = invalid.datagrams + (rc?.invalid ?? 0);
  return playout.report();
}

const FLAGS = {
  ...CLIENT_FLAGS,
  latency: {
    type: "string",
    default: "",
    value: "MS",
    help: "jitter buffer target, capture to play-out (default three blocks)",
  },
} as const;

if (import.meta.main) {
  runMain(async () => {
    const { flags } = parseFlags(Deno.args, FLAGS, {
      usage: "deno task audio-udp-client",
      summary: "Play live audio from an Audio-UDP server, checking every block's MD5.",
    });
    await runClientTool(flags, (duration, signal) =>
      runAudioUdpClient({
        host: flags.host,
        port: parsePort(flags.port),
        output: flags.output,
        latencyMs: flags.latency
          ? parseSecondsFlag("latency", flags.latency, "milliseconds")
          : undefined,
        duration,
        signal,
      }));
  });
}
