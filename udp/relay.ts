/**
 * A UDP relay that impairs what passes through it, deterministically
 * (`lib/impairment.ts`): for tests, the demo and the comparison bench, and
 * for anyone who wants to hear what loss does to a stream.
 *
 * Run: `deno task udp-relay --to 127.0.0.1:4444 [--port 4555] [--loss 5%] [--burst 1]
 * [--duplicate 0] [--reorder 0] [--corrupt 0] [--corrupt-header 0] [--delay 0] [--jitter 0] [--seed 1]`
 *
 * Clients talk to the relay as if it were the server. Datagrams from the
 * server to clients are impaired; those from clients pass untouched, unless
 * `both` is set.
 *
 * @module
 */
import {
  type Fate,
  Impairment,
  type ImpairmentConfig,
  parseProbability,
} from "../lib/core/wire/impairment.ts";
import { DATA_HEADER, decodeFragment, isRejected } from "../lib/core/audio/udp/datagrams.ts";
import { UsageError } from "../lib/core/errors.ts";
import { HOST_FLAG, onShutdown, parseFlags, parsePort, runMain } from "../lib/cli/flags.ts";
import { listenUdp } from "../lib/io/net.ts";

/** One DATA fragment's fate, for tests that check what clients counted. */
export interface FragmentFate extends Fate {
  /** The fragment's block sequence number. */
  seq: number;
  /** The fragment's index in its block. */
  index: number;
}

/** Options of {@link startUdpRelay}. */
export interface UdpRelayOptions {
  /** Address to listen on (default 127.0.0.1). */
  host?: string;
  /** Port to listen on (0 picks one). */
  port: number;
  /** The server. */
  target: Deno.NetAddr;
  /** Impairments of server-to-client datagrams. */
  impair: ImpairmentConfig;
  /** Also impair client-to-server datagrams. */
  both?: boolean;
  /** Seed of the impairment model, so a run can be repeated (default 1). */
  seed?: number;
  /** Most clients relayed at once (default 64). */
  maxClients?: number;
  /** Keep the fate of every DATA fragment (default false). */
  record?: boolean;
  /** Impair only server-to-client datagrams of these types (default: every one). */
  types?: number[];
}

/** A running relay. */
export interface UdpRelay extends AsyncDisposable {
  /** The address clients send to. */
  readonly addr: Deno.NetAddr;
  /** What the server-to-client model did. */
  readonly model: Impairment;
  /** Fates of DATA fragments, in the order the server sent them (if recorded). */
  readonly fates: FragmentFate[];
  /** Stops relaying and closes every socket. */
  close(): Promise<void>;
}

/** Starts a relay. */
export function startUdpRelay(options: UdpRelayOptions): UdpRelay {
  const front = listenUdp(options.host ?? "127.0.0.1", options.port);
  const down = new Impairment({ protect: DATA_HEADER, ...options.impair }, options.seed ?? 1);
  const up = new Impairment(
    options.both ? { protect: 4, ...options.impair } : {},
    (options.seed ?? 1) + 1,
  );
  const maxClients = options.maxClients ?? 64;
  const clients = new Map<string, Deno.DatagramConn>();
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const tasks: Promise<void>[] = [];
  const fates: FragmentFate[] = [];
  let closed = false;

  const deliver = (model: Impairment, d: Uint8Array, out: (d: Uint8Array) => void) => {
    if (model === down && options.types && !options.types.includes(d[3])) return out(d);
    const { fate, deliveries } = model.decide(d);
    if (options.record && model === down) {
      const f = decodeFragment(d);
      if (!isRejected(f)) fates.push({ seq: f.seq, index: f.index, ...fate });
    }
    for (const { data, delayMs } of deliveries) {
      if (delayMs <= 0) out(data);
      else {
        const t = setTimeout(() => {
          timers.delete(t);
          if (!closed) out(data);
        }, delayMs);
        timers.add(t);
      }
    }
  };

  tasks.push(
    (async () => {
      for await (const [d, a] of front) {
        const client = a as Deno.NetAddr;
        const key = `${client.hostname}:${client.port}`;
        let back = clients.get(key);
        if (!back) {
          if (clients.size >= maxClients) continue;
          const b = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
          back = b;
          clients.set(key, b);
          tasks.push(
            (async () => {
              for await (const [r] of b) {
                deliver(down, r, (x) => front.send(x, client).catch(() => {}));
              }
            })().catch(() => {}),
          );
        }
        const conn = back;
        deliver(up, d, (x) => conn.send(x, options.target).catch(() => {}));
      }
    })().catch(() => {}),
  );

  const close = async () => {
    if (closed) return;
    closed = true;
    for (const t of timers) clearTimeout(t);
    for (const c of [front, ...clients.values()]) {
      try {
        c.close();
      } catch {
        // Already closed.
      }
    }
    await Promise.allSettled(tasks);
  };
  return {
    addr: front.addr as Deno.NetAddr,
    model: down,
    fates,
    close,
    [Symbol.asyncDispose]: close,
  };
}

