/**
 * Forward error correction for Audio-UDP, with no I/O: the server's
 * {@link FecEncoder} makes Reed-Solomon repair fragments for each group of
 * consecutive blocks, and the client's {@link FecDecoder} rebuilds lost
 * fragments from any `k` of a group's `k + m` fragments.
 *
 * A group is `blocks` consecutive blocks (block numbers `g·blocks` up to
 * `g·blocks + blocks − 1`), so its `k = blocks × fragments` DATA fragments
 * are the code's sources. Each source symbol is a fragment as the DATA
 * datagram carries it: the block's capture time (8 bytes) and MD5 (16
 * bytes), then the fragment's bytes padded with zeros to the fragment size.
 * So a block whose every fragment was lost comes back whole, its header
 * too. Repairs go out right after the group's last block; a rebuilt
 * fragment enters reassembly like a received one, and the block it
 * completes is checked against its MD5 like any other: recovery never
 * plays bytes that fail it.
 *
 * ```text
 * REPAIR (server → client):
 *   0 magic "SU"  2 version  3 type=17
 *   4 stream id u32   8 first block of the group u32
 *   12 blocks in the group u8   13 sources k u8   14 repairs m u8   15 repair index u8
 *   16 the repair symbol (24 + fragment size bytes)
 * ```
 *
 * A REPAIR datagram is as long as a full DATA datagram, so it respects
 * `--mtu`, and with a code it is sealed like one.
 *
 * @module
 */
import { ReedSolomon } from "../../wire/reed_solomon.ts";
import { MD5_LENGTH } from "../../crypto/md5.ts";
import {
  datagramType,
  type FecParams,
  type Fragment,
  newDatagram,
  pieceSize,
  type Rejected,
  UdpMsg,
} from "../udp/datagrams.ts";

export {
  DEFAULT_FEC,
  describeFec,
  type FecChoice,
  type FecPlan,
  parseFec,
  planFec,
} from "./fec_plan.ts";

/** Bytes before the symbol in a REPAIR datagram. */
export const REPAIR_HEADER = 16;
/** Bytes of a DATA header a symbol carries: the capture time and the block's MD5. */
const SYMBOL_HEAD = 8 + MD5_LENGTH;

/** A decoded REPAIR datagram. */
export interface RepairFragment {
  /** Random id of the server's capture. */
  streamId: number;
  /** First block of the group. */
  first: number;
  /** Blocks in the group. */
  blocks: number;
  /** Source fragments in the group (k). */
  sources: number;
  /** Repair fragments in the group (m). */
  repairs: number;
  /** Which repair this is, 0 to m − 1. */
  index: number;
  /** The repair symbol. A view into the datagram. */
  symbol: Uint8Array;
}

/** The first block of the group `seq` belongs to. */
export function groupStart(seq: number, blocks: number): number {
  return seq - (seq % blocks);
}

/** Encodes a REPAIR datagram. */
export function encodeRepair(r: Omit<RepairFragment, "symbol">, symbol: Uint8Array): Uint8Array {
  const d = newDatagram(UdpMsg.REPAIR, REPAIR_HEADER + symbol.length);
  const v = new DataView(d.buffer);
  v.setUint32(4, r.streamId >>> 0);
  v.setUint32(8, r.first >>> 0);
  d[12] = r.blocks;
  d[13] = r.sources;
  d[14] = r.repairs;
  d[15] = r.index;
  d.set(symbol, REPAIR_HEADER);
  return d;
}

/** Decodes a REPAIR datagram, or says why it is refused. */
export function decodeRepair(d: Uint8Array): RepairFragment | Rejected {
  if (datagramType(d) !== UdpMsg.REPAIR) return { rejected: "not a repair datagram" };
  if (d.length <= REPAIR_HEADER + SYMBOL_HEAD) return { rejected: "repair datagram too short" };
  const v = new DataView(d.buffer, d.byteOffset, d.length);
  const r = {
    streamId: v.getUint32(4),
    first: v.getUint32(8),
    blocks: d[12],
    sources: d[13],
    repairs: d[14],
    index: d[15],
    symbol: d.subarray(REPAIR_HEADER),
  };
  // Sources and repairs together fit GF(256): k + m ≤ 256, so each fits a byte.
  if (r.blocks === 0 || r.sources === 0 || r.repairs === 0 || r.index >= r.repairs) {
    return { rejected: `repair ${r.index} of ${r.repairs} over ${r.blocks} blocks is impossible` };
  }
  return r;
}

