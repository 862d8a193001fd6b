/**
 * The Audio-TCP server as a library: captures one source and queues each
 * block, with its MD5, for every listener's session core
 * (`lib/core/audio/tcp/server.ts`). Listening, admission and closing are
 * the server shell's (`lib/io/server_shell.ts`); frames go out plain or
 * sealed through one transport (`lib/core/crypto/frame_transport.ts`).
 *
 * @module
 */
import type { AudioSource } from "../io/audio_io.ts";
import { ListenerSession } from "../core/audio/tcp/server.ts";
import { encodeBlock, encodeHello } from "../core/audio/tcp/frames.ts";
import { AUDIO_PROTOCOL } from "../core/audio/format/stream_format.ts";
import { type FrameTransport, frameTransport } from "../core/crypto/frame_transport.ts";
import { SecureStream } from "../core/crypto/secure_stream.ts";
import type { Refusal } from "../core/crypto/server_admission.ts";
import { newStreamId, startCapture } from "../io/capture.ts";
import { now } from "../io/clock.ts";
import { readChunks } from "../io/conn.ts";
import { closeQuietly, describeError } from "../io/errors.ts";
import { writeAll } from "../io/streams.ts";
import { acceptCoded } from "../io/secure_conn.ts";
import { type Admitted, closeOnce, startTcpShell, type TcpShell } from "../io/server_shell.ts";
import type { AudioServer } from "./audio_shell.ts";

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
  readonly session: ListenerSession;
  /** Plain, or with a code sealed: wraps what the listener is sent, unwraps what it sends. */
  readonly transport: FrameTransport;
  wake?: () => void;
  closed: boolean;
}

/** What the server runs on, shared by its parts. */
interface Server {
  readonly options: AudioTcpServerOptions;
  readonly log: (line: string) => void;
  readonly listeners: Set<Listener>;
  readonly stats: AudioTcpServerStats;
  readonly hello: Uint8Array;
  readonly queueBlocks: number;
  readonly stuckMs: number;
  shell?: TcpShell;
}

/** Starts capturing and serving. */
export function startAudioTcpServer(options: AudioTcpServerOptions): AudioTcpServer {
  const source = options.source;
  const streamId = newStreamId();
  const s: Server = {
    options,
    log: options.log ?? ((line: string) => console.log(line)),
    listeners: new Set(),
    stats: {
      blocksCaptured: 0,
      listenersServed: 0,
      listenersDropped: 0,
      blocksDroppedForSlowListeners: 0,
    },
    hello: encodeHello({ ...source.spec, streamId, format: "s16le", protocol: AUDIO_PROTOCOL }),
    queueBlocks: options.queueBlocks ?? 64,
    stuckMs: options.stuckMs ?? 5000,
  };
  const shell = s.shell = startTcpShell({
    host: options.host ?? "127.0.0.1",
    port: options.port,
    code: options.code,
    maxTotal: options.maxListeners ?? 100,
    maxPerHost: options.maxPerHost ?? 8,
    refuse: (conn, peer, why) => refuse(s, conn, peer, why),
    serve: (a) => admit(s, a),
  });
  const capture = startCapture(source, streamId, (block) => fanOut(s, encodeBlock(block)));
  const close = closeOnce(async () => {
    // The shell stops listening and closes every connection at once.
    const closing = shell.close();
    await capture.stop();
    for (const l of s.listeners) drop(l);
    await closing;
    await source.close();
  });
  return {
    addr: shell.addr,
    spec: source.spec,
    stats: s.stats,
    get listeners() {
      return s.listeners.size;
    },
    finished: capture.finished,
    close,
    [Symbol.asyncDispose]: close,
  };
}

function drop(l: Listener): void {
  l.closed = true;
  l.wake?.();
  closeQuietly(l.conn);
}

/** The fan-out: one frame per block, queued for every listener. */
function fanOut(s: Server, frame: Uint8Array): void {
  s.stats.blocksCaptured++;
  const t = now();
  for (const l of s.listeners) {
    // Dropped already, its task not yet done: not counted twice.
    if (l.closed) continue;
    if (l.session.push(frame, t)) s.stats.blocksDroppedForSlowListeners++;
    l.wake?.();
    if (l.session.stuck(t)) {
      s.log(`${l.who}: took no audio for ${s.stuckMs / 1000} s; disconnected`);
      s.stats.listenersDropped++;
      drop(l);
    }
  }
}

/** Turns a listener away: a full server says so in its log; a busy one tells the client too. */
async function refuse(s: Server, conn: Deno.TcpConn, peer: Deno.NetAddr, why: Refusal) {
  if (why.kind === "total") s.log(`refused a listener: ${why.limit} already connected`);
  else if (why.kind === "host") {
    s.log(`refused a listener: ${why.limit} already connected from ${peer.hostname}`);
  } else {
    s.log(`refused a listener from ${peer.hostname}: ${why.message}`);
    await writeAll(conn, SecureStream.refusal(why.message));
  }
}

/**
 * A listener proves the code (if there is one) before it is one: at most
 * a few unproven connections from an address and from its network (the
 * shell's admission), each 5 s long.
 */
async function admit(s: Server, a: Admitted): Promise<void> {
  const code = s.options.code;
  let secure: SecureStream | undefined;
  const early: Uint8Array[] = [];
  if (code !== undefined) {
    try {
      const coded = await acceptCoded(a.conn, a.peer.hostname, s.shell!.admission.guesses, {
        code,
        context: "audio-tcp",
        maxInner: 64,
        announce: true,
      }, (message) => SecureStream.refusal(message));
      secure = coded.secure;
      early.push(...coded.early);
    } catch (err) {
      if (!s.shell!.stopping) s.log(`${a.who}: ${describeError(err)}`);
      return;
    } finally {
      a.handshakeEnded();
    }
  }
  if (s.shell!.stopping) return;
  const l: Listener = {
    conn: a.conn,
    who: a.who,
    session: new ListenerSession({
      hello: s.hello,
      queueBlocks: s.queueBlocks,
      stuckMs: s.stuckMs,
    }),
    transport: frameTransport(secure, { refuseCode: true }),
    closed: false,
  };
  for (const f of early) l.session.receive(f, now());
  a.join();
  s.listeners.add(l);
  s.stats.listenersServed++;
  await serve(s, l);
}

async function serve(s: Server, l: Listener): Promise<void> {
  // A listener sends only clock sync requests: read to answer them, to
  // notice anything else it sends, or it leaving. Times are the capture clock's.
  const reading = (async () => {
    for await (const bytes of readChunks(l.conn)) {
      for (const f of l.transport.unwrap(bytes)) l.session.receive(f, now());
      if (l.session.syncPending) l.wake?.();
    }
  })();
  const writing = (async () => {
    while (!l.closed) {
      const frame = l.session.take(now());
      if (frame) await writeAll(l.conn, l.transport.wrap(frame));
      else await new Promise<void>((r) => l.wake = r);
    }
  })();
  try {
    await Promise.race([writing, reading]);
  } catch (err) {
    if (!s.shell!.stopping) s.log(`${l.who}: ${describeError(err)}; disconnected`);
  } finally {
    drop(l);
    s.listeners.delete(l);
    await Promise.allSettled([reading, writing]);
  }
}
