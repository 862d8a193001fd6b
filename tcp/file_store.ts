/**
 * Where the file server keeps data: partial transfers in `DIR/.partial/`
 * (the data and its state, so a cut transfer resumes, for the client that
 * holds its token), and finished files renamed into `DIR` only after their
 * whole-file MD5 matched.
 *
 * Everything here is done through a {@link ContainedRoot} on DIR: each
 * path is resolved by the kernel relative to the handle, never through a
 * symbolic link, at the moment it is used; no check is kept and trusted
 * later.
 *
 * @module
 */
import { ProtocolError, UserError } from "../lib/core/errors.ts";
import { describeError } from "../lib/io/errors.ts";
import { createHash } from "node:crypto";
import { md5, toHex } from "../lib/core/wire/md5.ts";
import { receivedName } from "../lib/core/file/names.ts";
import { TransferState } from "../lib/core/file/transfer_state.ts";
import { ContainedRoot, type FileDescriptor, type FileStat } from "../lib/io/contained_root.ts";
import { FolderBudget, storedMode } from "../lib/core/file/disk_policy.ts";
import { proofOf, SALT_BYTES } from "../lib/core/file/proof.ts";
import type { BookEntry } from "./digest_book.ts";

/** Name of the staging folder inside the server's directory. */
export const PARTIAL_DIR = ".partial";

/** A new random salt for salted digests (`proof.ts`), hexadecimal. */
export function newSalt(): string {
  return toHex(crypto.getRandomValues(new Uint8Array(SALT_BYTES)));
}

/**
 * Opens the root everything in `dir` is done through, once `dir` is found
 * a writable directory; throws a {@link UserError} if not (or if this
 * system cannot confine paths to it).
 */
export function checkDirectory(dir: string): ContainedRoot {
  const root = ContainedRoot.open(dir);
  const probe = `${PARTIAL_DIR}/.probe-${crypto.randomUUID()}`;
  try {
    mkdirIfAbsent(root, PARTIAL_DIR);
    // Made with every permission bit: what is left shows the umask.
    const fd = root.create(probe, 0o777);
    try {
      processUmask ??= 0o777 & ~fd.stat().mode;
    } finally {
      fd.close();
    }
    root.remove(probe);
  } catch (err) {
    root.close();
    throw new UserError(`Directory ${dir} is not writable: ${(err as Error).message}`);
  }
  return root;
}

/** Makes folder `rel` under `root` unless one is there (a link there is refused later, when used). */
export function mkdirIfAbsent(root: ContainedRoot, rel: string): void {
  try {
    root.mkdir(rel, 0o755);
  } catch (err) {
    if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
  }
}

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

/**
 * The process's umask, as {@link checkDirectory} found it (files are made
 * with `mode & ~umask`); read so, no permission is needed to ask for it.
 */
let processUmask: number | undefined;
function umask(): number {
  return processUmask ?? 0o777; // unknown: every mode is set by chmod
}

/** Bytes gathered before a write: a megabyte, the largest chunk. */
const WRITE_BATCH = 1024 * 1024;
/** The longest a batch waits for more chunks before it is written, ms. */
const BATCH_MS = 100;

/** One transfer's partial data on disk, made when its first chunk is stored. */
export class PartialFile {
  /** Receiver state: what is held verified. */
  readonly state: TransferState;
  /** The token that resumes this partial. */
  readonly token: string;
  #file: FileDescriptor | null;
  #root: ContainedRoot;
  #partPath: string;
  #statePath: string;
  #batch: Uint8Array | undefined;
  #batchOffset = 0;
  #batchLength = 0;
  #spare: Uint8Array[] = [];
  #writing: Promise<void> = Promise.resolve();
  #jobs: Promise<void>[] = [];
  #writeError: UserError | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #makeRoom: () => void;
  #release: () => void;
  #gone: () => void;
  #closed = false;
  #stored: FileStat | undefined;
  #proven: { salt: string; proof: string } | undefined;

  /** Use {@link PartialStore.open}. */
  constructor(
    state: TransferState,
    token: string,
    root: ContainedRoot,
    stem: string,
    file: FileDescriptor | null,
    makeRoom: () => void,
    release: () => void,
    gone: () => void,
  ) {
    this.state = state;
    this.token = token;
    this.#root = root;
    this.#file = file;
    this.#partPath = `${stem}.part`;
    this.#statePath = `${stem}.state`;
    this.#makeRoom = makeRoom;
    this.#release = release;
    this.#gone = gone;
  }

