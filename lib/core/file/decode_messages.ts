/**
 * Decoding and validation of the File-TCP messages a peer sends as JSON
 * (OFFER, ACCEPT, CHALLENGE, PROOF, END, DONE), with no I/O: every field is
 * checked before anything is trusted, and a bad one is a `ProtocolError`.
 *
 * @module
 */
import { ProtocolError } from "../errors.ts";
import { isCount, parseJsonObject } from "../wire/json.ts";
import { printable } from "../wire/text.ts";
import {
  type Accept,
  CHUNK_CHECK,
  chunkCount,
  type Done,
  type End,
  isMode,
  isPathList,
  MAX_CHUNK_SIZE,
  MAX_CHUNKS,
  MAX_HELD_RANGES,
  MAX_PACK_BYTES,
  MIN_CHUNK_SIZE,
  type Offer,
} from "./messages.ts";

/** A resume token: 16 random bytes, as 32 hexadecimal digits. */
const TOKEN = /^[0-9a-f]{32}$/;
/** An MD5 digest in lower-case hexadecimal, as `md5sum` prints it. */
const MD5_HEX = /^[0-9a-f]{32}$/;

function parseJson(payload: Uint8Array, what: string): Record<string, unknown> {
  const o = parseJsonObject(payload);
  if (typeof o === "string") throw new ProtocolError(`${what} ${o}`);
  return o;
}
/** Decodes and validates an OFFER payload. */
export function decodeOffer(payload: Uint8Array): Offer {
  const o = parseJson(payload, "Offer");
  if (typeof o.name !== "string" || o.name.length === 0 || o.name.length > 1024) {
    throw new ProtocolError("Offer has no usable file name");
  }
  if (!isCount(o.size)) throw new ProtocolError("Offer has an invalid size");
  if (
    !isCount(o.chunkSize) || o.chunkSize < MIN_CHUNK_SIZE ||
    o.chunkSize > MAX_CHUNK_SIZE
  ) {
    throw new ProtocolError(
      `Offer has chunk size ${o.chunkSize}; it must be ${MIN_CHUNK_SIZE} to ${MAX_CHUNK_SIZE}`,
    );
  }
  if (chunkCount(o.size, o.chunkSize) > MAX_CHUNKS) {
    throw new ProtocolError(`Offer needs more than ${MAX_CHUNKS} chunks`);
  }
  if (o.check !== CHUNK_CHECK) {
    throw new ProtocolError(
      `Offer does not say its chunks are checked by ${CHUNK_CHECK}: the client is older than this server; update it`,
    );
  }
  if (o.resume !== undefined && (typeof o.resume !== "string" || !TOKEN.test(o.resume))) {
    throw new ProtocolError("Offer has a malformed resume token");
  }
  if (
    o.update !== undefined && o.update !== true &&
    (typeof o.update !== "string" || !MD5_HEX.test(o.update))
  ) {
    throw new ProtocolError("Offer has a malformed update field");
  }
  const offer: Offer = { name: o.name, size: o.size, chunkSize: o.chunkSize };
  if (o.resume !== undefined) offer.resume = o.resume;
  if (o.update !== undefined) offer.update = true;
  if (o.proof !== undefined) {
    if (typeof o.proof !== "string" || !MD5_HEX.test(o.proof) || o.update === undefined) {
      throw new ProtocolError("Offer has a malformed proof (an MD5, with update)");
    }
    offer.proof = o.proof;
  }
  if (o.path !== undefined) {
    if (!isPathList(o.path)) {
      throw new ProtocolError("Offer has a path that is not a list of names");
    }
    offer.path = o.path;
  }
  if (o.mode !== undefined) {
    if (!isMode(o.mode)) throw new ProtocolError("Offer has an invalid mode");
    offer.mode = o.mode;
  }
  if (o.kind === "pack") {
    if (offer.path !== undefined || offer.update !== undefined || o.size > MAX_PACK_BYTES) {
      throw new ProtocolError(
        `Offer has an invalid pack (no path, no update, at most ${MAX_PACK_BYTES} bytes)`,
      );
    }
    offer.kind = "pack";
  } else if (o.kind !== undefined) {
    if (o.kind !== "dir" || o.size !== 0 || offer.path === undefined) {
      throw new ProtocolError("Offer has an invalid kind (a folder is a path of size 0)");
    }
    offer.kind = "dir";
  }
  if (o.mtime !== undefined) {
    if (!Number.isSafeInteger(o.mtime)) {
      throw new ProtocolError("Offer has an invalid modification time");
    }
    offer.mtime = o.mtime as number;
  }
  return offer;
}

