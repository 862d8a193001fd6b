/**
 * What a file server lets a client decide about its disk: the permission
 * bits of what it stores, and how many folders one connection may make.
 *
 * @module
 */
import { UserError } from "../errors.ts";

/**
 * The bits a client's offered mode may set: read and execute for all,
 * write for the owner alone. Never group or other write (a stored folder
 * another local user could swap things in), never setuid, setgid or
 * sticky (a stored program that runs as the server's user).
 */
export const OFFERED_MODE_MASK = 0o755;

/**
 * The permission bits a file or folder is stored with when a client
 * offered `mode`: masked by {@link OFFERED_MODE_MASK}; a folder keeps its
 * owner's read, write and search (the server must go on storing in it).
 */
export function storedMode(mode: number, isFolder: boolean): number {
  const masked = mode & OFFERED_MODE_MASK;
  return isFolder ? masked | 0o700 : masked;
}

/** Folders one connection may make unless the server says otherwise (`--max-folders`). */
export const DEFAULT_MAX_FOLDERS = 10_000;

/**
 * The folders one connection may make: a pack of deep paths would
 * otherwise make a folder for each part of each path (1,024 files 127
 * folders deep made 130,048 folders, 533 MB of directory blocks, from a
 * 665 KiB pack), which no size limit bounds.
 */
export class FolderBudget {
  /** The cap. */
  readonly max: number;
  #made = 0;

  /** A budget of `max` folders. */
  constructor(max: number = DEFAULT_MAX_FOLDERS) {
    this.max = max;
  }

  /** Folders made so far. */
  get made(): number {
    return this.#made;
  }

  /** Takes one folder; throws a {@link UserError} naming the cap when none is left. */
  take(): void {
    if (this.#made >= this.max) {
      throw new UserError(
        `Server makes at most ${this.max} folders per connection (its --max-folders); ` +
          "run again with --update for the rest",
      );
    }
    this.#made++;
  }

  /** Gives back a folder taken but not made (it existed already). */
  giveBack(): void {
    if (this.#made > 0) this.#made--;
  }
}
