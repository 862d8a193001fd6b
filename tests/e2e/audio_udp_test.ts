/** Audio-UDP end to end on loopback, clean and through the impairment relay. */
import { safeStartMs } from "../../lib/core/audio/stages/auto_target.ts";
import assert from "node:assert/strict";
import { join } from "node:path";
import { openSource } from "../../lib/io/audio_io.ts";
import { type AudioUdpServerOptions, startAudioUdpServer } from "../../udp/audio_server.ts";
import { type AudioUdpClientOptions, runAudioUdpClient } from "../../udp/audio_client.ts";
import { startUdpRelay } from "../../udp/relay.ts";
import { encodeSubscribe, UDP_VERSION, UdpMsg } from "../../lib/core/audio/udp/datagrams.ts";
import { Impairment } from "../../lib/core/wire/impairment.ts";
import {
  alignBlocks,
  compareBlocks,
  oneLineError,
  readWav,
  runTool,
  slotTimeline,
  sourceOrConcealed,
  tempDir,
  writeNoiseWav,
} from "../support/helpers.ts";
import { micToSpeaker, soundTest } from "../support/pulse.ts";
import { Playout } from "../../lib/io/playout.ts";
import { now } from "../../lib/io/clock.ts";
import { DEFAULT_SPEC } from "../../lib/core/audio/format/spec.ts";
import { newOrderCounters } from "../../lib/core/audio/stages/jitter_buffer.ts";

const BLOCK = 1024;
const quiet = { log: () => {}, status: false };

async function server(path: string, extra: Partial<AudioUdpServerOptions> = {}) {
  const source = await openSource(path, { rate: 44100, channels: 1, block: BLOCK });
  return startAudioUdpServer({ port: 0, source, log: () => {}, ...extra });
}

// These tests are about what arrives, not when: a 300 ms jitter target keeps
// a noisy machine's stalls from turning into late blocks.
function client(port: number, output: string, extra: Partial<AudioUdpClientOptions> = {}) {
  return runAudioUdpClient({ port, output, duration: 2, latencyMs: 300, ...quiet, ...extra });
}

Deno.test("UDP: a clean path records the source sample for sample", async () => {
  await using dir = await tempDir();
  const src = join(dir.path, "src.wav");
  const rec = join(dir.path, "rec.wav");
  const source = await writeNoiseWav(src, 4);
  await using srv = await server(src);
  const r = await client(srv.addr.port, rec);
  const { samples } = await readWav(rec);
  const start = alignBlocks(source, samples, BLOCK);
  assert.ok(start >= 0);
  const cmp = compareBlocks(source, samples, BLOCK, start);
  assert.deepEqual(cmp.different, []);
  assert.equal(cmp.same, r.blocks_received);
  assert.ok(r.blocks_received > 70, `${r.blocks_received} blocks`);
  assert.equal(r.blocks_lost + r.blocks_corrupted + r.blocks_concealed + r.blocks_late, 0);
  // FEC cuts each 2048-byte block into 4 datagrams; nothing needed repair.
  assert.equal(r.fragments_per_block, 4);
  assert.equal(r.blocks_recovered, 0);
  assert.ok((r.repair_bytes as number) > 0, "repairs were sent");
  // No block is played before its slot (capture time plus the target, less
  // the 1 ms early release). How late they are is the bench's business.
  assert.ok(r.latency_ms.p50 >= (r.target_latency_ms as number) - 1.5, `p50 ${r.latency_ms.p50}`);
});