/** Whether `text` has the form of a resume token. */
export function isResumeToken(text: string): boolean {
  return TOKEN.test(text);
}

/** Decodes and validates an ACCEPT payload for a transfer of `chunks` chunks. */
export function decodeAccept(payload: Uint8Array, chunks: number): Accept {
  const o = parseJson(payload, "Accept");
  if (typeof o.token !== "string" || !TOKEN.test(o.token)) {
    throw new ProtocolError("Accept has no usable resume token");
  }
  if (!Array.isArray(o.held) || o.held.length > MAX_HELD_RANGES) {
    throw new ProtocolError("Accept has an invalid list of held chunks");
  }
  const held: [number, number][] = [];
  let last = 0;
  for (const r of o.held) {
    if (
      !Array.isArray(r) || r.length !== 2 || !isCount(r[0]) || !isCount(r[1]) ||
      r[0] < last || r[1] <= r[0] || r[1] > chunks
    ) {
      throw new ProtocolError("Accept has an invalid range of held chunks");
    }
    held.push([r[0], r[1]]);
    last = r[1];
  }
  return { token: o.token, held };
}

/** Decodes a CHALLENGE payload: the salt (hexadecimal) to prove possession with. */
export function decodeChallenge(payload: Uint8Array): string {
  const o = parseJson(payload, "Challenge");
  if (typeof o.salt !== "string" || !/^[0-9a-f]{32}$/.test(o.salt)) {
    throw new ProtocolError("Challenge has no usable salt");
  }
  return o.salt;
}

/** Decodes a PROOF payload: the salted digest (hexadecimal). */
export function decodeProof(payload: Uint8Array): string {
  const o = parseJson(payload, "Proof");
  if (typeof o.proof !== "string" || !MD5_HEX.test(o.proof)) {
    throw new ProtocolError("Proof is not an MD5 in hexadecimal");
  }
  return o.proof;
}

/** Decodes and validates an END payload. */
export function decodeEnd(payload: Uint8Array): End {
  const o = parseJson(payload, "End");
  if (typeof o.md5 !== "string" || !MD5_HEX.test(o.md5)) {
    throw new ProtocolError("End has an invalid MD5");
  }
  return { md5: o.md5 };
}

/** Decodes and validates a DONE payload. */
export function decodeDone(payload: Uint8Array): Done {
  const o = parseJson(payload, "Done");
  if (
    typeof o.md5 !== "string" || !MD5_HEX.test(o.md5) ||
    typeof o.storedAs !== "string" || !isCount(o.bytes) ||
    (o.upToDate !== undefined && o.upToDate !== true)
  ) {
    throw new ProtocolError("Done message is malformed");
  }
  // A stored name is a plain name, or a folder entry's path of plain
  // names, printable: a server's escape codes never reach the user's terminal.
  if (
    o.storedAs.length === 0 || o.storedAs.length > 4096 || o.storedAs.includes("\\") ||
    o.storedAs.split("/").some((c) => c === "" || c === "." || c === "..") ||
    printable(o.storedAs) !== o.storedAs
  ) {
    throw new ProtocolError("Done message names the stored file with unsafe characters");
  }
  const done: Done = { md5: o.md5, storedAs: o.storedAs, bytes: o.bytes };
  if (o.upToDate) done.upToDate = true;
  if (o.failed !== undefined) {
    if (
      !Array.isArray(o.failed) || o.failed.length > 1024 ||
      !o.failed.every((f) =>
        Array.isArray(f) && f.length === 2 && isCount(f[0]) && typeof f[1] === "string" &&
        f[1].length <= 1024
      )
    ) {
      throw new ProtocolError("Done message lists its failed files wrongly");
    }
    // Shown to the user: control and bidirectional characters become `?`.
    done.failed = (o.failed as [number, string][]).map(([i, why]) => [i, printable(why)]);
  }
  if (o.md5s !== undefined) {
    if (
      !Array.isArray(o.md5s) || o.md5s.length > 1024 ||
      !o.md5s.every((m) => m === "" || (typeof m === "string" && MD5_HEX.test(m)))
    ) {
      throw new ProtocolError("Done message lists its files' MD5s wrongly");
    }
    done.md5s = o.md5s as string[];
  }
  return done;
}
