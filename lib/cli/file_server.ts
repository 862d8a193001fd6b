/**
 * File-TCP server: receives files from any number of clients at once, checks
 * the MD5 of every chunk, asks again for chunks that fail, and stores a file
 * as `DIR/received-NAME` only once its whole-file MD5 matches. Each
 * connection is served by `lib/io/file_server/connection.ts` around its core
 * (`lib/core/file/server_link.ts`).
 *
 * @module
 */
import { UsageError } from "../core/errors.ts";
import { encodeError } from "../core/file/messages.ts";
import { DEFAULT_MAX_FOLDERS } from "../core/file/disk_policy.ts";
import { ProofLimiter } from "../core/file/proof.ts";
import { GuessLimiter } from "../core/crypto/guess_limiter.ts";
import { HandshakeGate } from "../core/crypto/admission.ts";
import type { ContainedRoot } from "../io/contained_root.ts";
import { closeQuietly } from "../io/errors.ts";
import { listenTcp } from "../io/net.ts";
import { writeAll } from "../io/streams.ts";
import { useNativeCrypto } from "../io/native_crypto.ts";
import { isLoopback } from "./code.ts";
import {
  checkDirectory,
  DigestBook,
  PackStorer,
  PartialStore,
  removeStalePartials,
} from "../io/file_store/mod.ts";
import { serveConnection } from "../io/file_server/connection.ts";
import {
  DEFAULT_MAX_SIZE,
  type FileServer,
  type FileServerOptions,
  KEPT_FAILURES,
  MAX_RECORDS,
  type Settings,
  type TransferRecord,
} from "../io/file_server/settings.ts";

export {
  type FileServer,
  type FileServerOptions,
  KEPT_FAILURES,
  MAX_RECORDS,
  type TransferRecord,
} from "../io/file_server/settings.ts";

/** Starts a file server. Throws a `UserError` if DIR or the port is unusable. */
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
  const settings = settingsOf(options, dir, root);
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
      const journal = new ConnectionJournal(`${peer.hostname}:${peer.port}`, records, log);
      const h = serveConnection(conn, settings, peer.hostname, (rec) => journal.record(rec))
        .finally(() => {
          journal.close();
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
  return { addr: listener.addr as Deno.NetAddr, records, close, [Symbol.asyncDispose]: close };
}

/** The settings a server's connections share, from its options. */
function settingsOf(options: FileServerOptions, dir: string, root: ContainedRoot): Settings {
  return {
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
}

/**
 * One connection's records and log lines. A folder's entries are logged as
 * one line for the folder, when the connection ends (ten thousand lines
 * would say little); named files and every failure, a line each.
 */
class ConnectionJournal {
  #who: string;
  #records: TransferRecord[];
  #log: (line: string) => void;
  #folders = new Map<string, { stored: number; upToDate: number }>();

  constructor(who: string, records: TransferRecord[], log: (line: string) => void) {
    this.#who = who;
    this.#records = records;
    this.#log = log;
  }

  /** Keeps a transfer's record and logs it (a folder's entries, at the end). */
  record(rec: TransferRecord): void {
    const records = this.#records;
    const who = this.#who;
    const log = this.#log;
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
      const f = this.#folders.get(root) ?? { stored: 0, upToDate: 0 };
      if (rec.upToDate) f.upToDate++;
      else f.stored += rec.packed ?? 1;
      this.#folders.set(root, f);
    } else if (rec.upToDate) log(`${who}: ${rec.storedAs} is up to date`);
    else if (rec.storedAs) log(`${who}: stored ${rec.storedAs}`);
    else log(`${who}: ${rec.name ? `${rec.name}: ` : ""}${rec.error}`);
  }

  /** The connection ended: each folder's line. */
  close(): void {
    for (const [root, f] of this.#folders) {
      this.#log(
        `${this.#who}: stored ${f.stored} ${f.stored === 1 ? "entry" : "entries"} in ${root}` +
          (f.upToDate > 0 ? `, ${f.upToDate} up to date` : ""),
      );
    }
  }
}
