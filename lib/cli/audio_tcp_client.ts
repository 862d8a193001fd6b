/**
 * The Audio-TCP client as a library: the shell around the receiver core
 * (`lib/core/audio/tcp/client.ts`). It connects (and reconnects with
 * backoff), runs the code's handshake, reads frames through one transport
 * for plain and sealed frames, answers clock sync, and hands decisions to
 * the sink.
 *
 * @module
 */
import { blockMs } from "../core/audio/format/spec.ts";
import { MAX_TIMELINE_FILL, SequenceTracker } from "../core/audio/stages/sequence_tracker.ts";
import { AutoBound } from "../core/audio/stages/auto_bound.ts";
import type { PlayoutDecision } from "../core/audio/stages/jitter_buffer.ts";
import { type AudioTcpEvent, AudioTcpReceiver } from "../core/audio/tcp/client.ts";
import { UserError } from "../core/errors.ts";
import type { StreamReport } from "../core/report/stream_report.ts";
import { frameTransport } from "../core/crypto/frame_transport.ts";
import { FormatChangedError, keepsTimeline, Playout } from "../io/playout.ts";
import { readChunks } from "../io/conn.ts";
import { now } from "../io/clock.ts";
import { writeAll } from "../io/streams.ts";
import { closeQuietly, describeError } from "../io/errors.ts";
import { connectTo } from "../io/net.ts";
import { connectCoded } from "../io/secure_conn.ts";
import { CodeRequired } from "../core/crypto/secure_stream.ts";
import { MAX_SERVER_FRAME } from "../core/audio/tcp/frames.ts";

/** Options of {@link runAudioTcpClient}. */
export interface AudioTcpClientOptions {
  /** Address to bind or connect to (default 127.0.0.1). */
  host?: string;
  /** Port (0 for a server picks a free one). */
  port: number;
  /** Output SPEC. */
  output: string;
  /** Stop after this many seconds (default: until stopped). */
  duration?: number;
  /**
   * On a sound device, blocks later than this after capture are skipped and
   * counted late, ms; or `"auto"` (the default): the bound follows the
   * path (`auto_bound.ts`). A file keeps every slot whatever the bound.
   */
  latencyMs?: number | "auto";
  /** Keep the slot timeline (default: for a file or `null`, as `keepsTimeline` says). */
  keepTimeline?: boolean;
  /** Live status line (default: when stderr is a terminal). */
  status?: boolean;
  /** Stops the client early. */
  signal?: AbortSignal;
  /** Logs reconnections (default stderr). */
  log?: (line: string) => void;
  /** The server's code: the session is then authenticated and encrypted. */
  code?: string;
  /**
   * Give up when no stream came for this long, ms, reconnecting meanwhile
   * (default {@link AUDIO_TCP_TIMEOUT_MS}); it also bounds a connect.
   */
  timeoutMs?: number;
}

const HELLO_TIMEOUT_MS = 5000;
/** How long the client reconnects to a lost server before it gives up, ms (`--timeout`). */
export const AUDIO_TCP_TIMEOUT_MS = 30_000;
const IDLE_MS = 5000;

/** Runs a client session to the end and returns its report. */
export async function runAudioTcpClient(options: AudioTcpClientOptions): Promise<StreamReport> {
  const host = options.host ?? "127.0.0.1";
  const log = options.log ?? ((line: string) => console.error(line));
  // One ordering core for the whole session, across reconnections.
  const timeline = options.keepTimeline ?? keepsTimeline(options.output);
  const tracker = new SequenceTracker(timeline ? MAX_TIMELINE_FILL : undefined);
  const latency = options.latencyMs ?? "auto";
  const bound = latency === "auto" ? new AutoBound() : undefined;
  // The sink side's own slack past the bound, as the UDP client has: two blocks.
  let slack = 0;
  await using playout = new Playout("tcp", tracker.counters, {
    output: options.output,
    lateMs: bound ? () => bound.ms + slack : latency as number,
    status: options.status,
    keepTimeline: timeline,
    log,
  });
  const decide = (d: PlayoutDecision) => {
    if (bound && d.kind === "play") bound.observe(now() - d.captured, now());
    playout.decide(d);
  };
  let conn: Deno.TcpConn | undefined;
  let done = false;
  const stop = () => {
    done = true;
    closeQuietly(conn);
  };
  options.signal?.addEventListener("abort", stop);
  const where = `${host}:${options.port}`;
  const ctx: SessionContext = { code: options.code, playout, decide, tracker, where, log };
  // --duration counts from the stream's first hello, as the UDP client's
  // does from its first format: the same event, so sessions compare.
  let timer: ReturnType<typeof setTimeout> | undefined;
  let backoff = 100;
  let connectedOnce = false;
  // Reconnecting goes on until --timeout has passed with no stream.
  const timeoutMs = options.timeoutMs ?? AUDIO_TCP_TIMEOUT_MS;
  let lostAt: number | undefined;
  try {
    while (!done) {
      try {
        conn = await connectTo(host, options.port, timeoutMs);
        if (done) break;
        conn.setNoDelay(true);
        await session(conn, ctx, (ms) => {
          slack = 2 * ms;
          if (!connectedOnce && options.duration !== undefined) {
            timer = setTimeout(stop, options.duration * 1000);
          }
          connectedOnce = true;
          lostAt = undefined;
          backoff = 100;
        });
        if (done) break;
        throw new UserError("Server closed the connection");
      } catch (err) {
        if (done) break;
        if (!connectedOnce || err instanceof FormatChangedError) throw err;
        lostAt ??= performance.now();
        if (performance.now() - lostAt > timeoutMs) {
          throw gaveUp(host, options.port, timeoutMs, err);
        }
        playout.stats.reconnects++;
        log(`${describeError(err)}; reconnecting in ${backoff} ms`);
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, 2000);
      } finally {
        closeQuietly(conn);
      }
    }
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", stop);
  }
  playout.stats.extra = boundFields(bound, latency);
  return playout.report();
}

