/**
 * The File-TCP client's shell: it connects (with the code's handshake when
 * one is given), reads and writes the connection, reads the files, and
 * shows progress; what each byte means and what comes next is the client
 * link's (`lib/core/file/client_link.ts`).
 *
 * @module
 */
import { basename } from "node:path";
import { UserError } from "../core/errors.ts";
import { ClientLink } from "../core/file/client_link.ts";
import type { ClientAction } from "../core/file/client_link.ts";
import type { Entry, EntryResult, SendResult } from "../core/file/entry.ts";
import { MAX_CHUNK_SIZE, MsgType, STREAM_OFFSET } from "../core/file/messages.ts";
import { packSmallFiles } from "../core/file/packing.ts";
import { DATA_OFFSET } from "../core/file/sender.ts";
import type { SecureStream } from "../core/crypto/secure_stream.ts";
import { readChunks } from "../io/conn.ts";
import { closeQuietly, describeError } from "../io/errors.ts";
import { fileProof, inputInfo, openEntry } from "../io/file_input.ts";
import { FrameWriter } from "../io/frame_writer.ts";
import { connectTo } from "../io/net.ts";
import { useNativeCrypto } from "../io/native_crypto.ts";
import { connectCoded } from "../io/secure_conn.ts";
import { readFullSync } from "../io/streams.ts";
import { ProgressReporter } from "./progress.ts";

export type { Entry, EntryResult, SendResult };

/** Options of {@link sendFile}. */
export interface SendOptions {
  /** Server address (default 127.0.0.1). */
  host?: string;
  /** Server port. */
  port: number;
  /** Path of the file to send. */
  path: string;
  /** Name to send (default: the path's base name). */
  name?: string;
  /** Chunk size in bytes (grown automatically for very large files). */
  chunkSize?: number;
  /** Show progress on stderr. */
  progress?: boolean;
  /** Called after each chunk is handed to the socket (for tests). */
  onChunk?: (index: number, sent: number) => void;
  /** The token of this file's cut transfer: the server resumes it. */
  resume?: string;
  /** Called with the server's resume token once it accepts the offer. */
  onToken?: (token: string) => void;
  /** The server's code: the session is then authenticated and encrypted. */
  code?: string;
  /**
   * Skip the file if the server already stores it with the same content
   * (proved: the file is read once more when the server asks, that is when
   * it stores a file of this size); otherwise replace the stored copy, or
   * resume its cut transfer (`--update`).
   */
  update?: boolean;
}

/**
 * A transfer that failed after the server accepted it: running again with
 * {@link token} resumes it, sending only what the server does not hold.
 */
export class TransferCut extends UserError {
  /** The token that resumes the transfer. */
  readonly token: string;

  /** The failure's message, with how to resume added. */
  constructor(message: string, token: string) {
    super(`${message}; to resume, run again with --resume ${token}`);
    this.name = "TransferCut";
    this.token = token;
  }
}

/** Options of {@link sendEntries}. */
export interface SendEntriesOptions {
  /** Server address (default 127.0.0.1). */
  host?: string;
  /** Server port. */
  port: number;
  /** Chunk size in bytes (grown automatically for very large files). */
  chunkSize?: number;
  /** The server's code: the session is then authenticated and encrypted. */
  code?: string;
  /** Skip entries the server stores unchanged; replace the ones that changed. */
  update?: boolean;
  /** Shows progress on stderr, labelled so. */
  progress?: string;
  /** Bytes in all, for the progress display (unknown: it says what moved). */
  total?: number;
  /** The token of a cut transfer, for the first entry (a named file). */
  resume?: string;
  /** Called with an entry's resume token once the server accepts it. */
  onToken?: (entry: Entry, token: string) => void;
  /** Called after each chunk is handed to the socket (for tests). */
  onChunk?: (entry: Entry, index: number, sent: number) => void;
  /** Called as each entry ends, sent (or up to date) or failed. */
  onResult?: (result: EntryResult) => void;
  /**
   * Give up when the server neither answers nor takes bytes for this long,
   * ms (default {@link CLIENT_TIMEOUT_MS}): a client never waits forever.
   */
  timeoutMs?: number;
}

