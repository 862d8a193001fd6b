/**
 * File-TCP client: sends files to a file server in MD5-checked chunks,
 * resends any chunk the server asks for again, resumes a cut transfer (with
 * the token the server gave when it started), and exits 0 only once the
 * server has confirmed the whole file's MD5.
 *
 * With `--update`, a file the server already stores with the same content
 * is not sent again (the client proves it holds that content: see
 * `lib/core/file/proof.ts`), one that changed replaces the stored copy,
 * and one whose transfer was cut resumes.
 *
 * Run: `deno task file-client [--host 127.0.0.1] [--port 4545] [--resume TOKEN] [--update] [FILE ...]`
 *
 * @module
 */
import { basename } from "node:path";
import { ProtocolError, UsageError, UserError } from "../lib/core/errors.ts";
import {
  chooseChunkSize,
  CLIENT_LINK_LIMITS,
  decodeError,
  decodeStream,
  type Done,
  encodeError,
  encodeStream,
  FILE_PORT,
  fillStreamFrame,
  isResumeToken,
  MAX_CHUNK_SIZE,
  MAX_OPEN_STREAMS,
  MsgType,
  STREAM_OFFSET,
} from "../lib/core/file/messages.ts";
import { DATA_OFFSET, FileSender } from "../lib/core/file/sender.ts";
import { formatBytes, formatRate } from "../lib/core/report/format.ts";
import { FrameDecoder } from "../lib/core/wire/frame.ts";
import { readChunks } from "../lib/io/conn.ts";
import { closeQuietly, describeError, readError } from "../lib/io/errors.ts";
import { connectTo } from "../lib/io/net.ts";
import { readFullSync, writeAll } from "../lib/io/streams.ts";
import { proofHash, proofOf } from "../lib/core/file/proof.ts";
import { connectCoded } from "../lib/io/secure_conn.ts";
import { AudioMsg } from "../lib/core/audio/tcp/frames.ts";
import { sealedLength, SecureMsg } from "../lib/core/crypto/secure_stream.ts";
import { useNativeCrypto } from "../lib/io/native_crypto.ts";
import { CODE_FLAG, resolveCode, withCodePrompt } from "../lib/cli/code.ts";
import { ProgressReporter } from "../lib/cli/progress.ts";
import { onInterrupt, resumeCommand } from "../lib/cli/resume.ts";
import {
  HOST_FLAG,
  parseFlags,
  parsePort,
  parseSecondsFlag,
  parseSizeFlag,
  portFlag,
  runMain,
} from "../lib/cli/flags.ts";
import { resolveUserPath } from "../lib/io/paths.ts";
import { checkSources, type Entry, walkEntries } from "./file_tree.ts";
import { encodePack, PACK_FILE_BYTES, type PackFile } from "../lib/core/file/pack.ts";

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

/** What {@link sendFile} reports. */
export interface SendResult {
  /** Name sent. */
  name: string;
  /** File size. */
  bytes: number;
  /** Seconds from its offer to the server's confirmation. */
  seconds: number;
  /** Whole-file MD5 (hexadecimal), confirmed by the server. */
  md5: string;
  /** Name the server stored it under. */
  storedAs: string;
  /** Chunks in the file. */
  chunks: number;
  /** Chunks sent with data, the first time. */
  chunksSent: number;
  /** Chunks the server already held (resumed), sent as digests only. */
  chunksSkipped: number;
  /** Chunks sent again because the server's MD5 check failed. */
  chunksResent: number;
  /** Bytes of the file sent with data (not those the server already held). */
  bytesSent: number;
  /** The server already stored the file (`--update`): nothing was sent. */
  upToDate: boolean;
}

/** What the regular file at `path` is, with errors a user can act on. */
function inputInfo(path: string): Deno.FileInfo {
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(path);
  } catch (err) {
    throw readError(err, path);
  }
  if (info.isDirectory) throw new UserError(`${path} is a directory, not a file`);
  if (!info.isFile) throw new UserError(`${path} is not a regular file`);
  return info;
}

/** Opens `path` for reading, with errors a user can act on. */
function openInput(path: string): { file: Deno.FsFile; size: number; mtime: number } {
  const info = inputInfo(path);
  try {
    const file = Deno.openSync(path, { read: true });
    return { file, size: info.size, mtime: Math.trunc(info.mtime?.getTime() ?? 0) };
  } catch (err) {
    throw new UserError(describeError(err, `Cannot read ${path}`));
  }
}

/**
 * The salted digest MD5(salt ‖ file) that proves the file is held, read
 * from the start (`--update`, when the server asks).
 */
