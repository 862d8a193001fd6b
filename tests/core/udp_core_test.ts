/** The I/O-free Audio-UDP cores: datagrams, reassembly, jitter buffer, impairment, cookies. */
import assert from "node:assert/strict";
import { blockDigest } from "../../lib/core/audio/format/block_digest.ts";
import {
  CookieJar,
  DATA_HEADER,
  decodeFormat,
  decodeFragment,
  encodeChallenge,
  encodeFormat,
  encodeSubscribe,
  fragmentBlock,
  isRejected,
  pieceSize,
  SUBSCRIBE_LENGTH,
  UDP_VERSION,
  UdpMsg,
} from "../../lib/core/audio/udp/datagrams.ts";
import { fragment } from "../support/helpers.ts";
import { Reassembler } from "../../lib/core/audio/stages/reassembly.ts";
import { JitterBuffer } from "../../lib/core/audio/stages/jitter_buffer.ts";
import { Impairment } from "../../lib/core/wire/impairment.ts";

const STREAM = { streamId: 42, rate: 44100, channels: 1, block: 1024 };
const BLOCK_BYTES = 2048;
const MTU = 1200;

function block(seq: number): Uint8Array {
  return new Uint8Array(BLOCK_BYTES).map((_, i) => (i * 7 + seq * 13) & 0xff);
}

function datagrams(seq: number, mtu = MTU): Uint8Array[] {
  const b = block(seq);
  const captured = 1000 + seq * 23.2;
  return fragmentBlock(42, seq, captured, blockDigest(STREAM, seq, captured, b), b, mtu);
}

Deno.test("fragments never exceed the MTU and carry the whole block's MD5", () => {
  for (const mtu of [128, 500, 1200, 3000]) {
    const ds = datagrams(3, mtu);
    assert.equal(ds.length, Math.ceil(BLOCK_BYTES / (mtu - DATA_HEADER)));
    for (const d of ds) {
      assert.ok(d.length <= mtu);
      assert.deepEqual(fragment(d).digest, blockDigest(STREAM, 3, 1000 + 3 * 23.2, block(3)));
    }
  }
});

Deno.test("blocks reassemble from fragments in every order", () => {
  const orders = [[0, 1], [1, 0]];
  for (const order of orders) {
    const r = new Reassembler(STREAM, MTU);
    const ds = datagrams(5);
    let out = null;
    for (const i of order) out = r.push(fragment(ds[i])) ?? out;
    assert.ok(out);
    assert.equal(out.intact, true);
    assert.deepEqual(new Uint8Array(out.samples.buffer), block(5));
  }
  // Small MTU: 17 fragments, delivered back to front.
  const r = new Reassembler(STREAM, 160);
  const ds = datagrams(9, 160).reverse();
  const done = ds.map((d) => r.push(fragment(d))).filter(Boolean);
  assert.equal(done.length, 1);
  assert.deepEqual(new Uint8Array(done[0]!.samples.buffer), block(9));
});

Deno.test("duplicates are ignored, corruption is caught, old blocks expire", () => {
  const r = new Reassembler(STREAM, MTU);
  const [a, b] = datagrams(1);
  assert.equal(r.push(fragment(a)), null);
  assert.equal(r.push(fragment(a)), null);
  assert.equal(r.counters.duplicates, 1);
  assert.ok(r.push(fragment(b))!.intact);
  assert.equal(r.push(fragment(b)), null, "a fragment of a finished block is a duplicate");
  assert.equal(r.counters.duplicates, 2);
  const [c, d] = datagrams(2);
  const bad = d.slice();
  bad[DATA_HEADER + 10] ^= 1;
  r.push(fragment(c));
  assert.equal(r.push(fragment(bad))!.intact, false);
  r.setFloor(10);
  assert.equal(r.push(fragment(datagrams(4)[0])), null);
  assert.equal(r.counters.expired, 1);
});

