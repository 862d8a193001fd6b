/**
 * Damage is an erasure (issue 24): the CRC32C against RFC 3720's vectors,
 * the per-datagram check at every bit of a DATA and a REPAIR datagram's
 * header through a whole session in memory (the damaged datagram is
 * dropped and counted, FEC rebuilds its fragment, both blocks play as
 * sent), and the trial rebuild of a block whose damage nothing caught.
 */
import assert from "node:assert/strict";
import { crc32c } from "../../lib/core/wire/crc32c.ts";
import { addCheck, CHECK_LENGTH, stripCheck } from "../../lib/core/audio/stages/datagram_check.ts";
import { ListenerTable } from "../../lib/core/audio/udp/server.ts";
import { UdpSubscriber } from "../../lib/core/audio/udp/client.ts";
import { Broadcaster } from "../../lib/core/audio/stages/broadcaster.ts";
import {
  type BlockCheck,
  decodeRepair,
  FecDecoder,
  FecEncoder,
  planFec,
  REPAIR_HEADER,
} from "../../lib/core/audio/stages/fec.ts";
import {
  DATA_HEADER,
  decodeFormat,
  decodeFragment,
  encodeFormat,
  type Fragment,
  fragmentBlock,
  isRejected,
  type UdpFormat,
  UdpMsg,
} from "../../lib/core/audio/udp/datagrams.ts";
import { type AssembledBlock, Reassembler } from "../../lib/core/audio/stages/reassembly.ts";
import { blockDigest } from "../../lib/core/audio/format/block_digest.ts";
import { bytesEqual } from "../../lib/core/crypto/md5.ts";
import { AUDIO_PROTOCOL } from "../../lib/core/audio/format/stream_format.ts";
import { joinInMemory } from "../support/helpers.ts";

Deno.test("CRC32C matches RFC 3720's vectors (appendix B.4) and the check value", () => {
  const ramp = Uint8Array.from({ length: 32 }, (_, i) => i);
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
  assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  assert.equal(crc32c(ramp), 0x46dd794e);
  assert.equal(crc32c(ramp.slice().reverse()), 0x113fdb5c);
  assert.equal(crc32c(new TextEncoder().encode("123456789")), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(0)), 0);
  // Every length around the eight-byte steps agrees with a bit-by-bit CRC.
  for (let n = 0; n < 40; n++) {
    const d = Uint8Array.from({ length: n }, (_, i) => (i * 37 + n) & 0xff);
    assert.equal(crc32c(d), bitwise(d), `length ${n}`);
  }
});

function bitwise(d: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of d) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

const MS = (256 / 8000) * 1000;
const BYTES = 512;
const MTU = 1200;
const PLAN = planFec(BYTES, MTU, { blocks: 2, percent: 50 });
const FORMAT: UdpFormat = {
  rate: 8000,
  channels: 1,
  block: 256,
  streamId: 91,
  format: "s16le",
  protocol: AUDIO_PROTOCOL,
  mtu: MTU,
  fragments: PLAN.fragments,
  fec: PLAN.fec,
  check: "crc32c",
};

/** Two FEC groups as the server sends them without a code: fragments, then repairs, checked. */
function groups() {
  const b = new Broadcaster(FORMAT);
  const enc = new FecEncoder(FORMAT.streamId, PLAN.fec!, PLAN.fragments, BYTES);
  const blocks = [0, 1, 2, 3].map((s) =>
    b.next(new Int16Array(256).map((_, i) => ((i * 91 + s * 313) % 9000) - 4500), 1000 + s * MS)
  );
  const plain = blocks.flatMap((x) => [
    ...fragmentBlock(FORMAT.streamId, x.seq, x.captured, x.digest, x.bytes, MTU, PLAN.fragments),
    ...enc.push(x),
  ]);
  return { blocks, plain, datagrams: plain.map(addCheck) };
}

/** A subscriber joined in memory, fed `datagrams`, its slots popped: what it played. */
function play(datagrams: Uint8Array[]) {
  const table = new ListenerTable<string>({
    secret: new Uint8Array(32).fill(4),
    format: encodeFormat(FORMAT),
    maxListeners: 2,
    timeoutMs: 60_000,
  });
  const sub = new UdpSubscriber({ latencyMs: 60, answerTimeoutMs: 60_000 });
  joinInMemory(table, sub, "peer", 900);
  for (const d of datagrams) sub.receive(d, true, 1000 + 2 * MS);
  const played = new Map<number, Int16Array>();
  for (let now = 1000; now < 1300; now += 1) {
    for (let d = sub.pop(now); d; d = sub.pop(now)) {
      if (d.kind === "play") played.set(d.seq, d.samples);
    }
  }
  return { sub, played };
}

Deno.test("the check: the format announces it, and a datagram with any bit flipped fails it", () => {
  const f = decodeFormat(encodeFormat(FORMAT));
  assert.ok(!isRejected(f) && f.check === "crc32c");
  assert.ok(isRejected(decodeFormat(encodeFormat({ ...FORMAT, check: "md4" as "crc32c" }))));
  const { plain, datagrams } = groups();
  assert.equal(datagrams[0].length, plain[0].length + CHECK_LENGTH);
  assert.deepEqual(stripCheck(datagrams[0]), plain[0]);
  for (const d of [datagrams[0], datagrams.at(-1)!]) {
    for (let bit = 0; bit < d.length * 8; bit++) {
      const x = d.slice();
      x[bit >> 3] ^= 1 << (bit & 7);
      assert.equal(stripCheck(x), null, `bit ${bit}`);
    }
  }
});

