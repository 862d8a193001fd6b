/**
 * File-TCP server: receives files from any number of clients at once, checks
 * the MD5 of every chunk, asks again for chunks that fail, and stores a file
 * as `DIR/received-NAME` only once its whole-file MD5 matches.
 *
 * Run: `deno task file-server [--host 127.0.0.1] [--port 4545] [--dir DIR]`
 *
 * @module
 */
import { UsageError, UserError } from "../lib/core/errors.ts";
import {
  DATA_PREFIX,
  encodeError,
  encodeStream,
  FILE_PORT,
  MAX_CHUNK_SIZE,
  MAX_OPEN_STREAMS,
  MsgType,
  type Offer,
  STREAM_OFFSET,
} from "../lib/core/file/messages.ts";
import {
  FileReceiver,
  type ReceiverCounters,
  type ReceiverEvent,
  WholeFileMismatch,
} from "../lib/core/file/receiver.ts";
import { receivedName, safeBaseName, safeRelativePath } from "../lib/core/file/names.ts";
import { decodePack } from "../lib/core/file/pack.ts";
import { StreamBudget } from "../lib/core/file/stream_budget.ts";
import { LinkSplitter } from "../lib/core/file/link_splitter.ts";
import { DEFAULT_MAX_FOLDERS, FolderBudget, storedMode } from "../lib/core/file/disk_policy.ts";
import type { ContainedRoot, FileStat } from "../lib/io/contained_root.ts";
import { formatBytes } from "../lib/core/report/format.ts";
import { readChunks } from "../lib/io/conn.ts";
import { closeQuietly, describeError } from "../lib/io/errors.ts";
import { listenTcp } from "../lib/io/net.ts";
import { writeAll } from "../lib/io/streams.ts";
import {
  HOST_FLAG,
  onShutdown,
  parseCount,
  parseFlags,
  parsePort,
  parseSecondsFlag,
  parseSizeFlag,
  portFlag,
  runMain,
} from "../lib/cli/flags.ts";
import { resolveUserPath } from "../lib/io/paths.ts";
import { CODE_FLAG, isLoopback, resolveCode } from "../lib/cli/code.ts";
import { ProofLimiter, sameProof } from "../lib/core/file/proof.ts";
import {
  type BookEntry,
  checkDirectory,
  clientMessage,
  DigestBook,
  type PackPlacement,
  PackStorer,
  type PartialFile,
  PartialStore,
  removeStalePartials,
  TreePlacer,
} from "../lib/io/file_store/mod.ts";
import { createHash } from "node:crypto";
import { ProtocolError } from "../lib/core/errors.ts";
import { acceptCoded } from "../lib/io/secure_conn.ts";
import { useNativeCrypto } from "../lib/io/native_crypto.ts";
import { GuessLimiter } from "../lib/core/crypto/guess_limiter.ts";
import { HandshakeGate } from "../lib/core/crypto/admission.ts";
import { SecureStream } from "../lib/core/crypto/secure_stream.ts";
import { concatBytes, HEADER_LENGTH } from "../lib/core/wire/frame.ts";

export { FILE_PORT };

/** Options of {@link startFileServer}. */
export interface FileServerOptions {
  /** Address to bind (default 127.0.0.1). */
  host?: string;
  /** Port (0 picks a free one). */
  port: number;
  /** Directory files are stored in. */
  dir: string;
  /** Largest file accepted, in bytes. */
  maxSize?: number;
  /** Replace an existing received file instead of keeping both. */
  overwrite?: boolean;
  /**
   * Put each file's data on the disk before confirming it (`--fsync`).
   * Without, a confirmed file is in the kernel's cache, as rsync and scp
   * leave it: a killed server loses nothing, a power cut may.
   */
  fsync?: boolean;
  /**
   * Close a connection that makes no progress (no whole message arrives)
   * for this long, in milliseconds (default 30 s): a byte now and then
   * does not keep it open.
   */
  idleMs?: number;
  /** Most connections served at once; more are refused with a message. */
  maxClients?: number;
  /** Most connections from one host at once (default 8). */
  maxPerHost?: number;
  /** Most partial transfers kept, in total (default 64; a host may have 8). */
  maxPartials?: number;
  /** Most folders one connection may make (default {@link DEFAULT_MAX_FOLDERS}). */
  maxFolders?: number;
  /**
   * The shared code: every client must prove it knows it (SPAKE2), and
   * everything after is sealed. Required when listening beyond loopback.
   */
  code?: string;
  /** Remove partial transfers untouched this long at start, ms (default 7 days). */
  keepPartialMs?: number;
  /** Where log lines go (default stdout). */
  log?: (line: string) => void;
}