const FLAGS = {
  host: HOST_FLAG,
  port: { type: "string", default: "4555", value: "PORT", help: "port clients send to" },
  to: { type: "string", default: "127.0.0.1:4444", value: "HOST:PORT", help: "the server" },
  loss: { type: "string", default: "0", value: "P", help: "datagram loss, e.g. 5% or 0.05" },
  burst: { type: "string", default: "1", value: "N", help: "mean loss burst length" },
  duplicate: { type: "string", default: "0", value: "P", help: "duplication" },
  reorder: { type: "string", default: "0", value: "P", help: "reordering" },
  corrupt: { type: "string", default: "0", value: "P", help: "payload corruption" },
  "corrupt-header": {
    type: "string",
    default: "0",
    value: "P",
    help: "a bit flipped in a data datagram's header",
  },
  delay: { type: "string", default: "0", value: "MS", help: "fixed delay" },
  jitter: { type: "string", default: "0", value: "MS", help: "random extra delay, 0 to MS" },
  seed: { type: "string", default: "1", value: "N", help: "random seed" },
  both: { type: "boolean", default: false, help: "impair client-to-server datagrams too" },
} as const;

if (import.meta.main) {
  runMain(async () => {
    const { flags } = parseFlags(Deno.args, FLAGS, {
      usage: "deno task udp-relay",
      summary: "Relay UDP between clients and a server, with seeded loss, reordering and more.",
    });
    const prob = (name: keyof typeof flags) => {
      const v = parseProbability(String(flags[name]));
      if (v === null) throw new UsageError(`--${name} ${flags[name]} is not a probability`);
      return v;
    };
    const num = (name: keyof typeof flags) => {
      const v = Number(flags[name]);
      if (!Number.isFinite(v) || v < 0) {
        throw new UsageError(`--${name} ${flags[name]} is not a number`);
      }
      return v;
    };
    const m = /^(.+):(\d+)$/.exec(flags.to);
    if (!m) throw new UsageError(`--to ${flags.to} is not HOST:PORT`);
    const relay = startUdpRelay({
      host: flags.host,
      port: parsePort(flags.port),
      target: { transport: "udp", hostname: m[1], port: parsePort(m[2]) },
      impair: {
        loss: prob("loss"),
        burst: num("burst"),
        duplicate: prob("duplicate"),
        reorder: prob("reorder"),
        corrupt: prob("corrupt"),
        corruptHeader: prob("corrupt-header"),
        delay: num("delay"),
        jitter: num("jitter"),
      },
      both: flags.both,
      seed: num("seed"),
    });
    console.log(`udp relay listening on ${relay.addr.hostname}:${relay.addr.port}, to ${flags.to}`);
    const stopped = Promise.withResolvers<void>();
    onShutdown(() => stopped.resolve());
    await stopped.promise;
    await relay.close();
    const c = relay.model.counters;
    console.log(
      `relayed ${c.seen} datagrams to clients: ${c.dropped} dropped, ${c.duplicated} duplicated, ` +
        `${c.reordered} reordered, ${c.corrupted} corrupted, ${c.headerCorrupted} with a header bit flipped`,
    );
  });
}
