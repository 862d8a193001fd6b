/**
 * Audio-UDP server: captures one source and sends each block, fragmented
 * into datagrams of at most `--mtu` bytes that all carry the block's MD5,
 * to every subscribed listener. Listeners subscribe, prove their address
 * with a cookie, renew every second, and are forgotten when silent.
 *
 * Each group of blocks (two by default) is followed by Reed-Solomon repair
 * datagrams, so a listener rebuilds lost fragments without asking
 * (`--fec`, `lib/core/audio/stages/fec.ts`).
 *
 * Run: `deno task audio-udp-server [--host 127.0.0.1] [--port 4444] [--input default] [--block 1024] [--mtu 1200] [--fec on|off|BLOCKS:PERCENT]`
 *
 * @module
 */
import type { AudioSource } from "../lib/io/audio_io.ts";
import { blockBytes, describeSpec } from "../lib/core/audio/format/spec.ts";
import { UsageError } from "../lib/core/errors.ts";
import {
  encodeFormat,
  fragmentBlock,
  fragmentCount,
  MAX_FRAGMENTS,
  MAX_MTU,
  MIN_MTU,
} from "../lib/core/audio/udp/datagrams.ts";
import { ListenerTable, type UdpServerStats } from "../lib/core/audio/udp/server.ts";
import { DATA_TAG, sealData, sealRepair } from "../lib/core/audio/udp/secure.ts";
import { addCheck, CHECK_LENGTH, DATAGRAM_CHECK } from "../lib/core/audio/stages/datagram_check.ts";
import {
  DEFAULT_FEC,
  describeFec,
  type FecChoice,
  FecEncoder,
  parseFec,
  planFec,
} from "../lib/core/audio/stages/fec.ts";
import { CODE_FLAG, isLoopback, resolveCode } from "../lib/cli/code.ts";
import { newStreamId, startCapture } from "../lib/io/capture.ts";
import { now } from "../lib/io/clock.ts";
import { AUDIO_PROTOCOL } from "../lib/core/audio/format/stream_format.ts";
import { closeQuietly, describeError } from "../lib/io/errors.ts";
import { listenUdp } from "../lib/io/net.ts";
import { parseFlags, runMain } from "../lib/cli/flags.ts";
import {
  type AudioServer,
  runServerTool,
  serverFlags,
  specFromFlags,
} from "../lib/cli/audio_shell.ts";

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

/** Checks an `--mtu` value against a block size. */
export function checkMtu(mtu: number, blockBytes: number): number {
  if (!Number.isInteger(mtu) || mtu < MIN_MTU || mtu > MAX_MTU) {
    throw new UsageError(`--mtu ${mtu} is outside ${MIN_MTU} to ${MAX_MTU} bytes`);
  }
  if (fragmentCount(blockBytes, mtu) > MAX_FRAGMENTS) {
    throw new UsageError(
      `--mtu ${mtu} would split each block into over ${MAX_FRAGMENTS} datagrams`,
    );
  }
  return mtu;
}