/** Counters of one finished or failed transfer, for logs and tests. */
export interface TransferRecord extends ReceiverCounters {
  /** The name the client sent. */
  name: string;
  /** Stored file name, if the transfer finished. */
  storedAs?: string;
  /** The file was already stored, unchanged (`--update`): nothing was sent. */
  upToDate?: boolean;
  /** Error message, if it failed. */
  error?: string;
  /** A pack: how many of its files were stored (in the folder `storedAs`). */
  packed?: number;
  /**
   * A pack: its files that could not be stored, each `path: why` (all are
   * logged; the record keeps the first {@link KEPT_FAILURES}).
   */
  failures?: string[];
}

/** A running file server; `await using` closes it. */
export interface FileServer extends AsyncDisposable {
  /** The address it listens on. */
  readonly addr: Deno.NetAddr;
  /** Transfers that ended, in order: the last {@link MAX_RECORDS} or a few more. */
  readonly records: TransferRecord[];
  /** Stops accepting, closes connections (saving partial state) and waits. */
  close(): Promise<void>;
}

const DEFAULT_MAX_SIZE = 64 * 1024 ** 3;
/** Transfers a server remembers in {@link FileServer.records}: memory stays bounded. */
export const MAX_RECORDS = 10_000;
/** A pack's failed files a record keeps (each is logged). */
export const KEPT_FAILURES = 16;

