/**
 * File names that arrive from the network. The server stores only a safe
 * base name, inside its directory, always.
 *
 * @module
 */
import { ProtocolError } from "../errors.ts";
import { UNSAFE_CHARS } from "../wire/text.ts";
import { MAX_PATH_BYTES, MAX_PATH_DEPTH } from "./messages.ts";

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

const SLASH = /[\\/]/;
/** {@link UNSAFE_CHARS} without the global flag, whose `test` keeps no state. */
const UNSAFE_CHAR = new RegExp(UNSAFE_CHARS.source);

/** Bytes every file system allows in one path component. */
export const MAX_COMPONENT_BYTES: number = NAME_BYTES;

/**
 * Checks a folder entry's path (one string per component, below the
 * folder) before anything is made from it. Returns the components, or
 * throws {@link ProtocolError} saying what is wrong: an empty path or
 * component, `.` or `..`, a `/` or `\` inside a component (an absolute or
 * smuggled path), a control or bidirectional character, a component
 * longer than {@link MAX_COMPONENT_BYTES} bytes, or a path deeper or
 * longer than an offer may name. Nothing is renamed: a name changed here
 * could collide with another entry's.
 */
export function safeRelativePath(parts: readonly string[]): string[] {
  if (parts.length === 0) throw new ProtocolError("Path is empty");
  if (parts.length > MAX_PATH_DEPTH) {
    throw new ProtocolError(`Path is deeper than ${MAX_PATH_DEPTH} folders`);
  }
  let total = 0;
  for (const part of parts) {
    const shown = () =>
      JSON.stringify(part.length > 40 ? part.slice(0, 40) + "…" : part).replace(UNSAFE_CHARS, "?");
    if (part === "") throw new ProtocolError("Path has an empty component");
    if (part === "." || part === "..") {
      throw new ProtocolError(`Path has a ${shown()} component`);
    }
    if (SLASH.test(part)) {
      throw new ProtocolError(`Path component ${shown()} holds a slash`);
    }
    if (UNSAFE_CHAR.test(part)) {
      throw new ProtocolError(`Path component ${shown()} holds a control character`);
    }
    const n = byteLength(part);
    if (n > MAX_COMPONENT_BYTES) {
      throw new ProtocolError(
        `Path component ${shown()} is ${n} bytes, over the ${MAX_COMPONENT_BYTES} a file system allows`,
      );
    }
    total += n + 1;
  }
  if (total > MAX_PATH_BYTES) {
    throw new ProtocolError(`Path is over ${MAX_PATH_BYTES} bytes long`);
  }
  return [...parts];
}
