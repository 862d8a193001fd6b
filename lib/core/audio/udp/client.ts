/**
 * The Audio-UDP listener's session core: subscription, cookie echo,
 * renewals, stream restarts, reassembly and the jitter buffer, driven by
 * datagrams and the current time. No sockets, no timers, no clock.
 *
 * The shell sends what {@link UdpSubscriber.start}, {@link UdpSubscriber.tick}
 * and the `send` events return, calls `tick` at
 * {@link UdpSubscriber.nextTick}, hands every datagram to
 * {@link UdpSubscriber.receive}, and at each slot's due time
 * ({@link UdpSubscriber.nextDue}) asks {@link UdpSubscriber.pop} what to play.
 *
 * Clock sync rides on the subscription ({@link ClockSync}): blocks wait
 * until the first answer, then enter the jitter buffer with their capture
 * times on the client's clock, so due times, late blocks and latency never
 * depend on the two machines' clocks agreeing. A restarted server starts
 * the sync over.
 *
 * @module
 */
import { blockMs } from "../format/spec.ts";
import {
  type ClockEstimate,
  ClockSync,
  decodeSyncReply,
  SyncedTimeline,
  type SyncReply,
} from "../stages/clock_sync.ts";
import { before } from "../stages/sequence.ts";
import {
  type AutoTarget,
  JitterBuffer,
  newOrderCounters,
  newTargetCounters,
  type OrderCounters,
  type PlayoutDecision,
  safeStartMs,
  type TargetCounters,
} from "../stages/jitter_buffer.ts";
import {
  type BlockCheck,
  decodeRepair,
  type FecCounters,
  FecDecoder,
  newFecCounters,
} from "../stages/fec.ts";
import { blockDigest } from "../format/block_digest.ts";
import { bytesEqual } from "../../crypto/md5.ts";
import { blockBytes } from "../format/spec.ts";
import {
  type AssembledBlock,
  newReassemblyCounters,
  Reassembler,
  type ReassemblyCounters,
} from "../stages/reassembly.ts";
import {
  datagramType,
  decodeCookie,
  decodeFormat,
  decodeFragment,
  decodeSync,
  encodeSubscribe,
  type Fragment,
  fragmentsOf,
  isRejected,
  type UdpFormat,
  UdpMsg,
} from "./datagrams.ts";
import { ClientHandshake, openData, openRepair, SecureUdpMsg } from "./secure.ts";
import { stripCheck } from "../stages/datagram_check.ts";
import { CodeMismatch } from "../../crypto/secure_stream.ts";

export { AUTO_MAX_MS, type SubscriberEvent, type SubscriberOptions } from "./client_options.ts";
import { AUTO_MAX_MS, type SubscriberEvent, type SubscriberOptions } from "./client_options.ts";

/** One listener's subscription to an Audio-UDP server. */
export class UdpSubscriber {
  /** Ordering counters, kept across stream restarts. */
  readonly counters: OrderCounters = newOrderCounters();
  /** Reassembly counters, kept across stream restarts. */
  readonly fragments: ReassemblyCounters = newReassemblyCounters();
  /** Datagrams refused before reassembly (not from the server, not ours, wrong stream). */
  invalid = 0;
  /** Bytes of audio datagrams received. */
  bytes = 0;
  /** Times the server restarted and the session rejoined. */
  restarts = 0;
  /** Sync answers refused (not ours, repeated, impossible). */
  syncRefused = 0;
  #options: SubscriberOptions;
  #cookie: Uint8Array | null = null;
  #format: UdpFormat | undefined;
  #jitter: JitterBuffer | undefined;
  #reasm: Reassembler | undefined;
  #lastAnswer = 0;
  #nextRenew = 0;
  #timeline: SyncedTimeline<AssembledBlock & { arrived: number }>;
  #handshake: ClientHandshake | undefined;
  /** The handshake datagram to send again until the server answers it. */
  #pendingHandshake: Uint8Array | undefined;
  #streamKey: Uint8Array | undefined;
  /** Sealed datagrams that failed to open (tampered, replayed, injected). */
  tampered = 0;
  /** Datagrams that failed their check (`datagram_check.ts`): damaged on the way, dropped. */
  damaged = 0;
  /** Blocks rebuilt from repair data and queued in time to play. */
  recovered = 0;
  #fec: FecDecoder | undefined;
  /** Repair counters, kept across stream restarts. */
  readonly repairs: FecCounters = newFecCounters();
  /** How the jitter target moved, kept across stream restarts. */
  #target: TargetCounters = newTargetCounters();
  /** The newest block a fragment was received of. */
  #newest: number | undefined;

