/**
 * The Audio-UDP server as a library: captures one source and sends each
 * block to every subscribed listener in datagrams the fan-out core makes
 * (`lib/core/audio/udp/fanout.ts`); the listener table core
 * (`lib/core/audio/udp/server.ts`) answers subscriptions, renewals and
 * goodbyes. This shell owns the socket, the capture and the clock.
 *
 * @module
 */
import type { AudioSource } from "../io/audio_io.ts";
import { blockBytes } from "../core/audio/format/spec.ts";
import { encodeFormat } from "../core/audio/udp/datagrams.ts";
import { ListenerTable, type UdpServerStats } from "../core/audio/udp/server.ts";
import { planCut, type UdpCut, UdpFanout } from "../core/audio/udp/fanout.ts";
import { DATAGRAM_CHECK } from "../core/audio/stages/datagram_check.ts";
import { DEFAULT_FEC, type FecChoice } from "../core/audio/stages/fec.ts";
import { requireCodeBeyondLoopback } from "../core/crypto/admission.ts";
import { newStreamId, startCapture } from "../io/capture.ts";
import { now } from "../io/clock.ts";
import { AUDIO_PROTOCOL } from "../core/audio/format/stream_format.ts";
import { closeOnce, startUdpShell } from "../io/server_shell.ts";
import type { AudioServer } from "./audio_shell.ts";

export type { UdpServerStats };

/** Options of {@link startAudioUdpServer}. */
export interface AudioUdpServerOptions {
  /** Address to bind or connect to (default 127.0.0.1). */
  host?: string;
  /** Port (0 for a server picks a free one). */
  port: number;
  /** An opened source; the server closes it when it stops. */
  source: AudioSource;
  /** Most bytes in one datagram (default 1200). */
  mtu?: number;
  /** Forward error correction (default: groups of two blocks, 50% repairs). */
  fec?: FecChoice;
  /** Forget a listener silent for this long, ms (default 5000). */
  timeoutMs?: number;
  /** Most listeners (default 64). */
  maxListeners?: number;
  /** Most listeners from one host, whatever their ports (default 8). */
  maxPerHost?: number;
  /**
   * The shared code: a listener proves it (SPAKE2) before it joins; the
   * stream is sealed once under a stream key each listener is given.
   * Required when listening beyond loopback.
   */
  code?: string;
  /** Where log lines go (default stdout for servers, stderr for clients). */
  log?: (line: string) => void;
}

/** A running Audio-UDP server. */
export type AudioUdpServer = AudioServer<UdpServerStats>;

/** Starts capturing and serving. */
export function startAudioUdpServer(options: AudioUdpServerOptions): AudioUdpServer {
  const host = options.host ?? "127.0.0.1";
  requireCodeBeyondLoopback(host, options.code);
  const source = options.source;
  const spec = source.spec;
  const coded = options.code !== undefined;
  const plan = planCut(blockBytes(spec), options.mtu ?? 1200, coded, options.fec ?? DEFAULT_FEC);
  const streamKey = crypto.getRandomValues(new Uint8Array(32));
  const streamId = newStreamId();
  const listeners = listenerTable(options, streamId, plan, streamKey);
  // Control: subscriptions, renewals (with clock sync) and goodbyes. Sync
  // answers are stamped on the clock capture times use.
  const shell = startUdpShell({
    host,
    port: options.port,
    code: options.code,
    receive: (d, from) => listeners.receive(d, `${from.hostname}:${from.port}`, from, now()),
    sent: () => listeners.stats.datagramsSent++,
    log: options.log ?? ((line: string) => console.log(line)),
  });
  const fanout = new UdpFanout({
    streamId,
    blockBytes: blockBytes(spec),
    cut: plan,
    streamKey: coded ? streamKey : undefined,
  });
  // The fan-out: fragments (and after a group's last block, its repairs)
  // made once per block, sent to every live listener; the block first.
  const capture = startCapture(source, streamId, (block) => {
    listeners.stats.blocksCaptured++;
    const live = listeners.live(now());
    const data = fanout.fragments(block);
    for (const addr of live) for (const d of data) shell.send(d, addr);
    const repairs = fanout.repairs(block);
    for (const addr of live) for (const r of repairs) shell.send(r, addr);
  });
  const close = closeOnce(async () => {
    await capture.stop();
    await shell.close();
    await source.close();
  });
  return {
    addr: shell.addr,
    spec,
    stats: listeners.stats,
    get listeners() {
      return listeners.size;
    },
    finished: capture.finished,
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** The listener table core of a stream: who subscribed, and what they are told. */
function listenerTable(
  options: AudioUdpServerOptions,
  streamId: number,
  plan: UdpCut,
  streamKey: Uint8Array,
): ListenerTable<Deno.NetAddr> {
  return new ListenerTable<Deno.NetAddr>({
    secret: crypto.getRandomValues(new Uint8Array(32)),
    format: encodeFormat({
      ...options.source.spec,
      streamId,
      format: "s16le",
      protocol: AUDIO_PROTOCOL,
      mtu: plan.cut,
      fragments: plan.fragments,
      fec: plan.fec,
      check: options.code === undefined ? DATAGRAM_CHECK : undefined,
    }),
    maxListeners: options.maxListeners ?? 64,
    maxPerHost: options.maxPerHost,
    timeoutMs: options.timeoutMs ?? 5000,
    secure: options.code === undefined ? undefined : {
      code: options.code,
      streamKey,
      random: () => crypto.getRandomValues(new Uint8Array(48)),
    },
  });
}
