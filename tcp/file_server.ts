/**
 * File-TCP server: receives files from any number of clients at once, checks
 * the MD5 of every chunk, asks again for chunks that fail, and stores a file
 * as `DIR/received-NAME` only once its whole-file MD5 matches.
 *
 * Run: `deno task file-server [--host 127.0.0.1] [--port 4545] [--dir DIR]`
 *
 * @module
 */
import { describeError, ProtocolError, UserError } from "../lib/errors.ts";
import {
  decodeChunk,
  decodeEnd,
  decodeError,
  decodeOffer,
  encodeError,
  encodeJson,
  encodeNack,
  MsgType,
  SERVER_LIMITS,
} from "../lib/file_protocol.ts";
import { readFrames } from "../lib/framed_conn.ts";
import { listenTcp } from "../lib/net.ts";
import { writeAll } from "../lib/io.ts";
import { md5, Md5Stream } from "../lib/md5.ts";
import { safeBaseName } from "../lib/names.ts";
import { formatBytes } from "../lib/format.ts";
import {
  HOST_FLAG,
  onShutdown,
  parseFlags,
  parsePort,
  parseSecondsFlag,
  parseSizeFlag,
  portFlag,
  resolveUserPath,
  runMain,
} from "../lib/cli.ts";
import { checkDirectory, PartialFile, removeStalePartials } from "./file_store.ts";

/** Default File-TCP port (the original project's). */
export const FILE_PORT = 4545;

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
  /** Close a connection idle this long, in milliseconds (default 30 s). */
  idleMs?: number;
  /** Most connections served at once; more are refused with a message. */
  maxClients?: number;
  /** Remove partial transfers untouched this long at start, ms (default 7 days). */
  keepPartialMs?: number;
  /** Where log lines go (default stdout). */
  log?: (line: string) => void;
}

/** Counters of one finished or failed transfer, for logs and tests. */
export interface TransferRecord {
  /** The name the client sent. */
  name: string;
  /** Stored file name, if the transfer finished. */
  storedAs?: string;
  /** Error message, if it failed. */
  error?: string;
  /** DATA chunks received (including retransmissions). */
  dataChunks: number;
  /** Chunks confirmed by CHECK without their data (resumed). */
  checkedChunks: number;
  /** NACKs sent. */
  nacks: number;
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
const CHECKPOINT_MS = 1000;

/** Starts a file server. Throws {@link UserError} if DIR or the port is unusable. */
export async function startFileServer(options: FileServerOptions): Promise<FileServer> {
  const host = options.host ?? "127.0.0.1";
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
    active: new Set(),
  };
  const maxClients = options.maxClients ?? 32;
  const conns = new Set<Deno.Conn>();
  const handlers = new Set<Promise<void>>();
  const records: TransferRecord[] = [];

  const acceptLoop = (async () => {
    for await (const conn of listener) {
      if (conns.size >= maxClients) {
        writeAll(conn, encodeError(`Server is busy (${maxClients} clients); try again later`))
          .catch(() => {}).finally(() => conn.close());
        continue;
      }
      conns.add(conn);
      const peer = conn.remoteAddr as Deno.NetAddr;
      const who = `${peer.hostname}:${peer.port}`;
      const h = serveConnection(conn, settings).then((rec) => {
        records.push(rec);
        if (rec.storedAs) log(`${who}: stored ${rec.storedAs}`);
        else log(`${who}: ${rec.error}`);
      }).finally(() => {
        conns.delete(conn);
        handlers.delete(h);
        try {
          conn.close();
        } catch {
          // Already closed.
        }
      });
      handlers.add(h);
    }
  })().catch(() => {});

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch {
          // Already closed.
        }
      }
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

interface Settings {
  dir: string;
  maxSize: number;
  overwrite: boolean;
  idleMs: number;
  active: Set<string>;
}