function fileProof(file: Deno.FsFile, path: string, buf: Uint8Array, salt: string): string {
  const h = proofHash(salt);
  try {
    file.seekSync(0, Deno.SeekMode.Start);
    for (let n = file.readSync(buf); n !== null; n = file.readSync(buf)) {
      h.update(buf.subarray(0, n));
    }
  } catch (err) {
    throw new UserError(describeError(err, `Cannot read ${path}`));
  }
  return h.hex();
}

/** Bytes a transfer sent with data: the file but the prefix the server held. */
function bytesSent(offer: { size: number; chunkSize: number }, skipped: number): number {
  return offer.size - Math.min(offer.size, skipped * offer.chunkSize);
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

/** How one entry ended: sent (or up to date), or failed. */
export type EntryResult =
  | { entry: Entry; ok: true; result: SendResult }
  | { entry: Entry; ok: false; error: unknown; token?: string };

/** Bytes of small frames gathered before they are written together. */
const GATHER_BYTES = 256 * 1024;

/** Transfers open at once: offers go ahead while earlier files' data flows. */
const WINDOW = MAX_OPEN_STREAMS;

/**
 * Bytes of files read whole (small files, packs) that are not yet handed
 * to the socket: no more is read while this much waits, so that the first
 * bytes go at once.
 */
const READ_AHEAD = 1024 * 1024;

/**
 * Bytes of files read whole that the server has not yet confirmed (kept
 * to send again what it asks for): no more is read while this much is
 * held, so that a folder of small files holds a few packs, not a window
 * of them.
 */
const HOLD = 8 * 1024 * 1024;

/** Whether another file may be read whole now: see {@link READ_AHEAD} and {@link HOLD}. */
function mayRead(jobs: Map<number, Job>): boolean {
  let unsent = 0;
  let held = 0;
  for (const j of jobs.values()) {
    if (!j.data) continue;
    held += j.data.length;
    if (!j.ended) unsent += j.data.length - j.sent;
  }
  return unsent < READ_AHEAD && held < HOLD;
}

/** One entry being sent, on its own stream. */
interface Job {
  entry: Entry;
  id: number;
  sender: FileSender;
  file: Deno.FsFile | undefined;
  /** A small file's bytes, read whole when it was opened (no handle kept), or a pack's. */
  data: Uint8Array | undefined;
  /** A pack's files as sent, with each one's size. */
  pack?: { members: Entry[]; sizes: number[] };
  /** The file offset the next sequential read starts at. */
  position: number;
  /** Bytes of the file handed to the socket, the furthest so far. */
  sent: number;
  ended: boolean;
  done?: Done;
  /** Why the transfer failed, and whether the server is yet to be told. */
  failure?: { error: unknown; tell: boolean };
  /** The server's challenge (`--update`): the salt to prove the file with. */
  salt?: string;
  start: number;
}

/** Whether a job has something to send now. */
function ready(j: Job): boolean {
  // A NACK after the END sends the sender back too: it sends the chunks
  // again, but the END only once. An eager file (one chunk) goes before
  // the server's accept. A challenge (`--update`) is answered by a proof.
  return j.failure === undefined &&
    (j.sender.next !== null || (!j.ended && j.sender.canEnd) || j.sender.phase === "proving");
}

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

/**
 * Sends entries over one connection, many at once: up to
 * {@link MAX_OPEN_STREAMS} transfers are open, each its own session on its
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
  const jobs = new Map<number, Job>();
  const report = options.onResult ?? (() => {});
  // Chunks of any size up to the largest (a very large file's are grown).
  const maxChunk = MAX_CHUNK_SIZE;
  const timeoutMs = options.timeoutMs ?? CLIENT_TIMEOUT_MS;
  const conn = await connectTo(host, options.port, timeoutMs);
  // Small frames (offers, ends) must not wait on a delayed ACK.
  conn.setNoDelay(true);
  let coded;
  try {
    // With a code: the handshake first (nothing of a file moves before
    // both sides have confirmed it), then every frame sealed.
    coded = options.code === undefined ? undefined : await connectCoded(conn, {
      code: options.code,
      context: "file-tcp",
      maxInner: STREAM_OFFSET + DATA_OFFSET + maxChunk,
      plainRefusal: MsgType.ERROR,
    });
  } catch (err) {
    closeQuietly(conn);
    throw err;
  }
  const secure = coded?.secure;
  const progress = options.progress
    ? new ProgressReporter(options.progress, options.total)
    : undefined;
  let moved = 0; // bytes handed to the socket the first time, all entries
  let heard = 0; // bytes the server sent: with moved, the progress --timeout watches
  /** What the server said or did to end the connection, if it did. */
  let readFailure: unknown;
  /** A write that failed. */
  let writeFailure: unknown;
  let wake: (() => void) | undefined;
  /** Whether the server answered on any stream: before that, a failure is the connection's. */
  let answered = false;
  /** Transfers that ended (confirmed or failed) and are yet to be settled. */
  const ended: Job[] = [];
  const finish = (job: Job, result: EntryResult) => {
    jobs.delete(job.id);
    if (job.file) closeQuietly(job.file);
    job.file = undefined;
    job.data = undefined;
    if (!job.pack) return report(result);
    // A pack reports each of its files: stored, or failed with the reason.
    const { members, sizes } = job.pack;
    const done = result.ok ? job.done : undefined;
    const failed = new Map(done?.failed ?? []);
    members.forEach((m, i) => {
      const why = failed.get(i);
      if (!result.ok) report({ entry: m, ok: false, error: result.error });
      else if (why !== undefined) {
        report({
          entry: m,
          ok: false,
          error: new UserError(`Server refused ${displayName(m)}: ${why}`),
        });
      } else {
        report({
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
        });
      }
    });
  };
  const fail = (job: Job, error: unknown) =>
    finish(job, { entry: job.entry, ok: false, error, token: job.sender.token });

  // The server's side: frames on each transfer's stream, in order.
  const link = new FrameDecoder(CLIENT_LINK_LIMITS);
  let first = true;
  const take = (bytes: Uint8Array) => {
    if (first && bytes.length >= 4) {
      // An Audio-TCP server speaks first: its HELLO, or NEEDS_CODE.
      first = false;
      if (bytes[3] === AudioMsg.HELLO || bytes[3] === SecureMsg.NEEDS_CODE) {
        throw new UserError("That port is an Audio-TCP server, not a file server");
      }
    }
    link.push(bytes);
    for (let f = link.next(); f !== null; f = link.next()) {
      if (f.type === MsgType.ERROR) {
        throw new UserError(`Server refused the transfer: ${decodeError(f.payload)}`);
      }
      const { id, bytes: inner } = decodeStream(f.payload);
      answered = true;
      const job = jobs.get(id);
      if (!job) {
        // A stream this client ended (a failed entry) may still get its
        // answer; one never opened is the server's error.
        if (id >= next) {
          throw new ProtocolError(`Server answered on stream ${id}, which was never opened`);
        }
        continue;
      }
      if (job.failure) continue;
      try {
        for (const e of job.sender.receive(inner)) {
          if (e.type === "accepted") options.onToken?.(job.entry, e.token);
          else if (e.type === "challenge") job.salt = salt = e.salt;
          else if (e.type === "done") {
            const files = job.pack?.members.length;
            if (files !== undefined && e.done.md5s?.length !== files) {
              throw new ProtocolError(
                `Server confirmed a pack of ${files} files without each one's MD5`,
              );
            }
            job.done = e.done;
            ended.push(job);
          }
        }
      } catch (err) {
        // The server's own refusal needs no answer; a malformed stream does.
        job.failure = { error: err, tell: err instanceof ProtocolError };
        ended.push(job);
      }
    }
  };
  const reader = (async () => {
    for (const f of coded?.early ?? []) take(f);
    for await (
      const bytes of readChunks(conn, {
        idleMs: timeoutMs,
        progress: () => heard + moved,
        idleText: `Server at ${host}:${options.port} made no progress for ${
          timeoutMs / 1000
        } s (--timeout); gave up`,
      })
    ) {
      heard += bytes.length;
      if (!secure) take(bytes);
      else for (const e of secure.receive(bytes)) if (e.type === "data") take(e.bytes);
      wake?.();
    }
    if (jobs.size > 0) {
      throw new UserError("Server closed the connection before confirming the file");
    }
  })().catch((err) => {
    readFailure ??= err;
  }).finally(() => wake?.());

  // Every write goes out in order, one at a time, while the next chunk is
  // read into the other of two buffers. Small frames (offers, ends, small
  // files' data) are gathered and written together: a write each would
  // cost ten thousand small files a trip through the runtime each.
  let pending: Promise<void> = Promise.resolve();
  const settle = () => pending.catch((err) => writeFailure ??= err);
  const buffers = [0, 1].map(() => new Uint8Array(STREAM_OFFSET + DATA_OFFSET + maxChunk));
  // Each write waits for the one before, so one sealing buffer serves.
  const sealed = secure && new Uint8Array(sealedLength(STREAM_OFFSET + DATA_OFFSET + maxChunk));
  // Two gathering buffers, used in turn: one is filled while the other's
  // bytes are being written (each write waits for the one before).
  const gather = [0, 1].map(() => new Uint8Array(GATHER_BYTES));
  let gatherTurn = 0;
  let gathered = 0;
  const flush = async () => {
    if (gathered === 0) return;
    const bytes = gather[gatherTurn].subarray(0, gathered);
    gatherTurn ^= 1;
    gathered = 0;
    await settle();
    if (writeFailure) throw writeFailure;
    pending = writeAll(conn, bytes);
  };
  const write = async (frame: Uint8Array, big: boolean) => {
    if (!big || frame.length < GATHER_BYTES / 4) {
      // Copied: `frame` may be a buffer that is read into again.
      const b = secure ? secure.seal(frame) : frame;
      if (gathered + b.length > GATHER_BYTES) await flush();
      gather[gatherTurn].set(b, gathered);
      gathered += b.length;
      return;
    }
    await flush();
    await settle();
    if (writeFailure) throw writeFailure;
    pending = writeAll(conn, secure ? secure.seal(frame, sealed!) : frame);
  };
  const small = (job: Job, inner: Uint8Array) => write(encodeStream(job.id, inner), false);
  const scratch = new Uint8Array(1024 * 1024);
  let turn = 0; // which buffer the next chunk is read into

  let next = 0; // the next entry's stream id
  /**
   * The server's salt, once a challenge named it (`--update`): a small
   * file's offer then carries its proof, and needs no challenge of its own.
   */
  let salt: string | undefined;
  // Small files of a folder go in packs, but with --update (each is
  // offered with its MD5, to be skipped if stored) or a resume.
  const source = options.update || options.resume ? entries : packSmallFiles(entries);
  const iterator = Symbol.asyncIterator in source
    ? source[Symbol.asyncIterator]()
    : source[Symbol.iterator]();
  let more = true;
  /** Takes the next entry and opens its transfer; undefined when it failed at once or none is left. */
  const open = async (): Promise<Job | undefined> => {
    const step = await iterator.next();
    if (step.done) {
      more = false;
      return undefined;
    }
    const entry = step.value;
    const id = next++;
    let file: Deno.FsFile | undefined;
    let data: Uint8Array | undefined;
    let size = entry.size;
    let mtime = entry.mtime;
    let pack: Job["pack"];
    if (entry.kind === "pack") {
      const packed = readPack(entry.members!, report);
      if (!packed) return undefined;
      ({ data, pack } = packed);
      size = data.length;
    } else {
      try {
        if (entry.source !== undefined && entry.size <= SMALL_FILE) {
          // A small file (as walked) is read whole in one call, its size
          // what was read: no handle, no seek, no second stat.
          data = readSmall(entry.source);
          size = data.length;
        } else if (entry.source !== undefined) {
          let at: number;
          ({ file, size, mtime: at } = openInput(entry.source));
          // A named file's cut transfer resumes by `--update` too: its
          // partial is named by its name, size and time, as a folder entry's.
          mtime ??= at;
        }
      } catch (err) {
        closeQuietly(file);
        report({ entry, ok: false, error: err });
        return undefined;
      }
    }
    const sender = new FileSender({
      name: entry.name,
      size,
      chunkSize: chooseChunkSize(size, options.chunkSize),
      resume: id === 0 ? options.resume : undefined,
      update: options.update && entry.kind !== "pack" ? true : undefined,
      proof: options.update && data && salt !== undefined ? proofOf(salt, data) : undefined,
      path: entry.parts,
      mode: entry.mode,
      kind: entry.kind,
      mtime,
    });
    const job: Job = {
      entry,
      id,
      sender,
      file,
      data,
      pack,
      position: 0,
      sent: 0,
      ended: false,
      start: performance.now(),
    };
    jobs.set(id, job);
    return job;
  };

  try {
    while (!readFailure && !writeFailure) {
      // Settle what ended.
      for (let job = ended.shift(); job; job = ended.shift()) {
        if (!jobs.has(job.id)) continue;
        if (job.failure) {
          // Tell the server why, on this stream only; the others go on.
          if (job.failure.tell) await small(job, encodeError(describeError(job.failure.error)));
          fail(job, job.failure.error);
        } else if (job.done) {
          finish(job, {
            entry: job.entry,
            ok: true,
            result: {
              name: displayName(job.entry),
              bytes: job.sender.offer.size,
              seconds: (performance.now() - job.start) / 1000,
              md5: job.sender.md5!,
              storedAs: job.done.storedAs,
              chunks: job.sender.chunks,
              ...job.sender.counters,
              bytesSent: job.done.upToDate
                ? 0
                : bytesSent(job.sender.offer, job.sender.counters.chunksSkipped),
              upToDate: job.done.upToDate === true,
            },
          });
        }
      }
      // Open transfers up to the window: their offers go out now (but
      // files read whole, only while few wait: see mayRead).
      while (jobs.size < WINDOW && more && mayRead(jobs)) {
        const job = await open();
        if (job) await small(job, job.sender.offerFrame());
      }
      if (jobs.size === 0) break;
      // The first open transfer with something to send sends it.
      let job: Job | undefined;
      for (const j of jobs.values()) {
        if (ready(j)) {
          job = j;
          break;
        }
      }
      if (!job) {
        await flush(); // the server answers what it has been sent
        await settle();
        const woken = Promise.withResolvers<void>();
        wake = woken.resolve;
        if (ended.length === 0 && !readFailure && !writeFailure) {
          let idle = true;
          for (const j of jobs.values()) if (ready(j)) idle = false;
          if (idle) await woken.promise;
        }
        wake = undefined;
        continue;
      }
      if (job.sender.phase === "proving") {
        // The server stores a file of this size: proved by a pass over ours.
        try {
          const salt = job.salt!;
          const proof = job.data
            ? proofOf(salt, job.data)
            : fileProof(job.file!, job.entry.source!, scratch, salt);
          job.position = -1; // the next read seeks
          await small(job, job.sender.proofFrame(proof));
        } catch (err) {
          job.failure = { error: err, tell: true };
          ended.push(job);
        }
        continue;
      }
      const i = job.sender.next;
      if (i === null) {
        job.ended = true;
        await small(job, job.sender.endFrame());
        continue;
      }
      const { chunkSize, size } = job.sender.offer;
      const buffer = buffers[turn & 1];
      const inner = buffer.subarray(STREAM_OFFSET);
      const offset = i * chunkSize;
      const len = Math.min(chunkSize, size - offset);
      try {
        if (job.data) {
          inner.set(job.data.subarray(offset, offset + len), DATA_OFFSET);
        } else {
          if (job.position !== offset) job.file!.seekSync(offset, Deno.SeekMode.Start);
          if (readFullSync(job.file!, inner.subarray(DATA_OFFSET, DATA_OFFSET + len)) !== len) {
            throw new UserError(`${job.entry.source} shrank while it was being sent`);
          }
        }
      } catch (err) {
        const error = err instanceof UserError
          ? err
          : new UserError(describeError(err, `Cannot read ${job.entry.source}`));
        job.failure = { error, tell: true };
        ended.push(job);
        continue;
      }
      job.position = offset + len;
      await settle();
      // A NACK that came while waiting moved the next chunk back.
      if (job.sender.next !== i || job.failure || readFailure || writeFailure) continue;
      const frame = job.sender.chunkFrame(i, inner, len);
      if (frame.buffer === buffer.buffer) {
        turn++; // this buffer is being written; the next chunk goes to the other
        await write(fillStreamFrame(buffer, job.id, frame.length), true);
      } else await small(job, frame); // a CHECK: the server holds this chunk
      if (offset + len > job.sent) {
        moved += offset + len - job.sent;
        job.sent = offset + len;
        options.onChunk?.(job.entry, i, job.sent);
        progress?.update(moved);
      }
    }
    await flush();
    await settle();
  } catch (err) {
    writeFailure ??= err;
  } finally {
    progress?.finish();
    if (writeFailure && !readFailure) {
      // A write that failed because the server hung up is explained by
      // what the server said, if it said something in time.
      let timer;
      await Promise.race([reader, new Promise((r) => timer = setTimeout(r, 2000))]);
      clearTimeout(timer);
    }
    closeQuietly(conn);
    await reader;
  }
  const why = readFailure ?? writeFailure;
  // Refused before any transfer began (a code needed, a busy server): the
  // connection's failure, said once.
  if (why !== undefined && !answered) throw why;
  if (why === undefined) return { entries: next };
  for (const job of [...jobs.values()]) fail(job, job.failure?.error ?? why);
  return { entries: next, stopped: more ? why : undefined };
}

