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
  FILE_PORT,
  MAX_CHUNK_SIZE,
  type Offer,
} from "../lib/core/file/messages.ts";
import {
  FileReceiver,
  type ReceiverCounters,
  type ReceiverEvent,
  WholeFileMismatch,
} from "../lib/core/file/receiver.ts";
import { receivedName, safeBaseName } from "../lib/core/file/names.ts";
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
import {
  checkDirectory,
  DigestBook,
  type PartialFile,
  PartialStore,
  removeStalePartials,
} from "./file_store.ts";
import { ProtocolError } from "../lib/core/errors.ts";
import type { SecureStream } from "../lib/core/crypto/secure_stream.ts";
import { acceptCoded } from "../lib/io/secure_conn.ts";
import { useNativeCrypto } from "../lib/io/native_crypto.ts";
import { GuessLimiter } from "../lib/core/crypto/guess_limiter.ts";
import { HEADER_LENGTH } from "../lib/core/wire/frame.ts";

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
}

/** A running file server; `await using` closes it. */
export interface FileServer extends AsyncDisposable {
  /** The address it listens on. */
  readonly addr: Deno.NetAddr;
  /** Every transfer that ended, in order. */
  readonly records: TransferRecord[];
  /** Stops accepting, closes connections (saving partial state) and waits. */
  close(): Promise<void>;
}

const DEFAULT_MAX_SIZE = 64 * 1024 ** 3;

