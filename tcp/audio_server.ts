/**
 * Audio-TCP server: captures one source and broadcasts each block, with its
 * MD5, to every connected listener. A slow or stuck listener never delays
 * capture or the others: each has a bounded queue that loses its oldest
 * blocks when full, and one that stays stuck is disconnected.
 *
 * Run: `deno task audio-tcp-server [--host 127.0.0.1] [--port 4444] [--input default]`
 *
 * @module
 */
import type { AudioSource } from "../lib/io/audio_io.ts";
import { describeSpec } from "../lib/core/audio/format/spec.ts";
import { ListenerSession } from "../lib/core/audio/tcp/server.ts";
import { encodeBlock, encodeHello } from "../lib/core/audio/tcp/frames.ts";
import { AUDIO_PROTOCOL } from "../lib/core/audio/format/stream_format.ts";
import { newStreamId, startCapture } from "../lib/io/capture.ts";
import { now } from "../lib/io/clock.ts";
import { readChunks } from "../lib/io/conn.ts";
import { closeQuietly, describeError } from "../lib/io/errors.ts";
import { writeAll } from "../lib/io/streams.ts";
import { listenTcp } from "../lib/io/net.ts";
import { acceptCoded } from "../lib/io/secure_conn.ts";
import { SecureStream } from "../lib/core/crypto/secure_stream.ts";
import { GuessLimiter } from "../lib/core/crypto/guess_limiter.ts";
import { HandshakeGate } from "../lib/core/crypto/admission.ts";
import { UsageError, UserError } from "../lib/core/errors.ts";
import { CODE_FLAG, isLoopback, resolveCode } from "../lib/cli/code.ts";
import { parseFlags, runMain } from "../lib/cli/flags.ts";
import { type AudioServer, runServerTool, serverFlags } from "../lib/cli/audio_shell.ts";

/** Options of {@link startAudioTcpServer}. */
export interface AudioTcpServerOptions {
  /** Address to bind or connect to (default 127.0.0.1). */
  host?: string;
  /** Port (0 for a server picks a free one). */
  port: number;
  /** An opened source; the server closes it when it stops. */
  source: AudioSource;
  /** Blocks a listener may have queued before its oldest are dropped (default 64). */
  queueBlocks?: number;
  /** Disconnect a listener that takes no block for this long (ms, default 5000). */
  stuckMs?: number;
  /** Most listeners at once (default 100). */
  maxListeners?: number;
  /** Most listeners from one host at once (default 8). */
  maxPerHost?: number;
  /**
   * The shared code: every listener must prove it knows it (SPAKE2) before
   * it gets the hello, and every frame after is sealed. Required when
   * listening beyond loopback.
   */
  code?: string;
  /** Where log lines go (default stdout for servers, stderr for clients). */
  log?: (line: string) => void;
}

/** Counters of the Audio-TCP server, for logs, tests and benches. */
export interface AudioTcpServerStats {
  /** Blocks captured. */
  blocksCaptured: number;
  /** Listeners that connected. */
  listenersServed: number;
  /** Listeners disconnected because they took nothing for too long. */
  listenersDropped: number;
  /** Blocks dropped from the queues of listeners that fell behind. */
  blocksDroppedForSlowListeners: number;
}

/** A running Audio-TCP server. */
export type AudioTcpServer = AudioServer<AudioTcpServerStats>;

/** One connected listener: its session core and the connection it writes to. */
interface Listener {
  readonly conn: Deno.TcpConn;
  readonly who: string;
  readonly host: string;
  readonly session: ListenerSession;
  /** With a code: seals what the listener is sent, opens what it sends. */
  readonly secure?: SecureStream;
  wake?: () => void;
  closed: boolean;
}