Deno.test("hostile datagrams are refused and memory stays bounded", () => {
  const r = new Reassembler(STREAM, MTU, 8);
  const good = datagrams(1)[0];
  const mutate = (f: (v: DataView, d: Uint8Array) => void) => {
    const d = good.slice();
    f(new DataView(d.buffer), d);
    return d;
  };
  assert.ok(isRejected(decodeFragment(mutate((_, d) => d[0] = 0x47))), "bad magic");
  assert.ok(isRejected(decodeFragment(mutate((_, d) => d[2] = 9))), "bad version");
  assert.ok(isRejected(decodeFragment(mutate((v) => v.setUint16(14, 0)))), "zero fragments");
  assert.ok(isRejected(decodeFragment(mutate((v) => v.setUint16(14, 60000)))), "huge count");
  assert.ok(isRejected(decodeFragment(mutate((v) => v.setUint16(12, 7)))), "index past count");
  assert.ok(isRejected(decodeFragment(good.subarray(0, 30))), "truncated");
  // Decodable but impossible for this stream: wrong count, wrong size.
  r.push(fragment(mutate((v) => v.setUint16(14, 3))));
  r.push(fragment(good.subarray(0, 500)));
  r.push(fragment(good));
  r.push(
    fragment(
      mutate((v, d) => {
        v.setUint16(12, 1);
        d[30] ^= 1;
      }).subarray(0, DATA_HEADER + BLOCK_BYTES - pieceSize(BLOCK_BYTES, 2)),
    ),
  );
  assert.equal(r.counters.invalid, 2);
  // A sibling whose header disagrees (its MD5 field damaged) gathers apart
  // and spoils nothing: the real block still completes, intact.
  const [, second] = datagrams(1);
  const done = r.push(fragment(second));
  assert.ok(done?.intact, "block 1 completes from its real fragments");
  // Random datagrams (seeded): never throw, and none makes a block that
  // passes its check.
  const rng = new Impairment({}, 99);
  const invalidBefore = r.counters.invalid;
  let refused = 0;
  for (let i = 0; i < 2000; i++) {
    const d = new Uint8Array(1 + (i % 1300)).map(() => Math.floor(rng.random() * 256));
    if (i % 2 === 0 && d.length > 4) d.set([0x53, 0x55, UDP_VERSION, UdpMsg.DATA]);
    const f = decodeFragment(d);
    if (isRejected(f)) {
      refused++;
      continue;
    }
    assert.equal(r.push(f), null, "random bytes never make a block");
  }
  // Each was refused by the decoder or counted invalid by the reassembler
  // (a random fragment count or size never fits this stream).
  assert.equal(refused + r.counters.invalid - invalidBefore, 2000);
  // Thousands of distinct half-blocks: at most 8 held.
  for (let s = 100; s < 3000; s++) r.push(fragment(datagrams(s)[0]));
  assert.ok(r.inFlight <= 8);
  assert.ok(r.counters.evicted > 0);
});

function jb(seq: number, intact = true) {
  return { seq, captured: 1000 + seq * 10, intact, samples: new Int16Array(4).fill(seq) };
}

Deno.test("the jitter buffer plays in order at capture time plus target", () => {
  const j = new JitterBuffer({ targetMs: 30, blockMs: 10 });
  j.push(jb(0));
  j.push(jb(2));
  j.push(jb(1)); // reordered, in time
  assert.equal(j.counters.reordered, 1);
  assert.equal(j.nextDue(), 1030);
  assert.equal(j.pop(1029), null, "not yet due");
  const seqs = [1030, 1040, 1050].map((t) => j.pop(t)!);
  assert.deepEqual(seqs.map((d) => [d.kind, d.seq]), [["play", 0], ["play", 1], ["play", 2]]);
});

Deno.test("missing blocks are concealed; late ones counted late, never lost", () => {
  const j = new JitterBuffer({ targetMs: 30, blockMs: 10, window: 4 });
  j.push(jb(0));
  j.push(jb(3));
  assert.equal(j.pop(1030)!.kind, "play");
  const d1 = j.pop(1040)!;
  assert.deepEqual([d1.kind, d1.seq, d1.captured], ["conceal", 1, 1010]);
  assert.equal(j.pop(1050)!.kind, "conceal");
  assert.equal(j.push(jb(1)), "late");
  assert.equal(j.counters.late, 1);
  assert.equal(j.pop(1060)!.kind, "play");
  // Seq 2 never arrives: lost once it leaves the window, or at the end.
  j.finish();
  assert.equal(j.counters.lost, 1);
  assert.equal(j.push(jb(2)), "stale");
});

Deno.test("a corrupted block's slot is concealed, not counted missing", () => {
  const j = new JitterBuffer({ targetMs: 30, blockMs: 10 });
  j.push(jb(0));
  j.push(jb(1, false));
  assert.equal(j.pop(1030)!.kind, "play");
  const d = j.pop(1040)!;
  assert.equal(d.kind, "conceal");
  assert.equal(d.kind === "conceal" && d.reason, "corrupted");
  j.finish();
  assert.equal(j.counters.lost, 0);
  assert.equal(j.counters.corrupted, 1);
});