/** Starts a file server. Throws {@link UserError} if DIR or the port is unusable. */
export async function startFileServer(options: FileServerOptions): Promise<FileServer> {
  const host = options.host ?? "127.0.0.1";
  useNativeCrypto();
  if (options.code === undefined && !isLoopback(host)) {
    throw new UsageError(`Listening on ${host}, beyond loopback, needs a code (--code)`);
  }
  const dir = options.dir;
  await checkDirectory(dir);
  const log = options.log ?? ((line: string) => console.log(line));
  const stale = await removeStalePartials(dir, options.keepPartialMs ?? 7 * 86_400_000);
  if (stale > 0) log(`removed ${stale} partial transfers nobody resumed`);
  const listener = listenTcp(host, options.port);
  const settings: Settings = {
    dir,
    maxSize: options.maxSize ?? DEFAULT_MAX_SIZE,
    overwrite: options.overwrite ?? false,
    idleMs: options.idleMs ?? 30_000,
    code: options.code,
    guesses: new GuessLimiter(),
    digests: new DigestBook(dir),
    store: new PartialStore(dir, {
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
      const busy = conns.size >= maxClients
        ? `Server is busy (${maxClients} clients); try again later`
        : mine >= maxPerHost
        ? `Server is busy (${maxPerHost} connections from your address); try again later`
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
      const h = serveConnection(conn, settings, peer.hostname).then((rec) => {
        records.push(rec);
        if (rec.upToDate) log(`${who}: ${rec.storedAs} is up to date`);
        else if (rec.storedAs) log(`${who}: stored ${rec.storedAs}`);
        else log(`${who}: ${rec.error}`);
      }).finally(() => {
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
  dir: string;
  maxSize: number;
  overwrite: boolean;
  idleMs: number;
  store: PartialStore;
  digests: DigestBook;
}

/**
 * The message a client gets for a failed transfer: the tool's own errors
 * as they are, anything else (a file system error naming the server's
 * directory) in general terms, and no server path in either; the server's
 * log has the whole message.
 */
function clientMessage(err: unknown, dir: string): string {
  const text = err instanceof UserError || err instanceof ProtocolError
    ? err.message
    : "Server could not store the file (its log says why)";
  // And should one of ours quote a path after all, it goes too.
  return text.split(dir).join("DIR").replace(/'\/[^']*'/g, "'(a server path)'");
}

/** Serves one client connection from `host`: one file transfer. Never throws. */
async function serveConnection(
  conn: Deno.Conn,
  s: Settings,
  host: string,
): Promise<TransferRecord> {
  const core = new FileReceiver();
  const rec: TransferRecord = { name: "", ...core.counters };
  let partial: PartialFile | undefined;
  let base = "";
  let offer: Offer | undefined;
  // With a code, the handshake comes first and every frame is sealed.
  let secure: SecureStream | undefined;
  const send = (bytes: Uint8Array) => writeAll(conn, secure ? secure.seal(bytes) : bytes);
  // Acts on the core's events strictly in order (a `read` may name a chunk
  // whose `store` is earlier in the queue); returns once the file is stored.
  const act = async (queue: ReceiverEvent[]): Promise<boolean> => {
    for (let e = queue.shift(); e; e = queue.shift()) {
      switch (e.type) {
        case "offer": {
          offer = e.offer;
          rec.name = e.offer.name;
          base = safeBaseName(e.offer.name);
          if (e.offer.size > s.maxSize) {
            throw new UserError(
              `File is ${formatBytes(e.offer.size)}, over the server's limit of ${
                formatBytes(s.maxSize)
              }`,
            );
          }
          if (e.offer.update) {
            // --update: the file already stored, unchanged, is not sent again.
            const stored = receivedName(base);
            if (await s.digests.holds(stored, e.offer.size, e.offer.update)) {
              rec.storedAs = stored;
              rec.upToDate = true;
              await send(core.upToDate(stored));
              return true;
            }
          }
          partial = await s.store.open(e.offer.size, e.offer.chunkSize, e.offer.resume, host);
          await send(core.accept(partial.state, partial.token));
          queue.push(...core.receive(EMPTY, performance.now()));
          break;
        }
        case "store":
          await partial!.writeChunk(e.index, e.data);
          break;
        case "read":
          queue.push(...core.hashChunk(e.index, await partial!.readChunk(e.index)));
          break;
        case "send":
          await send(e.bytes);
          break;
        case "checkpoint":
          await partial!.save();
          break;
        case "verified":
          // An update replaces the stored copy (atomically, by rename).
          rec.storedAs = await partial!.finalize(s.dir, base, s.overwrite || !!offer!.update);
          await s.digests.record(rec.storedAs, offer!.size, core.md5!);
          await send(core.stored(rec.storedAs));
          return true;
      }
    }
    return false;
  };
  let handshakeFailed = false;
  try {
    let finished = false;
    if (s.code !== undefined) {
      handshakeFailed = true; // until it succeeds: the client was told why
      const coded = await acceptCoded(conn, host, s.guesses, {
        code: s.code,
        context: FILE_CONTEXT,
        maxInner: HEADER_LENGTH + DATA_PREFIX + MAX_CHUNK_SIZE,
        timeoutMs: HANDSHAKE_MS,
      }, (message) => encodeError(message));
      handshakeFailed = false;
      secure = coded.secure;
      for (const inner of coded.early) {
        if ((finished = await act(core.receive(inner, performance.now())))) break;
      }
    }
    const progress = () => core.frames;
    const reading = finished
      ? []
      : readChunks(conn, { idleMs: s.idleMs, progress, readSize: 1024 * 1024 });
    for await (const bytes of reading) {
      const frames = secure
        ? secure.receive(bytes).flatMap((e) => e.type === "data" ? [e.bytes] : [])
        : [bytes];
      for (const f of frames) {
        if ((finished = await act(core.receive(f, performance.now())))) break;
      }
      if (finished) break;
    }
    if (!finished) core.closed();
    return rec;
  } catch (err) {
    if (err instanceof WholeFileMismatch) await partial?.discard();
    rec.error = describeError(err);
    if (!handshakeFailed) await send(encodeError(clientMessage(err, s.dir))).catch(() => {});
    return rec;
  } finally {
    Object.assign(rec, core.counters);
    await partial?.abandon().catch(() => {});
  }
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
  "max-partials": {
    type: "string",
    default: "64",
    value: "N",
    help: "partial transfers kept for resume (8 a host); the oldest unused go first",
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
    idleMs: parseSecondsFlag("idle-timeout", flags["idle-timeout"]) * 1000,
    keepPartialMs: parseSecondsFlag("keep-partial", flags["keep-partial"], "days") * 86_400_000,
    maxPartials: parseCount("max-partials", flags["max-partials"]),
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
