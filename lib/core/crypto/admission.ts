/**
 * Admission of strangers, shared by every server, with no I/O: an
 * address's network (its /24 for IPv4, its /64 for IPv6), and the gate
 * that bounds connections still proving the code per address and per
 * network, so that a stranger with a few addresses cannot fill a server
 * with handshakes that never finish.
 * Also the rule every server starts with: listening beyond loopback
 * needs a code.
 *
 * @module
 */
import { UsageError } from "../errors.ts";

/** Whether `host` is a loopback address (or name). */
export function isLoopback(host: string): boolean {
  return /^(127\.|::1$|localhost$)/.test(host);
}

/** Throws a {@link UsageError} when a server would listen on `host`, beyond loopback, with no code. */
export function requireCodeBeyondLoopback(host: string, code: string | undefined): void {
  if (code === undefined && !isLoopback(host)) {
    throw new UsageError(`Listening on ${host}, beyond loopback, needs a code (--code)`);
  }
}

/** Connections proving the code from one address at once. */
export const HANDSHAKES_PER_ADDRESS = 3;
/** Connections proving the code from one network (/24, /64) at once. */
export const HANDSHAKES_PER_NETWORK = 8;

/**
 * The network `host` is in, as text: `a.b.c.0/24` for IPv4 (and IPv4
 * mapped into IPv6), the first four groups and `::/64` for IPv6.
 */
export function networkOf(host: string): string {
  const bare = host.replace(/^\[|\]$/g, "");
  const v4 = /^(?:::ffff:)?(\d+)\.(\d+)\.(\d+)\.\d+$/i.exec(bare);
  if (v4) return `${v4[1]}.${v4[2]}.${v4[3]}.0/24`;
  if (!bare.includes(":")) return bare;
  const [head, tail = ""] = bare.split("::");
  const left = head ? head.split(":") : [];
  const right = bare.includes("::") && tail ? tail.split(":") : [];
  const groups = [
    ...left,
    ...Array(Math.max(0, 8 - left.length - right.length)).fill("0"),
    ...right,
  ];
  return `${groups.slice(0, 4).map((g) => parseInt(g || "0", 16).toString(16)).join(":")}::/64`;
}

/** Handshakes under way, bounded per address and per network. */
export class HandshakeGate {
  #byAddress = new Map<string, number>();
  #byNetwork = new Map<string, number>();

  /**
   * Admits one more handshake from `host`, or says why not (the caller
   * tells the client). Every admitted one must be {@link leave}n once.
   */
  enter(host: string): string | null {
    const net = networkOf(host);
    if ((this.#byAddress.get(host) ?? 0) >= HANDSHAKES_PER_ADDRESS) {
      return `Server is busy (${HANDSHAKES_PER_ADDRESS} handshakes under way from your address); try again in a few seconds`;
    }
    if ((this.#byNetwork.get(net) ?? 0) >= HANDSHAKES_PER_NETWORK) {
      return `Server is busy (${HANDSHAKES_PER_NETWORK} handshakes under way from your network, ${net}); try again in a few seconds`;
    }
    bump(this.#byAddress, host, 1);
    bump(this.#byNetwork, net, 1);
    return null;
  }

  /** One handshake from `host` ended (proven, failed or cut). */
  leave(host: string): void {
    bump(this.#byAddress, host, -1);
    bump(this.#byNetwork, networkOf(host), -1);
  }
}

function bump(m: Map<string, number>, key: string, by: number): void {
  const n = (m.get(key) ?? 0) + by;
  if (n > 0) m.set(key, n);
  else m.delete(key);
}
