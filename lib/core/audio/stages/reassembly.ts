/**
 * Reassembly of blocks from Audio-UDP fragments, in bounded memory. No I/O.
 * Duplicate fragments are ignored, fragments of blocks already played (or
 * given up) are dropped, fragments that cannot belong to this stream
 * (wrong count or size) are counted invalid, and a complete block's MD5 is
 * checked over the whole, header included.
 *
 * A fragment's header is not trusted until its block verifies: fragments
 * are gathered by sequence number, capture time and MD5 together, so a
 * fragment whose header was damaged on the way starts a block of its own
 * (which fails its check) and never spoils the real block it names. Only a
 * block that verifies marks its number done; the oldest partial block
 * gathered is dropped first when too many are held.
 *
 * @module
 */
import { bytesEqual } from "../../crypto/md5.ts";
import { type BlockContext, blockDigest } from "../format/block_digest.ts";
import { blockBytes } from "../format/spec.ts";
import { before } from "./sequence.ts";
import { type Fragment, fragmentCount, pieceSize } from "../udp/datagrams.ts";

/** A block put back together. */
export interface AssembledBlock {
  /** Block sequence number. */
  seq: number;
  /** Capture time of the block's first sample, ms since the epoch. */
  captured: number;
  /** Whether the block's MD5 (over its header and samples) matched. */
  intact: boolean;
  /** Whether a fragment of it was rebuilt from repair data (`fec.ts`). */
  recovered?: boolean;
  /** The block's samples. */
  samples: Int16Array;
}

/** Counters a reassembler keeps. */
export interface ReassemblyCounters {
  /** Fragments accepted (new, valid). */
  fragments: number;
  /** Fragments already held, or of a block already complete. */
  duplicates: number;
  /** Fragments of blocks already played or given up. */
  expired: number;
  /** Fragments that cannot belong to this stream. */
  invalid: number;
  /** Incomplete blocks dropped to keep memory bounded. */
  evicted: number;
}

interface Partial {
  captured: number;
  digest: Uint8Array;
  have: Uint8Array;
  received: number;
  recovered: boolean;
  bytes: Uint8Array;
}

/** A fresh set of {@link ReassemblyCounters}, all zero. */
export function newReassemblyCounters(): ReassemblyCounters {
  return { fragments: 0, duplicates: 0, expired: 0, invalid: 0, evicted: 0 };
}

/** Puts blocks back together from fragments. */
export class Reassembler {
  /** What the reassembler has seen (shared with earlier ones when passed in). */
  readonly counters: ReassemblyCounters;
  #context: BlockContext;
  #blockBytes: number;
  #size: number;
  #count: number;
  #maxInFlight: number;
  #partials = new Map<string, Partial & { seq: number }>();
  #done = new Set<number>();
  #doneOrder: number[] = [];
  #floor: number | undefined;

  /**
   * Creates a reassembler for one stream's format.
   *
   * @param context The stream: its id and format (the block MD5 covers them).
   * @param mtu The stream's MTU (sets the fragment size and count).
   * @param maxInFlight Most incomplete blocks held at once (default 64).
   * @param counters Counters to keep counting into (across a stream restart).
   * @param fragments Fragments per block, when the format names it.
   */
  constructor(
    context: BlockContext,
    mtu: number,
    maxInFlight = 64,
    counters: ReassemblyCounters = newReassemblyCounters(),
    fragments?: number,
  ) {
    this.counters = counters;
    this.#context = context;
    this.#blockBytes = blockBytes(context);
    this.#count = fragments ?? fragmentCount(this.#blockBytes, mtu);
    this.#size = pieceSize(this.#blockBytes, this.#count);
    this.#maxInFlight = maxInFlight;
  }

  /** Fragments per block in this stream. */
  get fragmentsPerBlock(): number {
    return this.#count;
  }

  /** Whether block `seq` was put together and verified (and is still remembered). */
  done(seq: number): boolean {
    return this.#done.has(seq);
  }

  /** Incomplete blocks held now. */
  get inFlight(): number {
    return this.#partials.size;
  }

  /**
   * Blocks before `seq` are no longer wanted (played or concealed): their
   * partial data is dropped and later fragments of them count as expired.
   */
  setFloor(seq: number): void {
    this.#floor = seq;
    for (const [key, p] of this.#partials) {
      if (before(p.seq, seq)) this.#partials.delete(key);
    }
  }

  /** Takes one fragment; returns the block it completes, if any. */
  push(f: Fragment): AssembledBlock | null {
    const c = this.counters;
    const last = f.index === this.#count - 1;
    const expected = last ? this.#blockBytes - this.#size * (this.#count - 1) : this.#size;
    if (f.count !== this.#count || f.data.length !== expected) {
      c.invalid++;
      return null;
    }
    if (this.#floor !== undefined && before(f.seq, this.#floor)) {
      c.expired++;
      return null;
    }
    if (this.#done.has(f.seq)) {
      c.duplicates++;
      return null;
    }
    // Eight bytes of the MD5 tell copies apart; were two damaged copies to
    // share them, the block they make fails its check, as it would anyway.
    const d = f.digest;
    const a = (d[0] << 24) | (d[1] << 16) | (d[2] << 8) | d[3];
    const b = (d[4] << 24) | (d[5] << 16) | (d[6] << 8) | d[7];
    const key = `${f.seq}/${f.captured}/${a}/${b}`;
    let p = this.#partials.get(key);
    if (!p) {
      if (this.#partials.size >= this.#maxInFlight) this.#evictOldest();
      p = {
        seq: f.seq,
        captured: f.captured,
        digest: f.digest.slice(),
        have: new Uint8Array(this.#count),
        received: 0,
        recovered: false,
        bytes: new Uint8Array(this.#blockBytes),
      };
      this.#partials.set(key, p);
    }
    if (p.have[f.index]) {
      c.duplicates++;
      return null;
    }
    p.have[f.index] = 1;
    p.received++;
    if (f.recovered) p.recovered = true;
    else c.fragments++;
    p.bytes.set(f.data, f.index * this.#size);
    if (p.received < this.#count) return null;
    this.#partials.delete(key);
    const intact = bytesEqual(blockDigest(this.#context, f.seq, p.captured, p.bytes), p.digest);
    if (intact) {
      this.#markDone(f.seq);
      // Other candidates for this number were damaged copies.
      for (const [k, q] of this.#partials) if (q.seq === f.seq) this.#partials.delete(k);
    }
    return {
      seq: f.seq,
      captured: p.captured,
      intact,
      recovered: p.recovered,
      samples: new Int16Array(p.bytes.buffer),
    };
  }

  /** Drops the partial block gathered first (a Map keeps insertion order). */
  #evictOldest() {
    const oldest = this.#partials.keys().next();
    if (!oldest.done) {
      this.#partials.delete(oldest.value);
      this.counters.evicted++;
    }
  }

  #markDone(seq: number) {
    this.#done.add(seq);
    this.#doneOrder.push(seq);
    if (this.#doneOrder.length > this.#maxInFlight * 2) this.#done.delete(this.#doneOrder.shift()!);
  }
}
