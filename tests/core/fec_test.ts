/**
 * Forward error correction: the GF(256) field against its published
 * tables, the Reed-Solomon code at every erasure pattern it claims to
 * repair (and past them), and the Audio-UDP FEC core driven by whole
 * streams of datagrams with no sockets: random and bursty loss, a block
 * whose every fragment was lost, hostile repair datagrams, bounded memory.
 */
import assert from "node:assert/strict";
import { gfExp, gfInv, gfMul, ReedSolomon } from "../../lib/core/wire/reed_solomon.ts";
import {
  decodeRepair,
  encodeRepair,
  FecDecoder,
  FecEncoder,
  parseFec,
  planFec,
  REPAIR_HEADER,
} from "../../lib/core/audio/stages/fec.ts";
import {
  decodeFragment,
  type FecParams,
  type Fragment,
  fragmentBlock,
  isRejected,
  UdpMsg,
} from "../../lib/core/audio/udp/datagrams.ts";
import { type AssembledBlock, Reassembler } from "../../lib/core/audio/stages/reassembly.ts";
import { Broadcaster, type StreamBlock } from "../../lib/core/audio/stages/broadcaster.ts";
import { Impairment } from "../../lib/core/wire/impairment.ts";
import { TEST_FORMAT } from "../support/helpers.ts";
import { UsageError } from "../../lib/core/errors.ts";

Deno.test("GF(256) matches the published 0x11d tables (QR codes, RS(255,223))", () => {
  // Powers of the generator 2: 1, 2, 4, ... 128, then reduced by 0x11d.
  const powers = [1, 2, 4, 8, 16, 32, 64, 128, 29, 58, 116, 232, 205, 135, 19, 38];
  powers.forEach((v, n) => assert.equal(gfExp(n), v, `2^${n}`));
  assert.equal(gfExp(255), 1, "the multiplicative group has order 255");
  assert.equal(gfExp(25), 3, "log 3 is 25");
  assert.equal(gfInv(2), 0x8e);
  assert.equal(gfMul(0x80, 2), 0x1d);
  for (let a = 1; a < 256; a++) {
    assert.equal(gfMul(a, gfInv(a)), 1, `inverse of ${a}`);
    assert.equal(gfMul(a, 1), a);
    assert.equal(gfMul(a, 0), 0);
  }
  // Distributive over XOR (the field's addition), spot-checked.
  for (const [a, b, c] of [[3, 7, 200], [0x53, 0xca, 0x11], [255, 254, 1]]) {
    assert.equal(gfMul(a, b ^ c), gfMul(a, b) ^ gfMul(a, c));
  }
});

function randomSymbols(k: number, size: number, seed: number): Uint8Array[] {
  let x = seed;
  return Array.from({ length: k }, () =>
    new Uint8Array(size).map(() => {
      x = (x * 1103515245 + 12345) >>> 0;
      return x >>> 24;
    }));
}

/** Every subset of {0..n-1} of size `r`. */
function* subsets(n: number, r: number, from = 0): Generator<number[]> {
  if (r === 0) {
    yield [];
    return;
  }
  for (let i = from; i <= n - r; i++) {
    for (const rest of subsets(n, r - 1, i + 1)) yield [i, ...rest];
  }
}

Deno.test("Reed-Solomon rebuilds the sources from any k of k + m symbols, and says so past that", () => {
  for (const [k, m] of [[1, 1], [2, 1], [4, 2], [8, 4], [3, 5], [6, 3]]) {
    const rs = new ReedSolomon(k, m);
    const size = 37;
    const sources = randomSymbols(k, size, k * 31 + m);
    const repairs = rs.encode(sources, size);
    const all = [...sources, ...repairs];
    for (let lost = 1; lost <= m + 1; lost++) {
      for (const gone of subsets(k + m, lost)) {
        const symbols = all.map((s, i) => (gone.includes(i) ? null : s));
        const out = rs.decode(symbols, size);
        if (lost > m) {
          assert.equal(out, null, `${k}+${m} with ${lost} lost cannot be rebuilt`);
          continue;
        }
        assert.ok(out, `${k}+${m} losing ${gone}`);
        for (const i of gone.filter((i) => i < k)) {
          assert.deepEqual(out.get(i), sources[i], `${k}+${m} losing ${gone}: source ${i}`);
        }
        assert.equal(out.size, gone.filter((i) => i < k).length);
      }
    }
  }
  // A shorter source counts as padded with zeros.
  const rs = new ReedSolomon(2, 1);
  const r = rs.repair([new Uint8Array([1, 2, 3]), new Uint8Array([9])], 0, 3);
  const padded = rs.repair([new Uint8Array([1, 2, 3]), new Uint8Array([9, 0, 0])], 0, 3);
  assert.deepEqual(r, padded);
  assert.throws(() => new ReedSolomon(200, 57), RangeError);
  assert.throws(() => new ReedSolomon(0, 1), RangeError);
});

const FEC: FecParams = { scheme: "rs-gf256", blocks: 2, repair: 4 };
const FRAGMENTS = 4;
const MTU = 1200;
const BYTES = TEST_FORMAT.block * TEST_FORMAT.channels * 2;

