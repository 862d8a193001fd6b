/**
 * The file server's digest book (`--update`): what it knows of each file
 * it stored, so that an update offer is answered without reading the file
 * again, and only to a client that proves it holds the same content
 * (`lib/core/file/proof.ts`).
 *
 * Every disk access here (its pages, its salt, the stored files it checks
 * and hashes) goes through the server's {@link ContainedRoot}: resolved
 * below DIR by the kernel, never through a symbolic link.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { proofHash } from "../../core/file/proof.ts";
import type { ContainedRoot, FileDescriptor, FileStat } from "../contained_root.ts";
import { lstatOrNull, mkdirIfAbsent, newSalt, PARTIAL_DIR, writeReplacing } from "./disk.ts";

/**
 * Where a server keeps the digests of the files it stored: a folder in its
 * own staging folder, one file per stored folder.
 */
export const DIGEST_BOOK: string = `${PARTIAL_DIR}/digests`;

/**
 * What the book says of one stored file: taken from the file the server
 * wrote (its own handle), before it was renamed into place, never from the
 * path after.
 */
export interface BookEntry {
  size: number;
  /** The content's MD5, hexadecimal (told to a client that proved it holds it). */
  md5: string;
  /** Modification time, ms, and identity: a file changed or replaced since is not trusted. */
  mtimeMs: number;
  /** Inode number (with the device, the file's identity). */
  ino: number;
  /** Device number. */
  dev: number;
  /** The salt of the salted digest (hexadecimal): the book's when it was made. */
  salt?: string;
  /** MD5(salt ‖ content), hexadecimal, once computed. */
  proof?: string;
}

/** One stored folder's page of the book: its files' entries, by name. */
interface Page {
  entries: Map<string, BookEntry>;
  dirty: boolean;
}

/** Pages kept in memory at once; more are saved (if changed) and dropped, oldest first. */
const MAX_PAGES = 64;
/** The longest a recorded digest waits to be saved, ms. */
const SAVE_MS = 1000;

/**
 * The digests of stored files (`--update`): recorded when a file is
 * stored, read to answer an update offer without reading the file again.
 * An entry counts only while the file at its path is the one stored: the
 * same identity (device and inode), size and modification time.
 *
 * The book has a page per stored folder (`DIGEST_BOOK/HASH.json`, HASH
 * naming the folder), loaded when a file of that folder is asked about
 * and kept among the last {@link MAX_PAGES} used: memory stays bounded by
 * the largest folder, however many files a tree has. A page dropped while
 * its save is still queued is taken back from that save, never read stale
 * from the disk. Pages are saved by a temporary file and a rename; a page
 * that cannot be read starts empty (its files are then sent again, never
 * wrongly skipped).
 */
export class DigestBook {
  #root: ContainedRoot;
  #pages = new Map<string, Page>();
  /**
   * Pages with saves queued or under way (how many): a page dropped from
   * memory meanwhile is read from here, not from the disk.
   */
  #unsaved = new Map<string, { page: Page; saves: number }>();
  #saving: Promise<void> = Promise.resolve();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #lastSave = -Infinity;
  #made = false;
  #salt: string | undefined;
  /** Salted digests being computed from stored files, by file and identity. */
  #proving = new Map<string, Promise<string | null>>();

  /** The book of `root`'s directory. */
  constructor(root: ContainedRoot) {
    this.#root = root;
  }

