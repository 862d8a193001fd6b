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
import { describeSpec } from "../lib/core/audio/spec.ts";
import { AUDIO_SERVER_LIMITS, encodeBlock, encodeHello } from "../lib/core/audio/tcp_frames.ts";
import { describeError } from "../lib/io/errors.ts";
import { readFrames } from "../lib/io/framed_conn.ts";
import { writeAll } from "../lib/io/streams.ts";
import { listenTcp } from "../lib/io/net.ts";
import { parseFlags, runMain } from "../lib/cli/flags.ts";
import { type AudioServer, runServerTool, serverFlags } from "../lib/cli/audio_shell.ts";

/** Options of {@link startAudioTcpServer}. */
export interface AudioTcpServerOptions {
  host?: string;
  port: number;
  /** An opened source; the server closes it when it stops. */
  source: AudioSource;
  /** Blocks a listener may have queued before its oldest are dropped (default 64). */
  queueBlocks?: number;
  /** Disconnect a listener that takes no block for this long (ms, default 5000). */
  stuckMs?: number;
  /** Most listeners at once (default 100). */
  maxListeners?: number;
  log?: (line: string) => void;
}

/** Counters of the server, for logs, tests and benches. */
export interface AudioServerStats {
  blocksCaptured: number;
  listenersServed: number;
  listenersDropped: number;
  blocksDroppedForSlowListeners: number;
}

/** A running Audio-TCP server. */
export type AudioTcpServer = AudioServer<AudioServerStats>;

/** One connected listener: a bounded queue drained by its own writer. */
class Listener {
  readonly conn: Deno.TcpConn;
  readonly who: string;
  #queue: Uint8Array[] = [];
  #limit: number;
  #wake: (() => void) | undefined;
  #closed = false;
  lastProgress = performance.now();
  dropped = 0;

  constructor(conn: Deno.TcpConn, limit: number) {
    this.conn = conn;
    const a = conn.remoteAddr as Deno.NetAddr;
    this.who = `${a.hostname}:${a.port}`;
    this.#limit = limit;
  }

  /** Queues a frame; when full, the oldest is dropped. Never waits. */
  push(frame: Uint8Array): number {
    if (this.#closed) return 0;
    if (this.#queue.length === 0) this.lastProgress = performance.now();
    let dropped = 0;
    if (this.#queue.length >= this.#limit) {
      this.#queue.shift();
      this.dropped++;
      dropped = 1;
    }
    this.#queue.push(frame);
    this.#wake?.();
    return dropped;
  }

  /** Writes queued frames until closed. */
  async run(hello: Uint8Array): Promise<void> {
    await writeAll(this.conn, hello);
    while (!this.#closed) {
      const frame = this.#queue.shift();
      if (!frame) {
        await new Promise<void>((r) => this.#wake = r);
        this.#wake = undefined;
        continue;
      }
      await writeAll(this.conn, frame);
      this.lastProgress = performance.now();
    }
  }

  /** Frames waiting to be written. */
  get pending(): number {
    return this.#queue.length;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#wake?.();
    try {
      this.conn.close();
    } catch {
      // Already closed.
    }
  }
}

/** Starts capturing and serving. */
export function startAudioTcpServer(options: AudioTcpServerOptions): AudioTcpServer {
  const host = options.host ?? "127.0.0.1";
  const source = options.source;
  const listener = listenTcp(host, options.port);
  const log = options.log ?? ((line: string) => console.log(line));
  const queueBlocks = options.queueBlocks ?? 64;
  const stuckMs = options.stuckMs ?? 5000;
  const maxListeners = options.maxListeners ?? 100;
  const hello = encodeHello({
    ...source.spec,
    streamId: crypto.getRandomValues(new Uint32Array(1))[0],
    format: "s16le",
  });
  const listeners = new Set<Listener>();
  const tasks = new Set<Promise<void>>();
  const stats: AudioServerStats = {
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

  const serve = async (l: Listener) => {
    // Anything a listener sends is a protocol error: read to notice it,
    // and to notice the listener leaving.
    const reading = (async () => {
      for await (const _ of readFrames(l.conn, AUDIO_SERVER_LIMITS)) {
        // No frame type is valid, so the decoder throws before this.
      }
    })();
    try {
      await Promise.race([l.run(hello), reading]);
    } catch (err) {
      if (!stopping) log(`${l.who}: ${describeError(err)}; disconnected`);
    } finally {
      l.close();
      listeners.delete(l);
      await reading.catch(() => {});
    }
  };

  track(
    (async () => {
      for await (const conn of listener) {
        if (listeners.size >= maxListeners) {
          log(`refused a listener: ${maxListeners} already connected`);
          conn.close();
          continue;
        }
        conn.setNoDelay(true);
        const l = new Listener(conn, queueBlocks);
        listeners.add(l);
        stats.listenersServed++;
        track(serve(l));
      }
    })().catch(() => {}),
  );

  const finished = (async () => {
    let seq = 0;
    while (!stopping) {
      const block = await source.read();
      if (!block) break;
      const frame = encodeBlock(seq++, block.captured, block.samples);
      stats.blocksCaptured++;
      const t = performance.now();
      for (const l of listeners) {
        stats.blocksDroppedForSlowListeners += l.push(frame);
        if (l.pending > 0 && t - l.lastProgress > stuckMs) {
          log(`${l.who}: took no audio for ${stuckMs / 1000} s; disconnected`);
          stats.listenersDropped++;
          l.close();
        }
      }
    }
  })();

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      stopping = true;
      try {
        listener.close();
      } catch {
        // Already closed.
      }
      await finished.catch(() => {});
      for (const l of listeners) l.close();
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
    finished,
    close,
    [Symbol.asyncDispose]: close,
  };
}

if (import.meta.main) {
  runMain(async () => {
    const { flags } = parseFlags(Deno.args, serverFlags(512), {
      usage: "deno task audio-tcp-server",
      summary: "Broadcast live audio over TCP, each block with its MD5, to every listener.",
    });
    await runServerTool(
      flags,
      (source, host, port) => startAudioTcpServer({ host, port, source }),
      (server, source) =>
        `audio-tcp server listening on ${server.addr.hostname}:${server.addr.port}: ` +
        `${source.label}, ${describeSpec(server.spec)}`,
      ({ stats: st }) =>
        `stopped: ${st.blocksCaptured} blocks captured, ${st.listenersServed} listeners served, ` +
        `${st.blocksDroppedForSlowListeners} blocks dropped for slow listeners, ` +
        `${st.listenersDropped} stuck listeners disconnected`,
    );
  });
}