/** A stream of `n` blocks as the server sends it: each block's fragments, then repairs. */
function stream(n: number, fec = FEC, fragments = FRAGMENTS) {
  const b = new Broadcaster(TEST_FORMAT);
  const enc = new FecEncoder(TEST_FORMAT.streamId, fec, fragments, BYTES);
  const blocks: StreamBlock[] = [];
  const datagrams: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const samples = new Int16Array(TEST_FORMAT.block).map((_, j) => (j * 31 + i * 977) % 20000);
    const block = b.next(samples, 1000 + i * 23.2);
    blocks.push(block);
    const id = TEST_FORMAT.streamId;
    datagrams.push(
      ...fragmentBlock(id, block.seq, block.captured, block.digest, block.bytes, MTU, fragments),
      ...enc.push(block),
    );
  }
  return { blocks, datagrams, encoder: enc };
}

/** The client's side: fragments and repairs into reassembly. Returns the blocks made. */
function receive(datagrams: Uint8Array[], fec = FEC, fragments = FRAGMENTS, maxGroups = 8) {
  const reasm = new Reassembler(TEST_FORMAT, MTU, 64, undefined, fragments);
  const dec = new FecDecoder(TEST_FORMAT.streamId, fec, fragments, BYTES, maxGroups);
  const made = new Map<number, AssembledBlock>();
  const take = (fs: Fragment[]) => {
    for (const f of fs) {
      const b = reasm.push(f);
      if (b) made.set(b.seq, b);
    }
  };
  for (const d of datagrams) {
    if (d[3] === UdpMsg.REPAIR) {
      const r = decodeRepair(d);
      assert.ok(!isRejected(r));
      const out = dec.repair(r, d.length);
      if (!isRejected(out)) take(out);
    } else {
      const f = decodeFragment(d) as Fragment;
      take([f, ...dec.source(f)]);
    }
  }
  return { made, dec };
}

Deno.test("FEC: every pattern of up to m losses in a group is rebuilt, headers and all", () => {
  const { blocks, datagrams } = stream(2);
  assert.equal(datagrams.length, 2 * FRAGMENTS + FEC.repair);
  assert.ok(datagrams.every((d) => d.length <= MTU), "repairs respect the MTU");
  const n = datagrams.length;
  for (let lost = 1; lost <= FEC.repair; lost++) {
    for (const gone of subsets(n, lost)) {
      const { made } = receive(datagrams.filter((_, i) => !gone.includes(i)));
      for (const b of blocks) {
        const got = made.get(b.seq);
        assert.ok(got?.intact, `block ${b.seq} losing ${gone}`);
        assert.deepEqual(new Uint8Array(got.samples.buffer), b.bytes);
        assert.equal(got.captured, b.captured);
        const ownLost = gone.some((i) => i >= b.seq * FRAGMENTS && i < (b.seq + 1) * FRAGMENTS);
        assert.equal(got.recovered ?? false, ownLost, `recovered flag, losing ${gone}`);
      }
    }
  }
});

Deno.test("FEC: past m losses the group is reported unrecoverable and nothing false is made", () => {
  const { blocks, datagrams } = stream(2);
  // Block 0 loses 3 fragments, block 1 one, and one repair: 5 > 4 lost.
  const gone = [0, 1, 2, 5, 8];
  const { made, dec } = receive(datagrams.filter((_, i) => !gone.includes(i)));
  assert.equal(made.has(blocks[0].seq), false, "block 0 is missing, not made up");
  assert.equal(made.has(blocks[1].seq), false);
  dec.setFloor(10);
  assert.equal(dec.counters.unrecoverable, 1);
  assert.equal(dec.counters.rebuilt, 0);
});

Deno.test("FEC: 5% and 10% random loss and bursts over a long stream, every block made is intact", () => {
  const { blocks, datagrams } = stream(2000);
  const cases = [
    { loss: 0.05, burst: 1, atLeast: 0.995 },
    { loss: 0.1, burst: 1, atLeast: 0.98 },
    { loss: 0.05, burst: 3, atLeast: 0.95 },
  ];
  for (const { loss, burst, atLeast } of cases) {
    const model = new Impairment({ loss, burst }, 7);
    const kept = datagrams.filter((d) => model.decide(d).deliveries.length > 0);
    const { made, dec } = receive(kept);
    for (const b of made.values()) assert.ok(b.intact);
    const share = made.size / blocks.length;
    assert.ok(share >= atLeast, `${loss * 100}% loss (burst ${burst}): ${share} made`);
    assert.ok(dec.counters.rebuilt > 0);
    // The plain stream would have lost a block whenever any fragment went.
    let plain = 0;
    const frags = new Map<number, number>();
    for (const d of kept) {
      if (d[3] === UdpMsg.DATA) {
        const f = decodeFragment(d) as Fragment;
        frags.set(f.seq, (frags.get(f.seq) ?? 0) + 1);
      }
    }
    for (const c of frags.values()) if (c === FRAGMENTS) plain++;
    assert.ok(made.size > plain, `recovery made ${made.size} where the plain stream had ${plain}`);
  }
});

