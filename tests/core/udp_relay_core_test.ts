/**
 * The impairment relay's core, with no sockets: the same seed makes the
 * same decisions, datagrams of types it is told to spare pass untouched
 * and unrecorded, a recorded DATA fragment's fate names its block and
 * index, and clients' datagrams pass untouched unless `both` is set.
 */
import assert from "node:assert/strict";
import { RelayCore } from "../../lib/core/audio/udp/relay.ts";
import { fragmentBlock, UdpMsg } from "../../lib/core/audio/udp/datagrams.ts";

const block = new Uint8Array(2048).map((_, i) => i % 251);
const frags = (seq: number) => fragmentBlock(7, seq, 1000, new Uint8Array(16), block, 600);

Deno.test("relay core: the same seed drops the same fragments, and each recorded fate names its fragment", () => {
  const run = () => {
    const core = new RelayCore({ impair: { loss: 0.3 }, seed: 5, record: true });
    for (let seq = 0; seq < 20; seq++) for (const f of frags(seq)) core.toClient(f);
    return core;
  };
  const a = run();
  const b = run();
  assert.deepEqual(a.fates, b.fates);
  assert.equal(a.fates.length, 20 * frags(0).length);
  assert.deepEqual(a.fates.slice(0, 2).map((f) => [f.seq, f.index]), [[0, 0], [0, 1]]);
  const dropped = a.fates.filter((f) => f.dropped).length;
  assert.ok(dropped > 0 && dropped === a.down.counters.dropped);
});

Deno.test("relay core: spared types and clients' datagrams pass untouched unless told otherwise", () => {
  const core = new RelayCore({ impair: { loss: 1 }, record: true, types: [UdpMsg.DATA] });
  const other = new Uint8Array(frags(0)[0]);
  other[3] = UdpMsg.SYNC;
  assert.deepEqual(core.toClient(other), [{ data: other, delayMs: 0 }]);
  assert.deepEqual(core.toClient(frags(0)[0]), []);
  assert.equal(core.fates.length, 1);
  assert.equal(core.toServer(other).length, 1, "a client's datagram passes");
  const both = new RelayCore({ impair: { loss: 1 }, both: true });
  assert.deepEqual(both.toServer(other), [], "with both, a client's datagram is impaired too");
});
