/**
 * Storing a verified pack's files, on a worker thread of its own
 * (`store_worker.ts`).
 *
 * @module
 */
import { UserError } from "../../core/errors.ts";
import { describeError } from "../errors.ts";
import { md5, toHex } from "../../core/crypto/md5.ts";
import { proofOf } from "../../core/file/proof.ts";
import { ContainedRoot } from "../contained_root.ts";
import { clientMessage, knownUmask, learnUmask, PARTIAL_DIR, storeBytes } from "./disk.ts";
import { type BookEntry, bookIdentity } from "./digest_book.ts";

/** One file of a verified pack, as the store worker is given it. */
export interface PackPlacement {
  /** Its index in the pack. */
  index: number;
  /** Where it goes, relative to DIR (its folders made by {@link TreePlacer}). */
  storedAs: string;
  /** Permission bits, if sent. */
  mode?: number;
  /** Where its bytes lie in the pack's data. */
  start: number;
  end: number;
}

/**
 * How one file of a pack was stored: its digest book entry (MD5, size,
 * time, identity and salted digest), or why it failed. Each names the file
 * as its {@link PackPlacement} did, so that the server holds nothing of a
 * pack's files while they are stored.
 */
export type PackOutcome =
  & Pick<PackPlacement, "index" | "storedAs">
  & (
    | { entry: BookEntry }
    | {
      /** For the client (no server path in it). */
      error: string;
      /** For the server's log. */
      log: string;
    }
  );

/** A request to the store worker. */
export interface PackJob {
  /** Its number, which the answer repeats. */
  id: number;
  /** The server's directory (for messages: nothing resolves through it). */
  dir: string;
  /**
   * A descriptor on it, duplicated from the server's {@link ContainedRoot}
   * for this job and owned by the worker (a thread of the same process),
   * which resolves every path through it and closes it.
   */
  rootFd: number;
  /** The server process's umask, as `checkDirectory` found it. */
  umask: number | undefined;
  /** Sync each file before its rename (`--fsync`). */
  sync: boolean;
  /** The digest book's salt, for each file's salted digest. */
  salt: string;
  /** The files to store. */
  files: PackPlacement[];
  /** The pack's data, where the files' bytes lie. */
  data: Uint8Array;
}

/** The store worker's answer to a {@link PackJob}: an outcome per file, or why none was stored. */
export interface PackDone {
  /** The job's number. */
  id: number;
  /** Each file's outcome, in the job's order. */
  outcomes?: PackOutcome[];
  /** Why the job failed as a whole. */
  failure?: string;
}

/**
 * Stores a pack's files (each as {@link storeBytes} does, then its digest
 * book entry made: from the bytes and the file made, before its rename).
 * The store worker runs this; it is exported for it alone.
 */
export function storePackFiles(job: PackJob): PackOutcome[] {
  learnUmask(job.umask);
  using root = ContainedRoot.adopt(job.rootFd, job.dir);
  const stem = crypto.randomUUID();
  return job.files.map((f): PackOutcome => {
    const { index, storedAs } = f;
    const bytes = job.data.subarray(f.start, f.end);
    try {
      const tmp = `${PARTIAL_DIR}/${stem}-${index}.tmp`;
      const info = storeBytes(root, tmp, storedAs, bytes, f.mode, job.sync);
      const entry: BookEntry = {
        ...bookIdentity(info),
        md5: toHex(md5(bytes)),
        salt: job.salt,
        proof: proofOf(job.salt, bytes),
      };
      return { index, storedAs, entry };
    } catch (err) {
      return { index, storedAs, error: clientMessage(err, job.dir), log: describeError(err) };
    }
  });
}

/**
 * Stores verified packs' files on a worker thread of its own
 * (`store_worker.ts`), started at the first pack and kept until
 * {@link close}: ten thousand small files cost the file system a create,
 * a write and a rename each, and their MD5s, which would otherwise hold
 * up the thread that takes every connection's bytes. Packs are stored
 * one after another, in the order given.
 */
export class PackStorer {
  #root: ContainedRoot;
  #sync: boolean;
  #worker: Worker | undefined;
  #pending = new Map<number, PromiseWithResolvers<PackOutcome[]>>();
  #next = 0;
  #closed = false;

  /** A storer for files received into `root`'s directory; `sync` as the server's `--fsync`. */
  constructor(root: ContainedRoot, sync: boolean) {
    this.#root = root;
    this.#sync = sync;
  }

  /**
   * Stores `files`, whose bytes lie in `data` (handed over: `data` cannot
   * be used after), each file's salted digest made under `salt`. Resolves
   * with each file's outcome, in order; rejects only when the worker
   * itself failed.
   */
  store(files: PackPlacement[], data: Uint8Array, salt: string): Promise<PackOutcome[]> {
    if (this.#closed) return Promise.reject(new UserError("Server is stopping"));
    const id = this.#next++;
    const done = Promise.withResolvers<PackOutcome[]>();
    this.#pending.set(id, done);
    const job: PackJob = {
      id,
      dir: this.#root.dir,
      rootFd: this.#root.duplicate(),
      umask: knownUmask(),
      sync: this.#sync,
      salt,
      files,
      data,
    };
    const { buffer } = data;
    const whole = buffer instanceof ArrayBuffer && data.byteOffset === 0 &&
      data.byteLength === buffer.byteLength;
    this.#started().postMessage(job, whole ? [buffer] : []);
    return done.promise;
  }

  #started(): Worker {
    if (this.#worker) return this.#worker;
    const worker = new Worker(new URL("./store_worker.ts", import.meta.url), {
      type: "module",
    });
    worker.onmessage = (e: MessageEvent<PackDone>) => {
      const done = this.#pending.get(e.data.id);
      if (!done) return;
      this.#pending.delete(e.data.id);
      if (e.data.outcomes) done.resolve(e.data.outcomes);
      else done.reject(new UserError(`Server could not store the files: ${e.data.failure}`));
    };
    worker.onerror = (e) => {
      e.preventDefault();
      // A worker that failed is replaced at the next pack; these fail.
      this.#stop(new UserError(`Server could not store the files: ${e.message}`));
    };
    return this.#worker = worker;
  }

  #stop(why: Error): void {
    this.#worker?.terminate();
    this.#worker = undefined;
    for (const done of this.#pending.values()) done.reject(why);
    this.#pending.clear();
  }

  /** Stops the worker (packs still being stored fail); idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#stop(new UserError("Server is stopping"));
  }
}
