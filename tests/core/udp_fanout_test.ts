/**
 * The Audio-UDP server's fan-out core, with no sockets: the cut leaves room
 * for a datagram's check or tag, every datagram fits the MTU, a plain
 * stream's datagrams carry a CRC32C check a listener strips, a coded
 * stream's are sealed under the stream key, and a group's repairs come
 * after its last block and rebuild a lost fragment.
 */
import assert from "node:assert/strict";
import { checkMtu, planCut, UdpFanout } from "../../lib/core/audio/udp/fanout.ts";
import {
  decodeFragment,
  type Fragment,
  fragmentBlock,
  isRejected,
} from "../../lib/core/audio/udp/datagrams.ts";
import { DATA_TAG, openData, openRepair } from "../../lib/core/audio/udp/secure.ts";
import { CHECK_LENGTH, stripCheck } from "../../lib/core/audio/stages/datagram_check.ts";
import { decodeRepair, FecDecoder, FecEncoder } from "../../lib/core/audio/stages/fec.ts";
import { Broadcaster, type StreamBlock } from "../../lib/core/audio/stages/broadcaster.ts";
import { UsageError } from "../../lib/core/errors.ts";
import { TEST_FORMAT } from "../support/helpers.ts";

const FORMAT = { ...TEST_FORMAT, block: 512 };
const BYTES = FORMAT.block * FORMAT.channels * 2;
const MTU = 300;

function blocks(n: number): StreamBlock[] {
  const b = new Broadcaster(FORMAT);
  return Array.from({ length: n }, (_, i) => {
    const samples = new Int16Array(FORMAT.block).map((_, j) => (j * 31 + i * 977) % 20000);
    return b.next(samples, 1000 + i * 8);
  });
}

Deno.test("fan-out: the cut leaves room for the check (plain) or the tag (coded)", () => {
  assert.equal(planCut(BYTES, MTU, false, "off").cut, MTU - CHECK_LENGTH);
  assert.equal(planCut(BYTES, MTU, true, "off").cut, MTU - DATA_TAG);
  assert.throws(() => planCut(BYTES, 20, false, "off"), UsageError);
  assert.throws(() => checkMtu(70_000, BYTES), UsageError);
});

Deno.test("fan-out: a plain stream's datagrams fit the MTU and carry a check around the fragments", () => {
  const cut = planCut(BYTES, MTU, false, { blocks: 2, percent: 50 });
  const fan = new UdpFanout({ streamId: TEST_FORMAT.streamId, blockBytes: BYTES, cut });
  const [b0, b1] = blocks(2);
  const data = fan.fragments(b0);
  assert.ok(cut.fragments > 1);
  assert.equal(data.length, cut.fragments);
  const want = fragmentBlock(42, b0.seq, b0.captured, b0.digest, b0.bytes, cut.cut, cut.fragments);
  for (const [i, d] of data.entries()) {
    assert.ok(d.length <= MTU, `datagram ${i} is ${d.length} bytes`);
    assert.deepEqual(stripCheck(d), want[i]);
  }
  // Repairs only after the group's last block.
  assert.deepEqual(fan.repairs(b0), []);
  fan.fragments(b1);
  const repairs = fan.repairs(b1);
  assert.equal(repairs.length, cut.fec!.repair);
  assert.equal(fan.repairsMade, cut.fec!.repair);
  for (const r of repairs) {
    assert.ok(r.length <= MTU);
    assert.ok(!isRejected(decodeRepair(stripCheck(r)!)));
  }
});

Deno.test("fan-out: a coded stream's datagrams open only under the stream key, and repairs rebuild a loss", () => {
  const key = new Uint8Array(32).fill(7);
  const cut = planCut(BYTES, MTU, true, { blocks: 2, percent: 50 });
  const fan = new UdpFanout({ streamId: 42, blockBytes: BYTES, cut, streamKey: key });
  const [b0, b1] = blocks(2);
  const d0 = fan.fragments(b0);
  fan.repairs(b0);
  const d1 = fan.fragments(b1);
  const repairs = fan.repairs(b1);
  for (const d of [...d0, ...d1]) assert.ok(d.length <= MTU);
  assert.equal(openData(new Uint8Array(32), d0[0]), null, "opens under another key");
  const frags = [...d0, ...d1].map((d) => decodeFragment(openData(key, d)!) as Fragment);
  assert.ok(frags.every((f) => !isRejected(f)));
  // The same repairs as an encoder fed the same blocks, once opened.
  const enc = new FecEncoder(42, cut.fec!, cut.fragments, BYTES);
  enc.push(b0);
  assert.deepEqual(repairs.map((r) => openRepair(key, r)), enc.push(b1));
  // A listener that lost the first fragment rebuilds it from a repair.
  const dec = new FecDecoder(42, cut.fec!, cut.fragments, BYTES);
  for (const f of frags.slice(1)) dec.source(f);
  const r = openRepair(key, repairs[0])!;
  const rebuilt = dec.repair(decodeRepair(r) as never, r.length) as Fragment[];
  const lost = frags[0];
  const again = rebuilt.find((f) => f.seq === lost.seq && f.index === lost.index);
  assert.ok(again, "the lost fragment is rebuilt");
  assert.deepEqual(again.data, lost.data);
});