  /** A subscriber; nothing happens until {@link start}. */
  constructor(options: SubscriberOptions = {}) {
    this.#options = options;
    this.#timeline = this.#newTimeline();
    if (options.code) this.#handshake = new ClientHandshake(options.code.code, options.code.random);
  }

  /** The clock estimate at `now`, or null before the first sync answer. */
  clock(now: number): ClockEstimate | null {
    return this.#sync.estimate(now);
  }

  /** When {@link tick} next has something to do (ms). */
  nextTick(): number {
    return this.#cookie ? Math.min(this.#nextRenew, this.#sync.nextDue()) : this.#nextRenew;
  }

  /** The stream's format, once the server sent it. */
  get format(): UdpFormat | undefined {
    return this.#format;
  }

  /** The jitter target in ms, once the format is known. */
  get targetMs(): number | undefined {
    return this.#jitter?.targetMs;
  }

  /** The first SUBSCRIBE, at `now` (ms). */
  start(now: number): Uint8Array {
    this.#lastAnswer = now;
    this.#nextRenew = now + this.#renewMs;
    return encodeSubscribe(null);
  }

  /** Renewals, clock sync requests and the answer timeout: call at {@link nextTick}. */
  tick(now: number): SubscriberEvent[] {
    if (now - this.#lastAnswer > (this.#options.answerTimeoutMs ?? 5000)) {
      return [{ type: "silent", streaming: this.#format !== undefined }];
    }
    if (this.#pendingHandshake) {
      // Until the server answers, its handshake datagram again (one may be lost).
      if (now < this.#nextRenew - this.#renewMs / 2) return [];
      this.#nextRenew = now + this.#renewMs;
      return [{ type: "send", datagram: this.#pendingHandshake }];
    }
    const syncDue = this.#cookie !== null && this.#sync.due(now);
    // Half a period of slack, so a timer that fires a little early still renews.
    if (!syncDue && now < this.#nextRenew - this.#renewMs / 2) return [];
    return [{ type: "send", datagram: this.#subscribe(now) }];
  }

  /**
   * Takes one datagram at `now`. `fromServer` says whether it came from the
   * address subscribed to; anything else is counted invalid and ignored.
   */
  receive(d: Uint8Array, fromServer: boolean, now: number): SubscriberEvent[] {
    if (!fromServer) return this.#invalid();
    const type = datagramType(d);
    const refused = this.#refusal(type);
    if (refused) return [{ type: "refused", message: refused }];
    if (
      this.#handshake && type !== null && type >= SecureUdpMsg.PAKE_INIT &&
      type <= SecureUdpMsg.NO_CODE
    ) {
      return this.#secureReceive(d, type, now);
    }
    if (type === UdpMsg.DATA && this.#reasm && this.#jitter) {
      const plain = this.#unseal(d, openData);
      if (!plain) return this.#dropped();
      d = plain;
      const f = decodeFragment(d);
      if (isRejected(f) || f.streamId !== this.#format!.streamId) return this.#invalid();
      this.#lastAnswer = now;
      this.bytes += d.length;
      if (this.#newest === undefined || before(this.#newest, f.seq)) this.#newest = f.seq;
      if (this.#sync.ready) {
        // Too late for its slot: the automatic target learns from it.
        this.#jitter.lateArrival(f.seq, this.#sync.toLocal(f.captured), now);
      }
      return this.#assemble([f, ...(this.#fec?.source(f) ?? [])], now);
    }
    if (type === UdpMsg.REPAIR && this.#fec) {
      const plain = this.#unseal(d, openRepair);
      if (!plain) return this.#dropped();
      d = plain;
      const r = decodeRepair(d);
      if (isRejected(r)) return this.#invalid();
      const rebuilt = this.#fec.repair(r, d.length);
      if (isRejected(rebuilt)) return this.#invalid();
      this.#lastAnswer = now;
      this.bytes += d.length;
      return this.#assemble(rebuilt, now);
    }
    if (type === UdpMsg.SYNC && !this.#handshake) {
      const r = decodeSync(d);
      return isRejected(r) ? this.#invalid() : this.#syncAnswer(r, now);
    }
    if (type === UdpMsg.CHALLENGE) {
      const c = decodeCookie(d);
      if (!c) return this.#invalid();
      this.#cookie = c.slice();
      this.#lastAnswer = now;
      if (this.#handshake && !this.#handshake.keyed) {
        // Proven: now the code.
        this.#pendingHandshake = this.#handshake.init(this.#cookie);
        this.#nextRenew = now + this.#renewMs;
        return [{ type: "send", datagram: this.#pendingHandshake }];
      }
      return [{ type: "send", datagram: this.#subscribe(now) }];
    }
    if (type === UdpMsg.FULL && !this.#format) return [{ type: "full" }];
    if (type === UdpMsg.FORMAT && !this.#handshake) {
      const fmt = decodeFormat(d);
      if (isRejected(fmt)) return this.#invalid();
      return this.#stream(fmt, now);
    }
    return this.#invalid();
  }

  /**
   * A stream datagram opened with the stream key, or without a code with
   * its check stripped (as it is if the format announced none); null when
   * it fails its tag (counted tampered) or its check (counted damaged).
   */
  #unseal(
    d: Uint8Array,
    open: (key: Uint8Array, d: Uint8Array) => Uint8Array | null,
  ): Uint8Array | null {
    if (!this.#streamKey) {
      if (!this.#format?.check) return d;
      const body = stripCheck(d);
      if (!body) this.damaged++;
      return body;
    }
    const opened = open(this.#streamKey, d);
    if (!opened) this.tampered++;
    return opened;
  }

  /** A datagram that failed its tag (also counted invalid) or its check (only damaged). */
  #dropped(): SubscriberEvent[] {
    return this.#streamKey ? this.#invalid() : [];
  }

  /** A format arrived (in the clear, or sealed in a KEY): the stream (re)starts if new. */
  #stream(fmt: UdpFormat, now: number): SubscriberEvent[] {
    this.#lastAnswer = now;
    if (fmt.streamId === this.#format?.streamId) return [];
    // First format, or the server restarted: (re)start the stream.
    const restarted = this.#format !== undefined;
    if (restarted) {
      // Another server process, perhaps on another clock: sync starts over.
      this.restarts++;
      this.#timeline = this.#newTimeline();
    }
    const latency = this.#options.latencyMs ?? "auto";
    const targetMs = this.#jitter?.targetMs ??
      (latency === "auto" ? safeStartMs(blockMs(fmt)) : latency);
    this.#format = fmt;
    this.#newest = undefined;
    const fragments = fragmentsOf(fmt, blockBytes(fmt));
    const fec = fmt.fec ?? undefined;
    this.#fec = fec &&
      new FecDecoder(fmt.streamId, fec, fragments, blockBytes(fmt), undefined, this.repairs);
    const ms = blockMs(fmt);
    const auto: AutoTarget | undefined = latency === "auto"
      ? {
        maxMs: this.maxLatencyMs,
        rate: fmt.rate,
        channels: fmt.channels,
        // Repairs leave with the group's last block.
        recoveryMs: fec && ((seq) => (fec.blocks - 1 - (seq % fec.blocks)) * ms),
        heardOf: () => this.#newest,
        startMs: this.#options.startLatencyMs,
      }
      : undefined;
    // The window holds the largest target and 64 blocks more (a stall of
    // the process, whose backlog is read before the slots it held up).
    const most = latency === "auto" ? this.maxLatencyMs : latency;
    this.#jitter = new JitterBuffer({
      targetMs,
      blockMs: ms,
      window: Math.ceil(most / ms) + 64,
      keepTimeline: this.#options.keepTimeline,
      counters: this.counters,
      target: this.#target,
      auto,
    });
    this.#reasm = new Reassembler(fmt, fmt.mtu, 64, this.fragments, fragments);
    return [{ type: "stream", format: fmt, restarted }];
  }

  /** A refusal the server sent, as the line to print, or null. */
  #refusal(type: number | null): string | null {
    if (type === SecureUdpMsg.NEEDS_CODE && !this.#handshake) {
      return "This server needs a code: give it with --code or SOCKETS_CODE";
    }
    if (type === SecureUdpMsg.NO_CODE && this.#handshake) {
      return "Server does not use a code: run without --code or SOCKETS_CODE";
    }
    if (type === SecureUdpMsg.WRONG_CODE && this.#handshake) return new CodeMismatch().message;
    if (type === SecureUdpMsg.THROTTLED && this.#handshake) {
      // The datagram does not say whose guesses: the address's, its
      // network's, or everyone's.
      return "Too many wrong codes for this server just now; try again in a few seconds";
    }
    return null;
  }

  /** The coded handshake's datagrams and the sealed ones. */
  #secureReceive(d: Uint8Array, type: number, now: number): SubscriberEvent[] {
    const hs = this.#handshake!;
    if (type === SecureUdpMsg.PAKE_REPLY && this.#cookie && !hs.keyed) {
      try {
        this.#pendingHandshake = hs.confirm(d, this.#cookie);
      } catch (err) {
        if (err instanceof CodeMismatch) return [{ type: "refused", message: err.message }];
        return this.#invalid(); // a hostile share
      }
      this.#lastAnswer = now;
      return [{ type: "send", datagram: this.#pendingHandshake }];
    }
    const plain = type === SecureUdpMsg.KEY || type === SecureUdpMsg.SYNC_SEALED
      ? hs.open(d)
      : null;
    if (!plain) {
      if (type === SecureUdpMsg.KEY || type === SecureUdpMsg.SYNC_SEALED) this.tampered++;
      return this.#invalid();
    }
    if (type === SecureUdpMsg.KEY) {
      const fmt = decodeFormat(plain.subarray(32));
      if (isRejected(fmt)) return this.#invalid();
      const first = this.#streamKey === undefined;
      this.#streamKey = plain.slice(0, 32);
      this.#pendingHandshake = undefined;
      const events = this.#stream(fmt, now);
      // Joined: the first renewal at once, with a clock sync request.
      if (first) events.push({ type: "send", datagram: this.#subscribe(now) });
      return events;
    }
    const r = decodeSyncReply(plain);
    return r ? this.#syncAnswer(r, now) : this.#invalid();
  }

  /** A clock sync answer: blocks waiting for the clocks may go to the jitter buffer. */
  #syncAnswer(r: SyncReply, now: number): SubscriberEvent[] {
    const released = this.#timeline.answer(r, now);
    if (released === null) {
      this.syncRefused++;
      return [];
    }
    this.#lastAnswer = now;
    return this.#toJitter(released);
  }

  /** When the next play-out slot is due (ms, the client's clock), or null. */
  nextDue(): number | null {
    return this.#jitter?.nextDue() ?? null;
  }

  /** The decision for the next slot if it is due at `now`, else null. */
  pop(now: number): PlayoutDecision | null {
    const decision = this.#jitter?.pop(now) ?? null;
    if (decision && decision.kind !== "stretch") {
      const floor = this.#jitter!.next ?? decision.seq + 1;
      this.#reasm!.setFloor(floor);
      this.#fec?.setFloor(floor);
    }
    return decision;
  }

  /** The largest automatic target, ms. */
  get maxLatencyMs(): number {
    return this.#options.maxLatencyMs ?? AUTO_MAX_MS;
  }

  /** Fragments (received, or rebuilt from repairs) through reassembly into the jitter buffer. */
  #assemble(frags: Fragment[], now: number): SubscriberEvent[] {
    const blocks: (AssembledBlock & { arrived: number })[] = [];
    const queue = [...frags];
    for (let f = queue.shift(); f; f = queue.shift()) {
      const b = this.#reasm!.push(f);
      if (!b) continue;
      // A block that fails its MD5 may be rebuilt without a damaged fragment.
      const retried = !b.intact && this.#fec ? this.#fec.suspect(b.seq, this.#check) : [];
      if (retried.length) queue.push(...retried);
      else blocks.push({ ...b, arrived: now });
    }
    // Play-out waits for the clocks to be known.
    return blocks.length ? this.#toJitter(blocks.flatMap((b) => this.#timeline.arrive(b))) : [];
  }

  /** Whether a block rebuilt by a trial passes its MD5 (header and stream included). */
  #check: BlockCheck = (seq, captured, digest, bytes) =>
    bytesEqual(blockDigest(this.#format!, seq, captured, bytes), digest);

  /** The BYE to send when leaving, if the server ever gave a cookie. */
  bye(): Uint8Array | null {
    return this.#cookie ? encodeSubscribe(this.#cookie, { bye: true }) : null;
  }

  /** Ends the session: blocks still awaited are counted lost. */
  finish(): void {
    this.#jitter?.finish();
  }

  /** The transport's own report fields. */
  reportFields(): Record<string, unknown> {
    const f = this.fragments;
    const c = this.repairs;
    const t = this.#target;
    const r1 = (x: number) => Math.round(x * 10) / 10;
    return {
      target_latency_ms: r1(this.targetMs ?? 0),
      target_latency_range_ms: t.minMs <= t.maxMs ? [r1(t.minMs), r1(t.maxMs)] : null,
      target_latency_auto: (this.#options.latencyMs ?? "auto") === "auto",
      target_stretches: t.stretches,
      target_squeezed_blocks: t.squeezed,
      blocks_recovered: this.recovered,
      fec: this.#format?.fec ?? null,
      repair_bytes: c.repairBytes,
      datagrams_repair: c.repairs,
      fec_groups_unrecoverable: c.unrecoverable,
      blocks_trial_rebuilt: c.trialRebuilt,
      fragments_per_block: this.#reasm?.fragmentsPerBlock ?? 0,
      blocks_reordered: this.counters.reordered,
      fragments_received: f.fragments,
      fragments_duplicate: f.duplicates,
      fragments_expired: f.expired,
      datagrams_invalid: this.invalid + f.invalid + c.refused,
      datagrams_tampered: this.tampered,
      datagrams_damaged: this.damaged,
    };
  }

  /** A SUBSCRIBE at `now`: a renewal, and with a cookie a clock sync request. */
  #subscribe(now: number): Uint8Array {
    this.#nextRenew = now + this.#renewMs;
    if (!this.#cookie) return encodeSubscribe(null);
    return encodeSubscribe(this.#cookie, {
      t1: this.#sync.stamp(now),
      haveFormat: this.#format !== undefined,
    });
  }

  /** Blocks on the client's clock into the jitter buffer; a `block` event if any went in. */
  #toJitter(blocks: (AssembledBlock & { arrived: number })[]): SubscriberEvent[] {
    if (blocks.length === 0 || !this.#jitter) return [];
    for (const b of blocks) {
      if (this.#jitter.push(b) === "queued" && b.recovered && b.intact) this.recovered++;
    }
    return [{ type: "block" }];
  }

  get #sync(): ClockSync {
    return this.#timeline.sync;
  }

  #newTimeline(): SyncedTimeline<AssembledBlock & { arrived: number }> {
    return new SyncedTimeline(new ClockSync({ intervalMs: this.#renewMs }));
  }

  get #renewMs(): number {
    return this.#options.renewMs ?? 1000;
  }

  #invalid(): SubscriberEvent[] {
    this.invalid++;
    return [];
  }
}
