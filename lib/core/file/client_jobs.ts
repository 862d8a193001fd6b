/**
 * The File-TCP client link's bookkeeping, with no I/O: one open transfer
 * (a job) per stream, which of them has something to send, how much the
 * link may read ahead, and how an ended job reports (a pack fans its DONE
 * out to each of its files).
 *
 * @module
 */
import { UserError } from "../errors.ts";
import { displayName, type Entry, type EntryResult } from "./entry.ts";
import type { Done } from "./messages.ts";
import type { FileSender } from "./sender.ts";

/** Transfers open at once: offers go ahead while earlier files' data flows. */
export { MAX_OPEN_STREAMS as WINDOW } from "./messages.ts";

/**
 * Bytes of files read whole (small files, packs) that are not yet handed
 * to the socket: no more is read while this much waits, so that the first
 * bytes go at once.
 */
export const READ_AHEAD = 1024 * 1024;

/**
 * Bytes of files read whole that the server has not yet confirmed (kept
 * to send again what it asks for): no more is read while this much is
 * held, so that a folder of small files holds a few packs, not a window
 * of them.
 */
export const HOLD = 8 * 1024 * 1024;

/** A pack's files as sent, with each one's size. */
export interface PackMembers {
  /** The files, in the pack's order. */
  members: Entry[];
  /** Each one's size as read. */
  sizes: number[];
}

/** One entry being sent, on its own stream. */
export interface Job {
  /** What is sent. */
  entry: Entry;
  /** Its stream. */
  id: number;
  /** Its session core. */
  sender: FileSender;
  /** A small file's bytes, read whole when it was opened, or a pack's. */
  data: Uint8Array | undefined;
  /** A pack's files. */
  pack?: PackMembers;
  /** Bytes of the file handed to the socket, the furthest so far. */
  sent: number;
  /** The END went out. */
  ended: boolean;
  /** The server's confirmation. */
  done?: Done;
  /** Why the transfer failed, and whether the server is yet to be told. */
  failure?: { error: unknown; tell: boolean };
  /** The server's challenge (`--update`): the salt to prove the file with. */
  salt?: string;
  /** When it opened, ms on the shell's clock. */
  start: number;
}

/** Whether another file may be read whole now: see {@link READ_AHEAD} and {@link HOLD}. */
export function mayRead(jobs: Iterable<Job>): boolean {
  let unsent = 0;
  let held = 0;
  for (const j of jobs) {
    if (!j.data) continue;
    held += j.data.length;
    if (!j.ended) unsent += j.data.length - j.sent;
  }
  return unsent < READ_AHEAD && held < HOLD;
}

/** Whether a job has something to send now. */
export function ready(j: Job): boolean {
  // A NACK after the END sends the sender back too: it sends the chunks
  // again, but the END only once. An eager file (one chunk) goes before
  // the server's accept. A challenge (`--update`) is answered by a proof.
  return j.failure === undefined &&
    (j.sender.next !== null || (!j.ended && j.sender.canEnd) || j.sender.phase === "proving");
}

/** Bytes a transfer sent with data: the file but the prefix the server held. */
function bytesSent(offer: { size: number; chunkSize: number }, skipped: number): number {
  return offer.size - Math.min(offer.size, skipped * offer.chunkSize);
}

/** What a confirmed job reports: its file sent (or up to date). */
export function confirmed(job: Job, now: number): EntryResult {
  const { sender, done } = job;
  return {
    entry: job.entry,
    ok: true,
    result: {
      name: displayName(job.entry),
      bytes: sender.offer.size,
      seconds: (now - job.start) / 1000,
      md5: sender.md5!,
      storedAs: done!.storedAs,
      chunks: sender.chunks,
      ...sender.counters,
      bytesSent: done!.upToDate ? 0 : bytesSent(sender.offer, sender.counters.chunksSkipped),
      upToDate: done!.upToDate === true,
    },
  };
}

/**
 * What an ended job reports, one result per file: the job's own, or a
 * pack's for each of its files (stored, or failed with the server's
 * reason).
 */
export function fanOut(job: Job, result: EntryResult): EntryResult[] {
  if (!job.pack) return [result];
  const { members, sizes } = job.pack;
  const done = result.ok ? job.done : undefined;
  const failed = new Map(done?.failed ?? []);
  return members.map((m, i): EntryResult => {
    const why = failed.get(i);
    if (!result.ok) return { entry: m, ok: false, error: result.error };
    if (why !== undefined) {
      return {
        entry: m,
        ok: false,
        error: new UserError(`Server refused ${displayName(m)}: ${why}`),
      };
    }
    return {
      entry: m,
      ok: true,
      result: {
        name: displayName(m),
        bytes: sizes[i],
        seconds: result.result.seconds,
        md5: done!.md5s![i],
        storedAs: `${done!.storedAs}/${m.parts!.join("/")}`,
        chunks: 1,
        chunksSent: 1,
        chunksSkipped: 0,
        chunksResent: 0,
        bytesSent: sizes[i],
        upToDate: false,
      },
    };
  });
}