/** Why the client stopped reconnecting: no stream for `--timeout`. */
function gaveUp(host: string, port: number, timeoutMs: number, err: unknown): UserError {
  return new UserError(
    `No stream from ${host}:${port} for ${timeoutMs / 1000} s (--timeout); gave up: ${
      describeError(err)
    }`,
  );
}

/** The report's fields on the latency bound: automatic (how it moved) or fixed. */
function boundFields(bound: AutoBound | undefined, latency: number | "auto") {
  return {
    latency_bound_auto: bound !== undefined,
    latency_bound_ms: bound ? Math.round(bound.ms) : latency,
    latency_bound_range_ms: bound ? [Math.round(bound.minMs), Math.round(bound.maxMsSeen)] : null,
    latency_bound_grew: bound?.grew ?? 0,
  };
}

/** What every connection of a client session shares. */
interface SessionContext {
  code: string | undefined;
  playout: Playout;
  decide: (d: PlayoutDecision) => void;
  tracker: SequenceTracker;
  where: string;
  log: (line: string) => void;
}

/**
 * One connection: the hello, then blocks until the stream ends or breaks.
 * Clock sync starts over with each connection.
 */
async function session(
  conn: Deno.TcpConn,
  { code, playout, decide, tracker, where, log }: SessionContext,
  connected: (blockMs: number) => void,
): Promise<void> {
  const receiver = new AudioTcpReceiver();
  // With a code: the handshake first, then every frame sealed.
  const coded = code === undefined
    ? undefined
    : await connectCoded(conn, { code, context: "audio-tcp", maxInner: MAX_SERVER_FRAME });
  const transport = frameTransport(coded?.secure);
  // A server that says nothing within HELLO_TIMEOUT_MS is not one of ours.
  const helloTimer = setTimeout(() => closeQuietly(conn), HELLO_TIMEOUT_MS);
  const notOurs = (why: string) =>
    new UserError(`Peer at ${where} is not an Audio-TCP server: ${why}`);
  // Sync requests go out in order, one write at a time.
  let writing = Promise.resolve();
  let syncTimer: ReturnType<typeof setTimeout> | undefined;
  const act = async (events: AudioTcpEvent[]) => {
    for (const e of events) {
      if (e.type === "send") {
        const bytes = transport.wrap(e.bytes);
        writing = writing.then(() => writeAll(conn, bytes)).catch(() => closeQuietly(conn));
      } else if (e.type === "hello") {
        clearTimeout(helloTimer);
        await playout.begin(e.hello);
        tracker.stream(e.hello.streamId, blockMs(e.hello));
        if (e.sync) syncTimer = setTimeout(tick, 0);
        else log(`server at ${where} does not sync clocks; latency assumes the two clocks agree`);
        connected(blockMs(e.hello));
      } else {
        for (const d of tracker.push(e.block)) decide(d);
      }
    }
    playout.clock = receiver.clock(now());
  };
  const tick = () => {
    act(receiver.tick(now()));
    const next = receiver.nextTick();
    if (next !== null) syncTimer = setTimeout(tick, Math.max(0, next - now()));
  };
  try {
    for (const f of coded?.early ?? []) await act(receiver.receive(f, now()));
    for await (const bytes of readChunks(conn, { idleMs: IDLE_MS })) {
      for (const f of transport.unwrap(bytes)) await act(receiver.receive(f, now()));
    }
    receiver.closed();
  } catch (err) {
    // Anything that goes wrong before the hello means the peer is not one
    // of ours, unless it said why (it needs a code).
    if (!receiver.hello && !(err instanceof CodeRequired)) throw notOurs(describeError(err));
    throw err;
  } finally {
    clearTimeout(helloTimer);
    clearTimeout(syncTimer);
    syncTimer = undefined;
    playout.stats.bytes += receiver.bytes;
  }
  if (!receiver.hello) throw notOurs("it sent no hello");
}
