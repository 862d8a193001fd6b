/**
 * The file server's options, records and the settings its connections
 * share.
 *
 * @module
 */
import type { ReceiverCounters } from "../../core/file/receiver.ts";
import type { GuessLimiter } from "../../core/crypto/guess_limiter.ts";
import type { HandshakeGate } from "../../core/crypto/admission.ts";
import type { ProofLimiter } from "../../core/file/proof.ts";
import type { ContainedRoot } from "../contained_root.ts";
import type { DigestBook, PackStorer, PartialStore } from "../file_store/mod.ts";

/** Options of `startFileServer`. */
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
  /** Most folders one connection may make (default `DEFAULT_MAX_FOLDERS`). */
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
   * logged; the record keeps the first `KEPT_FAILURES`).
   */
  failures?: string[];
}

/** A running file server; `await using` closes it. */
export interface FileServer extends AsyncDisposable {
  /** The address it listens on. */
  readonly addr: Deno.NetAddr;
  /** Transfers that ended, in order: the last `MAX_RECORDS` or a few more. */
  readonly records: TransferRecord[];
  /** Stops accepting, closes connections (saving partial state) and waits. */
  close(): Promise<void>;
}

/** Largest file a server accepts unless told (`--max-size`). */
export const DEFAULT_MAX_SIZE: number = 64 * 1024 ** 3;
/** Transfers a server remembers in {@link FileServer.records}: memory stays bounded. */
export const MAX_RECORDS = 10_000;
/** A pack's failed files a record keeps (each is logged). */
export const KEPT_FAILURES = 16;

/** What a server's connections share: its settings and the state of its directory. */
export interface Settings {
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
