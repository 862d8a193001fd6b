/**
 * The File-TCP client's connection core, in the style of h11's
 * `Connection`: no sockets, no files, no clock. Many transfers share one
 * connection, each a {@link FileSender} session on its own stream; the
 * link allocates the streams, keeps up to {@link WINDOW} transfers open,
 * reads files whole only within its read-ahead budgets, takes the
 * server's bytes ({@link ClientLink.receive}), and says what comes next
 * ({@link ClientLink.poll}): a frame to send, an entry to open, a chunk
 * or a proof to read from disk, or nothing until the server answers.
 * What ended is reported as events ({@link ClientLink.events}), one result
 * per file (a pack's DONE fans out to its files).
 *
 * ```text
 * shell                          link
 *   poll(now) ───────────────▶   {kind:"open"}  → open(entry, opened, now) | noMore()
 *                                {kind:"send", bytes}        → write them
 *                                {kind:"read", id, offset…}  → read, then chunk(id, i, buf, n)
 *                                {kind:"prove", id, salt}    → read all, then proved(id, md5)
 *                                {kind:"wait"}               → flush; wait for bytes
 *                                {kind:"finished"}           → every transfer ended
 *   receive(bytes) ──────────▶   (the server's frames, demultiplexed)
 *   closed() / abort(why) ───▶   (the connection ended)
 * ```
 *
 * @module
 */
import { ProtocolError, UserError } from "../errors.ts";
import { FrameDecoder } from "../wire/frame.ts";
import {
  chooseChunkSize,
  CLIENT_LINK_LIMITS,
  decodeError,
  decodeStream,
  encodeError,
  encodeStream,
  fillStreamFrame,
  MsgType,
  STREAM_OFFSET,
} from "./messages.ts";
import { FileSender } from "./sender.ts";
import { proofOf } from "./proof.ts";
import { AudioMsg } from "../audio/tcp/frames.ts";
import { SecureMsg } from "../crypto/secure_stream.ts";
import type { Entry, EntryResult } from "./entry.ts";
import {
  confirmed,
  fanOut,
  type Job,
  mayRead,
  type PackMembers,
  ready,
  WINDOW,
} from "./client_jobs.ts";

export { WINDOW };

/** Options of a {@link ClientLink}. */
export interface ClientLinkOptions {
  /** Chunk size in bytes (grown automatically for very large files). */
  chunkSize?: number;
  /** Skip entries the server stores unchanged; replace the ones that changed. */
  update?: boolean;
  /** The token of a cut transfer, for the first entry (a named file). */
  resume?: string;
}

/** What the shell does next, as {@link ClientLink.poll} says. */
export type ClientAction =
  /** Write these bytes (a small frame: offer, end, proof, check, error). */
  | { kind: "send"; bytes: Uint8Array }
  /** Take the next entry: {@link ClientLink.open} it, or {@link ClientLink.noMore}. */
  | { kind: "open" }
  /**
   * Put `length` bytes of the entry from `offset` at {@link DATA_OFFSET} of
   * a chunk buffer's inner frame (from `data` when set: the entry was read
   * whole; else from its file), then call {@link ClientLink.chunk}.
   */
  | {
    kind: "read";
    id: number;
    entry: Entry;
    index: number;
    offset: number;
    length: number;
    data?: Uint8Array;
  }
  /** Read the entry's file whole for MD5(salt ‖ file), then {@link ClientLink.proved}. */
  | { kind: "prove"; id: number; entry: Entry; salt: string }
  /** Nothing to do until the server says more. */
  | { kind: "wait" }
  /** Every transfer ended and no entry is left. */
  | { kind: "finished" };

/** What the link reports. */
export type ClientEvent =
  /** The server accepted the entry: `token` resumes it if it is cut. */
  | { type: "token"; entry: Entry; token: string }
  /** One file (or empty folder) ended: sent, up to date, or failed. */
  | { type: "result"; result: EntryResult }
  /** The transfer on stream `id` ended: the shell may close its file. */
  | { type: "ended"; id: number };

/** An entry as the shell opened it. */
export interface OpenedEntry {
  /** Its bytes, when read whole (a small file, or a pack). */
  data?: Uint8Array;
  /** Its size as opened. */
  size: number;
  /** Its modification time, ms. */
  mtime?: number;
  /** A pack's files, as read. */
  pack?: PackMembers;
}

/** A chunk frame to write, from {@link ClientLink.chunk}. */
export interface ChunkOut {
  /** The bytes: in the shell's buffer when `big`, else a small frame of their own. */
  bytes: Uint8Array;
  /** Whether it is a DATA frame in the shell's buffer (else a CHECK). */
  big: boolean;
  /** Bytes of the entry handed over, the furthest so far, when this chunk went further. */
  sent?: number;
}

/** No events: returned without allocating, as most polls have none. */
const NONE: readonly ClientEvent[] = [];

