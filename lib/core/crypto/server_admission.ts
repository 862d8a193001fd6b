/**
 * One server's admission, with no I/O, shared by every server (the shell
 * is `lib/io/server_shell.ts`): the connections it serves in all and per
 * address, the handshakes still proving the code ({@link HandshakeGate})
 * and the guesses at the code ({@link GuessLimiter}, time passed in).
 *
 * @module
 */
import { GuessLimiter } from "./guess_limiter.ts";
import { HandshakeGate } from "./admission.ts";

/** Why a server turns a connection away before it is served. */
export type Refusal =
  | { kind: "total"; limit: number }
  | { kind: "host"; limit: number; host: string }
  | { kind: "handshakes"; message: string };

/** Options of {@link Admission}. */
export interface AdmissionOptions {
  /** Most connections served at once. */
  maxTotal: number;
  /** Most connections served at once from one address. */
  maxPerHost: number;
  /** Whether newcomers must prove the code first (their handshakes pass a {@link HandshakeGate}). */
  coded: boolean;
}

/**
 * One server's admission, with no I/O: the connections it serves (in all
 * and per address), the handshakes under way ({@link HandshakeGate}) and
 * the guesses at its code ({@link GuessLimiter}, time passed in). A server
 * asks {@link full} and {@link enterHandshake} when a connection arrives,
 * {@link join}s it when it counts as served and {@link leave}s it when it
 * ends.
 */
export class Admission {
  /** Guesses at the code, throttled per address, network and in all. */
  readonly guesses: GuessLimiter = new GuessLimiter();
  #gate = new HandshakeGate();
  #o: AdmissionOptions;
  #perHost = new Map<string, number>();
  #total = 0;

  /** An admission with no connection yet. */
  constructor(options: AdmissionOptions) {
    this.#o = options;
  }

  /** Connections served now. */
  get total(): number {
    return this.#total;
  }

  /** Connections served now from `host`. */
  from(host: string): number {
    return this.#perHost.get(host) ?? 0;
  }

  /** Why one more connection from `host` may not be served now, or null. */
  full(host: string): Refusal | null {
    if (this.#total >= this.#o.maxTotal) return { kind: "total", limit: this.#o.maxTotal };
    if (this.from(host) >= this.#o.maxPerHost) {
      return { kind: "host", limit: this.#o.maxPerHost, host };
    }
    return null;
  }

  /**
   * With a code, admits one more handshake from `host` or says why not;
   * without, admits every one. One admitted with a code must be left
   * ({@link leaveHandshake}) once, when its handshake ends.
   */
  enterHandshake(host: string): Refusal | null {
    if (!this.#o.coded) return null;
    const busy = this.#gate.enter(host);
    return busy ? { kind: "handshakes", message: busy } : null;
  }

  /** A handshake from `host` admitted by {@link enterHandshake} ended (proven, failed or cut). */
  leaveHandshake(host: string): void {
    if (this.#o.coded) this.#gate.leave(host);
  }

  /** A connection from `host` is served from now on. */
  join(host: string): void {
    this.#total++;
    bump(this.#perHost, host, 1);
  }

  /** A connection from `host` that {@link join}ed ended. */
  leave(host: string): void {
    this.#total--;
    bump(this.#perHost, host, -1);
  }
}

function bump(m: Map<string, number>, key: string, by: number): void {
  const n = (m.get(key) ?? 0) + by;
  if (n > 0) m.set(key, n);
  else m.delete(key);
}
