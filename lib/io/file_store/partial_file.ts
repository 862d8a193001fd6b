/**
 * One partial transfer's data on disk: chunks written in batches, read
 * back to hash, its state saved for a resume, and the verified file moved
 * into place.
 *
 * @module
 */
import { UserError } from "../../core/errors.ts";
import { TransferState } from "../../core/file/transfer_state.ts";
import type { ContainedRoot, FileDescriptor, FileStat } from "../contained_root.ts";
import { describeError } from "../errors.ts";
import { receivedName } from "../../core/file/names.ts";
import { storedMode } from "../../core/file/disk_policy.ts";
import { proofOf } from "../../core/file/proof.ts";
import { linkNoClobber, placeError, storeBytes, writeReplacing } from "./disk.ts";
import { type BookEntry, bookIdentity } from "./digest_book.ts";

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