/** A block as the encoder needs it (a `StreamBlock` fits). */
export interface FecBlock {
  /** Block sequence number. */
  seq: number;
  /** Capture time, ms. */
  captured: number;
  /** The block's MD5. */
  digest: Uint8Array;
  /** The block's bytes. */
  bytes: Uint8Array;
}

/** The code's shape for one stream. */
interface Shape {
  k: number;
  m: number;
  fragments: number;
  blockBytes: number;
  piece: number;
  size: number;
}

function shape(fec: FecParams, fragments: number, blockBytes: number): Shape {
  const piece = pieceSize(blockBytes, fragments);
  return {
    k: fec.blocks * fragments,
    m: fec.repair,
    fragments,
    blockBytes,
    piece,
    size: SYMBOL_HEAD + piece,
  };
}

/** Writes the symbol of fragment `index` of a block into `out` (zeroed). */
function writeSymbol(out: Uint8Array, s: Shape, b: FecBlock, index: number): void {
  new DataView(out.buffer, out.byteOffset, 8).setFloat64(0, b.captured);
  out.set(b.digest, 8);
  const from = index * s.piece;
  out.set(b.bytes.subarray(from, Math.min(b.bytes.length, from + s.piece)), SYMBOL_HEAD);
}

/** Makes each group's repair fragments on the server. */
export class FecEncoder {
  /** Repair datagrams made so far. */
  repairsMade = 0;
  #streamId: number;
  #fec: FecParams;
  #s: Shape;
  #rs: ReedSolomon;
  #start: number | undefined;
  #sources: Uint8Array[];
  #filled = 0;

  /** An encoder for one stream. */
  constructor(streamId: number, fec: FecParams, fragments: number, blockBytes: number) {
    this.#streamId = streamId;
    this.#fec = fec;
    this.#s = shape(fec, fragments, blockBytes);
    this.#rs = new ReedSolomon(this.#s.k, this.#s.m);
    this.#sources = Array.from({ length: this.#s.k }, () => new Uint8Array(this.#s.size));
  }

