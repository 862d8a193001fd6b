/**
 * What both audio clients share: the play-out side. Blocks come in with a
 * sequence number and a capture time; this checks them, conceals what
 * cannot be played, counts everything and hands blocks to the sink, and
 * draws the live status line. Transports differ only in how blocks arrive.
 *
 * @module
 */
import { type AudioSink, now, openSink } from "./audio_io.ts";
import { type AudioSpec, blockMs, describeSpec } from "../core/audio/spec.ts";
import { Concealer } from "../core/audio/conceal.ts";
import { UserError } from "../core/errors.ts";
import { statusLine, type StreamReport, StreamStats } from "../core/report/stream_report.ts";

/** Gaps up to this many blocks are filled with concealment; larger ones are a resync. */
export const MAX_FILL_BLOCKS = 50;

/** Options shared by the audio clients. */
export interface PlayoutOptions {
  /** Output SPEC (see `audio_endpoint.ts`). */
  output: string;
  /**
   * A block that would reach the sink later than this after capture (ms) is
   * late: counted and skipped, so one stall (a TCP retransmission, a sink
   * that is slow to start) does not delay the rest of the session.
   */
  lateMs: number;
  /** Draw a live status line on stderr (default: when stderr is a terminal). */
  status?: boolean;
}

/** One entry waiting for the sink: a block, or a concealment in place of one. */
interface Pending {
  /** Samples to play, or null for a concealment. */
  samples: Int16Array | null;
  /** Capture time of the (missing) block, ms since the epoch. */
  captured: number;
}

/**
 * The play-out side of an audio client. The transport hands it blocks as
 * they arrive ({@link block}, which never waits); a writer of its own hands
 * them to the sink. So a sink that stalls (a device that is slow to start)
 * never stops the client reading the network; when it resumes, the blocks
 * that waited too long are skipped as late.
 */
export class Playout implements AsyncDisposable {
  /** Counters of the session, across reconnections. */
  readonly stats: StreamStats;
  #options: PlayoutOptions;
  #sink: AudioSink | undefined;
  #spec: AudioSpec | undefined;
  #concealer: Concealer | undefined;
  #expected: number | undefined;
  #streamId: number | undefined;
  #lastStatus = 0;
  #tty: boolean;
  #queue: Pending[] = [];
  #maxQueue = 0;
  #cushion = 1;
  #wake: (() => void) | undefined;
  #writer: Promise<void> | undefined;
  #closing = false;

  /** Creates the play-out side; the sink opens at {@link begin}. */
  constructor(transport: "tcp" | "udp", options: PlayoutOptions) {
    this.stats = new StreamStats(transport);
    this.#options = options;
    this.#tty = options.status ?? Deno.stderr.isTerminal();
  }

  /** The stream format, once known. */
  get spec(): AudioSpec | undefined {
    return this.#spec;
  }

