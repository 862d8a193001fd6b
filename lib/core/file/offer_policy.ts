/**
 * The File-TCP server's offer policy, with no I/O: what an offer may be
 * (its size limit, its names), whether an `--update` offer is asked for
 * proof and what a proof proves, which partial a transfer resumes, and the
 * mode a stored file is given. The digest book's answer comes in as data;
 * the shell touches the disk.
 *
 * ```text
 * OFFER ─▶ planOffer (size, names) ─▶ [shell places a folder entry]
 *   update and the book holds it and the host has misses left?
 *     ├─ no ─────────────────────────────▶ accept (partialFor)
 *     ├─ proof with the offer ─▶ judgeProof ─▶ up to date | accept
 *     └─ CHALLENGE ─▶ PROOF ─▶ judgeProof ─▶ up to date | accept
 * ```
 *
 * @module
 */
import { createHash } from "node:crypto";
import { UserError } from "../errors.ts";
import { formatBytes } from "../report/format.ts";
import type { Offer } from "./messages.ts";
import { receivedName, safeBaseName, safeRelativePath } from "./names.ts";
import { decodePack } from "./pack.ts";
import { sameProof } from "./proof.ts";
import { storedMode } from "./disk_policy.ts";

/** The server's limits on offers. */
export interface OfferLimits {
  /** Largest file accepted, in bytes. */
  maxSize: number;
  /** Replace an existing received file instead of keeping both. */
  overwrite: boolean;
}

/** What the shell does with an offer before it is accepted. */
export interface OfferPlan {
  /** The offer's base name, safe to store under. */
  base: string;
  /** Whether an existing received file (or folder) is reused: overwrite, or an update. */
  reuse: boolean;
  /** A folder entry's path below its folder, checked: the shell places it. */
  parts?: string[];
  /** The entry is a folder. */
  isDir: boolean;
}

/** The name a transfer is logged by: its path in its folder, or a pack, or its name. */
export function offerLabel(offer: Offer): string {
  return offer.path
    ? [offer.name, ...offer.path].join("/")
    : offer.kind === "pack"
    ? `${offer.name} (a pack of small files)`
    : offer.name;
}

/**
 * Checks an offer against the server's limits and names: throws
 * {@link UserError} for a file over the size limit or an unsafe name.
 */
export function planOffer(offer: Offer, limits: OfferLimits): OfferPlan {
  const base = safeBaseName(offer.name);
  if (offer.size > limits.maxSize) {
    throw new UserError(
      `File is ${formatBytes(offer.size)}, over the server's limit of ${
        formatBytes(limits.maxSize)
      }`,
    );
  }
  return {
    base,
    reuse: limits.overwrite || !!offer.update,
    parts: offer.path ? safeRelativePath(offer.path) : undefined,
    isDir: offer.kind === "dir",
  };
}

/** Where an offer's file is stored, relative to DIR: its folder entry's place, or `received-NAME`. */
export function storedPath(plan: OfferPlan, entry: string | undefined): string {
  return entry ?? receivedName(plan.base);
}

/** What to do with an offer once placed. */
export type UpdateStep = "accept" | "check-proof" | "challenge";

/**
 * An offer's next step: an `--update` offer of a file the digest book
 * holds at its place with its size (`claimable`: and its host has misses
 * left) is skipped only for a client that proves it holds the same
 * content, with its offer (a small file, once the client knows the salt)
 * or when challenged; anything else is accepted.
 */
export function updateStep(offer: Offer, claimable: boolean): UpdateStep {
  if (!offer.update || !claimable) return "accept";
  return offer.proof !== undefined ? "check-proof" : "challenge";
}

/** What a proof proves. */
export type ProofVerdict = "up-to-date" | "miss" | "unknown";

/**
 * Judges the client's proof against `expected`, the salted digest of the
 * stored file (null when it could not be made), with `stillStored` false
 * when the stored file changed meanwhile: nothing to compare with is
 * `unknown` (accepted, not a miss); a mismatch is a `miss`, counted
 * against the host.
 */
export function judgeProof(
  expected: string | null,
  stillStored: boolean,
  proof: string,
): ProofVerdict {
  if (expected === null || !stillStored) return "unknown";
  return sameProof(expected, proof) ? "up-to-date" : "miss";
}

/** A stored file's identity, as the digest book records it. */
export interface StoredIdentity {
  ino: number;
  dev: number;
  mtimeMs: number;
}

/** Whether the book's entry now is the one asked about before (the same file, unchanged). */
export function sameStored(before: StoredIdentity, now: StoredIdentity | undefined): boolean {
  return now !== undefined && now.ino === before.ino && now.dev === before.dev &&
    now.mtimeMs === before.mtimeMs;
}

/**
 * The mode to give a file found up to date, from the sender's (masked), or
 * undefined when none was sent or it has it already (`current`, from lstat).
 */
export function modeToSet(offer: Offer, current: number): number | undefined {
  const mode = offer.mode === undefined ? undefined : storedMode(offer.mode, false);
  return mode !== undefined && (current & 0o7777) !== mode ? mode : undefined;
}

/** Which partial an offer resumes: the token, and whether it names the partial itself. */
export interface PartialChoice {
  /** The token to resume by, if any. */
  resume: string | undefined;
  /** The partial is named by the entry (a new one takes that name). */
  named: boolean;
}

/**
 * A folder entry's (or an update's) partial is named by its path, size
 * and time, so that a cut one resumes when it is offered again; any other
 * offer resumes by the token the server gave.
 */
export function partialFor(offer: Offer): PartialChoice {
  const named = offer.resume === undefined && offer.mtime !== undefined;
  return { resume: named ? entryToken(offer) : offer.resume, named };
}

/** The token that names a folder entry's partial: its path, size, time and chunk size. */
export function entryToken(offer: Offer): string {
  const key = JSON.stringify([offer.name, offer.path, offer.size, offer.mtime, offer.chunkSize]);
  return createHash("sha256").update("file-tcp entry\0" + key).digest("hex").slice(0, 32);
}

/**
 * One file of a verified pack, as the server stores it: its path checked
 * (`parts`) and where its bytes lie in the pack, or why its path is
 * refused. `name` is its path in its folder, for messages.
 */
export type PackEntry =
  & { index: number; name: string }
  & (
    | { parts: string[]; mode?: number; start: number; end: number }
    | { refused: unknown }
  );

/**
 * The files of a verified pack offered as `name`: each path checked on its
 * own (a bad one refuses only its file). Throws a `ProtocolError` for
 * a pack that is not one.
 */
export function packEntries(data: Uint8Array, name: string): PackEntry[] {
  return decodePack(data).map((f, index): PackEntry => {
    const entry = { index, name: [name, ...f.path].join("/") };
    try {
      const start = f.data.byteOffset - data.byteOffset;
      return {
        ...entry,
        parts: safeRelativePath(f.path),
        mode: f.mode,
        start,
        end: start + f.data.length,
      };
    } catch (err) {
      return { ...entry, refused: err };
    }
  });
}