Deno.test("a DATA or REPAIR datagram with a bit of its header flipped is dropped as damaged and FEC rebuilds it: both blocks play as sent", () => {
  const { blocks, datagrams } = groups();
  const clean = play(datagrams);
  assert.equal(clean.played.size, 4);
  // In the second group (the first block received is where play-out joins).
  const data = datagrams.findIndex((d) => d[3] === UdpMsg.REPAIR) + PLAN.fec!.repair;
  const repair = datagrams.findLastIndex((d) => d[3] === UdpMsg.REPAIR);
  for (const [which, header] of [[data, DATA_HEADER], [repair, REPAIR_HEADER]]) {
    // Past the magic, version and type (a flip there is not ours at all).
    for (let bit = 32; bit < header * 8; bit++) {
      const hit = datagrams.map((d, i) => {
        if (i !== which) return d;
        const x = d.slice();
        x[bit >> 3] ^= 1 << (bit & 7);
        return x;
      });
      const { sub, played } = play(hit);
      const where = `datagram ${which}, bit ${bit}`;
      assert.equal(sub.damaged, 1, where);
      assert.equal(sub.counters.corrupted, 0, where);
      for (const b of blocks) {
        assert.deepEqual(new Uint8Array(played.get(b.seq)!.buffer), b.bytes, where);
      }
    }
  }
  assert.equal(play(datagrams).sub.reportFields().datagrams_damaged, 0);
});

/** The first group alone, plain (no check: damage nothing caught). */
function first() {
  const { blocks, plain } = groups();
  return {
    blocks: blocks.slice(0, 2),
    plain: plain.slice(0, 2 * PLAN.fragments + PLAN.fec!.repair),
  };
}

/** Fragments and repairs into reassembly, with the trial rebuild a subscriber does. */
function reassemble(datagrams: Uint8Array[]) {
  const reasm = new Reassembler(FORMAT, MTU, 64, undefined, PLAN.fragments);
  const dec = new FecDecoder(FORMAT.streamId, PLAN.fec!, PLAN.fragments, BYTES);
  const check: BlockCheck = (seq, captured, digest, bytes) =>
    bytesEqual(blockDigest(FORMAT, seq, captured, bytes), digest);
  const made = new Map<number, AssembledBlock>();
  const take = (fs: Fragment[]) => {
    const queue = [...fs];
    for (let f = queue.shift(); f; f = queue.shift()) {
      const b = reasm.push(f);
      if (!b) continue;
      if (!b.intact) queue.push(...dec.suspect(b.seq, check));
      if (!made.get(b.seq)?.intact) made.set(b.seq, b);
    }
  };
  for (const d of datagrams) {
    if (d[3] === UdpMsg.REPAIR) {
      const out = dec.repair(decodeRepair(d) as never, d.length);
      if (!isRejected(out)) take(out);
    } else {
      const f = decodeFragment(d) as Fragment;
      take([f, ...dec.source(f)]);
    }
  }
  return { made, dec };
}

Deno.test("trial rebuild: a block that fails its MD5 is rebuilt without each fragment in turn, when its group has repairs to spare", () => {
  const { blocks, plain } = first();
  const sources = 2 * PLAN.fragments;
  // Damage nothing caught (no check): one byte of each source fragment in turn.
  for (let i = 0; i < sources; i++) {
    const hit = plain.map((d, j) => {
      if (j !== i) return d;
      const x = d.slice();
      x[DATA_HEADER + 3] ^= 0x10;
      return x;
    });
    const { made, dec } = reassemble(hit);
    for (const b of blocks) {
      const got = made.get(b.seq);
      assert.ok(got?.intact, `damaged fragment ${i}: block ${b.seq} rebuilt`);
      assert.deepEqual(new Uint8Array(got.samples.buffer), b.bytes);
    }
    assert.equal(dec.counters.trialRebuilt, 1);
  }
  // A repair lost as well as one fragment damaged: still a symbol to spare.
  const firstRepair = plain.findIndex((d) => d[3] === UdpMsg.REPAIR);
  const hit = plain.map((d, j) => {
    if (j !== 1) return d;
    const x = d.slice();
    x[DATA_HEADER] ^= 1;
    return x;
  }).filter((_, j) => j !== firstRepair);
  assert.ok(reassemble(hit).made.get(blocks[0].seq)?.intact);
});

Deno.test("trial rebuild: with no symbol to spare nothing false is played, the block stays corrupted", () => {
  const { blocks, plain } = first();
  // Damage fragment 0 and lose every repair but... none: all repairs lost.
  const hit = plain.filter((d) => d[3] !== UdpMsg.REPAIR).map((d, j) => {
    if (j !== 0) return d;
    const x = d.slice();
    x[DATA_HEADER + 5] ^= 4;
    return x;
  });
  const { made, dec } = reassemble(hit);
  assert.equal(made.get(blocks[0].seq)?.intact, false);
  assert.ok(made.get(blocks[1].seq)?.intact);
  assert.equal(dec.counters.trialRebuilt, 0);
  // Two fragments damaged and only two repairs: every trial leaves one damaged, none passes.
  const two = plain.map((d, j) => {
    if (j !== 0 && j !== 1) return d;
    const x = d.slice();
    x[DATA_HEADER + 2] ^= 8;
    return x;
  });
  const r = reassemble(two);
  assert.equal(r.made.get(blocks[0].seq)?.intact, false, "never played wrong");
});