Deno.test("UDP: under loss, duplication, reordering and corruption nothing corrupted is played and the counts match the relay", async () => {
  await using dir = await tempDir();
  const src = join(dir.path, "src.wav");
  const rec = join(dir.path, "rec.wav");
  const source = await writeNoiseWav(src, 5);
  // Without FEC: every loss the relay makes is a block lost or late.
  await using srv = await server(src, { fec: "off" });
  await using relay = startUdpRelay({
    port: 0,
    target: srv.addr,
    impair: { loss: 0.05, duplicate: 0.05, reorder: 0.05, corrupt: 0.03 },
    seed: 11,
    record: true,
  });
  const r = await client(relay.addr.port, rec, { duration: 3 });
  const { samples } = await readWav(rec);
  // Every block in the recording is the source's, or a concealment of it:
  // the block before at half level fading out, or silence. Never corrupted.
  const check = sourceOrConcealed(source, samples, BLOCK);
  assert.ok(check.start >= 0, "the recording starts on a source block");
  assert.deepEqual(check.wrong, [], "blocks neither source nor concealment");
  assert.ok(check.skipped <= r.blocks_late, "slots dropped only where the sink fell behind");
  assert.equal(check.concealed, r.blocks_concealed);
  const start = check.start;
  const total = samples.length / BLOCK;
  // What the relay did to each block the client played or concealed.
  const first = start;
  const last = start + total - 1;
  const bySeq = new Map<number, { delivered: Set<number>; corrupt: boolean }>();
  for (const f of relay.fates) {
    const e = bySeq.get(f.seq) ?? { delivered: new Set(), corrupt: false };
    if (!f.dropped) {
      // The first copy of a fragment is the one used.
      if (!e.delivered.has(f.index)) e.corrupt ||= f.corrupted;
      e.delivered.add(f.index);
    }
    bySeq.set(f.seq, e);
  }
  let missing = 0;
  let corrupted = 0;
  for (let s = first; s <= last; s++) {
    const e = bySeq.get(s);
    if (!e || e.delivered.size < 2) missing++;
    else if (e.corrupt) corrupted++;
  }
  assert.ok(missing > 0 && corrupted > 0, `the relay did its work (${missing}, ${corrupted})`);
  const near = (a: number, b: number) => Math.abs(a - b) <= 1;
  // A corrupted datagram fails its check and is dropped (without FEC its
  // block is then missing): no block is ever put together from it.
  assert.equal(r.blocks_corrupted, 0);
  assert.ok((r.datagrams_damaged as number) >= corrupted, JSON.stringify(r));
  assert.ok(
    near(r.blocks_lost + r.blocks_late, missing + corrupted),
    `missing: report ${r.blocks_lost}+${r.blocks_late}, relay ${missing}+${corrupted}`,
  );
  assert.ok((r.fragments_duplicate as number) > 0);
  // Fragments were reordered (4 ms back, within a block): reassembly took them in any order.
  assert.ok(relay.model.counters.reordered > 0);
  // Every missing, late or corrupted slot concealed (or its concealment skipped by a late sink).
  assert.equal(
    r.blocks_concealed + r.concealments_skipped,
    r.blocks_lost + r.blocks_late - r.blocks_sink_late + r.blocks_corrupted,
    JSON.stringify(r),
  );
});

Deno.test("UDP with FEC: at 5% and 10% loss and in bursts every recorded block is the source's or a concealment, and rebuilt blocks are counted", async () => {
  await using dir = await tempDir();
  const src = join(dir.path, "src.wav");
  const source = await writeNoiseWav(src, 5);
  const cases = [
    { impair: { loss: 0.05 }, mostMissing: 2 },
    { impair: { loss: 0.1 }, mostMissing: 4 },
    // Bursts of three datagrams on average: beyond what a group can always rebuild.
    { impair: { loss: 0.05, burst: 3 }, mostMissing: 20 },
  ];
  for (const [i, { impair, mostMissing }] of cases.entries()) {
    const rec = join(dir.path, `rec-${i}.wav`);
    await using srv = await server(src);
    await using relay = startUdpRelay({ port: 0, target: srv.addr, impair, seed: 21 + i });
    const r = await client(relay.addr.port, rec, { duration: 3 });
    const what = `${JSON.stringify(impair)}: ${JSON.stringify(r)}`;
    const check = sourceOrConcealed(source, (await readWav(rec)).samples, BLOCK);
    assert.ok(check.start >= 0, what);
    assert.deepEqual(check.wrong, [], `blocks neither source nor concealment, ${what}`);
    assert.equal(check.concealed, r.blocks_concealed, what);
    assert.equal(r.blocks_corrupted, 0, what);
    assert.ok((r.blocks_recovered as number) > 0, `blocks rebuilt from repairs, ${what}`);
    assert.ok(relay.model.counters.dropped > 10, "the relay did its work");
    assert.ok(r.blocks_lost + r.blocks_late <= mostMissing, what);
    assert.ok((r.repair_bytes as number) > 0 && (r.datagrams_repair as number) > 0);
  }
});