  /**
   * Takes the next block; returns the group's REPAIR datagrams (plain)
   * when it is the group's last, else none. A group missing a block (the
   * capture skipped one) gets no repairs.
   */
  push(b: FecBlock): Uint8Array[] {
    const { blocks } = this.#fec;
    const start = groupStart(b.seq, blocks);
    if (start !== this.#start) {
      this.#start = start;
      this.#filled = 0;
    }
    const pos = b.seq - start;
    if (pos !== this.#filled) return []; // a block skipped: this group goes without
    const s = this.#s;
    for (let i = 0; i < s.fragments; i++) {
      const sym = this.#sources[pos * s.fragments + i];
      sym.fill(0);
      writeSymbol(sym, s, b, i);
    }
    this.#filled++;
    if (this.#filled < blocks || start + blocks - 1 > 0xffffffff) return [];
    const out: Uint8Array[] = [];
    for (let j = 0; j < s.m; j++) {
      out.push(encodeRepair({
        streamId: this.#streamId,
        first: start,
        blocks,
        sources: s.k,
        repairs: s.m,
        index: j,
      }, this.#rs.repair(this.#sources, j, s.size)));
    }
    this.repairsMade += out.length;
    return out;
  }
}

/** What a decoder counts. */
export interface FecCounters {
  /** Repair datagrams accepted. */
  repairs: number;
  /** Bytes of the repair datagrams accepted. */
  repairBytes: number;
  /** Repair datagrams refused (wrong stream, shape or size). */
  refused: number;
  /** Fragments rebuilt. */
  rebuilt: number;
  /** Groups that lost more than their repairs could rebuild. */
  unrecoverable: number;
  /** Blocks that failed their MD5 and were rebuilt without a damaged fragment (a trial). */
  trialRebuilt: number;
}

/** A fresh set of {@link FecCounters}, all zero. */
export function newFecCounters(): FecCounters {
  return { repairs: 0, repairBytes: 0, refused: 0, rebuilt: 0, unrecoverable: 0, trialRebuilt: 0 };
}

interface Group {
  start: number;
  symbols: (Uint8Array | null)[];
  have: number;
  sources: number;
  /** Blocks of the group that failed their MD5, waiting for a trial rebuild. */
  suspects?: Map<number, BlockCheck>;
}

/** Whether a block put together from `bytes` with this header passes its MD5. */
export type BlockCheck = (
  seq: number,
  captured: number,
  digest: Uint8Array,
  bytes: Uint8Array,
) => boolean;

/** Rebuilds lost fragments on the client, in bounded memory. */
export class FecDecoder {
  /** What the decoder has seen (shared with earlier ones when passed in). */
  readonly counters: FecCounters;
  #streamId: number;
  #fec: FecParams;
  #s: Shape;
  #rs: ReedSolomon;
  #maxGroups: number;
  #groups = new Map<number, Group>();
  /** Groups decoded (or whole), kept a while for trial rebuilds. */
  #kept = new Map<number, Group>();
  #decided = new Set<number>();
  #decidedOrder: number[] = [];

  /**
   * A decoder for one stream: its id, FEC parameters, fragments per block
   * and block size. At most `maxGroups` groups are held at once; `counters`
   * are counted into (kept across a stream restart).
   */
  constructor(
    streamId: number,
    fec: FecParams,
    fragments: number,
    blockBytes: number,
    maxGroups = 8,
    counters: FecCounters = newFecCounters(),
  ) {
    this.counters = counters;
    this.#streamId = streamId;
    this.#fec = fec;
    this.#s = shape(fec, fragments, blockBytes);
    this.#rs = new ReedSolomon(this.#s.k, this.#s.m);
    this.#maxGroups = maxGroups;
  }

  /** Groups held now. */
  get groups(): number {
    return this.#groups.size;
  }

  /** Takes a received DATA fragment; returns the fragments this lets it rebuild. */
  source(f: Fragment): Fragment[] {
    const s = this.#s;
    if (f.streamId !== this.#streamId || f.count !== s.fragments || f.recovered) return [];
    const start = groupStart(f.seq, this.#fec.blocks);
    const g = this.#group(start) ?? this.#kept.get(start);
    if (!g) return [];
    const i = (f.seq - start) * s.fragments + f.index;
    if (g.symbols[i]) return [];
    const sym = new Uint8Array(s.size);
    writeSymbol(sym, s, { seq: f.seq, captured: f.captured, digest: f.digest, bytes: f.data }, 0);
    g.symbols[i] = sym;
    g.have++;
    g.sources++;
    return this.#kept.has(start) ? this.#trial(g) : this.#tryDecode(g);
  }

  /**
   * Block `seq` failed its MD5 after reassembly: a fragment of its group
   * was damaged in a way nothing caught. When the group has a symbol to
   * spare, the block is rebuilt without each received symbol in turn, and
   * the first rebuild that passes `check` is returned (its fragments, to
   * reassemble); else the block waits for more of its group's symbols.
   */
  suspect(seq: number, check: BlockCheck): Fragment[] {
    const start = groupStart(seq, this.#fec.blocks);
    const g = this.#groups.get(start) ?? this.#kept.get(start);
    if (!g) return [];
    (g.suspects ??= new Map()).set(seq, check);
    return this.#trial(g);
  }

  /** Trial rebuilds of a group's suspect blocks, each without one symbol. */
  #trial(g: Group): Fragment[] {
    const s = this.#s;
    if (!g.suspects?.size || g.have <= s.k) return [];
    for (const [seq, check] of g.suspects) {
      for (let j = 0; j < g.symbols.length; j++) {
        if (!g.symbols[j]) continue;
        const trial = g.symbols.slice();
        trial[j] = null;
        const frags = this.#blockOf(g, seq, trial, check);
        if (!frags) continue;
        g.suspects.delete(seq);
        this.counters.trialRebuilt++;
        return frags;
      }
    }
    return [];
  }

  /** Block `seq` rebuilt from `symbols` if that passes `check`, else null. */
  #blockOf(g: Group, seq: number, symbols: (Uint8Array | null)[], check: BlockCheck) {
    const s = this.#s;
    const rebuilt = this.#rs.decode(symbols, s.size);
    if (!rebuilt) return null;
    const first = (seq - g.start) * s.fragments;
    const syms = Array.from(
      { length: s.fragments },
      (_, x) => symbols[first + x] ?? rebuilt.get(first + x)!,
    );
    const head = syms[0];
    const captured = new DataView(head.buffer, head.byteOffset, 8).getFloat64(0);
    const digest = head.subarray(8, SYMBOL_HEAD);
    const bytes = new Uint8Array(s.blockBytes);
    for (let x = 0; x < s.fragments; x++) {
      const at = x * s.piece;
      bytes.set(
        syms[x].subarray(SYMBOL_HEAD, SYMBOL_HEAD + Math.min(s.piece, s.blockBytes - at)),
        at,
      );
    }
    if (!Number.isFinite(captured) || !check(seq, captured, digest, bytes)) return null;
    return syms.map((_, x) => this.#fragment(g, first + x, captured, digest, bytes));
  }

  /** Fragment `i` of a group, cut from its block's bytes, marked rebuilt. */
  #fragment(
    g: Group,
    i: number,
    captured: number,
    digest: Uint8Array,
    bytes: Uint8Array,
  ): Fragment {
    const s = this.#s;
    const index = i % s.fragments;
    const at = index * s.piece;
    return {
      streamId: this.#streamId,
      seq: (g.start + Math.floor(i / s.fragments)) >>> 0,
      index,
      count: s.fragments,
      captured,
      digest,
      data: bytes.subarray(at, Math.min(s.blockBytes, at + s.piece)),
      recovered: true,
    };
  }

  /**
   * Takes a REPAIR datagram's contents; returns the fragments it lets the
   * decoder rebuild, or a {@link Rejected} when it cannot belong to this
   * stream (counted refused).
   */
  repair(r: RepairFragment, bytes: number): Fragment[] | Rejected {
    const s = this.#s;
    if (
      r.streamId !== this.#streamId || r.blocks !== this.#fec.blocks || r.sources !== s.k ||
      r.repairs !== s.m || r.symbol.length !== s.size || r.first % this.#fec.blocks !== 0
    ) {
      this.counters.refused++;
      return { rejected: "repair datagram does not fit this stream's FEC" };
    }
    this.counters.repairs++;
    this.counters.repairBytes += bytes;
    const g = this.#group(r.first) ?? this.#kept.get(r.first);
    if (!g) return [];
    const i = s.k + r.index;
    if (g.symbols[i]) return [];
    g.symbols[i] = r.symbol.slice();
    g.have++;
    return this.#kept.has(r.first) ? this.#trial(g) : this.#tryDecode(g);
  }

  /** Blocks before `seq` are played or given up: groups wholly before it are dropped. */
  setFloor(seq: number): void {
    for (const [start, g] of this.#groups) {
      if (((seq - (start + this.#fec.blocks)) | 0) >= 0) this.#drop(start, g);
    }
    for (const start of this.#kept.keys()) {
      if (((seq - (start + this.#fec.blocks)) | 0) >= 0) this.#kept.delete(start);
    }
  }

  /** The group starting at `start`, made if new; null if already decided. */
  #group(start: number): Group | null {
    if (this.#decided.has(start)) return null;
    let g = this.#groups.get(start);
    if (!g) {
      if (this.#groups.size >= this.#maxGroups) {
        const [oldest, og] = this.#groups.entries().next().value!;
        this.#drop(oldest, og);
      }
      g = { start, symbols: new Array(this.#s.k + this.#s.m).fill(null), have: 0, sources: 0 };
      this.#groups.set(start, g);
    }
    return g;
  }

  /** Forgets a group not decoded; if it lost sources, it was beyond repair. */
  #drop(start: number, g: Group): void {
    this.#groups.delete(start);
    if (g.sources < this.#s.k) this.counters.unrecoverable++;
    this.#decide(start);
  }

  #decide(start: number): void {
    this.#decided.add(start);
    this.#decidedOrder.push(start);
    if (this.#decidedOrder.length > this.#maxGroups * 4) {
      this.#decided.delete(this.#decidedOrder.shift()!);
    }
  }

  #tryDecode(g: Group): Fragment[] {
    const s = this.#s;
    if (g.have < s.k) return [];
    this.#groups.delete(g.start);
    this.#decide(g.start);
    // Kept a while: a block that fails its MD5 may yet be rebuilt without a damaged symbol.
    this.#kept.set(g.start, g);
    if (this.#kept.size > this.#maxGroups) this.#kept.delete(this.#kept.keys().next().value!);
    if (g.sources === s.k) return this.#trial(g);
    const rebuilt = this.#rs.decode(g.symbols, s.size)!;
    const out: Fragment[] = [];
    for (const [i, sym] of rebuilt) {
      const index = i % s.fragments;
      const last = index === s.fragments - 1;
      const length = last ? s.blockBytes - s.piece * (s.fragments - 1) : s.piece;
      const captured = new DataView(sym.buffer, sym.byteOffset, 8).getFloat64(0);
      if (!Number.isFinite(captured)) continue;
      out.push({
        streamId: this.#streamId,
        seq: (g.start + Math.floor(i / s.fragments)) >>> 0,
        index,
        count: s.fragments,
        captured,
        digest: sym.subarray(8, SYMBOL_HEAD),
        data: sym.subarray(SYMBOL_HEAD, SYMBOL_HEAD + length),
        recovered: true,
      });
    }
    this.counters.rebuilt += out.length;
    return out;
  }
}