  /**
   * Starts (or resumes after a reconnection) a stream. Opens the sink on the
   * first call; a later stream must have the same format. A new stream id
   * (the server restarted) resets sequence tracking.
   */
  async begin(spec: AudioSpec, streamId: number): Promise<void> {
    if (!this.#spec) {
      this.#sink = await openSink(this.#options.output, spec);
      this.#spec = spec;
      this.#concealer = new Concealer(spec.channels);
      // Anything queued longer than the latency bound would be skipped anyway.
      this.#maxQueue = Math.ceil(this.#options.lateMs / blockMs(spec)) + 8;
      this.#cushion = Math.max(1, Math.floor(this.#options.lateMs / blockMs(spec) / 2));
      this.#writer = this.#write();
    } else if (
      spec.rate !== this.#spec.rate || spec.channels !== this.#spec.channels ||
      spec.block !== this.#spec.block
    ) {
      throw new UserError(
        `Server changed format from ${describeSpec(this.#spec)} to ${
          describeSpec(spec)
        }; restart the client`,
      );
    }
    if (streamId !== this.#streamId) this.#expected = undefined;
    this.#streamId = streamId;
  }

  /**
   * Takes one block as it arrives (the transport counts bytes on the wire
   * itself). `intact` false means it failed its MD5: it is counted and
   * concealed, never played. Blocks missing before `seq` are counted lost
   * and concealed (up to {@link MAX_FILL_BLOCKS}).
   */
  block(seq: number, captured: number, samples: Int16Array, intact: boolean): void {
    const st = this.stats;
    if (this.#expected !== undefined && seq !== this.#expected) {
      const gap = (seq - this.#expected) >>> 0;
      if (gap >= 0x80000000) return; // A stale block from before a resync: drop it.
      st.lost += gap;
      if (gap <= MAX_FILL_BLOCKS) {
        const ms = blockMs(this.#spec!);
        for (let i = gap; i > 0; i--) this.#push({ samples: null, captured: captured - i * ms });
      }
    }
    this.#expected = (seq + 1) >>> 0;
    if (!intact) {
      st.corrupted++;
      this.#push({ samples: null, captured });
      return;
    }
    this.#push({ samples, captured });
  }

  /**
   * Queues a block for the sink as it is (for a transport that orders and
   * counts blocks itself, like the UDP jitter buffer).
   */
  play(samples: Int16Array, captured: number): void {
    this.#push({ samples, captured });
  }

  /** Queues a concealment in place of a block captured at `captured`. */
  conceal(captured: number): void {
    this.#push({ samples: null, captured });
  }

  /** The report so far. */
  report(): StreamReport {
    return this.stats.report();
  }

  /** Plays what is still queued and on time, then closes the sink. Idempotent. */
  async close(): Promise<void> {
    if (this.#closing) return await this.#writer;
    this.#closing = true;
    this.#wake?.();
    await this.#writer;
    if (this.#tty && this.#lastStatus > 0) {
      Deno.stderr.writeSync(new TextEncoder().encode("\r\x1b[2K"));
    }
    await this.#sink?.close();
  }

  /** Same as {@link close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #push(entry: Pending) {
    if (this.#queue.length >= this.#maxQueue) {
      // The sink is far behind: the oldest entry can no longer be on time.
      const old = this.#queue.shift()!;
      if (old.samples) this.stats.late++;
    }
    this.#queue.push(entry);
    this.#wake?.();
  }

  /** The sink side: plays queued entries in order, skipping late ones. */
  async #write(): Promise<void> {
    const st = this.stats;
    const length = this.#spec!.block * this.#spec!.channels;
    while (true) {
      const e = this.#queue.shift();
      if (!e) {
        if (this.#closing) return;
        await new Promise<void>((r) => this.#wake = r);
        this.#wake = undefined;
        continue;
      }
      const latency = now() - e.captured;
      if (latency > this.#options.lateMs) {
        // The sink fell behind (a stall, a slow start). Playing this would
        // delay everything after it, and so would most entries queued
        // behind it: skip down to a cushion of the newest (half the latency
        // bound), so the session is live again at once and the sink does
        // not run dry, which makes some devices restart and stall again.
        if (e.samples) st.late++;
        while (this.#queue.length > this.#cushion) {
          if (this.#queue.shift()!.samples) st.late++;
        }
        continue;
      }
      if (e.samples) {
        st.received++;
        st.latency.add(latency);
        this.#concealer!.good(e.samples);
        await this.#sink!.write(e.samples);
      } else {
        st.concealed++;
        await this.#sink!.write(this.#concealer!.conceal(length));
      }
      this.#drawStatus();
    }
  }

  #drawStatus() {
    if (!this.#tty) return;
    const t = performance.now();
    if (t - this.#lastStatus < 250) return;
    this.#lastStatus = t;
    Deno.stderr.writeSync(new TextEncoder().encode(`\r\x1b[2K${statusLine(this.report())}`));
  }
}
