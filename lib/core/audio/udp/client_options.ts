/**
 * What the Audio-UDP listener's session core (`udp_subscriber.ts`) takes
 * and says: its options and its events. No I/O.
 *
 * @module
 */
import type { UdpFormat } from "./datagrams.ts";

/** What a datagram or the passing of time means for the session. */
export type SubscriberEvent =
  /** Send this datagram to the server. */
  | { type: "send"; datagram: Uint8Array }
  /** A stream began (`restarted`: the server restarted with a new stream id). */
  | { type: "stream"; format: UdpFormat; restarted: boolean }
  /** A block was put back together and handed to the jitter buffer. */
  | { type: "block" }
  /** The server is full and took no new listener. */
  | { type: "full" }
  /** The server has not answered for too long. */
  | { type: "silent"; streaming: boolean }
  /** The server refused the session, or the code did not match (one line). */
  | { type: "refused"; message: string };

/** Largest automatic jitter target, ms (the default bound of `--latency auto`). */
export const AUTO_MAX_MS = 300;

/** Options of a {@link UdpSubscriber}. */
export interface SubscriberOptions {
  /**
   * Jitter buffer target, ms, or `"auto"` (the default): the target follows
   * the measured transit and the time repair data needs ({@link AutoTarget}).
   */
  latencyMs?: number | "auto";
  /** Largest automatic target, ms (default {@link AUTO_MAX_MS}). */
  maxLatencyMs?: number;
  /** Where the automatic target starts, ms (default `safeStartMs`, `jitter_buffer.ts`). */
  startLatencyMs?: number;
  /** Give up when the server has not answered for this long, ms (default 5000). */
  answerTimeoutMs?: number;
  /** Renew the subscription (and sync clocks) this often, ms (default 1000). */
  renewMs?: number;
  /**
   * Keep the stream's slot timeline (a file or `null` output): blocks are
   * never squeezed, and the shell writes nothing for a stretch.
   */
  keepTimeline?: boolean;
  /** The server's code, and 48 random bytes for the handshake (the shell's). */
  code?: { code: string; random: Uint8Array };
}
