/**
 * What `--fec` asks for and how a server cuts its blocks and protects them
 * (`fec.ts` has the code itself). No I/O.
 *
 * @module
 */
import { UsageError } from "../../errors.ts";
import {
  type FecParams,
  fragmentCount,
  MAX_FEC_BLOCKS,
  piecesFit,
  pieceSize,
} from "../udp/datagrams.ts";

/** What `--fec` asks for: none, or groups of `blocks` blocks with `percent` repairs. */
export type FecChoice = "off" | { blocks: number; percent: number };

/** The default: groups of two blocks, repairs half as many as the sources. */
export const DEFAULT_FEC: FecChoice = { blocks: 2, percent: 50 };

/** Sources per group the default plan aims at (finer pieces repair finer losses). */
const AIM_SOURCES = 8;
/** Smallest fragment the plan cuts a block into, bytes, so headers stay a small share. */
const MIN_PIECE = 256;

/**
 * Parses `--fec`: `off`, `on` (the default), or `BLOCKS:PERCENT` (a group
 * of BLOCKS blocks, repairs PERCENT% of its fragments, e.g. `3:33`).
 */
export function parseFec(text: string): FecChoice {
  const t = text.trim().toLowerCase();
  if (t === "off" || t === "none") return "off";
  if (t === "on" || t === "" || t === "auto") return DEFAULT_FEC;
  const m = /^(\d+):(\d+)%?$/.exec(t);
  const blocks = m ? Number(m[1]) : NaN;
  const percent = m ? Number(m[2]) : NaN;
  if (!(blocks >= 1 && blocks <= MAX_FEC_BLOCKS && percent >= 1 && percent <= 200)) {
    throw new UsageError(
      `--fec ${text} is not off, on or BLOCKS:PERCENT (1 to ${MAX_FEC_BLOCKS} blocks, 1 to 200%)`,
    );
  }
  return { blocks, percent };
}

/** How a server cuts its blocks and protects them. */
export interface FecPlan {
  /** Fragments per block. */
  fragments: number;
  /** The FEC parameters, or null for none. */
  fec: FecParams | null;
}

/**
 * Fragments per block and FEC parameters for blocks of `bytes` at `mtu`.
 * Without FEC a block is cut as the MTU needs; with it, finer when that
 * gives a group fewer than eight sources (a lost datagram then costs less
 * of the group), never into pieces under 256 bytes.
 */
export function planFec(bytes: number, mtu: number, choice: FecChoice): FecPlan {
  const least = fragmentCount(bytes, mtu);
  if (choice === "off") return { fragments: least, fec: null };
  let fragments = Math.max(least, Math.ceil(AIM_SOURCES / choice.blocks));
  while (fragments > least && pieceSize(bytes, fragments) < MIN_PIECE) fragments--;
  while (fragments > least && !piecesFit(bytes, fragments, mtu)) fragments--;
  const k = choice.blocks * fragments;
  const repair = Math.min(256 - k, Math.max(1, Math.round((k * choice.percent) / 100)));
  if (repair < 1) {
    throw new UsageError(
      `--fec ${choice.blocks} blocks of ${fragments} fragments leave no room for repairs; use fewer blocks`,
    );
  }
  return { fragments, fec: { scheme: "rs-gf256", blocks: choice.blocks, repair } };
}

/** The FEC parameters in a few words, for logs and reports. */
export function describeFec(fec: FecParams | null | undefined, fragments: number): string {
  if (!fec) return "no FEC";
  const k = fec.blocks * fragments;
  return `Reed-Solomon FEC: ${fec.repair} repairs per ${k} fragments (${fec.blocks} blocks), ` +
    `${Math.round((fec.repair / k) * 100)}% overhead`;
}
