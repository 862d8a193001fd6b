/**
 * Audio-UDP server: captures one source and sends each block, fragmented
 * into datagrams of at most `--mtu` bytes that all carry the block's MD5,
 * to every subscribed listener. Listeners subscribe, prove their address
 * with a cookie, renew every second, and are forgotten when silent.
 *
 * Run: `deno task audio-udp-server [--host 127.0.0.1] [--port 4444] [--input default] [--block 1024] [--mtu 1200]`
 *
 * @module
 */
import type { AudioSource } from "../lib/io/audio_io.ts";
import { blockBytes, describeSpec } from "../lib/core/audio/spec.ts";
import { specFromFlags } from "../lib/cli/audio_shell.ts";
import { UsageError, UserError } from "../lib/core/errors.ts";
import { describeError } from "../lib/io/errors.ts";
import { md5 } from "../lib/core/wire/md5.ts";
import {
  CookieJar,
  datagramType,
  decodeCookie,
  encodeChallenge,
  encodeFormat,
  encodeFull,
  fragmentBlock,
  fragmentCount,
  MAX_FRAGMENTS,
  MAX_MTU,
  MIN_MTU,
  UdpMsg,
} from "../lib/core/audio/udp_datagrams.ts";
import { parseFlags, runMain } from "../lib/cli/flags.ts";
import { type AudioServer, runServerTool, serverFlags } from "../lib/cli/audio_shell.ts";

/** Options of {@link startAudioUdpServer}. */
export interface AudioUdpServerOptions {
  host?: string;
  port: number;
  source: AudioSource;
  /** Most bytes in one datagram (default 1200). */
  mtu?: number;
  /** Forget a listener silent for this long, ms (default 5000). */
  timeoutMs?: number;
  /** Most listeners (default 64). */
  maxListeners?: number;
  log?: (line: string) => void;
}

/** Counters of the server. */
export interface UdpServerStats {
  blocksCaptured: number;
  datagramsSent: number;
  /** Datagrams that were not ours or made no sense. */
  datagramsInvalid: number;
  challengesSent: number;
  listenersJoined: number;
  listenersForgotten: number;
  /** Subscriptions refused because the listener cap was reached. */
  listenersRefused: number;
}

/** A running Audio-UDP server. */
export type AudioUdpServer = AudioServer<UdpServerStats>;

/** Opens a UDP socket with errors a user can act on. */
export function listenUdp(host: string, port: number): Deno.DatagramConn {
  try {
    return Deno.listenDatagram({ hostname: host, port, transport: "udp" });
  } catch (err) {
    if (err instanceof Deno.errors.AddrInUse) {
      throw new UserError(`UDP port ${port} on ${host} is already in use`);
    }
    throw new UserError(describeError(err, `Could not listen on UDP ${host}:${port}`));
  }
}

/** Checks an `--mtu` value against a block size. */
export function checkMtu(mtu: number, blockBytes: number): number {
  if (!Number.isInteger(mtu) || mtu < MIN_MTU || mtu > MAX_MTU) {
    throw new UsageError(`--mtu ${mtu} is outside ${MIN_MTU} to ${MAX_MTU} bytes`);
  }
  if (fragmentCount(blockBytes, mtu) > MAX_FRAGMENTS) {
    throw new UsageError(
      `--mtu ${mtu} would split each block into over ${MAX_FRAGMENTS} datagrams`);
  }
  return mtu;
}

