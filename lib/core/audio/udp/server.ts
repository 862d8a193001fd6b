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
} from "./datagrams.ts";
import { bareDatagram, SecureUdpMsg, ServerHandshake } from "./secure.ts";
import { GuessLimiter } from "../../crypto/guess_limiter.ts";
import { networkOf } from "../../crypto/admission.ts";
import { bytesEqual } from "../../crypto/md5.ts";

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
  /**
   * Most listeners at once from one network, its /24 or /64 (default a
   * quarter of `maxListeners`, at least `maxPerHost`): a stranger with a
   * few addresses cannot fill the table.
   */
  maxPerNetwork?: number;
  /** Forget a listener silent for this long, ms. */
  timeoutMs: number;
  /**
   * The shared code: a listener must prove it (`udp_secure.ts`) before it
   * joins, and gets the stream key and format sealed.
   */
  secure?: {
    code: string;
    /** The key every DATA datagram is sealed under. */
    streamKey: Uint8Array;
    /** 48 fresh random bytes for each handshake (the shell's). */
    random: () => Uint8Array;
  };
}

/** Handshakes under way from one host, and in all, at most. */
const MAX_PENDING_PER_HOST = 3;
const MAX_PENDING = 256;
/** How long an answered handshake waits for its confirmation, ms. */
const PENDING_MS = 2000;

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
  #listeners = new Map<
    string,
    { addr: A; host: string; lastSeen: number; secure?: ServerHandshake }
  >();
  #pending = new Map<
    string,
    { hs: ServerHandshake; at: number; init: Uint8Array; reply: Uint8Array }
  >();
  #guesses = new GuessLimiter();
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
    const handshaking = type === SecureUdpMsg.PAKE_INIT || type === SecureUdpMsg.PAKE_CONFIRM;
    if (
      (type !== UdpMsg.SUBSCRIBE && type !== UdpMsg.BYE && !handshaking) || !cookie ||
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
    const secure = this.#options.secure;
    if (handshaking) {
      if (!secure) return [bareDatagram(SecureUdpMsg.NO_CODE)];
      return this.#handshake(d, type!, key, addr, now);
    }
    const { t1, haveFormat } = decodeSubscribe(d);
    const out: Uint8Array[] = [];
    const known = this.#listeners.get(key);
    if (!known && secure) return [bareDatagram(SecureUdpMsg.NEEDS_CODE)];
    if (known) {
      known.lastSeen = now;
      if (!haveFormat) out.push(known.secure ? this.#key(known.secure) : this.#options.format);
    } else if (this.#full(hostOf(key))) {
      st.listenersRefused++;
      return [encodeFull()];
    } else {
      const host = hostOf(key);
      this.#count(host, 1);
      this.#listeners.set(key, { addr, host, lastSeen: now });
      st.listenersJoined++;
      out.push(this.#options.format);
    }
    if (t1 !== null) {
      st.syncsAnswered++;
      const reply = { t1, t2: now, t3: now };
      out.push(
        known?.secure
          ? known.secure.seal(SecureUdpMsg.SYNC_SEALED, encodeSync(reply).subarray(4))
          : encodeSync(reply),
      );
    }
    return out;
  }

  /** A PAKE_INIT or PAKE_CONFIRM from a proven address. */
  #handshake(d: Uint8Array, type: number, key: string, addr: A, now: number): Uint8Array[] {
    const secure = this.#options.secure!;
    const host = hostOf(key);
    if (type === SecureUdpMsg.PAKE_INIT) {
      // Handshakes answered and not yet confirmed; after PENDING_MS one
      // that never confirmed is forgotten (its guess stays counted).
      let mine = 0;
      for (const [k, p] of this.#pending) {
        if (now - p.at > PENDING_MS) this.#pending.delete(k);
        else if (hostOf(k) === host && k !== key) mine++;
      }
      if (this.#guesses.check(host, now)) {
        // While this host's own handshakes are still in flight, the guesses
        // they hold are not failures yet: stay silent, and the listener's
        // next try (it sends again until answered) gets in once one of them
        // confirms and gives its guess back. Many listeners may join at the
        // same instant from one address this way; only failures throttle.
        if (mine > 0) return [];
        return [bareDatagram(SecureUdpMsg.THROTTLED)];
      }
      // The same INIT again (the answer was slow or lost): the same answer,
      // not a new handshake the listener's confirmation would not match.
      const same = this.#pending.get(key);
      if (same && bytesEqual(same.init, d)) return [same.reply];
      if (mine >= MAX_PENDING_PER_HOST && !this.#pending.has(key)) return [];
      if (this.#pending.size >= MAX_PENDING) {
        this.#pending.delete(this.#pending.keys().next().value!);
      }
      const hs = new ServerHandshake(secure.code, secure.random());
      let reply: Uint8Array;
      try {
        reply = hs.reply(d);
      } catch {
        this.stats.datagramsInvalid++;
        return [];
      }
      // The reply's confirmation lets the sender test one guess at the
      // code: counted now, whatever follows.
      this.#guesses.failed(host, now);
      this.#pending.set(key, { hs, at: now, init: d.slice(), reply });
      return [reply];
    }
    const hs = this.#pending.get(key)?.hs;
    if (!hs) {
      // Joined already: the KEY was lost on the way; send it again.
      const joined = this.#listeners.get(key);
      return joined?.secure ? [this.#key(joined.secure)] : [];
    }
    this.#pending.delete(key);
    if (!hs.confirm(d)) return [bareDatagram(SecureUdpMsg.WRONG_CODE)];
    this.#guesses.refund(host, now);
    if (this.#full(host)) {
      this.stats.listenersRefused++;
      return [encodeFull()];
    }
    this.#count(host, 1);
    this.#listeners.set(key, { addr, host, lastSeen: now, secure: hs });
    this.stats.listenersJoined++;
    return [this.#key(hs)];
  }

  /** A KEY: the stream key and the FORMAT, sealed for one listener. */
  #key(hs: ServerHandshake): Uint8Array {
    const secure = this.#options.secure!;
    const plain = new Uint8Array(32 + this.#options.format.length);
    plain.set(secure.streamKey, 0);
    plain.set(this.#options.format, 32);
    return hs.seal(SecureUdpMsg.KEY, plain);
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
    this.#count(l.host, -1);
  }

  /** Whether a new listener from `host` is refused: the table, its host or its network is full. */
  #full(host: string): boolean {
    const o = this.#options;
    const perHost = o.maxPerHost ?? 8;
    const perNetwork = o.maxPerNetwork ?? Math.max(perHost, Math.floor(o.maxListeners / 4));
    return this.#listeners.size >= o.maxListeners ||
      (this.#perHost.get(host) ?? 0) >= perHost ||
      (this.#perHost.get(networkOf(host)) ?? 0) >= perNetwork;
  }

  /** Counts a listener of `host` in (1) or out (-1), by address and by network. */
  #count(host: string, by: number): void {
    for (const k of [host, networkOf(host)]) {
      const n = (this.#perHost.get(k) ?? 0) + by;
      if (n > 0) this.#perHost.set(k, n);
      else this.#perHost.delete(k);
    }
  }
}

/** The host part of `host:port` (an IPv6 host keeps its colons). */
function hostOf(key: string): string {
  return key.slice(0, key.lastIndexOf(":"));
}