/** Starts a file server. Throws {@link UserError} if DIR or the port is unusable. */
// deno-lint-ignore require-await -- async: every failure to start is a rejection, as callers await it
export async function startFileServer(options: FileServerOptions): Promise<FileServer> {
  const host = options.host ?? "127.0.0.1";
  useNativeCrypto();
  if (options.code === undefined && !isLoopback(host)) {
    throw new UsageError(`Listening on ${host}, beyond loopback, needs a code (--code)`);
  }
  const dir = options.dir;
  // Everything done in DIR goes through this handle on it.
  const root = checkDirectory(dir);
  const log = options.log ?? ((line: string) => console.log(line));
  let listener: ReturnType<typeof listenTcp>;
  try {
    const stale = removeStalePartials(root, options.keepPartialMs ?? 7 * 86_400_000);
    if (stale > 0) log(`removed ${stale} partial transfers nobody resumed`);
    listener = listenTcp(host, options.port);
  } catch (err) {
    root.close();
    throw err;
  }
  const settings: Settings = {
    dir,
    root,
    maxFolders: options.maxFolders ?? DEFAULT_MAX_FOLDERS,
    maxSize: options.maxSize ?? DEFAULT_MAX_SIZE,
    overwrite: options.overwrite ?? false,
    fsync: options.fsync ?? false,
    idleMs: options.idleMs ?? 30_000,
    code: options.code,
    guesses: new GuessLimiter(),
    gate: new HandshakeGate(),
    digests: new DigestBook(root),
    proofs: new ProofLimiter(),
    packs: new PackStorer(root, options.fsync ?? false),
    store: new PartialStore(root, {
      maxPartials: options.maxPartials ?? 64,
      maxPerHost: Math.min(8, options.maxPartials ?? 64),
    }),
  };
  const maxClients = options.maxClients ?? 32;
  const maxPerHost = options.maxPerHost ?? 8;
  const perHost = new Map<string, number>();
  const conns = new Set<Deno.Conn>();
  const handlers = new Set<Promise<void>>();
  const records: TransferRecord[] = [];

  const acceptLoop = (async () => {
    for await (const conn of listener) {
      const peer = conn.remoteAddr as Deno.NetAddr;
      const mine = perHost.get(peer.hostname) ?? 0;
      // With a code, a connection is a handshake until it proves it:
      // bounded per address and per network (the gate is left when it ends).
      const busy = conns.size >= maxClients
        ? `Server is busy (${maxClients} clients); try again later`
        : mine >= maxPerHost
        ? `Server is busy (${maxPerHost} connections from your address); try again later`
        : settings.code !== undefined
        ? settings.gate.enter(peer.hostname)
        : null;
      if (busy) {
        writeAll(conn, encodeError(busy)).catch(() => {}).finally(() => conn.close());
        continue;
      }
      conns.add(conn);
      // Small frames (accept, NACKs, done) must not wait on a delayed ACK.
      conn.setNoDelay(true);
      perHost.set(peer.hostname, mine + 1);
      const who = `${peer.hostname}:${peer.port}`;
      // A folder's entries are logged as one line for the folder, when the
      // connection ends (ten thousand lines would say little); named files
      // and every failure, a line each.
      const folders = new Map<string, { stored: number; upToDate: number }>();
      const h = serveConnection(conn, settings, peer.hostname, (rec) => {
        records.push(rec);
        // Trimmed now and then, not at every record (each trim moves them all).
        if (records.length >= MAX_RECORDS + 1000) records.splice(0, records.length - MAX_RECORDS);
        for (const line of rec.failures ?? []) log(`${who}: ${line}`);
        // A full disk fails every file of every pack: the records keep a few.
        if (rec.failures && rec.failures.length > KEPT_FAILURES) {
          rec.failures = rec.failures.slice(0, KEPT_FAILURES);
        }
        const root = rec.packed !== undefined
          ? rec.storedAs
          : rec.storedAs?.includes("/")
          ? rec.storedAs.split("/")[0]
          : undefined;
        if (root && !rec.error) {
          const f = folders.get(root) ?? { stored: 0, upToDate: 0 };
          if (rec.upToDate) f.upToDate++;
          else f.stored += rec.packed ?? 1;
          folders.set(root, f);
        } else if (rec.upToDate) log(`${who}: ${rec.storedAs} is up to date`);
        else if (rec.storedAs) log(`${who}: stored ${rec.storedAs}`);
        else log(`${who}: ${rec.name ? `${rec.name}: ` : ""}${rec.error}`);
      }).finally(() => {
        for (const [root, f] of folders) {
          log(
            `${who}: stored ${f.stored} ${f.stored === 1 ? "entry" : "entries"} in ${root}` +
              (f.upToDate > 0 ? `, ${f.upToDate} up to date` : ""),
          );
        }
        conns.delete(conn);
        const n = (perHost.get(peer.hostname) ?? 1) - 1;
        if (n > 0) perHost.set(peer.hostname, n);
        else perHost.delete(peer.hostname);
        handlers.delete(h);
        closeQuietly(conn);
      });
      handlers.add(h);
    }
  })().catch(() => {});

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      listener.close();
      for (const c of conns) closeQuietly(c);
      await acceptLoop;
      await Promise.allSettled([...handlers]);
      settings.packs.close();
      await settings.digests.flush();
      root.close();
    })();
    return closing;
  };
  return {
    addr: listener.addr as Deno.NetAddr,
    records,
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** What the code's keys and confirmations are bound to. */
const FILE_CONTEXT = "file-tcp";
/** A coded connection has this long to complete the handshake, ms. */
const HANDSHAKE_MS = 5000;

interface Settings {
  code?: string;
  guesses: GuessLimiter;
  /** Handshakes under way, per address and network. */
  gate: HandshakeGate;
  dir: string;
  /** The handle on `dir` everything stored goes through. */
  root: ContainedRoot;
  /** Most folders one connection may make. */
  maxFolders: number;
  maxSize: number;
  overwrite: boolean;
  idleMs: number;
  store: PartialStore;
  digests: DigestBook;
  /** Misses of `--update`'s proofs of possession, per address. */
  proofs: ProofLimiter;
  /** Stores verified packs' files, on a thread of its own. */
  packs: PackStorer;
  fsync: boolean;
}

/**
 * Serves one client connection from `host`. A connection that opens with a
 * STREAM frame carries many transfers at once (a folder, or several
 * files), each on its own stream with its own session; one that opens
 * with an OFFER carries one. A failed transfer ends with an ERROR on its
 * stream and the others go on. Never throws; reports each transfer.
 */
async function serveConnection(
  conn: Deno.Conn,
  s: Settings,
  host: string,
  report: (rec: TransferRecord) => void,
): Promise<void> {
  // With a code, the handshake comes first and every frame is sealed.
  let secure: SecureStream | undefined;
  // What goes to the client is gathered while one read's frames are taken
  // and written once after them: ten thousand small files answered with a
  // write each would cost a trip through the runtime each.
  let outbox: Uint8Array[] = [];
  let outBytes = 0;
  // One write at a time, in order: files stored in the background flush too.
  let flushing: Promise<void> = Promise.resolve();
  const flush = (): Promise<void> => {
    if (outbox.length === 0) return flushing;
    const parts = outbox;
    outbox = [];
    outBytes = 0;
    const bytes = parts.length === 1 ? parts[0] : concatBytes(parts);
    return flushing = flushing.catch(() => {}).then(() => writeAll(conn, bytes));
  };
  const write = (bytes: Uint8Array): Promise<void> => {
    const b = secure ? secure.seal(bytes) : bytes;
    outbox.push(b);
    outBytes += b.length;
    return outBytes >= OUTBOX_BYTES ? flush() : Promise.resolve();
  };
  const place = new TreePlacer(s.root, new FolderBudget(s.maxFolders));
  const sessions = new Map<number, Session>();
  /** Streams opened so far: ids grow, so one ended is never opened again. */
  let lastId = -1;
  let link: LinkSplitter | undefined;
  /** What the streams hold, capped, and their whole messages. */
  const budget = new StreamBudget();
  let single: Session | undefined;
  let progress = 0;
  /** The first bytes, until they show how the connection is used. */
  let head: Uint8Array = new Uint8Array(0);
  let handshakeFailed = false;
  /**
   * Ends a session and reports it: stored, or failed with `err` (told to
   * the client on its stream when `tell`; not when the connection itself
   * ended). A partial left is saved for a resume.
   */
  const end = async (session: Session, err?: unknown, tell = true) => {
    if (err !== undefined) {
      if (err instanceof WholeFileMismatch) await session.partial?.discard();
      session.rec.error = describeError(err);
      if (tell) await session.send(encodeError(clientMessage(err, s.dir))).catch(() => {});
    }
    Object.assign(session.rec, session.core.counters);
    await session.partial?.abandon().catch(() => {});
    report(session.rec);
  };
  /** Reports a connection that failed with no transfer open. */
  const reportConnection = (err: unknown) =>
    report({ name: "", ...new FileReceiver().counters, error: describeError(err) });
  /** Files being stored while the connection goes on. */
  const storing = new Set<Promise<void>>();
  /**
   * Gives a stream's bytes to its session; true once the session is over
   * (its end reported, or, for a file being stored, reported when stored).
   */
  const feed = async (session: Session, bytes: Uint8Array): Promise<boolean> => {
    let finished = false;
    try {
      finished = await session.act(session.core.receive(bytes, performance.now()));
    } catch (err) {
      await end(session, err);
      return true;
    }
    if (finished && session.finishing) {
      const task: Promise<void> = session.finishing
        .then(() => end(session), (err) => end(session, err))
        .then(flush)
        .catch(() => {})
        .finally(() => storing.delete(task));
      storing.add(task);
      if (single) await task; // one transfer: the connection ends with it
    } else if (finished) await end(session);
    return finished;
  };
  /** Takes one read's worth of the client's bytes; true once a one-transfer connection ended. */
  const take = async (bytes: Uint8Array): Promise<boolean> => {
    if (!link && !single) {
      // The fourth byte of the first frame is its type: wait for it.
      if (head.length + bytes.length < 4) {
        head = concatBytes([head, bytes]);
        return false;
      }
      if (head.length > 0) bytes = concatBytes([head, bytes]);
      if (SecureStream.isStart(bytes)) throw new CodeSentToPlain();
      if (bytes[3] === MsgType.STREAM) link = new LinkSplitter();
      else single = new Session(s, host, place, write);
    }
    if (single) {
      progress = single.core.frames;
      const done = await feed(single, bytes);
      progress = single.core.frames;
      return done;
    }
    for (const piece of link!.push(bytes)) {
      if (piece.type === "error") throw new UserError(`Client gave up: ${piece.message}`);
      const { id, bytes: inner } = piece;
      let session = sessions.get(id);
      if (!session) {
        // A stream that ended (stored or failed) may still have bytes in
        // flight: they are dropped.
        if (id <= lastId) continue;
        if (sessions.size + storing.size >= MAX_OPEN_STREAMS) {
          throw new ProtocolError(`Client opened more than ${MAX_OPEN_STREAMS} transfers at once`);
        }
        lastId = id;
        session = new Session(s, host, place, (b) => write(encodeStream(id, b)));
        sessions.set(id, session);
      }
      // Progress is the transfers' whole messages, not link frames.
      const before = session.core.frames;
      const done = await feed(session, inner);
      budget.update(id, done ? 0 : session.core.buffered, session.core.frames - before);
      progress = budget.messages;
      if (done) sessions.delete(id);
    }
    return false;
  };
  try {
    if (s.code !== undefined) {
      handshakeFailed = true; // until it succeeds: the client was told why
      const coded = await acceptCoded(conn, host, s.guesses, {
        code: s.code,
        context: FILE_CONTEXT,
        maxInner: STREAM_OFFSET + HEADER_LENGTH + DATA_PREFIX + MAX_CHUNK_SIZE,
        timeoutMs: HANDSHAKE_MS,
      }, (message) => encodeError(message)).finally(() => s.gate.leave(host));
      handshakeFailed = false;
      secure = coded.secure;
      for (const inner of coded.early) {
        if (await take(inner)) return await flush();
      }
      await flush();
    }
    for await (
      const bytes of readChunks(conn, {
        idleMs: s.idleMs,
        progress: () => progress,
        readSize: 1024 * 1024,
      })
    ) {
      if (secure) {
        for (const e of secure.receive(bytes)) {
          if (e.type === "data" && await take(e.bytes)) return await flush();
        }
      } else if (await take(bytes)) return await flush();
      await flush();
    }
    link?.finish();
    const open = single ? [single] : [...sessions.values()];
    sessions.clear();
    for (const session of open) {
      try {
        session.core.closed();
      } catch (err) {
        await end(session, err, false);
      }
    }
  } catch (err) {
    // The connection failed: every transfer still open ends with it.
    if (handshakeFailed) return reportConnection(err); // acceptCoded told the client why
    const told = err instanceof CodeSentToPlain ? err.toClient : clientMessage(err, s.dir);
    await write(encodeError(told)).then(flush).catch(() => {});
    const open = single ? [single] : [...sessions.values()];
    if (open.length === 0) reportConnection(err);
    for (const session of open) await end(session, err, false);
  } finally {
    await Promise.allSettled([...storing]);
    await flush().catch(() => {});
    await s.digests.flush();
  }
}

/** Bytes gathered for the client before they are written without waiting for the read's end. */
const OUTBOX_BYTES = 256 * 1024;

/** One transfer on a connection: its session core and what the shell holds for it. */
class Session {
  readonly core = new FileReceiver();
  readonly rec: TransferRecord = { name: "", ...this.core.counters };
  partial: PartialFile | undefined;
  #s: Settings;
  #host: string;
  #place: TreePlacer;
  #offer: Offer | undefined;
  #base = "";
  /** A folder entry's path below DIR, once placed. */
  #entry: string | undefined;
  /** Sends bytes to the client on this transfer's stream. */
  readonly send: (bytes: Uint8Array) => Promise<void>;
  /** The verified file being stored, once it is. */
  finishing: Promise<void> | undefined;
  /** An update offer's claim: the stored file it is about, and the proof it must match. */
  #claim:
    | {
      stored: string;
      entry: BookEntry;
      /** What `lstat` (through the root) said of the stored file when the book was asked. */
      info: FileStat;
      /** The book's salted digest, or one being computed from the stored file. */
      expected: string | Promise<string | null>;
    }
    | undefined;
  /** The client's proof missed: given back once its replacement is stored. */
  #missed = false;

  constructor(
    s: Settings,
    host: string,
    place: TreePlacer,
    send: (bytes: Uint8Array) => Promise<void>,
  ) {
    this.#s = s;
    this.#host = host;
    this.#place = place;
    this.send = send;
  }

  /**
   * Acts on the core's events strictly in order (a `read` may name a chunk
   * whose `store` is earlier in the queue); returns true once the session
   * is over: the file up to date, or verified and being stored
   * ({@link finishing}).
   */
  async act(queue: ReceiverEvent[]): Promise<boolean> {
    const s = this.#s;
    for (let e = queue.shift(); e; e = queue.shift()) {
      switch (e.type) {
        case "offer": {
          const offer = this.#offer = e.offer;
          this.rec.name = offer.path
            ? [offer.name, ...offer.path].join("/")
            : offer.kind === "pack"
            ? `${offer.name} (a pack of small files)`
            : offer.name;
          this.#base = safeBaseName(offer.name);
          if (offer.size > s.maxSize) {
            throw new UserError(
              `File is ${formatBytes(offer.size)}, over the server's limit of ${
                formatBytes(s.maxSize)
              }`,
            );
          }
          const reuse = s.overwrite || !!offer.update;
          if (offer.path) {
            const parts = safeRelativePath(offer.path);
            this.#entry = await this.#place.place(this.#base, parts, reuse, offer.kind === "dir");
          }
          // --update: a file stored with this size is skipped only for a
          // client that proves it holds the same content: with its offer
          // (a small file, once the client knows the salt), or when asked.
          if (offer.update && this.#challenge(offer)) {
            if (offer.proof !== undefined) {
              if (await this.#proven(offer.proof)) return true;
            } else {
              await this.send(this.core.challenge(s.digests.salt));
              queue.push(...this.core.receive(EMPTY, performance.now()));
              break;
            }
          }
          await this.#accept(queue);
          break;
        }
        case "proof":
          if (await this.#proven(e.proof)) return true;
          await this.#accept(queue);
          break;
        case "store":
          await this.partial!.writeChunk(e.index, e.data);
          break;
        case "read":
          queue.push(...this.core.hashChunk(e.index, await this.partial!.readChunk(e.index)));
          break;
        case "send":
          await this.send(e.bytes);
          break;
        case "checkpoint":
          await this.partial!.save();
          break;
        case "verified":
          // Stored while the connection goes on taking other transfers'
          // frames (a large file's last writes and, with --fsync, its sync
          // run on Deno's file threads meanwhile).
          this.finishing = this.#store();
          return true;
      }
    }
    return false;
  }

  /** Opens (or resumes) the offer's partial and accepts it. */
  async #accept(queue: ReceiverEvent[]): Promise<void> {
    const offer = this.#offer!;
    // A folder entry's (or an update's) partial is named by its path,
    // size and time, so that a cut one resumes when it is offered again.
    const named = offer.resume === undefined && offer.mtime !== undefined;
    const resume = named ? entryToken(offer) : offer.resume;
    this.partial = this.#s.store.open(offer.size, offer.chunkSize, resume, this.#host, named);
    await this.send(this.core.accept(this.partial.state, this.partial.token));
    queue.push(...this.core.receive(EMPTY, performance.now()));
  }

  /**
   * Whether to ask an update offer for proof: the book has the file stored
   * at its place with its size, unchanged, and this host has misses left.
   * The salted digest expected is the book's, or computed now from the
   * stored file (while the client computes its own).
   */
  #challenge(offer: Offer): boolean {
    const s = this.#s;
    const stored = this.#entry ?? receivedName(this.#base);
    const found = s.digests.lookup(stored, offer.size);
    if (!found || !s.proofs.mayChallenge(this.#host, performance.now())) return false;
    const { entry, info } = found;
    this.#claim = { stored, entry, info, expected: s.digests.expectedProof(stored, entry) };
    return true;
  }

  /**
   * Whether the client's proof shows it holds the stored file, still
   * there: then the offer is answered up to date (its mode, and only
   * then, follows the sender's). A miss is counted against the host.
   */
  async #proven(proof: string): Promise<boolean> {
    const s = this.#s;
    const { stored, entry, expected } = this.#claim!;
    const offer = this.#offer!;
    let want: string | null;
    let info: FileStat | undefined = this.#claim!.info;
    if (typeof expected !== "string") {
      // Computed meanwhile: the file is asked again whether it is the one stored.
      want = await expected;
      const now = s.digests.lookup(stored, offer.size);
      const same = now !== null && now.entry.ino === entry.ino && now.entry.dev === entry.dev &&
        now.entry.mtimeMs === entry.mtimeMs;
      info = same ? now.info : undefined;
    } else want = expected;
    if (want === null || !info) return false; // nothing to compare with: not a miss
    if (!sameProof(want, proof)) {
      s.proofs.missed(this.#host, performance.now());
      this.#missed = true;
      return false;
    }
    // Its mode follows the sender's, masked (a chmod only if it changed).
    const mode = offer.mode === undefined ? undefined : storedMode(offer.mode, false);
    if (mode !== undefined && (info.mode & 0o7777) !== mode) s.root.chmod(stored, mode);
    this.rec.storedAs = stored;
    this.rec.upToDate = true;
    await this.send(this.core.upToDate(stored, entry.md5));
    return true;
  }

  /**
   * A verified pack: each of its files stored as a folder entry would be,
   * each path checked on its own (a bad one fails only its file, listed in
   * the DONE), and each file's digest recorded.
   */
  async #unpack(): Promise<void> {
    const s = this.#s;
    const data = await this.partial!.readAll();
    this.partial = undefined;
    const root = await this.#place.root(this.#base, s.overwrite);
    const failed: [number, string][] = [];
    const fail = (i: number, name: string, why: string, log: string) => {
      failed.push([
        i,
        why.length > PACK_REASON_CHARS ? why.slice(0, PACK_REASON_CHARS) + "…" : why,
      ]);
      (this.rec.failures ??= []).push(`${name}: ${log}`);
    };
    // Placed here (folders made and checked, one connection's choices in
    // one place), then written, hashed and renamed on the store worker.
    // Nothing of the pack's files is held here while the worker has them:
    // with ten thousand files, what outlives a young collection is
    // garbage the old generation grows by.
    const { count, placed, refused } = await this.#placePack(data);
    for (const [i, name, err] of refused) {
      fail(i, name, clientMessage(err, s.dir), describeError(err));
    }
    const storing = placed.length > 0
      ? s.packs.store(placed, data, s.digests.salt)
      : Promise.resolve([]);
    placed.length = 0;
    const outcomes = await storing;
    const md5s: string[] = new Array(count).fill("");
    for (const o of outcomes) {
      if ("error" in o) {
        fail(o.index, `${this.#offer!.name}${o.storedAs.slice(root.length)}`, o.error, o.log);
      } else {
        md5s[o.index] = o.entry.md5;
        s.digests.record(o.storedAs, o.entry);
      }
    }
    failed.sort((a, b) => a[0] - b[0]);
    this.rec.storedAs = root;
    this.rec.packed = count - failed.length;
    await this.send(this.core.stored(root, failed, md5s));
  }

  /**
   * A verified pack's files placed: where each goes and where its bytes
   * lie, and those refused (their index, name and why).
   */
  async #placePack(data: Uint8Array): Promise<{
    count: number;
    placed: PackPlacement[];
    refused: [number, string, unknown][];
  }> {
    const s = this.#s;
    const files = decodePack(data);
    const placed: PackPlacement[] = [];
    const refused: [number, string, unknown][] = [];
    for (let i = 0; i < files.length; i++) {
      const f = files[i];
      try {
        const storedAs = await this.#place.place(
          this.#base,
          safeRelativePath(f.path),
          s.overwrite,
          false,
        );
        const start = f.data.byteOffset - data.byteOffset;
        placed.push({ index: i, storedAs, mode: f.mode, start, end: start + f.data.length });
      } catch (err) {
        refused.push([i, [this.#offer!.name, ...f.path].join("/"), err]);
      }
    }
    return { count: files.length, placed, refused };
  }

  /** Once the file is verified: stores it, records its digest, and says DONE. */
  async #store(): Promise<void> {
    const s = this.#s;
    if (this.#offer!.kind === "pack") return await this.#unpack();
    const offer = this.#offer!;
    if (offer.kind === "dir") {
      // Made when placed; nothing was stored for it.
      await this.partial!.discard();
      this.partial = undefined;
      if (offer.mode !== undefined) s.root.chmod(this.#entry!, storedMode(offer.mode, true));
      this.rec.storedAs = this.#entry;
    } else if (this.#entry) {
      await this.partial!.finalizeAs(this.#entry, offer.mode, s.fsync, s.digests.salt);
      this.rec.storedAs = this.#entry;
    } else {
      // An update replaces the stored copy (atomically, by rename).
      this.rec.storedAs = await this.partial!.finalize(
        this.#base,
        s.overwrite || !!offer.update,
        s.fsync,
      );
    }
    if (offer.kind !== "dir") {
      s.digests.record(this.rec.storedAs!, this.partial!.entry(this.core.md5!));
    }
    if (this.#missed) s.proofs.refund(this.#host, performance.now());
    await this.send(this.core.stored(this.rec.storedAs!));
  }
}

/** A client with a code reached this server, which has none: told so, and logged. */
class CodeSentToPlain extends UserError {
  /** What the client is told. */
  readonly toClient = "Server does not use a code: run without --code or SOCKETS_CODE";
  constructor() {
    super("A client sent a code to this server, which has none");
  }
}

/** A pack's failure message, cut to what a DONE has room for. */
const PACK_REASON_CHARS = 200;

/** The token that names a folder entry's partial: its path, size, time and chunk size. */
function entryToken(offer: Offer): string {
  const key = JSON.stringify([offer.name, offer.path, offer.size, offer.mtime, offer.chunkSize]);
  return createHash("sha256").update("file-tcp entry\0" + key).digest("hex").slice(0, 32);
}

const EMPTY = new Uint8Array(0);

const FLAGS = {
  host: HOST_FLAG,
  port: portFlag(FILE_PORT),
  dir: { type: "string", default: ".", value: "DIR", help: "directory to store files in" },
  "max-size": { type: "string", default: "64G", value: "SIZE", help: "largest file accepted" },
  overwrite: {
    type: "boolean",
    default: false,
    help: "replace an existing received-NAME (else keep both: received-NAME-1…)",
  },
  "keep-partial": {
    type: "string",
    default: "7",
    value: "DAYS",
    help: "remove partial transfers not resumed for this long",
  },
  "idle-timeout": {
    type: "string",
    default: "30",
    value: "SECONDS",
    help: "close connections that send no whole message for this long",
  },
  "max-folders": {
    type: "string",
    default: String(DEFAULT_MAX_FOLDERS),
    value: "N",
    help: "folders one connection may make; entries past it fail",
  },
  "max-partials": {
    type: "string",
    default: "64",
    value: "N",
    help: "partial transfers kept for resume (8 a host); the oldest unused go first",
  },
  fsync: {
    type: "boolean",
    default: false,
    help: "put each file on the disk before confirming it (slower: a sync a file)",
  },
  code: CODE_FLAG,
} as const;

async function main(): Promise<void> {
  const { flags } = parseFlags(Deno.args, FLAGS, {
    usage: "deno task file-server",
    summary: "Receive files over TCP with an MD5 check on every chunk.",
  });
  const dir = resolveUserPath(flags.dir);
  const code = resolveCode(flags.code, { host: flags.host });
  const server = await startFileServer({
    code,
    host: flags.host,
    port: parsePort(flags.port),
    dir,
    maxSize: parseSizeFlag("max-size", flags["max-size"]),
    overwrite: flags.overwrite,
    fsync: flags.fsync,
    idleMs: parseSecondsFlag("idle-timeout", flags["idle-timeout"]) * 1000,
    keepPartialMs: parseSecondsFlag("keep-partial", flags["keep-partial"], "days") * 86_400_000,
    maxPartials: parseCount("max-partials", flags["max-partials"]),
    maxFolders: parseCount("max-folders", flags["max-folders"]),
  });
  console.log(
    `file server listening on ${server.addr.hostname}:${server.addr.port}, storing in ${dir}` +
      (code ? ", clients need the code" : ""),
  );
  console.log(`MD5 and ChaCha20-Poly1305 from ${useNativeCrypto()}`);
  const stopped = Promise.withResolvers<void>();
  onShutdown(() => stopped.resolve());
  await stopped.promise;
  console.log("stopping: partial transfers are kept for resume");
  await server.close();
}

if (import.meta.main) runMain(main);