  /**
   * The salt of this directory's salted digests (hexadecimal): drawn at
   * random once and kept beside the pages (`DIGEST_BOOK/salt`), so that a
   * client proves every file of a connection with the salt of its first
   * challenge, in the offer itself. A digest under another salt (the book
   * lost its salt) is computed again from the stored file when asked for.
   */
  get salt(): string {
    if (this.#salt !== undefined) return this.#salt;
    const rel = `${DIGEST_BOOK}/salt`;
    try {
      const text = new TextDecoder().decode(this.#root.readFile(rel)).trim();
      if (/^[0-9a-f]{32}$/.test(text)) return this.#salt = text;
    } catch {
      // None yet: drawn now.
    }
    const salt = newSalt();
    try {
      this.#makeFolders();
      const tmp = `${rel}.${crypto.randomUUID()}.tmp`;
      {
        using fd = this.#root.create(tmp, 0o600);
        fd.writeAll(new TextEncoder().encode(salt));
      }
      this.#root.rename(tmp, rel);
    } catch {
      // Not kept: the digests made under it are computed again after a restart.
    }
    return this.#salt = salt;
  }

  /**
   * The entry of the stored file `name` if it is stored with this size and
   * is still the file the server stored (with `info`, its `lstat` through
   * the root), else null.
   */
  lookup(name: string, size: number): { entry: BookEntry; info: FileStat } | null {
    const [folder, base] = split(name);
    const entry = this.#page(folder).entries.get(base);
    if (!entry || entry.size !== size) return null;
    const info = lstatOrNull(this.#root, name);
    return info !== null && isStored(info, entry) ? { entry, info } : null;
  }

  /**
   * Records that `name` was just stored, as `entry` says. The first
   * file in a while is saved at once, in the background (nothing waits
   * for it); files that follow within {@link SAVE_MS} are saved together
   * when it has passed (a folder of ten thousand files must not write its
   * page ten thousand times) or by {@link flush}. An entry lost in a crash
   * only makes a file be sent again.
   */
  record(name: string, entry: BookEntry): void {
    const [folder, base] = split(name);
    const page = this.#page(folder);
    page.entries.set(base, entry);
    this.#touched(page);
  }

  /**
   * The salted digest a client must prove `entry` of `name` with, under
   * the book's salt: the book's, or computed from the stored file (null if
   * it is no longer that file), then kept. One computation per stored file
   * at a time, however many ask.
   */
  expectedProof(name: string, entry: BookEntry): string | Promise<string | null> {
    const salt = this.salt;
    if (entry.salt === salt && entry.proof !== undefined) return entry.proof;
    const key = `${name}\0${entry.dev}:${entry.ino}:${entry.mtimeMs}`;
    let proving = this.#proving.get(key);
    if (!proving) {
      proving = proveStored(this.#root, name, entry, salt).then((proof) => {
        if (proof !== null) this.#prove(name, entry, salt, proof);
        return proof;
      }, () => null).finally(() => this.#proving.delete(key));
      this.#proving.set(key, proving);
    }
    return proving;
  }

  /** Keeps a salted digest computed for `entry` of `name`, if it is still the entry there. */
  #prove(name: string, entry: BookEntry, salt: string, proof: string): void {
    const [folder, base] = split(name);
    const page = this.#page(folder);
    const now = page.entries.get(base);
    if (
      !now || now.ino !== entry.ino || now.dev !== entry.dev || now.mtimeMs !== entry.mtimeMs ||
      now.size !== entry.size
    ) {
      return; // another file recorded there since
    }
    page.entries.set(base, { ...now, salt, proof });
    this.#touched(page);
  }

  #touched(page: Page): void {
    page.dirty = true;
    if (this.#timer === undefined && performance.now() - this.#lastSave >= SAVE_MS) {
      this.#lastSave = performance.now();
      this.#queueSave();
      return;
    }
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      this.#lastSave = performance.now();
      this.#queueSave();
    }, SAVE_MS);
  }

  /** Saves what was recorded and not yet saved. */
  async flush(): Promise<void> {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    this.#queueSave();
    await this.#saving;
  }

  /** The page of `folder`, loaded if need be; the least recently used goes past the bound. */
  #page(folder: string): Page {
    let page = this.#pages.get(folder);
    if (page) {
      this.#pages.delete(folder); // to the end: most recently used
      this.#pages.set(folder, page);
      return page;
    }
    // A page whose save is queued is newer than the disk's.
    page = this.#unsaved.get(folder)?.page ?? { entries: this.#read(folder), dirty: false };
    this.#pages.set(folder, page);
    if (this.#pages.size > MAX_PAGES) {
      const [oldest, old] = this.#pages.entries().next().value!;
      this.#pages.delete(oldest);
      if (old.dirty) this.#queueSave([[oldest, old]]);
    }
    return page;
  }

  #read(folder: string): Map<string, BookEntry> {
    const entries = new Map<string, BookEntry>();
    try {
      const o = JSON.parse(new TextDecoder().decode(this.#root.readFile(this.#pathOf(folder))));
      if (o?.folder !== folder) return entries; // another folder's page: never trusted
      for (const [name, e] of Object.entries(o.entries as Record<string, BookEntry>)) {
        if (isEntry(e)) entries.set(name, e);
      }
    } catch {
      // No page yet, or an unreadable one: nothing is skipped.
    }
    return entries;
  }

  #pathOf(folder: string): string {
    const id = createHash("sha256").update(folder).digest("hex").slice(0, 32);
    return `${DIGEST_BOOK}/${id}.json`;
  }

  /** Makes the book's folder (and the staging folder) unless there, once. */
  #makeFolders(): void {
    if (this.#made) return;
    mkdirIfAbsent(this.#root, PARTIAL_DIR);
    mkdirIfAbsent(this.#root, DIGEST_BOOK);
    this.#made = true;
  }

  /** Saves the dirty pages (or those given), one save after another. */
  #queueSave(pages: [string, Page][] = [...this.#pages]): void {
    const dirty = pages.filter(([, p]) => p.dirty);
    if (dirty.length === 0) return;
    const texts = dirty.map(([folder, p]) => {
      p.dirty = false;
      const held = this.#unsaved.get(folder);
      if (held?.page === p) held.saves++;
      else this.#unsaved.set(folder, { page: p, saves: 1 });
      const text = JSON.stringify({ folder, entries: Object.fromEntries(p.entries) });
      return [folder, p, text] as const;
    });
    this.#saving = this.#saving.then(async () => {
      for (const [folder, page, text] of texts) {
        try {
          this.#makeFolders();
          const bytes = new TextEncoder().encode(text);
          await writeReplacing(this.#root, this.#pathOf(folder), bytes);
        } catch {
          // Not saved: its files are sent again, once out of memory.
        } finally {
          // The page's last save done: read from the disk again.
          const held = this.#unsaved.get(folder);
          if (held?.page === page && --held.saves === 0) this.#unsaved.delete(folder);
        }
      }
    }).catch(() => {});
  }
}

