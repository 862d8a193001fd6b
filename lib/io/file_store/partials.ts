/**
 * Where the file server keeps partial transfers: `DIR/.partial/` holds
 * each one's data and state, so a cut transfer resumes, for the client
 * that holds its token.
 *
 * @module
 */
import { UserError } from "../../core/errors.ts";
import { createHash } from "node:crypto";
import { toHex } from "../../core/crypto/md5.ts";
import { TransferState } from "../../core/file/transfer_state.ts";
import type { ContainedRoot, FileDescriptor } from "../contained_root.ts";
import { lstatOrNull, PARTIAL_DIR } from "./disk.ts";
import { PartialFile } from "./partial_file.ts";

/**
 * Removes partial transfers in `DIR/.partial` untouched for longer than
 * `maxAgeMs` (a transfer nobody came back to resume). Returns how many
 * transfers were removed.
 */
export function removeStalePartials(root: ContainedRoot, maxAgeMs: number): number {
  const cutoff = Date.now() - maxAgeMs;
  let removed = 0;
  for (const e of stagingNames(root, PARTIAL_DIR)) {
    if (!e.isFile || !/\.(part|state|tmp)$/.test(e.name)) continue;
    const rel = `${PARTIAL_DIR}/${e.name}`;
    const info = lstatOrNull(root, rel);
    if (!info?.isFile || info.mtimeMs >= cutoff) continue;
    try {
      root.remove(rel);
    } catch {
      continue; // gone meanwhile
    }
    if (e.name.endsWith(".part")) removed++;
  }
  return removed;
}

/** Limits of a {@link PartialStore}. */
export interface PartialLimits {
  /** Most partial transfers kept in the staging folder (default 64). */
  maxPartials: number;
  /** Most partial transfers one host may have (default 8). */
  maxPerHost: number;
}

/**
 * The staging folder's partial transfers, owned by resume tokens.
 *
 * - An offer costs no disk: a partial's files are made when its first
 *   verified chunk is stored.
 * - A partial is found only by its token, which the server draws and gives
 *   to the client that started it (`ACCEPT`); its files are named by a
 *   hash of the token, so a directory listing reveals nothing to resume.
 * - Files are created exclusively (`O_EXCL`, which never follows a
 *   symbolic link) and an existing one is opened only if it is a regular
 *   file, all through the server's {@link ContainedRoot}.
 * - Partials are bounded per host and in total: making a new one past a
 *   bound removes the oldest partial not in use (the host's own, first).
 */
export class PartialStore {
  #root: ContainedRoot;
  #staging = PARTIAL_DIR;
  #limits: PartialLimits;
  #active = new Set<string>();
  #owners = new Map<string, string>();
  #listed: Set<string> | undefined;

  /** A store in the staging folder of `root`'s directory. */
  constructor(root: ContainedRoot, limits: Partial<PartialLimits> = {}) {
    this.#root = root;
    this.#limits = { maxPartials: 64, maxPerHost: 8, ...limits };
  }

  /**
   * The partial for an offer from `host`: the one `resume` names, if it
   * exists for this size and chunk size and is not in use, else a fresh
   * one under a new token.
   */
  open(
    size: number,
    chunkSize: number,
    resume: string | undefined,
    host: string,
    named = false,
  ): PartialFile {
    if (resume !== undefined) {
      const id = partialId(resume);
      if (!this.#active.has(id)) {
        // Most offers name no partial on disk: they are told so without a
        // failed system call (each costs an exception).
        const present = this.#present.has(id);
        const state = present &&
          readState(this.#root, `${this.#staging}/${id}.state`, size, chunkSize);
        const part = state && openExisting(this.#root, `${this.#staging}/${id}.part`);
        if (state && part) return this.#make(id, resume, state, part, host);
        // A folder entry's partial is named by the entry itself: a new one
        // takes that name, so that the entry resumes when offered again.
        if (named) {
          if (present) this.#remove(id);
          return this.#make(id, resume, new TransferState(size, chunkSize), null, host);
        }
      }
    }
    const token = toHex(crypto.getRandomValues(new Uint8Array(16)));
    return this.#make(partialId(token), token, new TransferState(size, chunkSize), null, host);
  }

  #make(
    id: string,
    token: string,
    state: TransferState,
    file: FileDescriptor | null,
    host: string,
  ): PartialFile {
    this.#active.add(id);
    return new PartialFile(
      state,
      token,
      this.#root,
      `${this.#staging}/${id}`,
      file,
      () => this.#room(host, id),
      () => this.#active.delete(id),
      () => this.#present.delete(id),
    );
  }

  /**
   * Ids of the partials on disk: listed once, then kept up to date as this
   * server makes and removes them (it alone writes its staging folder).
   */
  get #present(): Set<string> {
    return this.#listed ??= new Set(listPartials(this.#root, this.#staging));
  }