/** Starts capturing and serving. */
export function startAudioTcpServer(options: AudioTcpServerOptions): AudioTcpServer {
  const host = options.host ?? "127.0.0.1";
  if (options.code === undefined && !isLoopback(host)) {
    throw new UsageError(`Listening on ${host}, beyond loopback, needs a code (--code)`);
  }
  const source = options.source;
  const listener = listenTcp(host, options.port);
  const guesses = new GuessLimiter();
  const gate = new HandshakeGate();
  const log = options.log ?? ((line: string) => console.log(line));
  const queueBlocks = options.queueBlocks ?? 64;
  const stuckMs = options.stuckMs ?? 5000;
  const maxListeners = options.maxListeners ?? 100;
  const maxPerHost = options.maxPerHost ?? 8;
  const listeners = new Set<Listener>();
  const tasks = new Set<Promise<void>>();
  const stats: AudioTcpServerStats = {
    blocksCaptured: 0,
    listenersServed: 0,
    listenersDropped: 0,
    blocksDroppedForSlowListeners: 0,
  };
  let stopping = false;

  const track = (p: Promise<void>) => {
    tasks.add(p);
    p.finally(() => tasks.delete(p));
  };
  const drop = (l: Listener) => {
    l.closed = true;
    l.wake?.();
    closeQuietly(l.conn);
  };

  const streamId = newStreamId();
  const hello = encodeHello({
    ...source.spec,
    streamId,
    format: "s16le",
    protocol: AUDIO_PROTOCOL,
  });
  // The fan-out: one frame per block, queued for every listener.
  const capture = startCapture(source, streamId, (block) => {
    const frame = encodeBlock(block);
    stats.blocksCaptured++;
    const t = now();
    for (const l of listeners) {
      // Dropped already, its task not yet done: not counted twice.
      if (l.closed) continue;
      if (l.session.push(frame, t)) stats.blocksDroppedForSlowListeners++;
      l.wake?.();
      if (l.session.stuck(t)) {
        log(`${l.who}: took no audio for ${stuckMs / 1000} s; disconnected`);
        stats.listenersDropped++;
        drop(l);
      }
    }
  });

  // A listener proves the code (if there is one) before it is one: at
  // most a few unproven connections from an address and from its network
  // (HandshakeGate), each 5 s long.
  const admit = async (conn: Deno.TcpConn, a: Deno.NetAddr) => {
    const who = `${a.hostname}:${a.port}`;
    let secure: SecureStream | undefined;
    const early: Uint8Array[] = [];
    if (options.code !== undefined) {
      const busy = gate.enter(a.hostname);
      if (busy) {
        log(`refused a listener from ${a.hostname}: ${busy}`);
        await writeAll(conn, SecureStream.refusal(busy)).catch(() => {});
        closeQuietly(conn);
        return;
      }
      try {
        const coded = await acceptCoded(conn, a.hostname, guesses, {
          code: options.code,
          context: "audio-tcp",
          maxInner: 64,
          announce: true,
        }, (message) => SecureStream.refusal(message));
        secure = coded.secure;
        early.push(...coded.early);
      } catch (err) {
        if (!stopping) log(`${who}: ${describeError(err)}`);
        closeQuietly(conn);
        return;
      } finally {
        gate.leave(a.hostname);
      }
    }
    if (stopping) return closeQuietly(conn);
    const l: Listener = {
      conn,
      who,
      host: a.hostname,
      session: new ListenerSession({ hello, queueBlocks, stuckMs }),
      secure,
      closed: false,
    };
    for (const f of early) l.session.receive(f, now());
    listeners.add(l);
    stats.listenersServed++;
    await serve(l);
  };

  const serve = async (l: Listener) => {
    // A listener sends only clock sync requests: read to answer them, to
    // notice anything else it sends, or it leaving. Times are the capture clock's.
    const reading = (async () => {
      let first = !l.secure;
      for await (const bytes of readChunks(l.conn)) {
        // A coded client's first frame at this plain server: said so.
        if (first && SecureStream.isStart(bytes)) {
          throw new UserError("A client sent a code to this server, which has none");
        }
        first = false;
        const frames = l.secure
          ? l.secure.receive(bytes).flatMap((e) => e.type === "data" ? [e.bytes] : [])
          : [bytes];
        for (const f of frames) l.session.receive(f, now());
        if (l.session.syncPending) l.wake?.();
      }
    })();
    const writing = (async () => {
      while (!l.closed) {
        const frame = l.session.take(now());
        if (frame) await writeAll(l.conn, l.secure ? l.secure.seal(frame) : frame);
        else await new Promise<void>((r) => l.wake = r);
      }
    })();
    try {
      await Promise.race([writing, reading]);
    } catch (err) {
      if (!stopping) log(`${l.who}: ${describeError(err)}; disconnected`);
    } finally {
      drop(l);
      listeners.delete(l);
      await Promise.allSettled([reading, writing]);
    }
  };

  track(
    (async () => {
      for await (const conn of listener) {
        const a = conn.remoteAddr as Deno.NetAddr;
        const fromHost = [...listeners].filter((l) => l.host === a.hostname).length;
        if (listeners.size >= maxListeners || fromHost >= maxPerHost) {
          log(
            listeners.size >= maxListeners
              ? `refused a listener: ${maxListeners} already connected`
              : `refused a listener: ${maxPerHost} already connected from ${a.hostname}`,
          );
          conn.close();
          continue;
        }
        conn.setNoDelay(true);
        track(admit(conn, a));
      }
    })().catch(() => {}),
  );

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      stopping = true;
      closeQuietly(listener);
      await capture.stop();
      for (const l of listeners) drop(l);
      await Promise.allSettled([...tasks]);
      await source.close();
    })();
    return closing;
  };

  return {
    addr: listener.addr as Deno.NetAddr,
    spec: source.spec,
    stats,
    get listeners() {
      return listeners.size;
    },
    finished: capture.finished,
    close,
    [Symbol.asyncDispose]: close,
  };
}

if (import.meta.main) {
  runMain(async () => {
    const { flags } = parseFlags(Deno.args, { ...serverFlags(512), code: CODE_FLAG }, {
      usage: "deno task audio-tcp-server",
      summary: "Broadcast live audio over TCP, each block with its MD5, to every listener.",
    });
    const code = resolveCode(flags.code, { host: flags.host });
    await runServerTool(
      flags,
      (source, host, port, maxPerHost) =>
        startAudioTcpServer({ host, port, source, maxPerHost, code }),
      (server, source) =>
        `audio-tcp server listening on ${server.addr.hostname}:${server.addr.port}: ` +
        `${source.label}, ${describeSpec(server.spec)}` +
        (code ? ", listeners need the code" : ""),
      ({ stats: st }) =>
        `stopped: ${st.blocksCaptured} blocks captured, ${st.listenersServed} listeners served, ` +
        `${st.blocksDroppedForSlowListeners} blocks dropped for slow listeners, ` +
        `${st.listenersDropped} stuck listeners disconnected`,
    );
  });
}