/** The client's side of one File-TCP connection. */
export class ClientLink {
  #options: ClientLinkOptions;
  #jobs = new Map<number, Job>();
  #ended: Job[] = [];
  #outbox: Uint8Array[] = [];
  #events: ClientEvent[] = [];
  #decoder = new FrameDecoder(CLIENT_LINK_LIMITS);
  #first = true;
  #next = 0;
  #more = true;
  #answered = false;
  #moved = 0;
  /**
   * The server's salt, once a challenge named it (`--update`): a small
   * file's offer then carries its proof, and needs no challenge of its own.
   */
  #salt: string | undefined;

  /** A link with no transfer open yet. */
  constructor(options: ClientLinkOptions = {}) {
    this.#options = options;
  }

  /** Whether the server answered on any stream: before that, a failure is the connection's. */
  get answered(): boolean {
    return this.#answered;
  }

  /** Whether entries may be left to take (no {@link noMore} yet). */
  get more(): boolean {
    return this.#more;
  }

  /** Entries' bytes handed over the first time, all entries. */
  get moved(): number {
    return this.#moved;
  }

  /** Transfers open now. */
  get transfers(): number {
    return this.#jobs.size;
  }

  /** Entries opened so far: the stream id the next one gets. */
  get opened(): number {
    return this.#next;
  }

  /** What happened since the last call. */
  events(): readonly ClientEvent[] {
    const out = this.#events;
    if (out.length === 0) return NONE;
    this.#events = [];
    return out;
  }

  /**
   * Takes bytes the server sent. Throws {@link UserError} when the server
   * refuses the connection (or is no file server), and
   * {@link ProtocolError} for an answer on a stream never opened; a
   * transfer's own failure ends that transfer only.
   */
  receive(bytes: Uint8Array): void {
    if (this.#first && bytes.length >= 4) {
      // An Audio-TCP server speaks first: its HELLO, or NEEDS_CODE.
      this.#first = false;
      if (bytes[3] === AudioMsg.HELLO || bytes[3] === SecureMsg.NEEDS_CODE) {
        throw new UserError("That port is an Audio-TCP server, not a file server");
      }
    }
    this.#decoder.push(bytes);
    for (let f = this.#decoder.next(); f !== null; f = this.#decoder.next()) {
      if (f.type === MsgType.ERROR) {
        throw new UserError(`Server refused the transfer: ${decodeError(f.payload)}`);
      }
      const { id, bytes: inner } = decodeStream(f.payload);
      this.#answered = true;
      const job = this.#jobs.get(id);
      if (!job) {
        // A stream this client ended (a failed entry) may still get its
        // answer; one never opened is the server's error.
        if (id >= this.#next) {
          throw new ProtocolError(`Server answered on stream ${id}, which was never opened`);
        }
        continue;
      }
      if (!job.failure) this.#take(job, inner);
    }
  }

