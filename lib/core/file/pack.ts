/**
 * A pack: many small files of a folder sent as one transfer, so that ten
 * thousand small files do not cost ten thousand sessions. The pack is the
 * transfer's data, checked chunk by chunk by its prefix MD5 like any
 * file; the server stores its files only once the whole pack is verified.
 *
 * ```text
 * [u32 manifest length][manifest: JSON {files: [{path, size, mode?, mtime?}]}][each file's bytes, in order]
 * ```
 *
 * Pure functions only. Each file's path is checked by the server on its
 * own (`safeRelativePath`), so that one bad name fails only its file.
 *
 * @module
 */
import { ProtocolError } from "../errors.ts";
import { isCount, jsonBytes, parseJsonObject } from "../wire/json.ts";
import { isMode, isPathList } from "./messages.ts";

/** Most files in one pack. */
export const MAX_PACK_FILES = 1024;
/** Largest file a client puts in a pack. */
export const PACK_FILE_BYTES: number = 64 * 1024;

/** One file of a pack. */
export interface PackFile {
  /** Its path below the folder, one string per component. */
  path: string[];
  /** Permission bits. */
  mode?: number;
  /** Modification time, ms. */
  mtime?: number;
  /** Its bytes (a view into the pack when decoded). */
  data: Uint8Array;
}

/** Encodes files into a pack. */
export function encodePack(files: readonly PackFile[]): Uint8Array {
  const manifest = jsonBytes({
    files: files.map((f) => ({ path: f.path, size: f.data.length, mode: f.mode, mtime: f.mtime })),
  });
  const size = files.reduce((n, f) => n + f.data.length, 4 + manifest.length);
  const out = new Uint8Array(size);
  new DataView(out.buffer).setUint32(0, manifest.length);
  out.set(manifest, 4);
  let at = 4 + manifest.length;
  for (const f of files) {
    out.set(f.data, at);
    at += f.data.length;
  }
  return out;
}

/**
 * Decodes a pack. Throws {@link ProtocolError} when it is malformed: a
 * manifest past the end, not JSON, with no files or more than
 * {@link MAX_PACK_FILES}, a size or path of the wrong form, or sizes that
 * do not add up to the bytes that follow. Paths are not judged here.
 */
export function decodePack(bytes: Uint8Array): PackFile[] {
  if (bytes.length < 4) throw new ProtocolError("Pack is too short for its manifest");
  const length = new DataView(bytes.buffer, bytes.byteOffset).getUint32(0);
  if (length > bytes.length - 4) throw new ProtocolError("Pack's manifest runs past its end");
  const o = parseJsonObject(bytes.subarray(4, 4 + length));
  if (typeof o === "string") throw new ProtocolError(`Pack's manifest ${o}`);
  const list = o.files;
  if (!Array.isArray(list) || list.length === 0 || list.length > MAX_PACK_FILES) {
    throw new ProtocolError(`Pack's manifest must list 1 to ${MAX_PACK_FILES} files`);
  }
  const files: PackFile[] = [];
  let at = 4 + length;
  for (const f of list) {
    if (
      typeof f !== "object" || f === null || !isCount(f.size) || !isPathList(f.path) ||
      (f.mode !== undefined && !isMode(f.mode)) ||
      (f.mtime !== undefined && !Number.isSafeInteger(f.mtime))
    ) {
      throw new ProtocolError("Pack's manifest has a malformed file");
    }
    if (f.size > bytes.length - at) throw new ProtocolError("Pack's files run past its end");
    files.push({
      path: f.path,
      mode: f.mode,
      mtime: f.mtime,
      data: bytes.subarray(at, at + f.size),
    });
    at += f.size;
  }
  if (at !== bytes.length) throw new ProtocolError("Pack has bytes its manifest does not list");
  return files;
}
