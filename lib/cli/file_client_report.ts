/**
 * The File-TCP client's lines for the user: one per file sent, one per
 * failure (with how to resume it), one per folder.
 *
 * @module
 */
import { displayName, type EntryResult, type SendResult } from "../core/file/entry.ts";
import { formatBytes, formatRate } from "../core/report/format.ts";
import { describeError } from "../io/errors.ts";
import { TransferCut } from "./file_client_shell.ts";

export { displayName };

/** One summary line for a sent file. */
export function summarize(r: SendResult): string {
  if (r.upToDate) {
    return `${r.name}: up to date as ${r.storedAs} (${formatBytes(r.bytes)}, MD5 ${r.md5}), ` +
      `0 bytes sent`;
  }
  // What moved: a resumed file's rest, not its size.
  const resumed = r.chunksSkipped > 0
    ? `, resumed from ${formatBytes(r.bytes - r.bytesSent)} (${r.chunksSkipped} chunks ` +
      `already on server) of ${formatBytes(r.bytes)}`
    : "";
  const resent = r.chunksResent > 0 ? `, ${r.chunksResent} chunks resent after MD5 failures` : "";
  const sent = r.bytesSent;
  return `${r.name}: ${sent} bytes (${formatBytes(sent)}) in ${r.seconds.toFixed(2)} s, ` +
    `${formatRate(sent, r.seconds)}, MD5 ${r.md5}, stored as ${r.storedAs}${resumed}${resent}`;
}

/**
 * The line for an entry that failed: its name and why, and how to resume
 * one the server had accepted (a named file by its token, a folder's
 * entry by sending the folder again with `--update`).
 */
export function failureLine(r: EntryResult & { ok: false }): string {
  const name = displayName(r.entry);
  let why = describeError(r.error);
  // Most messages name the file already.
  if (!why.includes(r.entry.parts ? name : r.entry.name)) why = `${name}: ${why}`;
  if (r.error instanceof TransferCut || !r.token) return why;
  return r.entry.parts
    ? `${why}; to resume, send the folder again with --update`
    : `${why}; to resume, run again with --resume ${r.token}`;
}

/** What a folder's entries came to, counted as they end. */
export interface FolderTally {
  /** Files sent (not up to date). */
  files: number;
  /** Their bytes. */
  bytes: number;
  /** Files the server already stored unchanged (`--update`). */
  upToDate: number;
  /** Files that resumed from chunks the server held. */
  resumed: number;
  /** Empty folders made. */
  emptyFolders: number;
  /** Entries that failed. */
  failed: number;
  /** The folder the server stored them in. */
  root?: string;
}

/** Counts one ended entry into its folder's tally. */
export function tally(t: FolderTally, r: EntryResult): void {
  if (!r.ok) t.failed++;
  else if (r.entry.kind === "dir") t.emptyFolders++;
  else if (r.result.upToDate) t.upToDate++;
  else {
    t.files++;
    t.bytes += r.result.bytesSent;
    if (r.result.chunksSkipped > 0) t.resumed++;
  }
  if (r.ok) t.root ??= r.result.storedAs.split("/")[0];
}

/** One line for a folder sent: how many files, bytes and seconds, and where it went. */
export function folderLine(name: string, t: FolderTally, seconds: number): string {
  const files = (n: number) => `${n} ${n === 1 ? "file" : "files"}`;
  const notes = [
    t.emptyFolders > 0
      ? `${t.emptyFolders} empty ${t.emptyFolders === 1 ? "folder" : "folders"}`
      : "",
    t.upToDate > 0 ? `${t.upToDate} up to date` : "",
    t.resumed > 0 ? `${t.resumed} resumed` : "",
    t.failed > 0 ? `${t.failed} failed` : "",
  ].filter((n) => n !== "");
  return `${name}: ${files(t.files)} (${formatBytes(t.bytes)}) in ${seconds.toFixed(2)} s, ` +
    `${formatRate(t.bytes, seconds)}${t.root ? `, stored in ${t.root}` : ""}` +
    (notes.length > 0 ? `; ${notes.join(", ")}` : "");
}