/** Files in one pack, at most. */
const PACK_FILES = 256;
/**
 * Bytes in one pack, at most: its files (as walked) and its manifest (as
 * estimated by {@link manifestBytes}). A pack of at most a megabyte stays
 * in the server's memory (its write batch) until it is verified and
 * unpacked; a larger one is written to a partial file and read back.
 */
const PACK_BYTES = 1024 * 1024;

/**
 * At most the bytes a file adds to a pack's manifest: its size, mode and
 * time, and its path with every character escaped at worst.
 */
function manifestBytes(e: Entry): number {
  let bytes = 80;
  for (const c of e.parts!) bytes += 6 * c.length + 3;
  return bytes;
}

/**
 * Groups consecutive small files of one folder into packs (`kind:
 * "pack"`): up to {@link PACK_FILES} files or {@link PACK_BYTES} bytes,
 * each at most {@link PACK_FILE_BYTES}. Anything else passes as it is.
 */
async function* packSmallFiles(
  entries: Iterable<Entry> | AsyncIterable<Entry>,
): AsyncGenerator<Entry> {
  let group: Entry[] = [];
  let bytes = 0;
  let packed = 20; // with the manifest's own
  const out = (): Entry => {
    const members = group;
    group = [];
    const size = bytes;
    bytes = 0;
    packed = 20;
    return members.length === 1
      ? members[0]
      : { name: members[0].name, kind: "pack", members, size };
  };
  for await (const e of entries) {
    const small = e.parts !== undefined && e.kind === undefined && e.source !== undefined &&
      e.size <= PACK_FILE_BYTES;
    const adds = small ? e.size + manifestBytes(e) : 0;
    if (
      group.length > 0 &&
      (!small || e.name !== group[0].name || group.length >= PACK_FILES ||
        packed + adds > PACK_BYTES)
    ) yield out();
    if (small) {
      group.push(e);
      bytes += e.size;
      packed += adds;
    } else yield e;
  }
  if (group.length > 0) yield out();
}

