/**
 * Throttles online guessing of a server's code, with no I/O (time is
 * passed in). A handshake is a guess from the moment it starts (the
 * server counts it before it answers) and is given back when the peer's
 * confirmation matches. Each address may guess {@link HOST_BURST} times,
 * then once every {@link HOST_EVERY_MS} ms; each network (its /24 or /64,
 * {@link networkOf}) {@link NETWORK_BURST} times, then once every
 * {@link NETWORK_EVERY_MS} ms; and all networks that guessed wrong
 * together at most {@link GLOBAL_PER_SECOND} times a second. A network
 * with no wrong guess is never refused for others' guessing: the
 * Internet's guessers cannot lock out a client that knows the code.
 *
 * A guesser from one address gets 8,640 guesses a day; the whole Internet
 * at most 100 a second, which for a generated code of 49.9 bits is
 * 2^48.9 / 100 s, about 168,000 years to even chance. One refused waits
 * seconds, never longer than its own bucket takes to refill.
 *
 * @module
 */
import { networkOf } from "./admission.ts";

/** Guesses an address may make at once. */
export const HOST_BURST = 3;
/** Then one more this often, ms. */
export const HOST_EVERY_MS = 10_000;
/** Guesses a network (/24, /64) may make at once. */
export const NETWORK_BURST = 12;
/** Then one more this often, ms. */
export const NETWORK_EVERY_MS = 2_500;
/** Guesses per second from all networks that guessed wrong, together. */
export const GLOBAL_PER_SECOND = 100;
/** Addresses and networks remembered at most (the least recently failed are forgotten first). */
const MAX_HOSTS = 10_000;

interface Bucket {
  tokens: number;
  at: number;
}

/** The guess limiter of one server. */
export class GuessLimiter {
  #hosts = new Map<string, Bucket>();
  #networks = new Map<string, Bucket>();
  #global: Bucket = { tokens: GLOBAL_PER_SECOND, at: 0 };

  /** Null if `host` may try a code at `now`, else why not (with how long to wait). */
  check(host: string, now: number): string | null {
    const own = this.#wait(this.#hosts.get(host), now, HOST_BURST, HOST_EVERY_MS);
    if (own > 0) return `Too many wrong codes from your address; try again in ${own} s`;
    const net = networkOf(host);
    const nb = this.#networks.get(net);
    const shared = this.#wait(nb, now, NETWORK_BURST, NETWORK_EVERY_MS);
    if (shared > 0) {
      return `Too many wrong codes from your network (${net}); try again in ${shared} s`;
    }
    // A network with no wrong guess is exempt from the global bucket.
    if (!nb || nb.tokens >= NETWORK_BURST) return null;
    const g = this.#refill(this.#global, now, GLOBAL_PER_SECOND, 1000 / GLOBAL_PER_SECOND);
    if (g.tokens < 1) return "Too many wrong codes on this server just now; try again in a second";
    return null;
  }

  /** Counts a guess from `host` at `now`: a handshake started (given back by {@link refund}). */
  failed(host: string, now: number): void {
    this.#refill(this.#global, now, GLOBAL_PER_SECOND, 1000 / GLOBAL_PER_SECOND).tokens -= 1;
    this.#take(this.#hosts, host, now, HOST_BURST, HOST_EVERY_MS);
    this.#take(this.#networks, networkOf(host), now, NETWORK_BURST, NETWORK_EVERY_MS);
  }

  /** Gives back a guess counted before its outcome was known: the code was right. */
  refund(host: string, now: number): void {
    this.#refill(this.#global, now, GLOBAL_PER_SECOND, 1000 / GLOBAL_PER_SECOND).tokens += 1;
    const b = this.#hosts.get(host);
    if (b) this.#refill(b, now, HOST_BURST, HOST_EVERY_MS).tokens += 1;
    const n = this.#networks.get(networkOf(host));
    if (n) this.#refill(n, now, NETWORK_BURST, NETWORK_EVERY_MS).tokens += 1;
  }

  /** Seconds until `b` holds a whole token (0: it does now). */
  #wait(b: Bucket | undefined, now: number, cap: number, everyMs: number): number {
    if (!b) return 0;
    this.#refill(b, now, cap, everyMs);
    return b.tokens >= 1 ? 0 : Math.ceil(((1 - b.tokens) * everyMs) / 1000);
  }

  #take(m: Map<string, Bucket>, key: string, now: number, cap: number, everyMs: number): void {
    let b = m.get(key);
    if (!b) {
      b = { tokens: cap, at: now };
      if (m.size >= MAX_HOSTS) m.delete(m.keys().next().value!);
    } else {
      m.delete(key); // to the end: most recently failed
      this.#refill(b, now, cap, everyMs);
    }
    b.tokens -= 1;
    m.set(key, b);
  }

  #refill(b: Bucket, now: number, cap: number, everyMs: number): Bucket {
    b.tokens = Math.min(cap, b.tokens + Math.max(0, now - b.at) / everyMs);
    b.at = now;
    return b;
  }
}
