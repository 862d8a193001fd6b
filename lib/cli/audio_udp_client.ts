/**
 * The Audio-UDP client as a library: the shell around the subscriber core
 * (`lib/core/audio/udp/client.ts`). It owns the socket, the renew timer,
 * the play-out loop that releases one slot per block, and the sink.
 *
 * @module
 */
import { blockMs } from "../core/audio/format/spec.ts";
import { type SubscriberEvent, UdpSubscriber } from "../core/audio/udp/client.ts";
import { UserError } from "../core/errors.ts";
import type { StreamReport } from "../core/report/stream_report.ts";
import { now } from "../io/clock.ts";
import { closeQuietly, describeError } from "../io/errors.ts";
import { openUdpClientSocket, resolveUdpServer, sameAddress } from "../io/net.ts";
import { keepsTimeline, Playout } from "../io/playout.ts";

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
  // Datagrams are taken from this host and port only.
  const server = await resolveUdpServer(host, options.port);
  const socket = openUdpClientSocket(server.hostname);
  options.onBound?.(socket.addr as Deno.NetAddr);
  const run = new ClientRun(options, `${host}:${options.port}`, server, socket);
  options.signal?.addEventListener("abort", run.stop);
  // Subscribe now; the core renews and syncs clocks every second (with a
  // short burst at the start) and notices silence.
  run.send(run.sub.start(now()));
  run.renew = setTimeout(run.tick, RENEW_MS);
  await Promise.all([run.receiving(), run.playing()]);
  clearTimeout(run.renew);
  clearTimeout(run.deadline);
  options.signal?.removeEventListener("abort", run.stop);
  return await run.finish();
}

/** One client session's state, shared by its loops. */
class ClientRun {
  readonly sub: UdpSubscriber;
  readonly log: (line: string) => void;
  playout: Playout | undefined;
  done = false;
  failure: unknown;
  wake: (() => void) | undefined;
  deadline: ReturnType<typeof setTimeout> | undefined;
  renew: ReturnType<typeof setTimeout> | undefined;
  /** Datagrams read so far (the play-out side waits for the socket to drain after a stall). */
  datagrams = 0;

  constructor(
    readonly options: AudioUdpClientOptions,
    readonly where: string,
    readonly server: Deno.NetAddr,
    readonly socket: Deno.DatagramConn,
  ) {
    this.log = options.log ?? ((line: string) => console.error(line));
    this.sub = new UdpSubscriber({
      latencyMs: options.latencyMs,
      keepTimeline: keepsTimeline(options.output),
      renewMs: RENEW_MS,
      answerTimeoutMs: options.timeoutMs,
      code: options.code === undefined
        ? undefined
        : { code: options.code, random: crypto.getRandomValues(new Uint8Array(48)) },
    });
  }

  send = (d: Uint8Array) => this.socket.send(d, this.server).catch(() => {});

  stop = () => {
    if (this.done) return;
    this.done = true;
    this.wake?.();
    // Say goodbye so the server stops sending at once (best effort).
    const bye = this.sub.bye();
    (bye ? this.send(bye) : Promise.resolve()).finally(() => closeQuietly(this.socket));
  };

  #fail(why: unknown): void {
    this.failure = why;
    this.stop();
  }

  /** Acts on what the session core says. */
  async act(events: SubscriberEvent[]): Promise<void> {
    const where = this.where;
    for (const e of events) {
      if (e.type === "send") this.send(e.datagram);
      else if (e.type === "block") this.wake?.();
      else if (e.type === "full") {
        this.#fail(new UserError(`Server at ${where} is full; try again later`));
      } else if (e.type === "refused") this.#fail(new UserError(e.message));
      else if (e.type === "silent") {
        this.#fail(
          new UserError(
            e.streaming
              ? `Server at ${where} stopped answering`
              : `No answer from ${where} (is an Audio-UDP server running there?)`,
          ),
        );
      } else if (!e.restarted) await this.#begin(e.format);
      else {
        await this.playout!.begin(e.format);
        this.log(`server at ${where} restarted; rejoined its new stream`);
        this.wake?.();
      }
    }
  }

  /** The stream's first format: the sink opens and `--duration` starts. */
  async #begin(format: Parameters<Playout["begin"]>[0]): Promise<void> {
    const { options, sub } = this;
    // The jitter buffer decides what is late on arrival. The sink side
    // keeps its own bound, two blocks past the target, for a sink that
    // stalls (a sound device slow to start) after the jitter buffer
    // released a block.
    const slack = 2 * blockMs(format);
    this.playout = new Playout("udp", sub.counters, {
      output: options.output,
      lateMs: () => (sub.targetMs ?? sub.maxLatencyMs) + slack,
      status: options.status,
      log: this.log,
    });
    await this.playout.begin(format);
    if (options.duration !== undefined) {
      this.deadline = setTimeout(this.stop, options.duration * 1000);
    }
    this.wake?.();
  }

  tick = () => {
    if (this.done) return;
    this.act(this.sub.tick(now()));
    if (this.playout) this.playout.clock = this.sub.clock(now());
    this.renew = setTimeout(
      this.tick,
      Math.max(1, Math.min(this.sub.nextTick() - now(), RENEW_MS)),
    );
  };

  receiving(): Promise<void> {
    return (async () => {
      for await (const [d, a] of this.socket) {
        this.datagrams++;
        const events = this.sub.receive(d, sameAddress(a, this.server), now());
        // A challenge answered starts the sync burst: tick at its pace.
        if (events.some((e) => e.type === "send")) {
          clearTimeout(this.renew);
          this.renew = setTimeout(this.tick, Math.max(1, this.sub.nextTick() - now()));
        }
        await this.act(events);
      }
    })().catch((err) => {
      if (!this.done) this.failure = err;
      this.stop();
    });
  }

  /** Play-out: one slot per block, at capture time plus the target latency. */
  async playing(): Promise<void> {
    const sub = this.sub;
    while (!this.done) {
      const due = sub.nextDue();
      // Slots are released up to EARLY_MS before they are due: timers wake
      // a millisecond or so late, and the sink hop takes a little more.
      const wait = due === null ? 1000 : due - EARLY_MS - now();
      if (wait > 0) {
        await new Promise<void>((r) => {
          this.wake = r;
          setTimeout(r, Math.min(wait, 1000));
        });
        this.wake = undefined;
        continue;
      }
      if (due !== null && now() - due > BEHIND_MS) await drained(() => this.datagrams);
      const decision = sub.pop(now() + EARLY_MS);
      if (decision) this.playout!.decide(decision);
    }
  }

  /** Closes the sink and makes the report, or throws why there is none. */
  async finish(): Promise<StreamReport> {
    const { failure, playout, sub } = this;
    if (failure && !playout) throw failure;
    if (failure) this.log(describeError(failure));
    if (!playout) throw new UserError(`No stream from ${this.where}`);
    sub.finish();
    playout.clock = sub.clock(now());
    await playout.close();
    playout.stats.bytes = sub.bytes;
    playout.stats.reconnects = sub.restarts;
    playout.stats.extra = sub.reportFields();
    return playout.report();
  }
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
