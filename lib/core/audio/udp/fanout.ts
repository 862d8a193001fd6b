/**
 * The Audio-UDP server's fan-out, with no I/O: how a stream is cut (the
 * fragment size that leaves room for a datagram's check or tag, the FEC
 * plan), and for each captured block the datagrams every listener is sent:
 * its fragments, each with a CRC32C check (plain) or sealed under the
 * stream key (with a code), then, after a group's last block, the group's
 * Reed-Solomon repairs, checked or sealed the same way.
 *
 * @module
 */
import { UsageError } from "../../errors.ts";
import { fragmentBlock, fragmentCount, MAX_FRAGMENTS, MAX_MTU, MIN_MTU } from "./datagrams.ts";
import { DATA_TAG, sealData, sealRepair } from "./secure.ts";
import { addCheck, CHECK_LENGTH } from "../stages/datagram_check.ts";
import { type FecBlock, FecEncoder } from "../stages/fec.ts";
import { type FecChoice, type FecPlan, planFec } from "../stages/fec_plan.ts";

/** Checks an `--mtu` value against a block size. */
export function checkMtu(mtu: number, blockBytes: number): number {
  if (!Number.isInteger(mtu) || mtu < MIN_MTU || mtu > MAX_MTU) {
    throw new UsageError(`--mtu ${mtu} is outside ${MIN_MTU} to ${MAX_MTU} bytes`);
  }
  if (fragmentCount(blockBytes, mtu) > MAX_FRAGMENTS) {
    throw new UsageError(
      `--mtu ${mtu} would split each block into over ${MAX_FRAGMENTS} datagrams`,
    );
  }
  return mtu;
}

/** How a stream's blocks are cut into datagrams. */
export interface UdpCut extends FecPlan {
  /** The MTU fragments are cut for: the datagram's MTU less its check or tag. */
  cut: number;
}

/**
 * The cut for blocks of `blockBytes` at `mtu`: with a code, each DATA
 * datagram carries a tag; without, a check (`datagram_check.ts`): the
 * fragments are cut that much smaller, so that sealed or checked
 * datagrams still fit the MTU.
 */
export function planCut(blockBytes: number, mtu: number, sealed: boolean, fec: FecChoice): UdpCut {
  checkMtu(mtu, blockBytes);
  const cut = checkMtu(mtu - (sealed ? DATA_TAG : CHECK_LENGTH), blockBytes);
  return { cut, ...planFec(blockBytes, cut, fec) };
}

/** Options of {@link UdpFanout}. */
export interface UdpFanoutOptions {
  /** The stream's id. */
  streamId: number;
  /** Bytes in one block. */
  blockBytes: number;
  /** How blocks are cut ({@link planCut}). */
  cut: UdpCut;
  /** With a code: the stream key every datagram is sealed under. */
  streamKey?: Uint8Array;
}

/** Turns each captured block into the datagrams every listener gets (made once). */
export class UdpFanout {
  #o: UdpFanoutOptions;
  #encoder: FecEncoder | null;
  #seal: (d: Uint8Array) => Uint8Array;
  #sealRepair: (d: Uint8Array) => Uint8Array;

  /** A fan-out for one stream. */
  constructor(options: UdpFanoutOptions) {
    this.#o = options;
    const { cut, streamId, blockBytes, streamKey } = options;
    this.#encoder = cut.fec && new FecEncoder(streamId, cut.fec, cut.fragments, blockBytes);
    this.#seal = streamKey ? (d) => sealData(streamKey, d) : addCheck;
    this.#sealRepair = streamKey ? (d) => sealRepair(streamKey, d) : addCheck;
  }

  /** Repair datagrams made so far. */
  get repairsMade(): number {
    return this.#encoder?.repairsMade ?? 0;
  }

  /** The next captured block's fragments, each checked or sealed: sent first. */
  fragments(b: FecBlock): Uint8Array[] {
    const { streamId, cut } = this.#o;
    return fragmentBlock(streamId, b.seq, b.captured, b.digest, b.bytes, cut.cut, cut.fragments)
      .map(this.#seal);
  }

  /**
   * The block's repairs, checked or sealed: after a group's last block the
   * group's, else none. Asked for after the block's fragments went out, so
   * that making them never delays the block; every block is passed here
   * once, in order.
   */
  repairs(b: FecBlock): Uint8Array[] {
    return (this.#encoder?.push(b) ?? []).map(this.#sealRepair);
  }
}
