/**
 * What the File-TCP client sends, as its cores see it: one entry (a file,
 * an empty folder of a tree, or a pack of a folder's small files) and how
 * each one ended. The walk that finds entries is the shell's
 * (`tcp/file_tree.ts`).
 *
 * @module
 */

/** One thing to send: a file, or an empty folder of a tree. */
export interface Entry {
  /** Where to read it (a file; unset for an empty folder). */
  source?: string;
  /** The name sent: the file's, or the folder's for a tree entry. */
  name: string;
  /** A tree entry's path below its folder, one string per component. */
  parts?: string[];
  /**
   * `"dir"` for an empty folder of a tree; `"pack"` for small files of one
   * folder sent together (`members`), made by the sender, never by a walk.
   */
  kind?: "dir" | "pack";
  /** A pack's files, each an entry of the folder `name`. */
  members?: Entry[];
  /** Size in bytes when walked. */
  size: number;
  /** Permission bits. */
  mode?: number;
  /** Modification time, ms (tree entries: names a cut entry's partial data). */
  mtime?: number;
}

/** What a sent file came to. */
export interface SendResult {
  /** Name sent. */
  name: string;
  /** File size. */
  bytes: number;
  /** Seconds from its offer to the server's confirmation. */
  seconds: number;
  /** Whole-file MD5 (hexadecimal), confirmed by the server. */
  md5: string;
  /** Name the server stored it under. */
  storedAs: string;
  /** Chunks in the file. */
  chunks: number;
  /** Chunks sent with data, the first time. */
  chunksSent: number;
  /** Chunks the server already held (resumed), sent as digests only. */
  chunksSkipped: number;
  /** Chunks sent again because the server's MD5 check failed. */
  chunksResent: number;
  /** Bytes of the file sent with data (not those the server already held). */
  bytesSent: number;
  /** The server already stored the file (`--update`): nothing was sent. */
  upToDate: boolean;
}

/** How one entry ended: sent (or up to date), or failed. */
export type EntryResult =
  | { entry: Entry; ok: true; result: SendResult }
  | { entry: Entry; ok: false; error: unknown; token?: string };

/** An entry's name as the user knows it: `FOLDER/path` or the file's name. */
export function displayName(entry: Entry): string {
  return entry.parts ? [entry.name, ...entry.parts].join("/") : entry.name;
}