/** Files up to this size (as walked) are read whole in one call: most of a folder's. */
const SMALL_FILE = 64 * 1024;

/** A small file's bytes, with errors a user can act on. */
function readSmall(path: string): Uint8Array {
  try {
    return Deno.readFileSync(path);
  } catch (err) {
    if (err instanceof Deno.errors.IsADirectory) {
      throw new UserError(`${path} is a directory, not a file`);
    }
    throw readError(err, path);
  }
}

/**
 * A pack's files, each read whole (one that cannot be read is reported
 * failed on its own), and the pack made of them; undefined when none
 * could be read.
 */
function readPack(
  members: readonly Entry[],
  report: (result: EntryResult) => void,
): { data: Uint8Array; pack: NonNullable<Job["pack"]> } | undefined {
  const files: PackFile[] = [];
  const pack: NonNullable<Job["pack"]> = { members: [], sizes: [] };
  for (const m of members) {
    try {
      const bytes = readSmall(m.source!);
      files.push({ path: m.parts!, mode: m.mode, mtime: m.mtime, data: bytes });
      pack.members.push(m);
      pack.sizes.push(bytes.length);
    } catch (err) {
      report({ entry: m, ok: false, error: err });
    }
  }
  return files.length === 0 ? undefined : { data: encodePack(files), pack };
}

