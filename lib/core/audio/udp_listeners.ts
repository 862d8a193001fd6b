/**
 * The Audio-UDP server's listener table, with no I/O: subscriptions,
 * cookies, renewals, goodbyes, the listener cap and expiry of silent
 * listeners. Datagrams and the current time in, the reply to send out.
 *
 * An address that has not echoed a valid cookie gets only a CHALLENGE, and
 * only when it is no larger than what that address sent, so the server
 * cannot be used to flood a forged source address. A proven listener's
 * SUBSCRIBE is answered with the FORMAT when it is new or asks for it, and
 * with a SYNC when it carries a clock sync request.
 *
 * @module
 */
import {
  CookieJar,
  datagramType,
  decodeCookie,
  decodeSubscribe,
  encodeChallenge,
  encodeFull,
  encodeSync,
  SUBSCRIBE_LENGTH,
  UdpMsg,
} from "./udp_datagrams.ts";

/** Counters of the listener table (and of the server around it). */
export interface UdpServerStats {
  /** Blocks captured (kept by the server shell). */
  blocksCaptured: number;
  /** Datagrams sent (kept by the server shell). */
  datagramsSent: number;
  /** Datagrams that were not ours or made no sense. */
  datagramsInvalid: number;
  /** Challenges sent to unproven addresses. */
  challengesSent: number;
  /** Clock sync requests answered. */
  syncsAnswered: number;
  /** Listeners that joined. */
  listenersJoined: number;
  /** Listeners forgotten after falling silent. */
  listenersForgotten: number;
  /** Subscriptions refused because the listener cap was reached. */
  listenersRefused: number;
}

/** Options of a {@link ListenerTable}. */
export interface ListenerTableOptions {
  /** 32 random bytes for the cookies, drawn by the shell. */
  secret: Uint8Array;
  /** The FORMAT datagram sent to every proven listener. */
  format: Uint8Array;
  /** Most listeners at once. */
  maxListeners: number;
  /** Most listeners at once from one host, whatever its ports (default 8). */
  maxPerHost?: number;
  /** Forget a listener silent for this long, ms. */
  timeoutMs: number;
}

/** Listeners of one Audio-UDP stream, keyed by address. `A` is the shell's address type. */
export class ListenerTable<A> {
  /** What the table has done. */
  readonly stats: UdpServerStats = {
    blocksCaptured: 0,
    datagramsSent: 0,
    datagramsInvalid: 0,
    challengesSent: 0,
    syncsAnswered: 0,
    listenersJoined: 0,
    listenersForgotten: 0,
    listenersRefused: 0,
  };
  #options: ListenerTableOptions;
  #jar: CookieJar;
  #listeners = new Map<string, { addr: A; host: string; lastSeen: number }>();
  #perHost = new Map<string, number>();

  /** An empty table. */
  constructor(options: ListenerTableOptions) {
    this.#options = options;
    this.#jar = new CookieJar(options.secret);
  }

  /** Listeners now. */
  get size(): number {
    return this.#listeners.size;
  }

  /**
   * Takes a datagram from `addr` (whose text form is `key`, host and port)
   * received at `now` (ms, the server's capture clock, which also stamps
   * sync answers); returns the datagrams to answer with.
   */
  receive(d: Uint8Array, key: string, addr: A, now: number): Uint8Array[] {
    const st = this.stats;
    const type = datagramType(d);
    const cookie = decodeCookie(d);
    if (
      (type !== UdpMsg.SUBSCRIBE && type !== UdpMsg.BYE) || !cookie ||
      (type === UdpMsg.SUBSCRIBE && d.length < SUBSCRIBE_LENGTH)
    ) {
      st.datagramsInvalid++;
      return [];
    }
    if (!this.#jar.check(key, cookie, now)) {
      if (type === UdpMsg.SUBSCRIBE) {
        // A subscribe is padded to 64 bytes and the 20-byte challenge is
        // smaller: the server never sends an unproven address as much as
        // it sent.
        st.challengesSent++;
        return [encodeChallenge(this.#jar.issue(key, now))];
      }
      st.datagramsInvalid++;
      return [];
    }
    if (type === UdpMsg.BYE) {
      this.#forget(key);
      return [];
    }
    const { t1, haveFormat } = decodeSubscribe(d);
    const out: Uint8Array[] = [];
    const known = this.#listeners.get(key);
    if (known) {
      known.lastSeen = now;
      if (!haveFormat) out.push(this.#options.format);
    } else if (
      this.#listeners.size >= this.#options.maxListeners ||
      (this.#perHost.get(hostOf(key)) ?? 0) >= (this.#options.maxPerHost ?? 8)
    ) {
      st.listenersRefused++;
      return [encodeFull()];
    } else {
      const host = hostOf(key);
      this.#perHost.set(host, (this.#perHost.get(host) ?? 0) + 1);
      this.#listeners.set(key, { addr, host, lastSeen: now });
      st.listenersJoined++;
      out.push(this.#options.format);
    }
    if (t1 !== null) {
      st.syncsAnswered++;
      out.push(encodeSync({ t1, t2: now, t3: now }));
    }
    return out;
  }

  /** The listeners to send a block to at `now`; those silent too long are forgotten. */
  live(now: number): A[] {
    const out: A[] = [];
    for (const [key, l] of this.#listeners) {
      if (now - l.lastSeen > this.#options.timeoutMs) {
        this.#forget(key);
        this.stats.listenersForgotten++;
      } else out.push(l.addr);
    }
    return out;
  }

  #forget(key: string): void {
    const l = this.#listeners.get(key);
    if (!l) return;
    this.#listeners.delete(key);
    const n = (this.#perHost.get(l.host) ?? 1) - 1;
    if (n > 0) this.#perHost.set(l.host, n);
    else this.#perHost.delete(l.host);
  }
}

/** The host part of `host:port` (an IPv6 host keeps its colons). */
function hostOf(key: string): string {
  return key.slice(0, key.lastIndexOf(":"));
}
