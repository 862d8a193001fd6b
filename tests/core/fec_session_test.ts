/**
 * A whole Audio-UDP session with FEC and `--latency auto`, driven in
 * memory with time passed in: the listener table and the subscriber
 * joined, the server's datagrams (fragments, then a group's repairs)
 * delivered through a seeded loss model, slots popped when due. No sockets.
 */
import assert from "node:assert/strict";
import { ListenerTable } from "../../lib/core/audio/udp/server.ts";
import { UdpSubscriber } from "../../lib/core/audio/udp/client.ts";
import { Broadcaster } from "../../lib/core/audio/stages/broadcaster.ts";
import { FecEncoder, planFec } from "../../lib/core/audio/stages/fec.ts";
import { encodeFormat, fragmentBlock, type UdpFormat } from "../../lib/core/audio/udp/datagrams.ts";
import { AUDIO_PROTOCOL } from "../../lib/core/audio/format/stream_format.ts";
import { Impairment, type ImpairmentConfig } from "../../lib/core/wire/impairment.ts";
import { type PlayoutDecision, safeStartMs } from "../../lib/core/audio/stages/jitter_buffer.ts";
import { joinInMemory } from "../support/helpers.ts";

const MS = (1024 / 44100) * 1000;
const BYTES = 2048;
const PLAN = planFec(BYTES, 1200, { blocks: 2, percent: 50 });
const FORMAT: UdpFormat = {
  rate: 44100,
  channels: 1,
  block: 1024,
  streamId: 77,
  format: "s16le",
  protocol: AUDIO_PROTOCOL,
  mtu: 1200,
  fragments: PLAN.fragments,
  fec: PLAN.fec,
};

interface Session {
  sub: UdpSubscriber;
  played: Map<number, Int16Array>;
  decisions: PlayoutDecision[];
  source: Map<number, Int16Array>;
  dropped: number;
}

/** Streams `blocks` blocks, each datagram arriving `transit` ms after its block's capture. */
function session(
  blocks: number,
  impair: ImpairmentConfig,
  transit = MS + 1,
  seed = 3,
  start: "transit" | "default" = "transit",
): Session {
  const table = new ListenerTable<string>({
    secret: new Uint8Array(32).fill(9),
    format: encodeFormat(FORMAT),
    maxListeners: 4,
    timeoutMs: 60_000,
  });
  // Started at the transit (0: the first block's), to see the target follow the path.
  const sub = new UdpSubscriber({
    renewMs: 1000,
    answerTimeoutMs: 60_000,
    startLatencyMs: start === "transit" ? 0 : undefined,
  });
  const t0 = 1_000_000;
  const joined = joinInMemory(table, sub, "peer", t0);
  assert.ok(joined.events.includes("stream"), joined.events.join());
  const b = new Broadcaster(FORMAT);
  const enc = new FecEncoder(FORMAT.streamId, PLAN.fec!, PLAN.fragments, BYTES);
  const model = new Impairment(impair, seed);
  const arrivals: { at: number; d: Uint8Array }[] = [];
  const source = new Map<number, Int16Array>();
  let dropped = 0;
  for (let s = 0; s < blocks; s++) {
    const samples = new Int16Array(1024).map((_, i) => ((i * 37 + s * 1009) % 20000) - 10000);
    const captured = t0 + 5 + s * MS;
    const x = b.next(samples, captured);
    source.set(x.seq, samples);
    const out = [
      ...fragmentBlock(FORMAT.streamId, x.seq, x.captured, x.digest, x.bytes, 1200, PLAN.fragments),
      ...enc.push(x),
    ];
    for (const d of out) {
      if (model.decide(d).deliveries.length === 0) dropped++;
      else arrivals.push({ at: captured + transit, d });
    }
  }
  const played = new Map<number, Int16Array>();
  const decisions: PlayoutDecision[] = [];
  let next = 0;
  const end = t0 + 5 + blocks * MS + 200;
  // Until the last block's slot is decided: the stream ends there.
  let done = false;
  for (let now = t0 + 1; now < end && !done; now += 0.25) {
    while (next < arrivals.length && arrivals[next].at <= now) {
      sub.receive(arrivals[next++].d, true, now);
    }
    for (let d = sub.pop(now); d && !done; d = done ? null : sub.pop(now)) {
      decisions.push(d);
      if (d.kind === "play") played.set(d.seq, d.samples);
      done = d.seq === blocks - 1 && d.kind !== "stretch";
    }
  }
  return { sub, played, decisions, source, dropped };
}

Deno.test("udp session with FEC: at 10% loss every block plays, rebuilt ones counted, the target waits for repairs", () => {
  const { sub, played, source, dropped } = session(400, { loss: 0.1 });
  assert.ok(dropped > 50, `the model dropped ${dropped} datagrams`);
  // Every block played is the source's, bit for bit (none was squeezed: the path is never calm).
  for (const [seq, samples] of played) assert.deepEqual(samples, source.get(seq), `block ${seq}`);
  const r = sub.reportFields();
  assert.ok(played.size >= 392, `${played.size} of 400 played`);
  assert.ok((r.blocks_recovered as number) > 30, JSON.stringify(r));
  assert.equal(sub.counters.corrupted, 0);
  // The target rose by the repairs' wait (one block) and no further than that needs.
  const [low, high] = r.target_latency_range_ms as [number, number];
  assert.ok(high >= 2 * MS, `highest target ${high}`);
  assert.ok(high <= 2 * MS + 1 + 6, `highest target ${high}`);
  assert.ok(low <= MS + 2, `lowest target ${low}`);
  assert.deepEqual(r.fec, { scheme: "rs-gf256", blocks: 2, repair: 4 });
  assert.ok((r.repair_bytes as number) > 0);
  assert.equal(r.fragments_per_block, 4);
});

Deno.test("udp session with FEC: on a clean path the target stays at the transit and nothing waits for repairs", () => {
  const { sub, played } = session(300, {});
  assert.equal(played.size, 300);
  const r = sub.reportFields();
  assert.equal(r.blocks_recovered, 0);
  assert.equal(r.target_stretches, 0);
  const [low, high] = r.target_latency_range_ms as [number, number];
  assert.ok(high <= MS + 1 + 1, `target ${low}–${high}`);
});

Deno.test("udp session with FEC: a lost block that nothing rebuilds is concealed, never played wrong", () => {
  // Bursts long enough to take more than a group's repairs.
  const { sub, played, source, decisions } = session(400, { loss: 0.12, burst: 8 }, MS + 1, 5);
  for (const [seq, samples] of played) assert.deepEqual(samples, source.get(seq));
  const concealed = decisions.filter((d) => d.kind === "conceal").length;
  assert.ok(concealed > 0, "some groups were beyond repair");
  assert.ok((sub.reportFields().fec_groups_unrecoverable as number) > 0);
  assert.equal(played.size + concealed, 400);
});

Deno.test("udp session by default: the target starts at a safe margin, nothing stretches, and it comes down after a calm spell", () => {
  const { sub, played } = session(400, {}, MS + 1, 3, "default");
  assert.equal(played.size, 400);
  const r = sub.reportFields();
  assert.equal(r.target_stretches, 0);
  const [low, high] = r.target_latency_range_ms as [number, number];
  assert.equal(high, Math.round(safeStartMs(MS) * 10) / 10);
  assert.ok(low < high - 5, `came down: ${low}–${high}`);
});