/** An entry's name as the user knows it: `FOLDER/path` or the file's name. */
export function displayName(entry: Entry): string {
  return entry.parts ? [entry.name, ...entry.parts].join("/") : entry.name;
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

/** One summary line for a sent file. */
export function summarize(r: SendResult): string {
  if (r.upToDate) {
    return `${r.name}: up to date as ${r.storedAs} (${formatBytes(r.bytes)}, MD5 ${r.md5}), ` +
      `0 bytes sent`;
  }
  // What moved: a resumed file's rest, not its size.
  const resumed = r.chunksSkipped > 0
    ? `, resumed from ${formatBytes(r.bytes - r.bytesSent)} (${r.chunksSkipped} chunks ` +
      `already on server) of ${formatBytes(r.bytes)}`
    : "";
  const resent = r.chunksResent > 0 ? `, ${r.chunksResent} chunks resent after MD5 failures` : "";
  const sent = r.bytesSent;
  return `${r.name}: ${sent} bytes (${formatBytes(sent)}) in ${r.seconds.toFixed(2)} s, ` +
    `${formatRate(sent, r.seconds)}, MD5 ${r.md5}, stored as ${r.storedAs}${resumed}${resent}`;
}

/**
 * The line for an entry that failed: its name and why, and how to resume
 * one the server had accepted (a named file by its token, a folder's
 * entry by sending the folder again with `--update`).
 */
export function failureLine(r: EntryResult & { ok: false }): string {
  const name = displayName(r.entry);
  let why = describeError(r.error);
  // Most messages name the file already.
  if (!why.includes(r.entry.parts ? name : r.entry.name)) why = `${name}: ${why}`;
  if (r.error instanceof TransferCut || !r.token) return why;
  return r.entry.parts
    ? `${why}; to resume, send the folder again with --update`
    : `${why}; to resume, run again with --resume ${r.token}`;
}

/** What a folder's entries came to, counted as they end. */
export interface FolderTally {
  /** Files sent (not up to date). */
  files: number;
  /** Their bytes. */
  bytes: number;
  /** Files the server already stored unchanged (`--update`). */
  upToDate: number;
  /** Files that resumed from chunks the server held. */
  resumed: number;
  /** Empty folders made. */
  emptyFolders: number;
  /** Entries that failed. */
  failed: number;
  /** The folder the server stored them in. */
  root?: string;
}

/** Counts one ended entry into its folder's tally. */
export function tally(t: FolderTally, r: EntryResult): void {
  if (!r.ok) t.failed++;
  else if (r.entry.kind === "dir") t.emptyFolders++;
  else if (r.result.upToDate) t.upToDate++;
  else {
    t.files++;
    t.bytes += r.result.bytesSent;
    if (r.result.chunksSkipped > 0) t.resumed++;
  }
  if (r.ok) t.root ??= r.result.storedAs.split("/")[0];
}

/** One line for a folder sent: how many files, bytes and seconds, and where it went. */
export function folderLine(name: string, t: FolderTally, seconds: number): string {
  const files = (n: number) => `${n} ${n === 1 ? "file" : "files"}`;
  const notes = [
    t.emptyFolders > 0
      ? `${t.emptyFolders} empty ${t.emptyFolders === 1 ? "folder" : "folders"}`
      : "",
    t.upToDate > 0 ? `${t.upToDate} up to date` : "",
    t.resumed > 0 ? `${t.resumed} resumed` : "",
    t.failed > 0 ? `${t.failed} failed` : "",
  ].filter((n) => n !== "");
  return `${name}: ${files(t.files)} (${formatBytes(t.bytes)}) in ${seconds.toFixed(2)} s, ` +
    `${formatRate(t.bytes, seconds)}${t.root ? `, stored in ${t.root}` : ""}` +
    (notes.length > 0 ? `; ${notes.join(", ")}` : "");
}

const FLAGS = {
  host: HOST_FLAG,
  port: portFlag(FILE_PORT),
  "chunk-size": { type: "string", default: "64K", value: "SIZE", help: "chunk size, 1K to 1M" },
  resume: {
    type: "string",
    default: "",
    value: "TOKEN",
    help: "resume a cut transfer of FILE with the token it printed",
  },
  code: CODE_FLAG,
  update: {
    type: "boolean",
    default: false,
    help: "skip files the server stores unchanged; replace the ones that changed " +
      "(and resume a folder's cut file)",
  },
  "follow-links": {
    type: "boolean",
    default: false,
    help: "send what symbolic links inside folders point to (else skip them)",
  },
  timeout: {
    type: "string",
    default: String(CLIENT_TIMEOUT_MS / 1000),
    value: "SECONDS",
    help: "give up on a server that answers nothing and takes nothing for this long",
  },
} as const;

async function main(): Promise<number> {
  const { flags, positionals } = parseFlags(Deno.args, FLAGS, {
    usage: "deno task file-client",
    summary: "Send files and folders to a file server with an MD5 check on every chunk.",
    positionals: "[FILE|FOLDER ...] (default chamber.mp4)",
  });
  const port = parsePort(flags.port);
  const chunkSize = parseSizeFlag("chunk-size", flags["chunk-size"]);
  if (chunkSize < 1024 || chunkSize > 1024 * 1024) {
    throw new UsageError("--chunk-size must be from 1K to 1M");
  }
  const paths = positionals.length > 0
    ? positionals.map(resolveUserPath)
    : [new URL("../chamber.mp4", import.meta.url).pathname];
  const resume = flags.resume || undefined;
  if (resume !== undefined && !isResumeToken(resume)) {
    throw new UsageError(`--resume ${JSON.stringify(resume)} is not a token this tool printed`);
  }
  const sources = await checkSources(paths);
  if (resume !== undefined && (sources.length !== 1 || sources[0].folder)) {
    throw new UsageError("--resume resumes one file; name just that FILE");
  }
  const folders = sources.filter((s) => s.folder).map((s) => s.name);
  const twice = folders.find((name, i) => folders.indexOf(name) !== i);
  if (twice !== undefined) {
    throw new UsageError(`Two folders are named ${twice}; send them one at a time`);
  }
  // On a terminal a first walk counts what will move, for the progress
  // bar's share and ETA; elsewhere progress says what moved (a walk of a
  // large folder is not free). Neither walk keeps the entries.
  const followLinks = flags["follow-links"];
  let total: number | undefined;
  let count: number | undefined;
  let first = "";
  if (Deno.stderr.isTerminal()) {
    total = 0;
    count = 0;
    for await (const e of walkEntries(sources, { followLinks })) {
      total += e.size;
      if (count++ === 0) first = e.name;
    }
  }
  // Said once each, as the sending walk finds them.
  const onSkip = (line: string) => console.error(`skipped ${line}`);
  const onCollision = (line: string) => console.error(`warning: ${line}`);
  let code = resolveCode(flags.code);
  const start = performance.now();
  // From here on a Ctrl-C says how to resume (the same command with --update).
  const quiet = onInterrupt(resumeCommand("file-client", Deno.args));
  /** Whether a transfer was cut after the server accepted it (it resumes by --update). */
  let cut = false;
  const tallies = new Map<string, FolderTally>();
  let upToDate = 0;
  let sentBytes = 0;
  let failed = 0;
  // A failure shared by many entries (the connection's) is said once.
  let lastError: string | undefined;
  let same = 0;
  const summary = await withCodePrompt(code, (c) => {
    code = c;
    return sendEntries(walkEntries(sources, { followLinks, onSkip, onCollision }), {
      host: flags.host,
      port,
      timeoutMs: parseSecondsFlag("timeout", flags.timeout) * 1000,
      chunkSize,
      progress: count === 1
        ? first
        : count !== undefined
        ? `${count} files`
        : sources.length === 1
        ? sources[0].name
        : "sent",
      total,
      resume,
      code: c,
      update: flags.update,
      // On a terminal, said before any data moves, so that a transfer
      // interrupted by hand can resume; every failure says it too.
      onToken: Deno.stderr.isTerminal()
        ? (entry, token) => {
          if (!entry.parts) {
            console.error(`${entry.name}: if this transfer is cut, resume with --resume ${token}`);
          }
        }
        : undefined,
      onResult: (r) => {
        if (r.entry.parts) {
          const t = tallies.get(r.entry.name) ??
            { files: 0, bytes: 0, upToDate: 0, resumed: 0, emptyFolders: 0, failed: 0 };
          tally(t, r);
          tallies.set(r.entry.name, t);
        }
        if (r.ok) {
          if (r.result.upToDate) upToDate++;
          else if (!r.entry.kind) sentBytes += r.result.bytesSent;
          // A folder's files are summed up in its line, but for those that
          // resumed or needed chunks again.
          if (!r.entry.parts || r.result.chunksSkipped > 0 || r.result.chunksResent > 0) {
            console.log(summarize(r.result));
          }
          return;
        }
        failed++;
        // A named file's line says how to resume it (its token); a
        // folder's entries are resumed by the command said at the end.
        if (r.token && r.entry.parts) cut = true;
        // The same reason again (the connection's, or a server refusing
        // every entry, a full disk) is counted, not repeated: the reason
        // apart from the entry's own name.
        let why = describeError(r.error).split(displayName(r.entry)).join("");
        if (r.entry.source) why = why.split(r.entry.source).join("");
        if (why === lastError) same++;
        else {
          lastError = why;
          console.error(`error: ${failureLine(r)}`);
        }
      },
    });
  });
  quiet();
  if (same > 0) console.error(`error: ${same} more failed, for the same reason`);
  if (summary.stopped !== undefined) {
    failed++;
    cut = true;
    console.error(
      `error: stopped after ${summary.entries} entries: ${describeError(summary.stopped)}`,
    );
  }
  if (cut) console.error(`to resume, run: ${resumeCommand("file-client", Deno.args)}`);
  const seconds = (performance.now() - start) / 1000;
  for (const name of folders) {
    const t = tallies.get(name);
    if (t) console.log(folderLine(name, t, seconds));
    else if (summary.stopped === undefined) console.error(`${name}: empty folder, nothing sent`);
  }
  if (flags.update) {
    console.log(
      `${sentBytes === 0 ? "0 bytes" : formatBytes(sentBytes)} sent, ` +
        `${upToDate} ${upToDate === 1 ? "file" : "files"} up to date`,
    );
  }
  return failed === 0 ? 0 : 1;
}

if (import.meta.main) runMain(main);
