/**
 * Where a received folder's entries go on the server, for one connection.
 *
 * @module
 */
import { UserError } from "../../core/errors.ts";
import { describeError } from "../errors.ts";
import { receivedName } from "../../core/file/names.ts";
import { FolderBudget } from "../../core/file/disk_policy.ts";
import type { ContainedRoot, FileStat } from "../contained_root.ts";
import { lstatOrNull } from "./disk.ts";

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