Deno.test("a corrupted block's header is not believed: it never joins, skips or moves the clock", () => {
  const j = new JitterBuffer({ targetMs: 30, blockMs: 10, window: 16 });
  // Before any intact block, a corrupted one does not start the stream.
  assert.equal(j.push({ ...jb(500, false), captured: 9e12 }), "stale");
  assert.equal(j.nextDue(), null);
  j.push(jb(0));
  // Its sequence number flipped far ahead: no skip. Its capture time
  // flipped: the slots still fall due on the intact blocks' times.
  j.push({ ...jb(1), seq: 1 + 2 ** 20, intact: false });
  j.push({ ...jb(1), captured: 1000 + 10 - 750, intact: false });
  j.push(jb(2));
  j.push(jb(3));
  const decisions = [1030, 1040, 1050, 1060].map((t) => j.pop(t)!);
  assert.deepEqual(decisions.map((d) => [d.seq, d.kind]), [
    [0, "play"],
    [1, "conceal"],
    [2, "play"],
    [3, "play"],
  ]);
  assert.deepEqual(decisions.map((d) => d.captured), [1000, 1010, 1020, 1030]);
  // The intact block takes a slot a corrupted copy marked.
  j.push(jb(5, false));
  j.push(jb(5));
  j.push(jb(4));
  assert.equal(j.pop(1070)!.kind, "play");
  assert.equal(j.pop(1080)!.kind, "play");
  assert.equal(j.counters.corrupted, 4);
  assert.equal(j.counters.duplicate, 0);
});

Deno.test("the impairment model is deterministic and hits its rates", () => {
  const run = (seed: number) => {
    const m = new Impairment({ loss: 0.05, duplicate: 0.02, reorder: 0.03, corrupt: 0.01 }, seed);
    const out = [];
    for (let i = 0; i < 20000; i++) out.push(m.decide(new Uint8Array(100)).deliveries.length);
    return { out, c: m.counters };
  };
  const a = run(7);
  assert.deepEqual(a.out, run(7).out);
  assert.notDeepEqual(a.out, run(8).out);
  assert.ok(Math.abs(a.c.dropped / 20000 - 0.05) < 0.01, `loss ${a.c.dropped}`);
  assert.ok(Math.abs(a.c.duplicated / 20000 - 0.02 * 0.95) < 0.005);
  // Bursts keep the long-run rate and lengthen runs.
  const m = new Impairment({ loss: 0.05, burst: 4 }, 3);
  let runs = 0;
  let prev = false;
  for (let i = 0; i < 40000; i++) {
    const lost = m.decide(new Uint8Array(10)).fate.dropped;
    if (lost && !prev) runs++;
    prev = lost;
  }
  assert.ok(Math.abs(m.counters.dropped / 40000 - 0.05) < 0.01, `burst loss ${m.counters.dropped}`);
  assert.ok(
    Math.abs(m.counters.dropped / runs - 4) < 0.6,
    `mean burst ${m.counters.dropped / runs}`,
  );
});

Deno.test("cookies bind an address and expire; challenges are never larger than a subscribe", () => {
  const jar = new CookieJar(new Uint8Array(32).fill(1), 30_000);
  const c = jar.issue("127.0.0.1:5000", 100_000);
  assert.ok(jar.check("127.0.0.1:5000", c, 100_000));
  assert.ok(jar.check("127.0.0.1:5000", c, 125_000), "valid in the next bucket");
  assert.equal(jar.check("127.0.0.1:5001", c, 100_000), false, "another port");
  assert.equal(jar.check("127.0.0.1:5000", c, 200_000), false, "expired");
  assert.ok(encodeChallenge(c).length <= encodeSubscribe(null).length);
  assert.equal(encodeSubscribe(null).length, SUBSCRIBE_LENGTH);
  const f = {
    rate: 44100,
    channels: 1,
    block: 1024,
    streamId: 5,
    format: "s16le" as const,
    protocol: 2,
    mtu: 1200,
  };
  assert.deepEqual(decodeFormat(encodeFormat(f)), f);
  // A format without a protocol version is version 1 (no clock sync).
  const { protocol: _, ...v1 } = f;
  assert.equal((decodeFormat(encodeFormat(v1)) as { protocol: number }).protocol, 1);
  const bad = encodeFormat({ ...f, mtu: 5 });
  assert.ok(isRejected(decodeFormat(bad)));
});