  /**
   * Once finalized: what the stored file's own handle said of it before it
   * was renamed into place, and its salted digest when its bytes were
   * hashed from memory; for the digest book.
   */
  entry(md5: string): BookEntry {
    const info = this.#stored;
    if (!info) throw new Error("The file is not stored");
    return { ...bookIdentity(info), md5, ...this.#proven };
  }

  /** The data file, created exclusively the first time it is needed. */
  #data(): FileDescriptor {
    if (this.#file) return this.#file;
    this.#makeRoom();
    try {
      this.#file = this.#root.open(this.#partPath, { read: true, write: true, createNew: true });
    } catch (err) {
      this.#gone(); // counted when room was made; never made
      throw new UserError(describeError(err, "Server could not create the partial file"));
    }
    return this.#file;
  }

  /**
   * Takes a verified chunk's data for its offset. Chunks arrive in order,
   * so they are gathered into batches of {@link WRITE_BATCH} bytes, each
   * written by Deno's file thread pool while the socket, the cipher and
   * the MD5 keep the main thread busy (a write per 64 KiB chunk handed the
   * pool too many small jobs; a batch per megabyte hands it few). `data`
   * is copied before this returns a promise; the promise waits only when
   * every batch buffer is still being written.
   */
  async writeChunk(index: number, data: Uint8Array): Promise<void> {
    this.#checkWrites();
    const offset = this.state.offsetOf(index);
    if (this.#batchLength > 0 && offset !== this.#batchOffset + this.#batchLength) {
      await this.#flushBatch();
    }
    if (this.#batch && this.#batchLength + data.length > this.#batch.length) {
      await this.#flushBatch();
    }
    if (!this.#batch) {
      // A small file's batch is its size: a megabyte zeroed for each of
      // ten thousand small files would cost more than their data.
      this.#batch = this.#spare.pop() ??
        new Uint8Array(Math.min(WRITE_BATCH, Math.max(data.length, this.state.size - offset)));
      this.#batchOffset = offset;
      this.#batchLength = 0;
    }
    this.#batch.set(data, this.#batchLength);
    this.#batchLength += data.length;
    // A batch that stops growing (the client stalls or is slow) goes to
    // disk anyway, within a tenth of a second; one that ends the file goes
    // when the file is stored, at once.
    if (this.#timer === undefined && offset + data.length < this.state.size) {
      this.#timer = setTimeout(() => this.#flushBatch().catch(() => {}), BATCH_MS);
    }
  }

  /** Hands the batch in hand to the writer; waits while no buffer is spare. */
  async #flushBatch(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const buf = this.#batch;
    if (!buf || this.#batchLength === 0) return;
    const offset = this.#batchOffset;
    const bytes = buf.subarray(0, this.#batchLength);
    this.#batch = undefined;
    this.#batchLength = 0;
    const file = this.#data();
    const job = this.#writing.then(async () => {
      if (this.#writeError) return;
      try {
        await file.writeAtAsync(bytes, offset);
      } catch (err) {
        this.#writeError = new UserError(describeError(err, "Server could not store the data"));
      } finally {
        this.#spare.push(buf);
      }
    });
    this.#writing = job;
    this.#jobs.push(job);
    // Two batches in flight at most: the third waits for the oldest.
    if (this.#jobs.length > 2) await this.#jobs.shift();
    this.#checkWrites();
  }

  /** Writes everything taken so far and waits for it. */
  async #flush(): Promise<void> {
    await this.#flushBatch();
    await this.#writing;
    this.#jobs = [];
    this.#checkWrites();
  }

  #checkWrites(): void {
    if (this.#writeError) throw this.#writeError;
  }

  /** Reads a held chunk back (for the running MD5 after a resume). */
  async readChunk(index: number): Promise<Uint8Array> {
    await this.#flush();
    const data = await this.#data().readAtAsync(
      this.state.offsetOf(index),
      this.state.lengthOf(index),
    );
    if (data.length !== this.state.lengthOf(index)) {
      throw new UserError(`Partial file lost chunk ${index}; send the file again`);
    }
    return data;
  }