Deno.test("UDP --latency auto: the target rises under jitter past its safe start, and the recording keeps every block in its slot", async () => {
  await using dir = await tempDir();
  const src = join(dir.path, "src.wav");
  const rec = join(dir.path, "rec.wav");
  const source = await writeNoiseWav(src, 5);
  await using srv = await server(src);
  // Up to 80 ms of jitter: more than the safe start (three blocks, 70 ms) covers.
  await using relay = startUdpRelay({ port: 0, target: srv.addr, impair: { jitter: 80 }, seed: 5 });
  const r = await runAudioUdpClient({
    port: relay.addr.port,
    output: rec,
    duration: 3,
    ...quiet,
  });
  const [low, high] = r.target_latency_range_ms as [number, number];
  assert.equal(r.target_latency_auto, true);
  // Past the safe start: by stretching at a missing slot, or at once when
  // the very first block's transit was already beyond it (both are right;
  // which one a run sees depends on when the relay's jitter first bites).
  const start = safeStartMs((BLOCK / 44100) * 1000);
  assert.ok(high >= start + 15, `the target rose past ${start} ms: ${low} to ${high} ms`);
  if (low <= start + 1) assert.ok((r.target_stretches as number) >= 1, JSON.stringify(r));
  // It grew by waiting at missing slots: few blocks are lost or late.
  assert.ok(r.blocks_received > 100, JSON.stringify(r));
  assert.ok(r.blocks_lost + r.blocks_late <= 8, JSON.stringify(r));
  // A file keeps the slot timeline: stretches write nothing, nothing is
  // squeezed, so every slot is its own source block or a concealment.
  assert.equal(r.target_squeezed_blocks, 0);
  const t = slotTimeline(source, (await readWav(rec)).samples, BLOCK);
  assert.deepEqual(t.wrong, [], JSON.stringify(r));
  assert.equal(t.same, r.blocks_received, JSON.stringify(r));
  assert.equal(t.concealed, r.blocks_concealed);
});

Deno.test("UDP: two listeners, one joining mid-stream", async () => {
  await using dir = await tempDir();
  const src = join(dir.path, "src.wav");
  const source = await writeNoiseWav(src, 5);
  await using srv = await server(src);
  const early = client(srv.addr.port, join(dir.path, "a.wav"), { duration: 3 });
  await new Promise((r) => setTimeout(r, 1200));
  const late = client(srv.addr.port, join(dir.path, "b.wav"), { duration: 1.5 });
  const [ra, rb] = await Promise.all([early, late]);
  const a = (await readWav(join(dir.path, "a.wav"))).samples;
  const b = (await readWav(join(dir.path, "b.wav"))).samples;
  const sa = alignBlocks(source, a, BLOCK);
  const sb = alignBlocks(source, b, BLOCK);
  assert.ok(sb > sa + 40, `the late listener joined mid-stream (${sa}, ${sb})`);
  assert.deepEqual(compareBlocks(source, a, BLOCK, sa).different, []);
  assert.deepEqual(compareBlocks(source, b, BLOCK, sb).different, []);
  assert.ok(ra.blocks_received > 100 && rb.blocks_received > 50);
  assert.equal(srv.stats.listenersJoined, 2);
});