  /** Feeds one transfer's bytes to its session. */
  #take(job: Job, inner: Uint8Array): void {
    try {
      for (const e of job.sender.receive(inner)) {
        if (e.type === "accepted") {
          this.#events.push({ type: "token", entry: job.entry, token: e.token });
        } else if (e.type === "challenge") job.salt = this.#salt = e.salt;
        else if (e.type === "done") {
          const files = job.pack?.members.length;
          if (files !== undefined && e.done.md5s?.length !== files) {
            throw new ProtocolError(
              `Server confirmed a pack of ${files} files without each one's MD5`,
            );
          }
          job.done = e.done;
          this.#ended.push(job);
        }
      }
    } catch (err) {
      // The server's own refusal needs no answer; a malformed stream does.
      job.sender.fail(err);
      job.failure = { error: err, tell: err instanceof ProtocolError };
      this.#ended.push(job);
    }
  }

  /**
   * What the shell does next; `now` is its clock, ms (a confirmed entry's
   * seconds are counted from its open).
   */
  poll(now: number): ClientAction {
    for (;;) {
      const out = this.#outbox.shift();
      if (out) return { kind: "send", bytes: out };
      const job = this.#ended.shift();
      if (job) {
        this.#settle(job, now);
        continue;
      }
      // Open transfers up to the window: their offers go out now (but
      // files read whole, only while few wait: see mayRead).
      if (this.#jobs.size < WINDOW && this.#more && mayRead(this.#jobs.values())) {
        return { kind: "open" };
      }
      if (this.#jobs.size === 0) return { kind: "finished" };
      const action = this.#step();
      if (action) return action;
    }
  }

  /** Whether a transfer has something to send, or ended, now (so the shell need not wait). */
  get busy(): boolean {
    if (this.#ended.length > 0 || this.#outbox.length > 0) return true;
    for (const j of this.#jobs.values()) if (ready(j)) return true;
    return false;
  }

  /** The first open transfer with something to send: its action (undefined when it went in the outbox). */
  #step(): ClientAction | undefined {
    let job: Job | undefined;
    for (const j of this.#jobs.values()) {
      if (ready(j)) {
        job = j;
        break;
      }
    }
    if (!job) return { kind: "wait" };
    const { sender } = job;
    if (sender.phase === "proving") {
      // The server stores a file of this size: proved by a pass over ours.
      if (!job.data) return { kind: "prove", id: job.id, entry: job.entry, salt: job.salt! };
      this.proved(job.id, proofOf(job.salt!, job.data));
      return undefined;
    }
    const index = sender.next;
    if (index === null) {
      job.ended = true;
      this.#send(job, sender.endFrame());
      return undefined;
    }
    const { chunkSize, size } = sender.offer;
    const offset = index * chunkSize;
    const length = Math.min(chunkSize, size - offset);
    return { kind: "read", id: job.id, entry: job.entry, index, offset, length, data: job.data };
  }

  /** Reports an ended transfer, telling the server why it failed if it must be told. */
  #settle(job: Job, now: number): void {
    if (!this.#jobs.has(job.id)) return;
    if (job.failure) {
      // Tell the server why, on this stream only; the others go on.
      const { error, tell } = job.failure;
      if (tell) {
        this.#send(job, encodeError(error instanceof Error ? error.message : String(error)));
      }
      this.#fail(job, error);
    } else if (job.done) this.#finish(job, confirmed(job, now));
  }

  #fail(job: Job, error: unknown): void {
    this.#finish(job, { entry: job.entry, ok: false, error, token: job.sender.token });
  }

  #finish(job: Job, result: EntryResult): void {
    this.#jobs.delete(job.id);
    job.data = undefined;
    this.#events.push({ type: "ended", id: job.id });
    for (const r of fanOut(job, result)) this.#events.push({ type: "result", result: r });
  }

  #send(job: Job, inner: Uint8Array): void {
    this.#outbox.push(encodeStream(job.id, inner));
  }

  /**
   * Opens `entry`'s transfer on the next stream, as the shell opened it
   * (at `now`, ms): its offer goes out next. Returns its stream id.
   */
  open(entry: Entry, opened: OpenedEntry, now: number): number {
    const id = this.#next++;
    const { update, resume } = this.#options;
    const { data, size } = opened;
    const sender = new FileSender({
      name: entry.name,
      size,
      chunkSize: chooseChunkSize(size, this.#options.chunkSize),
      resume: id === 0 ? resume : undefined,
      update: update && entry.kind !== "pack" ? true : undefined,
      proof: update && data && this.#salt !== undefined ? proofOf(this.#salt, data) : undefined,
      path: entry.parts,
      mode: entry.mode,
      kind: entry.kind,
      mtime: opened.mtime,
    });
    const job: Job = {
      entry,
      id,
      sender,
      data,
      pack: opened.pack,
      sent: 0,
      ended: false,
      start: now,
    };
    this.#jobs.set(id, job);
    this.#send(job, sender.offerFrame());
    return id;
  }

  /** Says no entry is left to open. */
  noMore(): void {
    this.#more = false;
  }

  /**
   * The chunk the shell read for a `read` action, as a frame to write: a
   * DATA frame in `buffer` (the inner frame starts at {@link STREAM_OFFSET},
   * its bytes at {@link DATA_OFFSET} of that), or a CHECK when the server
   * holds it. Undefined when the chunk is no longer wanted (a NACK moved
   * the transfer back, or it failed, while it was read).
   */
  chunk(id: number, index: number, buffer: Uint8Array, length: number): ChunkOut | undefined {
    const job = this.#jobs.get(id);
    if (!job || job.failure || job.sender.next !== index) return undefined;
    const inner = buffer.subarray(STREAM_OFFSET);
    const frame = job.sender.chunkFrame(index, inner, length);
    const end = index * job.sender.offer.chunkSize + length;
    let sent: number | undefined;
    if (end > job.sent) {
      this.#moved += end - job.sent;
      sent = job.sent = end;
    }
    if (frame.buffer === buffer.buffer) {
      return { bytes: fillStreamFrame(buffer, id, frame.length), big: true, sent };
    }
    return { bytes: encodeStream(id, frame), big: false, sent }; // a CHECK
  }

  /** The proof a `prove` action read: MD5(salt ‖ the file), hexadecimal. */
  proved(id: number, proof: string): void {
    const job = this.#jobs.get(id);
    if (!job || job.failure) return;
    this.#send(job, job.sender.proofFrame(proof));
  }

  /** A `read` or `prove` action failed: the transfer fails, and the server is told why. */
  readFailed(id: number, error: unknown): void {
    const job = this.#jobs.get(id);
    if (!job || job.failure) return;
    job.sender.fail(error);
    job.failure = { error, tell: true };
    this.#ended.push(job);
  }

  /**
   * The server closed the connection: the failure it is for the transfers
   * still open (undefined when none is).
   */
  closed(): UserError | undefined {
    return this.#jobs.size > 0
      ? new UserError("Server closed the connection before confirming the file")
      : undefined;
  }

  /** The connection failed with `why`: every open transfer fails with it (or its own failure). */
  abort(why: unknown): void {
    for (const job of [...this.#jobs.values()]) this.#fail(job, job.failure?.error ?? why);
  }
}