/** How long a client waits on a server that makes no progress, ms (`--timeout`). */
export const CLIENT_TIMEOUT_MS = 30_000;

/** How a {@link sendEntries} run ended. */
export interface SendSummary {
  /** Entries taken from the list (each reported to `onResult`). */
  entries: number;
  /**
   * Why the run stopped before the list's end, if it did: the connection
   * failed (its open transfers were reported failed with it), and the
   * entries after them were not taken.
   */
  stopped?: unknown;
}

/** The largest frame the client writes: a chunk's, on its stream. */
const MAX_FRAME = STREAM_OFFSET + DATA_OFFSET + MAX_CHUNK_SIZE;

/** Connects to the server, with the code's handshake first when one is given. */
async function connect(host: string, options: SendEntriesOptions, timeoutMs: number) {
  const conn = await connectTo(host, options.port, timeoutMs);
  // Small frames (offers, ends) must not wait on a delayed ACK.
  conn.setNoDelay(true);
  try {
    // With a code: the handshake first (nothing of a file moves before
    // both sides have confirmed it), then every frame sealed.
    const coded = options.code === undefined ? undefined : await connectCoded(conn, {
      code: options.code,
      context: "file-tcp",
      maxInner: MAX_FRAME,
      plainRefusal: MsgType.ERROR,
    });
    return { conn, secure: coded?.secure, early: coded?.early ?? [] };
  } catch (err) {
    closeQuietly(conn);
    throw err;
  }
}

/**
 * Sends entries over one connection, many at once: up to
 * `MAX_OPEN_STREAMS` transfers are open, each its own session on its
 * own stream, so small files do not wait a round trip each while one
 * file's data flows at full speed. Entries are taken from the list as
 * they are needed (a walk of a tree of any size) and each ends in a call
 * to `onResult`; nothing is kept per entry once it ended. Throws
 * {@link UserError} when no transfer could start: no server, or the code's
 * handshake failed, or the server refused the connection before
 * answering any transfer.
 */
export async function sendEntries(
  entries: Iterable<Entry> | AsyncIterable<Entry>,
  options: SendEntriesOptions,
): Promise<SendSummary> {
  const host = options.host ?? "127.0.0.1";
  useNativeCrypto();
  const timeoutMs = options.timeoutMs ?? CLIENT_TIMEOUT_MS;
  const { conn, secure, early } = await connect(host, options, timeoutMs);
  // Small files of a folder go in packs, but with --update (each is
  // offered with its MD5, to be skipped if stored) or a resume.
  const source = options.update || options.resume ? entries : packSmallFiles(entries);
  const shell = new ClientShell(conn, secure, source, options);
  const reader = shell.read(early, {
    idleMs: timeoutMs,
    idleText: `Server at ${host}:${options.port} made no progress for ${
      timeoutMs / 1000
    } s (--timeout); gave up`,
  });
  return await shell.run(reader);
}

/** One connection's shell: see {@link sendEntries}. */
class ClientShell {
  readonly #conn: Deno.Conn;
  readonly #secure: SecureStream | undefined;
  readonly #options: SendEntriesOptions;
  readonly #link: ClientLink;
  readonly #writer: FrameWriter;
  readonly #iterator: Iterator<Entry> | AsyncIterator<Entry>;
  readonly #report: (result: EntryResult) => void;
  readonly #progress: ProgressReporter | undefined;
  /** Open files of transfers under way, by stream, with where the next sequential read starts. */
  readonly #files = new Map<number, { file: Deno.FsFile; position: number }>();
  /** Two chunk buffers: one is written while the next chunk is read into the other. */
  readonly #buffers = [0, 1].map(() => new Uint8Array(MAX_FRAME));
  readonly #scratch = new Uint8Array(1024 * 1024);
  #turn = 0;
  /** Entries taken from the list. */
  #taken = 0;
  /** Bytes the server sent: with those moved, the progress --timeout watches. */
  #heard = 0;
  /** What the server said or did to end the connection, if it did. */
  #readFailure: unknown;
  #wake: (() => void) | undefined;