Deno.test("UDP: fuzzed datagrams from a stranger to both sides are dropped and counted", async () => {
  await using dir = await tempDir();
  const src = join(dir.path, "src.wav");
  const rec = join(dir.path, "rec.wav");
  const source = await writeNoiseWav(src, 4);
  await using srv = await server(src);
  const fuzzer = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
  let clientAddr: Deno.NetAddr | undefined;
  const session = client(srv.addr.port, rec, { onBound: (a) => clientAddr = a });
  const rng = new Impairment({}, 3); // seeded, so a failure repeats
  const junk = () => {
    const d = new Uint8Array(1 + Math.floor(rng.random() * 1400));
    for (let i = 0; i < d.length; i++) d[i] = Math.floor(rng.random() * 256);
    if (rng.random() < 0.5 && d.length > 4) {
      d.set([0x53, 0x55, UDP_VERSION, 1 + Math.floor(rng.random() * 7)]);
    }
    return d;
  };
  for (let i = 0; i < 300; i++) {
    await fuzzer.send(junk(), srv.addr);
    await fuzzer.send(junk(), clientAddr!);
    if (i % 30 === 0) await new Promise((r) => setTimeout(r, 5));
  }
  const r = await session;
  fuzzer.close();
  // Random SUBSCRIBEs of 64 bytes or more are answered with a challenge
  // (the real client's first subscribe got one too); everything else is
  // invalid. Junk from the server's own address is the core tests' part
  // (tests/attacks/): here the stranger's address alone drops it.
  assert.equal(srv.stats.datagramsInvalid + srv.stats.challengesSent - 1, 300);
  assert.equal(srv.stats.listenersJoined, 1);
  assert.equal(r.datagrams_invalid, 300, `client counted ${r.datagrams_invalid}`);
  const { samples } = await readWav(rec);
  const start = alignBlocks(source, samples, BLOCK);
  assert.deepEqual(compareBlocks(source, samples, BLOCK, start).different, []);
});

Deno.test("UDP: an unproven address gets only a small challenge; silent listeners are forgotten; listeners are capped", async () => {
  await using dir = await tempDir();
  const src = join(dir.path, "src.wav");
  await writeNoiseWav(src, 5);
  await using srv = await server(src, { timeoutMs: 600, maxListeners: 1 });
  const sock = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
  const got: Uint8Array[] = [];
  const reading = (async () => {
    for await (const [d] of sock) got.push(d);
  })().catch(() => {});
  const settle = () => new Promise((r) => setTimeout(r, 300));
  // Too short to answer at all.
  await sock.send(encodeSubscribe(null).subarray(0, 10), srv.addr);
  await settle();
  assert.equal(got.length, 0);
  // A full subscribe without a cookie: one challenge, no larger, no audio.
  await sock.send(encodeSubscribe(null), srv.addr);
  await settle();
  assert.equal(got.length, 1);
  assert.equal(got[0][3], UdpMsg.CHALLENGE);
  assert.ok(got[0].length <= 64);
  // Echo the cookie: now the format and audio follow.
  const cookie = got[0].slice(4, 20);
  await sock.send(encodeSubscribe(cookie), srv.addr);
  await settle();
  assert.equal(got[1][3], UdpMsg.FORMAT);
  const audio = [UdpMsg.DATA, UdpMsg.REPAIR] as number[];
  assert.ok(got.slice(2).every((d) => audio.includes(d[3])) && got.length > 10);
  // The cap: another listener is refused while this one is live.
  const other = await runAudioUdpClient({
    port: srv.addr.port,
    output: "null",
    duration: 0.3,
    ...quiet,
  })
    .catch((e) => e);
  assert.ok(other instanceof Error);
  assert.match(other.message, /is full; try again later/, "refused as full, not timed out");
  assert.ok(srv.stats.listenersRefused > 0);
  // Stop renewing: forgotten after the timeout, and the audio stops.
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(srv.listeners, 0);
  assert.ok(srv.stats.listenersForgotten >= 1);
  const before = got.length;
  await settle();
  assert.equal(got.length, before);
  sock.close();
  await reading;
});

Deno.test("UDP CLI: no server answering and a UDP port in use are one line", async () => {
  const perms = ["--allow-net", "--allow-ffi", "--allow-read", "--allow-write", "--allow-env"];
  const sock = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
  const port = String((sock.addr as Deno.NetAddr).port);
  const busy = await runTool("udp/audio_server.ts", ["--port", port, "--input", "tone"], {
    permissions: perms,
  });
  assert.equal(oneLineError(busy), `error: UDP port ${port} on 127.0.0.1 is already in use`);
  sock.close();
  const r = await runTool("udp/audio_client.ts", ["--port", port, "--output", "null"], {
    permissions: perms,
  });
  assert.equal(
    oneLineError(r),
    `error: No answer from 127.0.0.1:${port} (is an Audio-UDP server running there?)`,
  );
});

