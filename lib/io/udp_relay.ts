/**
 * The impairment relay's shell: a front socket clients send to as if it
 * were the server, one socket toward the server per client, and the
 * timers that hold delayed deliveries; what each datagram becomes is the
 * relay core's (`lib/core/audio/udp/relay.ts`).
 *
 * @module
 */
import type { Delivery } from "../core/wire/impairment.ts";
import type { Impairment } from "../core/wire/impairment.ts";
import { type FragmentFate, RelayCore, type RelayCoreOptions } from "../core/audio/udp/relay.ts";
import { closeQuietly } from "./errors.ts";
import { listenUdp } from "./net.ts";
import { closeOnce } from "./server_shell.ts";

/** Options of {@link startUdpRelay}. */
export interface UdpRelayOptions extends RelayCoreOptions {
  /** Address to listen on (default 127.0.0.1). */
  host?: string;
  /** Port to listen on (0 picks one). */
  port: number;
  /** The server. */
  target: Deno.NetAddr;
  /** Most clients relayed at once (default 64). */
  maxClients?: number;
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
  const core = new RelayCore(options);
  const maxClients = options.maxClients ?? 64;
  const clients = new Map<string, Deno.DatagramConn>();
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const tasks: Promise<void>[] = [];
  let closed = false;
  const deliver = (deliveries: Delivery[], out: (d: Uint8Array) => void) => {
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
  // One socket toward the server per client, so that the server's answers
  // come back to the client they are for.
  const backFor = (client: Deno.NetAddr): Deno.DatagramConn => {
    const b = listenUdp("127.0.0.1", 0);
    tasks.push(
      (async () => {
        for await (const [r] of b) {
          deliver(core.toClient(r), (x) => front.send(x, client).catch(() => {}));
        }
      })().catch(() => {}),
    );
    return b;
  };
  tasks.push(
    (async () => {
      for await (const [d, a] of front) {
        const client = a as Deno.NetAddr;
        const key = `${client.hostname}:${client.port}`;
        let back = clients.get(key);
        if (!back) {
          if (clients.size >= maxClients) continue;
          back = backFor(client);
          clients.set(key, back);
        }
        const conn = back;
        deliver(core.toServer(d), (x) => conn.send(x, options.target).catch(() => {}));
      }
    })().catch(() => {}),
  );
  const close = closeOnce(async () => {
    closed = true;
    for (const t of timers) clearTimeout(t);
    for (const c of [front, ...clients.values()]) closeQuietly(c);
    await Promise.allSettled(tasks);
  });
  return {
    addr: front.addr as Deno.NetAddr,
    model: core.down,
    fates: core.fates,
    close,
    [Symbol.asyncDispose]: close,
  };
}