  constructor(
    conn: Deno.Conn,
    secure: SecureStream | undefined,
    source: Iterable<Entry> | AsyncIterable<Entry>,
    options: SendEntriesOptions,
  ) {
    this.#conn = conn;
    this.#secure = secure;
    this.#options = options;
    this.#link = new ClientLink(options);
    this.#writer = new FrameWriter(conn, secure, MAX_FRAME);
    this.#iterator = Symbol.asyncIterator in source
      ? source[Symbol.asyncIterator]()
      : source[Symbol.iterator]();
    this.#report = options.onResult ?? (() => {});
    this.#progress = options.progress
      ? new ProgressReporter(options.progress, options.total)
      : undefined;
  }

  /** Hands the link's events on: tokens and results to the caller, ended transfers' files closed. */
  #drain(): void {
    for (const e of this.#link.events()) {
      if (e.type === "token") this.#options.onToken?.(e.entry, e.token);
      else if (e.type === "result") this.#report(e.result);
      else {
        const f = this.#files.get(e.id);
        if (f) closeQuietly(f.file);
        this.#files.delete(e.id);
      }
    }
  }

  #take(bytes: Uint8Array): void {
    this.#link.receive(bytes);
    this.#drain();
  }

  /** Reads the server's side until it closes or fails. */
  async read(early: Uint8Array[], idle: { idleMs: number; idleText: string }): Promise<void> {
    try {
      for (const f of early) this.#take(f);
      const progress = () => this.#heard + this.#link.moved;
      for await (const bytes of readChunks(this.#conn, { ...idle, progress })) {
        this.#heard += bytes.length;
        if (!this.#secure) this.#take(bytes);
        else {for (const e of this.#secure.receive(bytes)) {
            if (e.type === "data") this.#take(e.bytes);
          }}
        this.#wake?.();
      }
      const closed = this.#link.closed();
      if (closed) throw closed;
    } catch (err) {
      this.#readFailure ??= err;
    } finally {
      this.#wake?.();
    }
  }

  #failed(): boolean {
    return this.#readFailure !== undefined || this.#writer.failure !== undefined;
  }

  /** Does what the link says until every transfer ended or the connection failed. */
  async run(reader: Promise<void>): Promise<SendSummary> {
    let writeFailure: unknown;
    try {
      while (!this.#failed()) {
        const a = this.#link.poll(performance.now());
        this.#drain();
        if (a.kind === "finished") break;
        await this.#act(a);
      }
      await this.#writer.flush();
      await this.#writer.settle();
    } catch (err) {
      writeFailure = err;
    }
    writeFailure ??= this.#writer.failure;
    this.#progress?.finish();
    if (writeFailure !== undefined && this.#readFailure === undefined) {
      // A write that failed because the server hung up is explained by
      // what the server said, if it said something in time.
      let timer;
      await Promise.race([reader, new Promise((r) => timer = setTimeout(r, 2000))]);
      clearTimeout(timer);
    }
    closeQuietly(this.#conn);
    await reader;
    return this.#end(this.#readFailure ?? writeFailure);
  }

  /** How the run ended: `why` the connection failed, if it did. */
  #end(why: unknown): SendSummary {
    // Refused before any transfer began (a code needed, a busy server): the
    // connection's failure, said once.
    if (why !== undefined && !this.#link.answered) {
      for (const f of this.#files.values()) closeQuietly(f.file);
      throw why;
    }
    if (why === undefined) return { entries: this.#taken };
    this.#link.abort(why);
    this.#drain();
    return { entries: this.#taken, stopped: this.#link.more ? why : undefined };
  }

  async #act(a: ClientAction): Promise<void> {
    if (a.kind === "send") await this.#writer.write(a.bytes, false);
    else if (a.kind === "open") await this.#open();
    else if (a.kind === "read") await this.#chunk(a);
    else if (a.kind === "prove") this.#prove(a);
    else if (a.kind === "wait") await this.#idle();
  }

  /** Takes the next entry and opens its transfer. */
  async #open(): Promise<void> {
    const step = await this.#iterator.next();
    if (step.done) return this.#link.noMore();
    this.#taken++;
    const entry = step.value;
    const opened = openEntry(entry, this.#report);
    if (!opened) return;
    const id = this.#link.open(entry, opened.opened, performance.now());
    if (opened.file) this.#files.set(id, { file: opened.file, position: 0 });
  }

  /** Nothing to send: the server answers what it has been sent. */
  async #idle(): Promise<void> {
    await this.#writer.flush();
    await this.#writer.settle();
    const woken = Promise.withResolvers<void>();
    this.#wake = woken.resolve;
    if (!this.#failed() && !this.#link.busy) await woken.promise;
    this.#wake = undefined;
  }

  /** The server stores a file of this size: proved by a pass over ours. */
  #prove(a: ClientAction & { kind: "prove" }): void {
    try {
      const f = this.#files.get(a.id)!;
      const proof = fileProof(f.file, a.entry.source!, this.#scratch, a.salt);
      f.position = -1; // the next read seeks
      this.#link.proved(a.id, proof);
    } catch (err) {
      this.#link.readFailed(a.id, err);
    }
  }

  /** Reads a chunk and writes its frame, while the one before is written from the other buffer. */
  async #chunk(a: ClientAction & { kind: "read" }): Promise<void> {
    const buffer = this.#buffers[this.#turn & 1];
    const inner = buffer.subarray(STREAM_OFFSET);
    try {
      if (a.data) inner.set(a.data.subarray(a.offset, a.offset + a.length), DATA_OFFSET);
      else {
        const f = this.#files.get(a.id)!;
        if (f.position !== a.offset) f.file.seekSync(a.offset, Deno.SeekMode.Start);
        if (
          readFullSync(f.file, inner.subarray(DATA_OFFSET, DATA_OFFSET + a.length)) !== a.length
        ) {
          throw new UserError(`${a.entry.source} shrank while it was being sent`);
        }
        f.position = a.offset + a.length;
      }
    } catch (err) {
      this.#link.readFailed(
        a.id,
        err instanceof UserError
          ? err
          : new UserError(describeError(err, `Cannot read ${a.entry.source}`)),
      );
      return;
    }
    await this.#writer.settle();
    // A NACK that came while waiting moved the next chunk back.
    if (this.#failed()) return;
    const out = this.#link.chunk(a.id, a.index, buffer, a.length);
    if (!out) return;
    if (out.big) this.#turn++; // this buffer is being written; the next chunk goes to the other
    await this.#writer.write(out.bytes, out.big);
    if (out.sent !== undefined) {
      this.#options.onChunk?.(a.entry, a.index, out.sent);
      this.#progress?.update(this.#link.moved);
    }
  }
}

/** Sends one file. Throws {@link UserError} on any failure. */
export async function sendFile(options: SendOptions): Promise<SendResult> {
  const { size } = inputInfo(options.path);
  const entry: Entry = {
    source: options.path,
    name: options.name ?? basename(options.path),
    size,
  };
  let r: EntryResult | undefined;
  await sendEntries([entry], {
    host: options.host,
    port: options.port,
    chunkSize: options.chunkSize,
    code: options.code,
    update: options.update,
    resume: options.resume,
    progress: options.progress ? entry.name : undefined,
    onToken: options.onToken && ((_, token) => options.onToken!(token)),
    onChunk: options.onChunk && ((_, index, sent) => options.onChunk!(index, sent)),
    total: size,
    onResult: (result) => r = result,
  });
  if (!r) throw new UserError("The file was not sent"); // never: every entry ends in a result
  if (r.ok) return r.result;
  // Once accepted, a failure says how to resume.
  if (r.token && !(r.error instanceof TransferCut)) {
    throw new TransferCut(describeError(r.error), r.token);
  }
  throw r.error;
}