/** Whether a page's entry has every field of a {@link BookEntry} (older pages lack the identity). */
function isEntry(e: BookEntry | undefined): e is BookEntry {
  return typeof e?.md5 === "string" && Number.isInteger(e.size) &&
    typeof e.mtimeMs === "number" && Number.isInteger(e.ino) && Number.isInteger(e.dev) &&
    (e.salt === undefined || typeof e.salt === "string") &&
    (e.proof === undefined || typeof e.proof === "string");
}

/** Whether `info` (of the file at an entry's path) is the file the entry was recorded for. */
function isStored(info: FileStat, e: BookEntry): boolean {
  return info.isFile && info.size === e.size && info.mtimeMs === e.mtimeMs &&
    Number(info.ino) === e.ino && Number(info.dev) === e.dev;
}

/** Bytes read from a stored file at a time while it is hashed. */
const PROVE_READ = 1024 * 1024;

/**
 * The salted digest MD5(salt ‖ content) of the stored file `DIR/name`,
 * read through its own handle opened under `root` (never through a link),
 * if it is still the file `entry` was recorded for (checked on the open
 * handle: a file swapped in since is not read); null if not. Used when
 * the book has no salted digest for a file (one too large to have been
 * hashed from memory when stored): computed while the client computes its
 * own, then kept.
 */
async function proveStored(
  root: ContainedRoot,
  name: string,
  entry: BookEntry,
  salt: string,
): Promise<string | null> {
  let fd: FileDescriptor;
  try {
    fd = root.open(name, { read: true });
  } catch {
    return null;
  }
  try {
    if (!isStored(fd.stat(), entry)) return null;
    const h = proofHash(salt);
    let total = 0;
    while (total < entry.size) {
      const chunk = await fd.readAtAsync(total, Math.min(PROVE_READ, entry.size - total));
      if (chunk.length === 0) break;
      h.update(chunk);
      total += chunk.length;
    }
    // Nothing past the recorded size either: the file is the one stored.
    if (total !== entry.size || fd.readAt(total, 1).length !== 0) return null;
    return h.hex();
  } catch {
    return null;
  } finally {
    fd.close();
  }
}

/** A stored path's folder (`.` at the top) and base name. */
function split(name: string): [string, string] {
  const at = name.lastIndexOf("/");
  return at < 0 ? [".", name] : [name.slice(0, at), name.slice(at + 1)];
}

/**
 * A stored file's size, time and identity as the digest book records them
 * (from the file's own handle, taken before its rename into place).
 */
export function bookIdentity(info: FileStat): Pick<BookEntry, "size" | "mtimeMs" | "ino" | "dev"> {
  return { size: info.size, mtimeMs: info.mtimeMs, ino: Number(info.ino), dev: Number(info.dev) };
}