  /**
   * Saves the state beside the data (written to a new file of its own, then
   * renamed over the old: a crash leaves the old state or the new, never
   * half of one, and no planted link is followed). Nothing is saved before
   * data was stored. Data written before a save is in the kernel's page
   * cache, so a killed server loses nothing it claimed; after a power cut
   * the whole-file MD5 catches any loss.
   */
  async save(): Promise<void> {
    if (this.#closed || (!this.#file && !this.#batch)) return;
    await this.#flush(); // the state never claims data still in memory
    await writeReplacing(this.#root, this.#statePath, this.state.serialize());
  }

  /**
   * Moves the finished file to `DIR/received-NAME`. Unless `overwrite`, an
   * existing file is kept and the new one gets the next free
   * `received-STEM-N.EXT`. Returns the name used. With `sync` the data is
   * on the disk before it is moved (`--fsync`); without, it is in the
   * kernel's cache, as with rsync and scp: a killed server loses nothing,
   * a power cut may.
   */
  async finalize(base: string, overwrite: boolean, sync = false): Promise<string> {
    await this.#flush();
    const file = this.#data(); // an empty file has no chunk: made here
    if (sync) await file.syncDataAsync();
    this.#stored = file.stat();
    this.#close();
    let stored: string;
    if (overwrite) {
      stored = receivedName(base);
      this.#root.rename(this.#partPath, stored);
    } else {
      stored = linkNoClobber(this.#root, this.#partPath, base);
      this.#root.remove(this.#partPath);
    }
    this.#gone();
    this.#removeState();
    return stored;
  }

  /** Removes the saved state, if any. */
  #removeState(): void {
    try {
      this.#root.remove(this.#statePath);
    } catch {
      // Never saved, or gone.
    }
  }

  /**
   * Moves the finished file to `DIR/storedAs` (a folder entry, whose
   * folders {@link TreePlacer} made), replacing what is there, with the
   * offered permission bits `mode` if given (masked: {@link storedMode});
   * `sync` as for {@link finalize}. A small file stored from memory gets
   * its salted digest under `salt` (the digest book's) as it is stored.
   */
  async finalizeAs(
    storedAs: string,
    mode: number | undefined,
    sync = false,
    salt?: string,
  ): Promise<void> {
    const whole = this.#takeWhole();
    if (whole) {
      this.#stored = storeBytes(this.#root, this.#partPath, storedAs, whole, mode, sync);
      if (salt !== undefined) this.#proven = { salt, proof: proofOf(salt, whole) };
      this.#gone();
      return;
    }
    await this.#flush();
    const file = this.#data(); // an empty file has no chunk: made here
    if (sync) await file.syncDataAsync();
    this.#stored = file.stat();
    this.#close();
    try {
      if (mode !== undefined) this.#root.chmod(this.#partPath, storedMode(mode, false));
      this.#root.rename(this.#partPath, storedAs);
    } catch (err) {
      throw placeError(err, this.#root, storedAs);
    } finally {
      this.#removeState();
    }
    this.#gone();
  }

  /**
   * All the data, once verified (a pack's, to unpack); the partial is
   * gone after. A small one comes from memory, never written.
   */
  async readAll(): Promise<Uint8Array> {
    const whole = this.#takeWhole();
    if (whole) return whole;
    await this.#flush();
    const data = await this.#data().readAtAsync(0, this.state.size);
    await this.discard();
    return data;
  }

  /**
   * A small file's bytes when they all sit in one batch, never written nor
   * their state saved; the partial is then closed, having left nothing
   * behind to count against the staging limits. Undefined otherwise.
   */
  #takeWhole(): Uint8Array | undefined {
    if (this.#file || this.#closed) return undefined;
    const bytes = this.#batch?.subarray(0, this.#batchLength) ?? new Uint8Array(0);
    if (bytes.length !== this.state.size) return undefined;
    clearTimeout(this.#timer);
    this.#batch = undefined;
    this.#batchLength = 0;
    this.#close();
    return bytes;
  }

  /** Saves state for a resume and releases the file. */
  async abandon(): Promise<void> {
    if (this.#closed) return;
    try {
      await this.save();
    } finally {
      this.#close();
    }
  }

  /** Drops the saved state and data (after a whole-file mismatch). */
  async discard(): Promise<void> {
    await this.#writing; // no write lands after the removal
    this.#close();
    if (!this.#file) return; // nothing was ever written
    try {
      this.#root.remove(this.#partPath);
    } catch {
      // Gone already.
    }
    this.#removeState();
    this.#gone();
  }

  #close() {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#release();
    try {
      this.#file?.close();
    } catch {
      // Already closed.
    }
  }
}

/**
 * Stores a small file's verified bytes at `DIR/storedAs`: written to `tmp`
 * (made exclusively, never through a planted link, with the offered mode
 * masked by {@link storedMode}), then renamed into place, replacing what
 * is there; both through `root`. Returns what the stored file was before
 * its rename (its size, time and identity). Synchronous: for ten
 * thousand small files a trip through Deno's file threads for each call
 * cost more CPU than the calls (measured: the server's CPU rose from about
 * 1.8 s to 2.3 s for 10,000 files, and the time did not fall). With `sync`
 * the data is on the disk before the rename.
 */
export function storeBytes(
  root: ContainedRoot,
  tmp: string,
  storedAs: string,
  bytes: Uint8Array,
  mode: number | undefined,
  sync: boolean,
): FileStat {
  const perms = mode === undefined ? undefined : storedMode(mode, false);
  try {
    let info: FileStat;
    {
      using fd = root.create(tmp, perms ?? 0o666);
      fd.writeAll(bytes);
      // Made with its mode, unless the umask took bits away.
      if (perms !== undefined && (perms & umask()) !== 0) fd.chmod(perms);
      if (sync) fd.syncData();
      info = fd.stat();
    }
    root.rename(tmp, storedAs);
    return info;
  } catch (err) {
    try {
      root.remove(tmp);
    } catch {
      // Never made, or renamed.
    }
    throw placeError(err, root, storedAs);
  }
}

/** The error for a file that could not be moved to `DIR/storedAs`: a folder in its place is named. */
function placeError(err: unknown, root: ContainedRoot, storedAs: string): unknown {
  return lstatOrNull(root, storedAs)?.isDirectory
    ? new UserError(`${storedAs} is a folder on the server`)
    : err;
}

/** What `rel` itself is (a link is not followed), or null when nothing (or a link on the way) is there. */
export function lstatOrNull(root: ContainedRoot, rel: string): FileStat | null {
  try {
    return root.lstat(rel);
  } catch {
    return null;
  }
}

/**
 * Replaces `rel` with `bytes` atomically: written to a temporary file of
 * a random name, made exclusively (never through a link planted there),
 * then renamed over it, through `root`.
 */
export async function writeReplacing(
  root: ContainedRoot,
  rel: string,
  bytes: Uint8Array,
): Promise<void> {
  const tmp = `${rel}.${crypto.randomUUID()}.tmp`;
  {
    using f = root.open(tmp, { write: true, createNew: true });
    await f.writeAtAsync(bytes, 0);
  }
  root.rename(tmp, rel);
}

/** Hard-links `src` to the first free received name: atomic, never overwrites. */
function linkNoClobber(root: ContainedRoot, src: string, base: string): string {
  for (let copy = 0; copy < 10000; copy++) {
    const name = receivedName(base, copy);
    try {
      root.link(src, name);
      return name;
    } catch (err) {
      if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
    }
  }
  throw new UserError(`Too many copies of ${receivedName(base)} already stored`);
}

/**
 * A stored file's size, time and identity as the digest book records them
 * (from the file's own handle, taken before its rename into place).
 */
export function bookIdentity(info: FileStat): Pick<BookEntry, "size" | "mtimeMs" | "ino" | "dev"> {
  return { size: info.size, mtimeMs: info.mtimeMs, ino: Number(info.ino), dev: Number(info.dev) };
}

/**
 * Where a folder's entries go, for one connection: `DIR/received-NAME/`
 * and the same relative paths below it, every folder on the way made
 * here (at most its {@link FolderBudget}'s cap on one connection) or
 * found to be a real folder. Nothing here keeps anything safe: every
 * later create, rename and chmod resolves its path again through the
 * {@link ContainedRoot}, which refuses a symbolic link anywhere on the way.
 */
export class TreePlacer {
  #disk: ContainedRoot;
  #budget: FolderBudget;
  #roots = new Map<string, Promise<string>>();
  /**
   * Folders made or found on this connection (bounded by what its entries
   * named): not made again. No safety rests on it; a folder swapped since
   * fails the entry that goes through it.
   */
  #folders = new Set<string>();

  /** A placer for folders received into `root`'s directory, making at most `budget`'s folders. */
  constructor(root: ContainedRoot, budget: FolderBudget = new FolderBudget()) {
    this.#disk = root;
    this.#budget = budget;
  }

  /**
   * The path (relative to DIR) a folder entry is stored at, its folders
   * made. The first entry of a folder on this connection decides where
   * it goes: `received-NAME` when `reuse` (an update) and it is a real
   * folder or absent, else the first of `received-NAME`,
   * `received-NAME-1`… that does not exist. For a folder entry (`isDir`)
   * the last component is made too; for a file, it must not be a folder.
   * Throws {@link UserError} naming the entry.
   */
  async place(base: string, parts: string[], reuse: boolean, isDir: boolean): Promise<string> {
    const root = await this.#root(base, reuse);
    const rel = [root, ...parts].join("/");
    const folders = isDir ? parts.length : parts.length - 1;
    let at = root;
    for (let i = 0; i < folders; i++) {
      at = `${at}/${parts[i]}`;
      await this.#folder(at, rel);
    }
    // A file whose place is a folder fails when it is renamed there.
    return rel;
  }

  /**
   * The folder (relative to DIR) a folder named `base` goes to on this
   * connection, chosen by its first entry as {@link place} says.
   */
  root(base: string, reuse: boolean): Promise<string> {
    return this.#root(base, reuse);
  }

  /** One choice per folder and connection, even when entries ask at once. */
  #root(base: string, reuse: boolean): Promise<string> {
    let chosen = this.#roots.get(base);
    if (!chosen) {
      chosen = this.#choose(base, reuse);
      this.#roots.set(base, chosen);
      // A failed choice is not kept: the next entry tries again.
      chosen.catch(() => this.#roots.delete(base));
    }
    return chosen;
  }

  // deno-lint-ignore require-await -- async: a failed choice is a rejection, which #root drops
  async #choose(base: string, reuse: boolean): Promise<string> {
    for (let copy = 0; copy < 10000; copy++) {
      const name = receivedName(base, copy);
      if (this.#make(name)) return name;
      const info = lstatOrNull(this.#disk, name);
      if (reuse && info?.isDirectory) return name;
    }
    throw new UserError(`Too many copies of ${receivedName(base)} already stored`);
  }

  /** Makes folder `rel` or finds one there (a link is refused, never followed). */
  async #folder(rel: string, entry: string): Promise<void> {
    if (this.#folders.has(rel)) return;
    await this.#check(rel, entry);
    this.#folders.add(rel);
  }

  #check(rel: string, entry: string): void {
    for (let attempt = 0; attempt < 2; attempt++) {
      let info: FileStat | null;
      try {
        info = this.#disk.lstat(rel);
      } catch (err) {
        throw new UserError(`${entry}: ${describeError(err)}`);
      }
      if (info?.isSymlink) {
        throw new UserError(`${entry} goes through ${rel}, a symbolic link on the server`);
      }
      if (info?.isDirectory) return;
      if (info) throw new UserError(`${entry} goes through ${rel}, a file on the server`);
      if (this.#make(rel)) return;
    }
  }

  /**
   * Makes folder `rel` (owner-only write, whatever was offered) from the
   * budget; false when something is there already. Throws
   * {@link UserError} when the budget is spent or the folder cannot be made.
   */
  #make(rel: string): boolean {
    this.#budget.take();
    try {
      this.#disk.mkdir(rel, 0o755);
      return true;
    } catch (err) {
      this.#budget.giveBack();
      if (err instanceof Deno.errors.AlreadyExists) return false;
      if (err instanceof UserError) throw err;
      throw new UserError(describeError(err, `Cannot make folder ${rel}`));
    }
  }
}

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
  /** The server process's umask, as {@link checkDirectory} found it. */
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
  processUmask ??= job.umask;
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
 * The message a client gets for a failed transfer: the tool's own errors
 * as they are, anything else (a file system error naming the server's
 * directory) in general terms, and no server path in either; the server's
 * log has the whole message.
 */
export function clientMessage(err: unknown, dir: string): string {
  const text = err instanceof UserError || err instanceof ProtocolError
    ? err.message
    : "Server could not store the file (its log says why)";
  // And should one of ours quote a path after all, it goes too.
  return text.split(dir).join("DIR").replace(/'\/[^']*'/g, "'(a server path)'");
}

/**
 * Stores verified packs' files on a worker thread of its own
 * (`file_store_worker.ts`), started at the first pack and kept until
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
      umask: processUmask,
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
    const worker = new Worker(new URL("./file_store_worker.ts", import.meta.url), {
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
