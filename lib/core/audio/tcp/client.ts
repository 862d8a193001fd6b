/**
 * The Audio-TCP listener's session core: bytes from the server and the
 * current time in; the stream's hello, its blocks and the bytes to send
 * out. The first frame must be a HELLO; after it, only BLOCKs of the
 * announced size and, from a protocol 2 server, replies to clock sync
 * requests. No I/O.
 *
 * With a protocol 2 server the core syncs clocks ({@link ClockSync}): it
 * asks at once and on the sync's schedule ({@link AudioTcpReceiver.tick}),
 * holds blocks until the first answer, and hands every block on with its
 * capture time on the client's clock. With a protocol 1 server the clocks
 * are taken to agree, as before.
 *
 * @module
 */
import { ProtocolError } from "../../errors.ts";
import { CodeRequired, SecureMsg } from "../../crypto/secure_stream.ts";
import { FrameDecoder } from "../../wire/frame.ts";
import {
  type ClockEstimate,
  ClockSync,
  type ClockSyncOptions,
  SyncedTimeline,
} from "../stages/clock_sync.ts";
import {
  AUDIO_CLIENT_LIMITS,
  AudioMsg,
  decodeBlock,
  decodeHello,
  decodeSyncReplyFrame,
  encodeSyncRequest,
  type Hello,
  type ReceivedBlock,
} from "./frames.ts";

/** What the server's bytes, or the passing of time, mean. */
export type AudioTcpEvent =
  /** The stream's description (`sync`: the server answers clock sync). */
  | { type: "hello"; hello: Hello; sync: boolean }
  /** A block, its capture time on the client's clock. */
  | { type: "block"; block: ReceivedBlock }
  /** Bytes to send to the server. */
  | { type: "send"; bytes: Uint8Array };

/** One connection to an Audio-TCP server, as the listener sees it. */
export class AudioTcpReceiver {
  /** Bytes received, headers included. */
  bytes = 0;
  /** Clock sync answers refused (not ours, repeated, impossible). */
  syncRefused = 0;
  #decoder = new FrameDecoder(AUDIO_CLIENT_LIMITS);
  #hello: Hello | undefined;
  #timeline: SyncedTimeline<ReceivedBlock> | undefined;
  #syncOptions: ClockSyncOptions | undefined;

  /** A receiver for one connection; `sync` tunes the clock sync's schedule. */
  constructor(sync?: ClockSyncOptions) {
    this.#syncOptions = sync;
  }

  /** The stream's hello, once received. */
  get hello(): Hello | undefined {
    return this.#hello;
  }

  /** The clock estimate at `now`, or null (no answer yet, or a protocol 1 server). */
  clock(now: number): ClockEstimate | null {
    return this.#timeline?.sync.estimate(now) ?? null;
  }

  /** When {@link tick} next has something to do (ms), or null. */
  nextTick(): number | null {
    return this.#timeline?.sync.nextDue() ?? null;
  }

  /** Sends due at `now`: a clock sync request when one is due. */
  tick(now: number): AudioTcpEvent[] {
    const sync = this.#timeline?.sync;
    if (!sync?.due(now)) return [];
    return [{ type: "send", bytes: encodeSyncRequest(sync.stamp(now)) }];
  }

  /**
   * Takes bytes from the server, received at `now` (the client's clock);
   * throws {@link ProtocolError} on anything out of place.
   */
  receive(bytes: Uint8Array, now: number): AudioTcpEvent[] {
    this.bytes += bytes.length;
    this.#decoder.push(bytes);
    const out: AudioTcpEvent[] = [];
    for (let f = this.#decoder.next(); f !== null; f = this.#decoder.next()) {
      if (f.type === SecureMsg.NEEDS_CODE) throw new CodeRequired();
      if (!this.#hello) {
        if (f.type !== AudioMsg.HELLO) throw new ProtocolError("it sent no hello");
        this.#hello = decodeHello(f.payload);
        const sync = (this.#hello.protocol ?? 1) >= 2;
        out.push({ type: "hello", hello: this.#hello, sync });
        if (sync) {
          this.#timeline = new SyncedTimeline(new ClockSync(this.#syncOptions));
          out.push(...this.tick(now));
        }
      } else if (f.type === AudioMsg.BLOCK) {
        const block = decodeBlock(f.payload, this.#hello);
        // A protocol 1 server's blocks pass on its clock.
        const ready = this.#timeline ? this.#timeline.arrive(block) : [block];
        for (const b of ready) out.push({ type: "block", block: b });
      } else if (f.type === AudioMsg.SYNC_REPLY && this.#timeline) {
        const released = this.#timeline.answer(decodeSyncReplyFrame(f.payload), now);
        if (released === null) this.syncRefused++;
        else for (const b of released) out.push({ type: "block", block: b });
      } else {
        throw new ProtocolError(`Unexpected frame type ${f.type}`);
      }
    }
    return out;
  }

  /** Call when the server closed the connection; throws if a frame was cut short. */
  closed(): void {
    this.#decoder.finish();
  }
}