Deno.test("FEC: hostile repair datagrams are refused and memory stays bounded", () => {
  const { blocks, datagrams } = stream(2);
  const repair = datagrams.find((d) => d[3] === UdpMsg.REPAIR)!;
  const mutate = (f: (d: Uint8Array, v: DataView) => void) => {
    const d = repair.slice();
    f(d, new DataView(d.buffer));
    return d;
  };
  assert.ok(isRejected(decodeRepair(repair.subarray(0, REPAIR_HEADER + 10))), "truncated");
  assert.ok(isRejected(decodeRepair(mutate((d) => (d[15] = 9)))), "index past the repairs");
  assert.ok(isRejected(decodeRepair(mutate((d) => (d[14] = 0)))), "no repairs");
  assert.ok(isRejected(decodeRepair(mutate((d) => (d[12] = 0)))), "no blocks");
  assert.ok(isRejected(decodeRepair(mutate((d) => (d[2] = 3)))), "old version");
  const dec = new FecDecoder(TEST_FORMAT.streamId, FEC, FRAGMENTS, BYTES, 4);
  const refuse = (d: Uint8Array, why: string) => {
    const r = decodeRepair(d);
    assert.ok(!isRejected(r), why);
    assert.ok(isRejected(dec.repair(r, d.length)), why);
  };
  refuse(mutate((_, v) => v.setUint32(4, 999)), "another stream");
  refuse(mutate((d) => (d[12] = 3)), "another group size");
  refuse(mutate((d) => (d[13] = 7)), "another source count");
  refuse(mutate((d) => (d[14] = 5)), "another repair count");
  refuse(mutate((_, v) => v.setUint32(8, 1)), "a group that does not start on a boundary");
  refuse(repair.subarray(0, repair.length - 1), "a symbol of the wrong size");
  assert.equal(dec.counters.refused, 6);
  // A flood of well-formed repairs for distinct groups: at most 4 groups held.
  for (let g = 0; g < 10_000; g++) {
    const d = mutate((_, v) => v.setUint32(8, g * 2));
    dec.repair(decodeRepair(d) as never, d.length);
    assert.ok(dec.groups <= 4);
  }
  // A forged repair with the right shape but wrong bytes: what it rebuilds fails its MD5.
  const forged = datagrams.map((d) =>
    d[3] === UdpMsg.REPAIR
      ? encodeRepair(decodeRepair(d) as never, new Uint8Array(d.length - REPAIR_HEADER).fill(7))
      : d
  );
  const { made } = receive(forged.filter((_, i) => i !== 0));
  assert.equal(made.get(blocks[0].seq)?.intact ?? false, false, "never intact from forged repairs");
  assert.ok(made.get(blocks[1].seq)?.intact, "the block that lost nothing is untouched");
});

Deno.test("FEC: the flag and the plan", () => {
  assert.equal(parseFec("off"), "off");
  assert.deepEqual(parseFec("on"), { blocks: 2, percent: 50 });
  assert.deepEqual(parseFec("3:25%"), { blocks: 3, percent: 25 });
  for (const bad of ["2", "0:50", "17:50", "2:0", "2:500", "lots"]) {
    assert.throws(() => parseFec(bad), UsageError, bad);
  }
  // 1024 mono frames at MTU 1200: cut into 4 pieces of 512 for 8 sources, 4 repairs.
  assert.deepEqual(planFec(2048, 1200, { blocks: 2, percent: 50 }), {
    fragments: 4,
    fec: { scheme: "rs-gf256", blocks: 2, repair: 4 },
  });
  assert.deepEqual(planFec(2048, 1200, "off"), { fragments: 2, fec: null });
  // Small blocks are not cut under 256 bytes; big ones as the MTU needs.
  assert.equal(planFec(512, 1200, { blocks: 2, percent: 50 }).fragments, 2);
  assert.equal(planFec(16384, 1200, { blocks: 2, percent: 50 }).fragments, 15);
  // Sources and repairs never exceed GF(256): a plan that cannot fit says so.
  assert.throws(() => planFec(32768, 300, { blocks: 16, percent: 50 }), UsageError);
  const most = planFec(2048, 1200, { blocks: 16, percent: 200 }).fec!;
  assert.ok(16 * 2 + most.repair <= 256);
});

Deno.test("FEC: the encoder skips a group missing a block and the decoder ignores what it decided", () => {
  const { blocks, datagrams } = stream(4);
  const b = new FecEncoder(TEST_FORMAT.streamId, FEC, FRAGMENTS, BYTES);
  assert.deepEqual(b.push(blocks[0]), []);
  assert.deepEqual(b.push(blocks[3]), [], "block 2 skipped: group 2-3 gets no repairs");
  assert.equal(b.push(blocks[1]).length, 0, "out of order within a group: no repairs");
  // The same datagrams twice: the second copy changes nothing.
  const { made, dec } = receive([...datagrams, ...datagrams]);
  assert.equal(made.size, 4);
  assert.equal(dec.counters.rebuilt, 0);
});