/** Starts capturing and serving. */
export function startAudioUdpServer(options: AudioUdpServerOptions): AudioUdpServer {
  const host = options.host ?? "127.0.0.1";
  const source = options.source;
  const spec = source.spec;
  const mtu = checkMtu(options.mtu ?? 1200, blockBytes(spec));
  const timeoutMs = options.timeoutMs ?? 5000;
  const maxListeners = options.maxListeners ?? 64;
  const log = options.log ?? ((line: string) => console.log(line));
  const socket = listenUdp(host, options.port);
  const jar = new CookieJar();
  const streamId = crypto.getRandomValues(new Uint32Array(1))[0];
  const format = encodeFormat({ ...spec, streamId, format: "s16le", mtu });
  const listeners = new Map<string, { addr: Deno.NetAddr; lastSeen: number }>();
  const stats: UdpServerStats = {
    blocksCaptured: 0,
    datagramsSent: 0,
    datagramsInvalid: 0,
    challengesSent: 0,
    listenersJoined: 0,
    listenersForgotten: 0,
    listenersRefused: 0,
  };
  let stopping = false;
  const send = (d: Uint8Array, addr: Deno.NetAddr) =>
    socket.send(d, addr).then(() => stats.datagramsSent++, () => {});

  // Control: subscriptions, renewals and goodbyes.
  const control = (async () => {
    for await (const [d, a] of socket) {
      const addr = a as Deno.NetAddr;
      const key = `${addr.hostname}:${addr.port}`;
      const type = datagramType(d);
      const cookie = decodeCookie(d);
      if ((type !== UdpMsg.SUBSCRIBE && type !== UdpMsg.BYE) || !cookie) {
        stats.datagramsInvalid++;
        continue;
      }
      const now = Date.now();
      if (!jar.check(key, cookie, now)) {
        if (type === UdpMsg.SUBSCRIBE) {
          // Never send an unproven address more than it sent us.
          const challenge = encodeChallenge(jar.issue(key, now));
          if (challenge.length <= d.length) {
            stats.challengesSent++;
            send(challenge, addr);
          } else stats.datagramsInvalid++;
        } else stats.datagramsInvalid++;
        continue;
      }
      if (type === UdpMsg.BYE) {
        listeners.delete(key);
        continue;
      }
      const known = listeners.get(key);
      if (known) known.lastSeen = performance.now();
      else if (listeners.size >= maxListeners) {
        stats.listenersRefused++;
        send(encodeFull(), addr);
        continue;
      } else {
        listeners.set(key, { addr, lastSeen: performance.now() });
        stats.listenersJoined++;
      }
      send(format, addr);
    }
  })().catch((err) => {
    if (!stopping) log(`UDP socket failed: ${describeError(err)}`);
  });

  const finished = (async () => {
    let seq = 0;
    while (!stopping) {
      const block = await source.read();
      if (!block) break;
      stats.blocksCaptured++;
      const bytes = new Uint8Array(
        block.samples.buffer,
        block.samples.byteOffset,
        block.samples.byteLength,
      );
      const frags = fragmentBlock(streamId, seq++, block.captured, md5(bytes), bytes, mtu);
      const t = performance.now();
      for (const [key, l] of listeners) {
        if (t - l.lastSeen > timeoutMs) {
          listeners.delete(key);
          stats.listenersForgotten++;
          continue;
        }
        for (const f of frags) send(f, l.addr);
      }
    }
  })();

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      stopping = true;
      await finished.catch(() => {});
      try {
        socket.close();
      } catch {
        // Already closed.
      }
      await control;
      await source.close();
    })();
    return closing;
  };
  return {
    addr: socket.addr as Deno.NetAddr,
    spec,
    stats,
    get listeners() {
      return listeners.size;
    },
    finished,
    close,
    [Symbol.asyncDispose]: close,
  };
}

const FLAGS = {
  ...serverFlags(1024),
  mtu: { type: "string", default: "1200", value: "BYTES", help: "largest datagram sent" },
} as const;

if (import.meta.main) {
  runMain(async () => {
    const { flags } = parseFlags(Deno.args, FLAGS, {
      usage: "deno task audio-udp-server",
      summary: "Stream live audio over UDP in MD5-checked fragments to subscribed listeners.",
    });
    const spec = specFromFlags(flags);
    const mtu = checkMtu(Number(flags.mtu), blockBytes(spec));
    await runServerTool(
      flags,
      (source, host, port) => startAudioUdpServer({ host, port, source, mtu }),
      (server, source) =>
        `audio-udp server listening on ${server.addr.hostname}:${server.addr.port}: ` +
        `${source.label}, ${describeSpec(server.spec)}, ` +
        `${fragmentCount(blockBytes(server.spec), mtu)} datagrams per block at MTU ${mtu}`,
      ({ stats: st }) =>
        `stopped: ${st.blocksCaptured} blocks captured, ${st.datagramsSent} datagrams sent, ` +
        `${st.listenersJoined} listeners joined, ${st.datagramsInvalid} invalid datagrams dropped`,
    );
  });
}
