/**
 * Proof of possession for `--update`, with no I/O (time and random salts
 * are passed in).
 *
 * A server answers "up to date" only to a client that proves it holds the
 * stored content: it keeps, per stored file, a random salt and the
 * salted digest MD5(salt ‖ content), sends the salt (a `CHALLENGE`), and
 * compares the client's `PROOF` with what it kept. The salt comes first,
 * so MD5's length extension does not apply; knowing a file's plain MD5
 * (from a list of checksums, say) gives nothing towards its salted digest,
 * and MD5's known collisions need both inputs chosen by the attacker, not
 * a server's random prefix and content the attacker does not have. MD5
 * also costs the client no more than the plain MD5 pass it replaces.
 *
 * A proof cannot make a guessable file safe: whoever guesses its content
 * can prove it. So misses (proofs that do not match) are limited per
 * address and per network, as code guesses are ({@link ProofLimiter}): a
 * host may miss {@link PROOF_BURST} times, then once every
 * {@link PROOF_EVERY_MS} ms; its network (/24 or /64) {@link NETWORK_FACTOR}
 * times as many, regained as many times as fast, so that one guesser
 * with many addresses of one network gains little. While a host is over its limit, its update offers are never challenged
 * (the file is simply asked for), so the answer tells it nothing. A miss
 * followed by the whole replacement being stored is given back: an honest
 * client whose file changed sends it, and the content it was compared with
 * is gone.
 *
 * @module
 */
import { Md5Stream } from "../crypto/md5.ts";
import { networkOf } from "../crypto/admission.ts";

/** Bytes of a salt. */
export const SALT_BYTES = 16;
/** Proofs that do not match a host may send at once. */
export const PROOF_BURST = 32;
/** Then one more this often, ms. */
export const PROOF_EVERY_MS = 10_000;
/**
 * A network (/24, /64) may miss this many times an address's burst, and
 * regains misses this many times as fast (as with code guesses).
 */
export const NETWORK_FACTOR = 4;
/** Hosts (and networks) remembered at most (the least recently missed are forgotten first). */
const MAX_HOSTS = 10_000;

/** Bytes of a hexadecimal string (even length, lower or upper case). */
export function hexBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** A salted digest under way: feed the content, then take `hex()`. */
export function proofHash(saltHex: string): Md5Stream {
  return new Md5Stream().update(hexBytes(saltHex));
}

/** The salted digest of `content` (hexadecimal): MD5(salt ‖ content). */
export function proofOf(saltHex: string, content: Uint8Array): string {
  return proofHash(saltHex).update(content).hex();
}

/** Whether two proofs are equal, compared in time that does not depend on where they differ. */
export function sameProof(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * The limit on proofs that miss, per address and per network (its /24 or
 * /64, as code guesses are counted: {@link networkOf}), of one server.
 */
export class ProofLimiter {
  #hosts = new Map<string, Bucket>();
  #networks = new Map<string, Bucket>();
  #burst: number;
  #everyMs: number;

  /**
   * A limiter allowing an address `burst` misses at once, then one every
   * `everyMs` ms; a network {@link NETWORK_FACTOR} times as many, regained
   * {@link NETWORK_FACTOR} times as fast.
   */
  constructor(burst = PROOF_BURST, everyMs = PROOF_EVERY_MS) {
    this.#burst = burst;
    this.#everyMs = everyMs;
  }

  /** Whether `host` may be challenged at `now` (it and its network have a miss left to spend). */
  mayChallenge(host: string, now: number): boolean {
    const b = this.#hosts.get(host);
    if (b && this.#refill(b, now, false).tokens < 1) return false;
    const n = this.#networks.get(networkOf(host));
    return !n || this.#refill(n, now, true).tokens >= 1;
  }

  /** Records a proof from `host` that did not match. */
  missed(host: string, now: number): void {
    this.#take(this.#hosts, host, now, false);
    this.#take(this.#networks, networkOf(host), now, true);
  }

  /** Gives back a miss: the file it was about has been replaced by the host's whole upload. */
  refund(host: string, now: number): void {
    const b = this.#hosts.get(host);
    if (b) this.#refill(b, now, false).tokens = Math.min(this.#burst, b.tokens + 1);
    const n = this.#networks.get(networkOf(host));
    if (n) {
      this.#refill(n, now, true).tokens = Math.min(this.#burst * NETWORK_FACTOR, n.tokens + 1);
    }
  }

  #take(m: Map<string, Bucket>, key: string, now: number, network: boolean): void {
    let b = m.get(key);
    if (b) {
      m.delete(key); // to the end: most recently missed
      this.#refill(b, now, network);
    } else {
      b = { tokens: this.#burst * (network ? NETWORK_FACTOR : 1), at: now };
      if (m.size >= MAX_HOSTS) m.delete(m.keys().next().value!);
    }
    b.tokens -= 1;
    m.set(key, b);
  }

  #refill(b: Bucket, now: number, network: boolean): Bucket {
    const f = network ? NETWORK_FACTOR : 1;
    b.tokens = Math.min(this.#burst * f, b.tokens + Math.max(0, now - b.at) * f / this.#everyMs);
    b.at = now;
    return b;
  }
}
