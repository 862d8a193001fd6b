/**
 * Where the file server keeps data: partial transfers in `DIR/.partial/`
 * (the data and its state, so a cut transfer resumes), and finished files
 * renamed into `DIR` only after their whole-file MD5 matched.
 *
 * @module
 */
import { join } from "node:path";
import { UserError } from "../lib/core/errors.ts";
import { describeError } from "../lib/io/errors.ts";
import { md5, toHex } from "../lib/core/wire/md5.ts";
import { receivedName } from "../lib/core/file/names.ts";
import { TransferState } from "../lib/core/file/transfer_state.ts";
import { readAt } from "../lib/io/streams.ts";

/** Name of the staging folder inside the server's directory. */
export const PARTIAL_DIR = ".partial";

/** Checks that `dir` is a writable directory; throws a {@link UserError} if not. */
export async function checkDirectory(dir: string): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(dir);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new UserError(`Directory ${dir} does not exist`);
    }
    throw new UserError(`Cannot use directory ${dir}: ${(err as Error).message}`);
  }
  if (!info.isDirectory) throw new UserError(`${dir} is not a directory`);
  const staging = join(dir, PARTIAL_DIR);
  const probe = join(staging, `.probe-${crypto.randomUUID()}`);
  try {
    await Deno.mkdir(staging, { recursive: true });
    await Deno.writeFile(probe, new Uint8Array(1));
    await Deno.remove(probe);
  } catch (err) {
    throw new UserError(`Directory ${dir} is not writable: ${(err as Error).message}`);
  }
}

/**
 * Removes partial transfers in `DIR/.partial` untouched for longer than
 * `maxAgeMs` (a transfer nobody came back to resume). Returns how many
 * transfers were removed.
 */
export async function removeStalePartials(dir: string, maxAgeMs: number): Promise<number> {
  const staging = join(dir, PARTIAL_DIR);
  const cutoff = Date.now() - maxAgeMs;
  let removed = 0;
  for await (const e of Deno.readDir(staging)) {
    if (!e.isFile || !/\.(part|state)$/.test(e.name)) continue;
    const path = join(staging, e.name);
    const info = await Deno.stat(path).catch(() => null);
    if (!info?.mtime || info.mtime.getTime() >= cutoff) continue;
    await Deno.remove(path).catch(() => {});
    if (e.name.endsWith(".part")) removed++;
  }
  return removed;
}

/** One transfer's partial data on disk. */
export class PartialFile {
  /** Receiver state: what is held verified. */
  readonly state: TransferState;
  /** Whether this partial can be found again by a later run. */
  readonly resumable: boolean;
  #file: Deno.FsFile;
  #partPath: string;
  #statePath: string;
  #position = 0;
  #release: () => void;
  #closed = false;

  private constructor(
    state: TransferState,
    file: Deno.FsFile,
    partPath: string,
    statePath: string,
    resumable: boolean,
    release: () => void,
  ) {
    this.state = state;
    this.#file = file;
    this.#partPath = partPath;
    this.#statePath = statePath;
    this.resumable = resumable;
    this.#release = release;
  }

  /**
   * Opens the partial for a file, resuming saved state when a previous
   * transfer of the same name, size and chunk size left one. `active` holds
   * the keys in use by this server; a second transfer of the same file at
   * the same time gets a fresh, private partial instead of sharing one.
   */
  static async open(
    dir: string,
    base: string,
    size: number,
    chunkSize: number,
    active: Set<string>,
  ): Promise<PartialFile> {
    const key = toHex(md5(new TextEncoder().encode(`${base}\0${size}\0${chunkSize}`)));
    const resumable = !active.has(key);
    const id = resumable ? key : `${key}-${crypto.randomUUID()}`;
    active.add(id);
    const staging = join(dir, PARTIAL_DIR);
    const partPath = join(staging, `${id}.part`);
    const statePath = join(staging, `${id}.state`);
    try {
      await Deno.mkdir(staging, { recursive: true });
      let state: TransferState | null = null;
      if (resumable) {
        try {
          state = TransferState.deserialize(await Deno.readFile(statePath), size, chunkSize);
        } catch {
          state = null;
        }
      }
      const file = await Deno.open(partPath, { read: true, write: true, create: true });
      if (!state) {
        state = new TransferState(size, chunkSize);
        await file.truncate(0);
      }
      return new PartialFile(state, file, partPath, statePath, resumable, () => active.delete(id));
    } catch (err) {
      active.delete(id);
      throw err;
    }
  }

