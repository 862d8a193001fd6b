/**
 * File names that arrive from the network. The server stores only a safe
 * base name, inside its directory, always.
 *
 * @module
 */
import { ProtocolError } from "../errors.ts";
import { UNSAFE_CHARS } from "../wire/text.ts";

/** Bytes every file system allows in one name. */
const NAME_BYTES = 255;
/** The longest base name kept, in UTF-8 bytes: room for `received-` and a `-9999` copy number. */
export const MAX_BASE_BYTES: number = NAME_BYTES - "received-".length - "-9999".length;

const encoder = new TextEncoder();

/** Length of `text` in UTF-8 bytes. */
function byteLength(text: string): number {
  return encoder.encode(text).length;
}

/** The longest start of `text` of at most `bytes` UTF-8 bytes, whole code points only. */
function clip(text: string, bytes: number): string {
  let out = "";
  let used = 0;
  for (const ch of text) {
    const n = byteLength(ch);
    if (used + n > bytes) break;
    out += ch;
    used += n;
  }
  return out;
}

/**
 * Reduces a name sent by a peer to a safe base name: the last component
 * after `/` or `\`, with control characters, NUL and bidirectional
 * controls replaced by `_`, and trimmed (keeping a short extension) to
 * {@link MAX_BASE_BYTES} UTF-8 bytes, so `received-NAME-N.EXT` fits the
 * 255 bytes every file system allows. Throws {@link ProtocolError} when
 * nothing usable is left (empty, `.` or `..`).
 */
export function safeBaseName(name: string): string {
  const last = name.split(/[\\/]/).pop() ?? "";
  let base = last.replace(UNSAFE_CHARS, "_").trim();
  if (byteLength(base) > MAX_BASE_BYTES) {
    const dot = base.lastIndexOf(".");
    const ext = dot > 0 && byteLength(base.slice(dot)) <= 16 ? base.slice(dot) : "";
    base = clip(base.slice(0, base.length - ext.length), MAX_BASE_BYTES - byteLength(ext)) + ext;
  }
  if (base === "" || base === "." || base === "..") {
    throw new ProtocolError(`File name ${JSON.stringify(name)} has no usable base name`);
  }
  return base;
}

/**
 * The name a received file is stored under: `received-NAME` for the first
 * copy, then `received-STEM-1.EXT`, `received-STEM-2.EXT`… for later ones.
 */
export function receivedName(base: string, copy = 0): string {
  if (copy === 0) return `received-${base}`;
  const dot = base.lastIndexOf(".");
  if (dot <= 0) return `received-${base}-${copy}`;
  return `received-${base.slice(0, dot)}-${copy}${base.slice(dot)}`;
}
