/**
 * A UDP relay that impairs what passes through it, deterministically
 * (`lib/core/wire/impairment.ts`): for tests, the demo and the comparison
 * bench, and for anyone who wants to hear what loss does to a stream. The
 * relay is `lib/io/udp_relay.ts` on its core `lib/core/audio/udp/relay.ts`;
 * this file is its command line.
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
import { parseProbability } from "../lib/core/wire/impairment.ts";
import { UsageError } from "../lib/core/errors.ts";
import { HOST_FLAG, onShutdown, parseFlags, parsePort, runMain } from "../lib/cli/flags.ts";
import { startUdpRelay } from "../lib/io/udp_relay.ts";

export { startUdpRelay, type UdpRelay, type UdpRelayOptions } from "../lib/io/udp_relay.ts";
export type { FragmentFate, RelayCoreOptions } from "../lib/core/audio/udp/relay.ts";

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
