/**
 * Throttles online guessing of a server's code, with no I/O (time is
 * passed in). A handshake that does not end in a matching confirmation is
 * a failed guess. Each host may fail {@link HOST_BURST} times, then once
 * every {@link HOST_EVERY_MS} ms; all hosts together at most
 * {@link GLOBAL_PER_SECOND} times a second. A guesser from one host gets
 * 8,640 guesses a day; the whole Internet at most 100 a second, which
 * for a generated code of 49.9 bits is 2^48.9 / 100 s, about 168,000
 * years to even chance. A host refused waits seconds, never longer than
 * its own bucket takes to refill.
 *
 * @module
 */

/** Failed guesses a host may make at once. */
export const HOST_BURST = 3;
/** Then one more this often, ms. */
export const HOST_EVERY_MS = 10_000;
/** Failed guesses per second from all hosts together. */
export const GLOBAL_PER_SECOND = 100;
/** Hosts remembered at most (the least recently failed are forgotten first). */
const MAX_HOSTS = 10_000;

interface Bucket {
  tokens: number;
  at: number;
}

/** The guess limiter of one server. */
export class GuessLimiter {
  #hosts = new Map<string, Bucket>();
  #global: Bucket = { tokens: GLOBAL_PER_SECOND, at: 0 };

  /** Null if `host` may try a code at `now`, else why not (with how long to wait). */
  check(host: string, now: number): string | null {
    const g = this.#refill(this.#global, now, GLOBAL_PER_SECOND, 1000 / GLOBAL_PER_SECOND);
    if (g.tokens < 1) return "Too many wrong codes on this server just now; try again in a second";
    const b = this.#hosts.get(host);
    if (!b) return null;
    this.#refill(b, now, HOST_BURST, HOST_EVERY_MS);
    if (b.tokens >= 1) return null;
    const wait = Math.ceil(((1 - b.tokens) * HOST_EVERY_MS) / 1000);
    return `Too many wrong codes from your address; try again in ${wait} s`;
  }

  /** Records a failed guess from `host` at `now`. */
  failed(host: string, now: number): void {
    this.#refill(this.#global, now, GLOBAL_PER_SECOND, 1000 / GLOBAL_PER_SECOND).tokens -= 1;
    let b = this.#hosts.get(host);
    if (!b) {
      b = { tokens: HOST_BURST, at: now };
      if (this.#hosts.size >= MAX_HOSTS) this.#hosts.delete(this.#hosts.keys().next().value!);
    } else {
      this.#hosts.delete(host); // to the end: most recently failed
      this.#refill(b, now, HOST_BURST, HOST_EVERY_MS);
    }
    b.tokens -= 1;
    this.#hosts.set(host, b);
  }

  /**
   * Gives back a guess counted before its outcome was known (Audio-UDP
   * counts each handshake it answers): the code was right.
   */
  refund(host: string, now: number): void {
    this.#refill(this.#global, now, GLOBAL_PER_SECOND, 1000 / GLOBAL_PER_SECOND).tokens += 1;
    const b = this.#hosts.get(host);
    if (b) this.#refill(b, now, HOST_BURST, HOST_EVERY_MS).tokens += 1;
  }

  #refill(b: Bucket, now: number, cap: number, everyMs: number): Bucket {
    b.tokens = Math.min(cap, b.tokens + Math.max(0, now - b.at) / everyMs);
    b.at = now;
    return b;
  }
}