/** Starts capturing and serving. */
export function startAudioUdpServer(options: AudioUdpServerOptions): AudioUdpServer {
  const host = options.host ?? "127.0.0.1";
  if (options.code === undefined && !isLoopback(host)) {
    throw new UsageError(`Listening on ${host}, beyond loopback, needs a code (--code)`);
  }
  const source = options.source;
  const spec = source.spec;
  const mtu = checkMtu(options.mtu ?? 1200, blockBytes(spec));
  // With a code, each DATA datagram carries a tag; without, a check
  // (`datagram_check.ts`): the fragments are cut that much smaller, so
  // that sealed or checked datagrams still fit the MTU.
  const plain = options.code === undefined;
  const cut = checkMtu(mtu - (plain ? CHECK_LENGTH : DATA_TAG), blockBytes(spec));
  const plan = planFec(blockBytes(spec), cut, options.fec ?? DEFAULT_FEC);
  const streamKey = crypto.getRandomValues(new Uint8Array(32));
  const log = options.log ?? ((line: string) => console.log(line));
  const socket = listenUdp(host, options.port);
  let stopping = false;
  const streamId = newStreamId();
  const listeners = new ListenerTable<Deno.NetAddr>({
    secret: crypto.getRandomValues(new Uint8Array(32)),
    format: encodeFormat({
      ...spec,
      streamId,
      format: "s16le",
      protocol: AUDIO_PROTOCOL,
      mtu: cut,
      fragments: plan.fragments,
      fec: plan.fec,
      check: plain ? DATAGRAM_CHECK : undefined,
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
  const send = (d: Uint8Array, addr: Deno.NetAddr) =>
    socket.send(d, addr).then(() => listeners.stats.datagramsSent++, () => {});

  const encoder = plan.fec && new FecEncoder(streamId, plan.fec, plan.fragments, blockBytes(spec));

  // The fan-out: fragments (and after a group's last block, its repairs)
  // made once per block, sent to every live listener.
  const capture = startCapture(source, streamId, (block) => {
    listeners.stats.blocksCaptured++;
    const frags = fragmentBlock(
      streamId,
      block.seq,
      block.captured,
      block.digest,
      block.bytes,
      cut,
      plan.fragments,
    );
    // Sealed once for every listener. The block goes out first: making
    // the repairs never delays it.
    const live = listeners.live(now());
    const out = frags.map((f) => plain ? addCheck(f) : sealData(streamKey, f));
    for (const addr of live) for (const f of out) send(f, addr);
    const repairs = encoder?.push(block) ?? [];
    const sealed = repairs.map((r) => plain ? addCheck(r) : sealRepair(streamKey, r));
    for (const addr of live) for (const r of sealed) send(r, addr);
  });

  // Control: subscriptions, renewals (with clock sync) and goodbyes. Sync
  // answers are stamped on the clock capture times use.
  const control = (async () => {
    for await (const [d, a] of socket) {
      const addr = a as Deno.NetAddr;
      const key = `${addr.hostname}:${addr.port}`;
      for (const reply of listeners.receive(d, key, addr, now())) send(reply, addr);
    }
  })().catch((err) => {
    if (!stopping) log(`UDP socket failed: ${describeError(err)}`);
  });

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      stopping = true;
      await capture.stop();
      closeQuietly(socket);
      await control;
      await source.close();
    })();
    return closing;
  };
  return {
    addr: socket.addr as Deno.NetAddr,
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

const FLAGS = {
  ...serverFlags(1024),
  mtu: { type: "string", default: "1200", value: "BYTES", help: "largest datagram sent" },
  fec: {
    type: "string",
    default: "on",
    value: "on|off|B:P",
    help: "Reed-Solomon repairs: P% extra per group of B blocks (on is 2:50)",
  },
  code: CODE_FLAG,
} as const;

if (import.meta.main) {
  runMain(async () => {
    const { flags } = parseFlags(Deno.args, FLAGS, {
      usage: "deno task audio-udp-server",
      summary: "Stream live audio over UDP in MD5-checked fragments to subscribed listeners.",
    });
    const spec = specFromFlags(flags);
    const mtu = checkMtu(Number(flags.mtu), blockBytes(spec));
    const code = resolveCode(flags.code, { host: flags.host });
    const cut = code === undefined ? mtu : mtu - DATA_TAG;
    const fec = parseFec(flags.fec);
    const plan = planFec(blockBytes(spec), cut, fec);
    await runServerTool(
      flags,
      (source, host, port, maxPerHost) =>
        startAudioUdpServer({ host, port, source, mtu, maxPerHost, code, fec }),
      (server, source) =>
        `audio-udp server listening on ${server.addr.hostname}:${server.addr.port}: ` +
        `${source.label}, ${describeSpec(server.spec)}, ` +
        `${plan.fragments} datagrams per block at MTU ${mtu}, ` +
        describeFec(plan.fec, plan.fragments) +
        (code ? ", listeners need the code" : ""),
      ({ stats: st }) =>
        `stopped: ${st.blocksCaptured} blocks captured, ${st.datagramsSent} datagrams sent, ` +
        `${st.listenersJoined} listeners joined, ${st.datagramsInvalid} invalid datagrams dropped`,
    );
  });
}
