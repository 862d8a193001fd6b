/**
 * File names that arrive from the network. The server stores only a safe
 * base name, inside its directory, always.
 *
 * @module
 */
import { ProtocolError } from "../errors.ts";

/** Longest base name kept, in UTF-16 code units (file systems allow 255 bytes). */
const MAX_NAME = 120;

/**
 * Reduces a name sent by a peer to a safe base name: the last component
 * after `/` or `\`, with control characters and NUL replaced by `_`, and
 * trimmed to a length every file system accepts. Throws
 * {@link ProtocolError} when nothing usable is left (empty, `.` or `..`).
 */
export function safeBaseName(name: string): string {
  const last = name.split(/[\\/]/).pop() ?? "";
  // deno-lint-ignore no-control-regex
  let base = last.replace(/[\x00-\x1f\x7f]/g, "_").trim();
  if (base.length > MAX_NAME) {
    const dot = base.lastIndexOf(".");
    const ext = dot > 0 && base.length - dot <= 16 ? base.slice(dot) : "";
    base = base.slice(0, MAX_NAME - ext.length) + ext;
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