/** Serves one client connection: one file transfer. Never throws. */
async function serveConnection(conn: Deno.Conn, s: Settings): Promise<TransferRecord> {
  const rec: TransferRecord = { name: "", dataChunks: 0, checkedChunks: 0, nacks: 0 };
  let partial: PartialFile | undefined;
  try {
    const frames = readFrames(conn, SERVER_LIMITS, { idleMs: s.idleMs });
    const first = await frames.next();
    if (first.done) throw new ProtocolError("Client closed the connection before its offer");
    if (first.value.type !== MsgType.OFFER) {
      throw new ProtocolError(`Expected an offer, got frame type ${first.value.type}`);
    }
    const offer = decodeOffer(first.value.payload);
    rec.name = offer.name;
    const base = safeBaseName(offer.name);
    if (offer.size > s.maxSize) {
      throw new UserError(
        `File is ${formatBytes(offer.size)}, over the server's limit of ${formatBytes(s.maxSize)}`,
      );
    }
    partial = await PartialFile.open(s.dir, base, offer.size, offer.chunkSize, s.active);
    const state = partial.state;
    await writeAll(conn, encodeJson(MsgType.ACCEPT, { held: state.heldRanges() }));

    const whole = new Md5Stream();
    let expected: string | undefined;
    let lastSave = performance.now();
    // Feeds the whole-file MD5 every chunk it can take, in order; `current`
    // is the chunk just received, so it need not be read back from disk.
    const hashForward = async (current?: { index: number; data: Uint8Array }) => {
      let i: number | null;
      while ((i = state.nextToHash()) !== null) {
        whole.update(i === current?.index ? current.data : await partial!.readChunk(i));
        state.advanceHash();
      }
    };

    for await (const frame of frames) {
      switch (frame.type) {
        case MsgType.DATA: {
          rec.dataChunks++;
          const c = decodeChunk(frame.payload);
          const outcome = state.receiveData(c.index, c.data.length, c.digest, md5(c.data));
          if (outcome === "store") {
            partial.writeChunk(c.index, c.data);
            await hashForward({ index: c.index, data: c.data });
          } else if (outcome === "retry") {
            rec.nacks++;
            await writeAll(conn, encodeNack(c.index));
          }
          break;
        }
        case MsgType.CHECK: {
          rec.checkedChunks++;
          const c = decodeChunk(frame.payload);
          if (c.data.length !== 0) throw new ProtocolError("Check frame carries data");
          if (state.receiveCheck(c.index, c.digest) === "retry") {
            rec.nacks++;
            await writeAll(conn, encodeNack(c.index));
          } else {
            await hashForward();
          }
          break;
        }
        case MsgType.END:
          if (expected !== undefined) throw new ProtocolError("Client sent two end messages");
          expected = decodeEnd(frame.payload).md5;
          state.endOfChunks();
          await hashForward();
          break;
        case MsgType.ERROR:
          throw new UserError(`Client gave up: ${decodeError(frame.payload)}`);
        default:
          throw new ProtocolError(`Unexpected frame type ${frame.type}`);
      }
      if (expected !== undefined && state.complete) {
        const actual = whole.hex();
        if (actual !== expected) {
          await partial.discard();
          throw new UserError(
            `Whole-file MD5 mismatch (client ${expected}, server ${actual}); partial data discarded`,
          );
        }
        rec.storedAs = await partial.finalize(s.dir, base, s.overwrite);
        await writeAll(
          conn,
          encodeJson(MsgType.DONE, { md5: actual, storedAs: rec.storedAs, bytes: offer.size }),
        );
        return rec;
      }
      if (performance.now() - lastSave > CHECKPOINT_MS) {
        await partial.save();
        lastSave = performance.now();
      }
    }
    throw new UserError(
      `Client disconnected with ${state.heldCount} of ${state.chunks} chunks held; kept for resume`,
    );
  } catch (err) {
    rec.error = describeError(err);
    await writeAll(conn, encodeError(rec.error)).catch(() => {});
    return rec;
  } finally {
    await partial?.abandon().catch(() => {});
  }
}

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
    help: "close connections idle this long",
  },
} as const;

async function main(): Promise<void> {
  const { flags } = parseFlags(Deno.args, FLAGS, {
    usage: "deno task file-server",
    summary: "Receive files over TCP with an MD5 check on every chunk.",
  });
  const dir = resolveUserPath(flags.dir);
  const server = await startFileServer({
    host: flags.host,
    port: parsePort(flags.port),
    dir,
    maxSize: parseSizeFlag("max-size", flags["max-size"]),
    overwrite: flags.overwrite,
    idleMs: parseSecondsFlag("idle-timeout", flags["idle-timeout"]) * 1000,
    keepPartialMs: parseSecondsFlag("keep-partial", flags["keep-partial"], "days") * 86_400_000,
  });
  console.log(
    `file server listening on ${server.addr.hostname}:${server.addr.port}, storing in ${dir}`,
  );
  const stopped = Promise.withResolvers<void>();
  onShutdown(() => stopped.resolve());
  await stopped.promise;
  console.log("stopping: partial transfers are kept for resume");
  await server.close();
}

if (import.meta.main) runMain(main);