  /**
   * Writes a verified chunk's data at its offset. The write is synchronous:
   * a chunk lands in the page cache in microseconds, while Deno's async file
   * write hands every call to a thread pool, which cost more than the MD5.
   */
  writeChunk(index: number, data: Uint8Array): void {
    const offset = this.state.offsetOf(index);
    try {
      if (offset !== this.#position) this.#file.seekSync(offset, Deno.SeekMode.Start);
      let off = 0;
      while (off < data.length) off += this.#file.writeSync(data.subarray(off));
    } catch (err) {
      this.#position = -1;
      throw new UserError(describeError(err, "Server could not store the data"));
    }
    this.#position = offset + data.length;
  }

  /** Reads a held chunk back (for the whole-file MD5 after a resume). */
  async readChunk(index: number): Promise<Uint8Array> {
    const data = await readAt(this.#file, this.state.offsetOf(index), this.state.lengthOf(index));
    this.#position = -1;
    if (data.length !== this.state.lengthOf(index)) {
      throw new UserError(`Partial file lost chunk ${index}; send the file again`);
    }
    return data;
  }

  /**
   * Saves the state beside the data (write then rename, so a crash leaves
   * the old state or the new, never half of one). Data written before a save
   * is in the kernel's page cache, so a killed server loses nothing it
   * claimed; after a power cut the whole-file MD5 catches any loss.
   */
  async save(): Promise<void> {
    if (this.#closed || !this.resumable) return;
    const tmp = `${this.#statePath}.tmp`;
    await Deno.writeFile(tmp, this.state.serialize());
    await Deno.rename(tmp, this.#statePath);
  }

  /**
   * Moves the finished file to `DIR/received-NAME`. Unless `overwrite`, an
   * existing file is kept and the new one gets the next free
   * `received-STEM-N.EXT`. Returns the name used.
   */
  async finalize(dir: string, base: string, overwrite: boolean): Promise<string> {
    await this.#file.syncData();
    this.#close();
    let stored: string;
    if (overwrite) {
      stored = receivedName(base);
      await Deno.rename(this.#partPath, join(dir, stored));
    } else {
      stored = await linkNoClobber(this.#partPath, dir, base);
      await Deno.remove(this.#partPath);
    }
    await Deno.remove(this.#statePath).catch(() => {});
    return stored;
  }

  /** Saves state (or, for a private partial, deletes it) and releases the file. */
  async abandon(): Promise<void> {
    if (this.#closed) return;
    try {
      if (this.resumable) await this.save();
    } finally {
      this.#close();
      if (!this.resumable) {
        await Deno.remove(this.#partPath).catch(() => {});
      }
    }
  }

  /** Drops the saved state and data (after a whole-file mismatch). */
  async discard(): Promise<void> {
    this.#close();
    await Deno.remove(this.#partPath).catch(() => {});
    await Deno.remove(this.#statePath).catch(() => {});
  }

  #close() {
    if (this.#closed) return;
    this.#closed = true;
    this.#release();
    try {
      this.#file.close();
    } catch {
      // Already closed.
    }
  }
}

/** Hard-links `src` to the first free received name: atomic, never overwrites. */
async function linkNoClobber(src: string, dir: string, base: string): Promise<string> {
  for (let copy = 0; copy < 10000; copy++) {
    const name = receivedName(base, copy);
    try {
      await Deno.link(src, join(dir, name));
      return name;
    } catch (err) {
      if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
    }
  }
  throw new UserError(`Too many copies of ${receivedName(base)} already in ${dir}`);
}
