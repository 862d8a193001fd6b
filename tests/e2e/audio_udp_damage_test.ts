/**
 * Audio-UDP under damage, not only loss (issue 24): through the relay,
 * payload bytes and header bits of DATA and REPAIR datagrams are flipped;
 * each damaged datagram is dropped and counted, FEC rebuilds it like a
 * lost one, and the recording keeps the stream's slot timeline. And a
 * clean path with several listeners joining at once plays every block.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openSource } from "../../lib/io/audio_io.ts";
import { startAudioUdpServer } from "../../udp/audio_server.ts";
import { runAudioUdpClient } from "../../udp/audio_client.ts";
import { startUdpRelay } from "../../udp/relay.ts";
import { UdpMsg } from "../../lib/core/audio/udp/datagrams.ts";
import type { ImpairmentConfig } from "../../lib/core/wire/impairment.ts";
import { readWav, slotTimeline, tempDir, writeNoiseWavChannels } from "../support/helpers.ts";

const quiet = { log: () => {}, status: false };

async function server(path: string, block: number) {
  const source = await openSource(path, { rate: 44100, channels: 1, block });
  return startAudioUdpServer({ port: 0, source, log: () => {} });
}

interface DamageCase {
  block: number;
  channels: number;
  impair: ImpairmentConfig;
  seconds: number;
}

const CASES: DamageCase[] = [
  // 4% loss and 2% corrupted payloads, reordered and duplicated too.
  {
    block: 256,
    channels: 1,
    impair: { loss: 0.04, corrupt: 0.02, reorder: 0.04, duplicate: 0.02 },
    seconds: 3,
  },
  // One header bit flipped in 5% of datagrams.
  { block: 1024, channels: 2, impair: { corruptHeader: 0.05 }, seconds: 3 },
  // Both, harder: 5% payloads and 5% headers.
  { block: 4096, channels: 2, impair: { corrupt: 0.05, corruptHeader: 0.05 }, seconds: 5 },
];

Deno.test("UDP damage: flipped payload bytes and header bits are erasures FEC repairs, and the recording keeps every block in its slot", async () => {
  await using dir = await tempDir();
  for (const [i, c] of CASES.entries()) {
    const src = join(dir.path, `src-${i}.wav`);
    const rec = join(dir.path, `rec-${i}.wav`);
    const source = await writeNoiseWavChannels(src, c.seconds + 2, c.channels, 44100, 30 + i);
    await using srv = await server(src, c.block);
    await using relay = startUdpRelay({
      port: 0,
      target: srv.addr,
      impair: c.impair,
      seed: 40 + i,
      types: [UdpMsg.DATA, UdpMsg.REPAIR],
    });
    const r = await runAudioUdpClient({
      port: relay.addr.port,
      output: rec,
      duration: c.seconds,
      latencyMs: 250,
      ...quiet,
    });
    const what = `${JSON.stringify(c)}: ${JSON.stringify(r)}`;
    const m = relay.model.counters;
    assert.ok(m.corrupted + m.headerCorrupted > 5, `the relay did its work, ${what}`);
    const { samples } = await readWav(rec);
    const t = slotTimeline(source, samples, c.block * c.channels, c.channels);
    assert.ok(t.start >= 0, `the recording starts on a source block, ${what}`);
    assert.deepEqual(t.wrong, [], `slots neither their source block nor a concealment, ${what}`);
    // Every damaged datagram was caught on its own, never by a block's MD5.
    assert.ok((r.datagrams_damaged as number) > 0, what);
    assert.equal(r.blocks_corrupted, 0, what);
    assert.ok(t.same >= 0.98 * t.slots, `${t.same} of ${t.slots} slots intact, ${what}`);
    assert.equal(t.concealed, r.blocks_concealed, what);
  }
});

Deno.test("UDP: a clean path with several listeners joining at once plays every block of the first 5 s", async () => {
  await using dir = await tempDir();
  const src = join(dir.path, "src.wav");
  const source = await writeNoiseWavChannels(src, 8, 1);
  await using srv = await server(src, 1024);
  const recs = [0, 1, 2].map((i) => join(dir.path, `rec-${i}.wav`));
  const reports = await Promise.all(
    recs.map((rec) =>
      runAudioUdpClient({ port: srv.addr.port, output: rec, duration: 5, ...quiet })
    ),
  );
  for (const [i, r] of reports.entries()) {
    const what = JSON.stringify(r);
    assert.equal(r.target_latency_auto, true);
    assert.equal(r.target_stretches, 0, `listener ${i}: no stretch, ${what}`);
    assert.equal(r.blocks_concealed + r.blocks_late + r.blocks_lost, 0, `listener ${i}, ${what}`);
    const { samples } = await readWav(recs[i]);
    const t = slotTimeline(source, samples, 1024);
    assert.deepEqual(t.wrong, [], `listener ${i}`);
    assert.equal(t.same, t.slots, `listener ${i}: every slot its source block`);
    assert.ok(t.slots > 200, `listener ${i}: ${t.slots} slots`);
  }
});