soundTest("UDP: microphone to speaker through PortAudio", async (pulse) => {
  const { report, heardHz, clientOutput } = await micToSpeaker(pulse, "udp");
  // PulseAudio's ALSA plug-in stalls a new playback stream for a second or
  // two; blocks that arrive meanwhile are skipped as late.
  assert.ok(report.blocks_received > 100, clientOutput);
  assert.equal(report.blocks_corrupted, 0);
  // Within the sink side's bound: the highest jitter target plus two blocks.
  const [, highest] = report.target_latency_range_ms as [number, number];
  const bound = highest + 2 * (1024 / 44.1);
  assert.ok(report.latency_ms.p99 <= bound, `p99 ${report.latency_ms.p99} ms`);
  assert.ok(Math.abs(heardHz - 1000) < 10, `heard ${heardHz} Hz`);
});

Deno.test("play-out: slots the sink is too late for are skipped and counted: blocks late, concealments skipped", async () => {
  const order = newOrderCounters();
  // As a sound device does: a file keeps every slot (next test).
  await using playout = new Playout("udp", order, {
    output: "null",
    lateMs: 50,
    status: false,
    keepTimeline: false,
  });
  await playout.begin(DEFAULT_SPEC);
  const block = new Int16Array(DEFAULT_SPEC.block);
  // Captured a second ago: too late to play, whatever they hold.
  const old = now() - 1000;
  playout.decide({ kind: "play", seq: 0, captured: old, samples: block });
  playout.decide({ kind: "conceal", seq: 1, captured: old, reason: "missing" });
  playout.decide({ kind: "play", seq: 2, captured: old, samples: block });
  // On time.
  playout.decide({ kind: "play", seq: 3, captured: now(), samples: block });
  playout.decide({ kind: "conceal", seq: 4, captured: now(), reason: "missing" });
  await playout.close();
  const r = playout.report();
  assert.equal(r.blocks_received, 1, JSON.stringify(r));
  assert.equal(r.blocks_concealed, 1, "the concealment played");
  assert.equal(r.blocks_late, 2, "the skipped blocks that were there");
  assert.equal(r.blocks_sink_late, 2);
  assert.equal(r.concealments_skipped, 1, "the skipped concealment");
  assert.equal(
    r.blocks_received + r.blocks_concealed + r.blocks_sink_late + r.concealments_skipped,
    5,
    "each slot counted once",
  );
});

Deno.test("play-out to a file keeps every slot: late blocks are written, stretches write nothing", async () => {
  await using dir = await tempDir();
  const path = join(dir.path, "rec.wav");
  const order = newOrderCounters();
  const spec = { ...DEFAULT_SPEC, channels: 1 };
  await using playout = new Playout("udp", order, { output: path, lateMs: 50, status: false });
  await playout.begin(spec);
  const block = (v: number) => new Int16Array(spec.block).fill(v);
  const old = now() - 1000;
  playout.decide({ kind: "play", seq: 0, captured: old, samples: block(100) });
  playout.decide({ kind: "stretch", seq: 1, captured: old, ms: 7 });
  playout.decide({ kind: "conceal", seq: 1, captured: old, reason: "missing" });
  playout.decide({ kind: "play", seq: 2, captured: now(), samples: block(300) });
  await playout.close();
  const { samples } = await readWav(path);
  assert.equal(samples.length, 3 * spec.block, "three slots of one block each");
  assert.ok(samples.subarray(0, spec.block).every((v) => v === 100));
  assert.ok(samples.subarray(2 * spec.block).every((v) => v === 300));
  const r = playout.report();
  assert.equal(r.blocks_received, 2);
  assert.equal(r.blocks_concealed, 1);
  assert.equal(r.blocks_sink_late, 0);
});