  /** Removes a partial's files. */
  #remove(id: string): void {
    for (const ext of [".part", ".state"]) {
      try {
        this.#root.remove(`${this.#staging}/${id}${ext}`);
      } catch {
        // Already gone.
      }
    }
    this.#present.delete(id);
    this.#owners.delete(id);
  }

  /** Makes room for a new partial of `host`'s (sync: called as its first chunk is stored). */
  #room(host: string, id: string): void {
    // The partials on disk, as this server keeps track of them (no listing
    // of the staging folder per partial made).
    const held = new Set(this.#present);
    // Finished or removed partials no longer count against their host.
    for (const p of this.#owners.keys()) if (!held.has(p)) this.#owners.delete(p);
    // Partials in use are bounded by the connections and the transfers
    // each may have open; the limits bound what is left behind.
    const idle = (p: string) => !this.#active.has(p);
    const mine = [...this.#owners].filter(([p, h]) => h === host && idle(p)).map(([p]) => p);
    if (mine.length >= this.#limits.maxPerHost) this.#evict(new Set(mine));
    if ([...this.#present].filter(idle).length >= this.#limits.maxPartials) this.#evict(held);
    this.#owners.set(id, host);
    this.#present.add(id);
  }

  /** Removes the least recently touched partial among `ids` not in use. */
  #evict(ids: Set<string>): void {
    let oldest: { id: string; at: number } | undefined;
    for (const id of ids) {
      if (this.#active.has(id)) continue;
      const info = lstatOrNull(this.#root, `${this.#staging}/${id}.part`);
      if (!info) continue; // gone meanwhile
      const at = info.mtimeMs;
      if (!oldest || at < oldest.at) oldest = { id, at };
    }
    if (!oldest) {
      throw new UserError("Server holds too many partial transfers in progress; try again later");
    }
    this.#remove(oldest.id);
  }

  /** The root finished files go to. */
  get root(): ContainedRoot {
    return this.#root;
  }
}

/** The file name stem of a token's partial: a hash, so the name reveals no token. */
function partialId(token: string): string {
  return createHash("sha256").update(token).digest("hex").slice(0, 32);
}

/**
 * The entries of the staging folder, listed by its path: names alone are
 * taken from the listing, and whatever is then done with one (read,
 * removed) goes through the root.
 */
function stagingNames(root: ContainedRoot, staging: string): Deno.DirEntry[] {
  return [...Deno.readDirSync(`${root.dir}/${staging}`)];
}

/** Ids of the partials in the staging folder. */
function listPartials(root: ContainedRoot, staging: string): string[] {
  const out: string[] = [];
  for (const e of stagingNames(root, staging)) {
    if (e.isFile && e.name.endsWith(".part")) out.push(e.name.slice(0, -5));
  }
  return out;
}

/**
 * A saved state, if it is a regular file (never through a link) valid for
 * this offer. Synchronous: a few system calls on a small file, cheaper
 * than a trip through the thread pool for each of ten thousand offers.
 */
function readState(
  root: ContainedRoot,
  rel: string,
  size: number,
  chunkSize: number,
): TransferState | null {
  try {
    return TransferState.deserialize(root.readFile(rel), size, chunkSize);
  } catch {
    return null;
  }
}

/**
 * Opens an existing partial for reading and writing if it is a regular
 * file (the root refuses a link there or on the way, and checks what it
 * opened, not what was there before).
 */
function openExisting(root: ContainedRoot, rel: string): FileDescriptor | null {
  try {
    return root.open(rel, { read: true, write: true });
  } catch {
    return null;
  }
}
