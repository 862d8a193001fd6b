/**
 * Hostile peers and a hostile network against the audio tools: forged
 * datagrams from another host, header bits flipped on the way (UDP and
 * TCP), fuzz from the server's own address, and a hostile server's
 * impossible blocks. Through the real tools where the network is the
 * attacker; against the session cores where a peer is.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openSource } from "../../lib/io/audio_io.ts";
import { startAudioUdpServer } from "../../udp/audio_server.ts";
import { runAudioUdpClient } from "../../udp/audio_client.ts";
import { startAudioTcpServer } from "../../tcp/audio_server.ts";
import { runAudioTcpClient } from "../../tcp/audio_client.ts";
import { startUdpRelay } from "../../udp/relay.ts";
import { Broadcaster } from "../../lib/core/audio/stages/broadcaster.ts";
import { AUDIO_PROTOCOL } from "../../lib/core/audio/format/stream_format.ts";
import {
  encodeFormat,
  encodeSubscribe,
  encodeSync,
  fragmentBlock,
  UDP_VERSION,
  UdpMsg,
} from "../../lib/core/audio/udp/datagrams.ts";
import {
  AUDIO_CLIENT_LIMITS,
  AudioMsg,
  encodeBlock,
  encodeHello,
} from "../../lib/core/audio/tcp/frames.ts";
import { ListenerTable } from "../../lib/core/audio/udp/server.ts";
import { UdpSubscriber } from "../../lib/core/audio/udp/client.ts";
import { AudioTcpReceiver } from "../../lib/core/audio/tcp/client.ts";
import { SequenceTracker } from "../../lib/core/audio/stages/sequence_tracker.ts";
import { Impairment } from "../../lib/core/wire/impairment.ts";
import { ProtocolError } from "../../lib/core/errors.ts";
import {
  joinInMemory,
  readWav,
  sourceOrConcealed,
  startRelay,
  tempDir,
  TEST_FORMAT,
  waitFor,
  writeNoiseWav,
} from "../support/helpers.ts";

const quiet = { log: () => {}, status: false };

async function udpServer(path: string, block: number) {
  const source = await openSource(path, { rate: 44100, channels: 1, block });
  return startAudioUdpServer({ port: 0, source, log: () => {} });
}

Deno.test("attack: a host sending from the server's port number cannot inject audio into a UDP client", async () => {
  await using dir = await tempDir();
  const src = join(dir.path, "src.wav");
  const rec = join(dir.path, "rec.wav");
  const source = await writeNoiseWav(src, 5);
  await using srv = await udpServer(src, 1024);
  // Another host (127.0.0.2) with the server's port number.
  const forger = Deno.listenDatagram({
    hostname: "127.0.0.2",
    port: srv.addr.port,
    transport: "udp",
  });
  let clientAddr: Deno.NetAddr | undefined;
  const session = runAudioUdpClient({
    port: srv.addr.port,
    output: rec,
    duration: 3,
    latencyMs: 300,
    ...quiet,
    onBound: (a) => clientAddr = a,
  });
  await waitFor(() => clientAddr !== undefined);
  // A stream of its own, well formed, every block with a valid MD5: MD5
  // has no key, so only the address tells it apart.
  const fake = {
    rate: 44100,
    channels: 1,
    block: 1024,
    streamId: 0x0bad,
    format: "s16le" as const,
    protocol: AUDIO_PROTOCOL,
    mtu: 1200,
  };
  const b = new Broadcaster(fake);
  let forged = 0;
  for (let i = 0; i < 100; i++) {
    const loud = new Int16Array(1024).fill(20000);
    const x = b.next(loud, Date.now());
    const ds = [
      encodeFormat(fake),
      encodeSync({ t1: 1, t2: 2, t3: 3 }),
      ...fragmentBlock(fake.streamId, x.seq, x.captured, x.digest, x.bytes, 1200),
    ];
    for (const d of ds) await forger.send(d, clientAddr!);
    forged += ds.length;
    await new Promise((r) => setTimeout(r, 10));
  }
  const r = await session;
  forger.close();
  assert.equal(r.reconnects, 0, "the client never took the forger for a restarted server");
  assert.ok((r.datagrams_invalid as number) >= forged, `${r.datagrams_invalid} of ${forged}`);
  const { samples } = await readWav(rec);
  const check = sourceOrConcealed(source, samples, 1024);
  assert.deepEqual(check.wrong, [], "no block of the forger's in the recording");
  assert.ok(check.skipped <= r.blocks_late);
  assert.equal(check.concealed, 0);
  assert.ok(check.same > 100, `${check.same} blocks`);
});

for (const block of [256, 1024]) {
  Deno.test(`attack: header bits flipped in 5% of UDP datagrams (${block}-frame blocks), the recording stays aligned with its source`, async () => {
    await using dir = await tempDir();
    const src = join(dir.path, "src.wav");
    const rec = join(dir.path, "rec.wav");
    const source = await writeNoiseWav(src, 6);
    await using srv = await udpServer(src, block);
    await using relay = startUdpRelay({
      port: 0,
      target: srv.addr,
      impair: { corruptHeader: 0.05 },
      seed: 5,
    });
    const r = await runAudioUdpClient({
      port: relay.addr.port,
      output: rec,
      duration: 4,
      latencyMs: 300,
      ...quiet,
    });
    const flipped = relay.model.counters.headerCorrupted;
    assert.ok(flipped > 10, `the relay flipped ${flipped} headers`);
    const { samples } = await readWav(rec);
    const check = sourceOrConcealed(source, samples, block);
    const what = `${JSON.stringify(check)} ${JSON.stringify(r)}`;
    // Only intact blocks in their own slots, or concealments; slots are
    // dropped only where the sink fell behind (counted late).
    assert.deepEqual(check.wrong, [], what);
    assert.ok(check.skipped <= r.blocks_late, what);
    assert.equal(check.concealed, r.blocks_concealed, what);
    // The stream goes on: the slots played are the ones not damaged (a
    // 1024-frame block has two datagrams, so twice the chance).
    const slots = check.same + check.concealed;
    const damaged = block === 256 ? 0.05 : 0.1;
    assert.ok(slots > (4000 / (block / 44.1)) * 0.8, `${slots} slots recorded`);
    assert.ok(check.concealed <= slots * damaged * 1.6 + 3, `${check.concealed} of ${slots}`);
    assert.equal(r.reconnects, 0);
  });
}

Deno.test("attack: header bits of Audio-TCP blocks flipped on the way, each damaged block concealed in its own slot", async () => {
  await using dir = await tempDir();
  const src = join(dir.path, "src.wav");
  const rec = join(dir.path, "rec.wav");
  const source = await writeNoiseWav(src, 4);
  const audio = await openSource(src, { rate: 44100, channels: 1, block: 1024 });
  await using server = startAudioTcpServer({ port: 0, source: audio, log: () => {} });
  let blocks = 0;
  await using relay = startRelay(server.addr.port, {
    inspect: "toClient",
    limits: AUDIO_CLIENT_LIMITS,
    // Every 7th block: a bit of its sequence number (bytes 0 to 3) or its
    // capture time (4 to 11), in turn.
    corrupt: (type) => type === AudioMsg.BLOCK && ++blocks % 7 === 0 ? (blocks / 7) % 12 : null,
  });
  const r = await runAudioTcpClient({ port: relay.port, output: rec, duration: 2.5, ...quiet });
  assert.ok(relay.corrupted >= 10, `${relay.corrupted} corrupted`);
  const { samples } = await readWav(rec);
  const check = sourceOrConcealed(source, samples, 1024);
  assert.deepEqual(check.wrong, []);
  assert.ok(check.skipped <= r.blocks_late);
  assert.ok(check.concealed >= 10 && check.concealed === r.blocks_corrupted, JSON.stringify(r));
  assert.equal(r.blocks_lost, 0, "no gap invented from a damaged sequence number");
  assert.ok(check.same > 80);
});

/** A subscriber joined to a listener table on one clock; returns both. */
function joined() {
  const table = new ListenerTable<string>({
    secret: new Uint8Array(32).fill(5),
    format: encodeFormat({ ...TEST_FORMAT, mtu: 128 }),
    maxListeners: 4,
    timeoutMs: 5000,
  });
  const sub = new UdpSubscriber({ latencyMs: 40 });
  joinInMemory(table, sub, "s:1", 1);
  return { table, sub };
}

Deno.test("attack: fuzz from the server's own address, every type with our magic and version, never derails a UDP stream", () => {
  const { sub } = joined();
  assert.ok(sub.format, "joined");
  const m = new Impairment({}, 77); // a seeded generator
  const junk = (type: number) => {
    const d = new Uint8Array(4 + Math.floor(m.random() * 200));
    for (let i = 4; i < d.length; i++) d[i] = Math.floor(m.random() * 256);
    d.set([0x53, 0x55, UDP_VERSION, type]);
    return d;
  };
  const b = new Broadcaster(TEST_FORMAT);
  const played: number[] = [];
  for (let s = 0; s < 200; s++) {
    const t = 10 + s * 8;
    const x = b.next(new Int16Array(64).fill(s + 1), t);
    for (const f of fragmentBlock(42, x.seq, x.captured, x.digest, x.bytes, 128)) {
      sub.receive(f, true, t + 1);
    }
    // Ten junk datagrams a block, of every type, from the server's address.
    for (let k = 0; k < 10; k++) sub.receive(junk(1 + (k % 8)), true, t + 2);
    // And a real fragment with one header bit flipped.
    const again = fragmentBlock(42, x.seq + 3, x.captured + 24, x.digest, x.bytes, 128)[0];
    const bit = 32 + Math.floor(m.random() * 36 * 8);
    again[bit >> 3] ^= 1 << (bit & 7);
    sub.receive(again, true, t + 3);
    for (let d = sub.pop(t); d; d = sub.pop(t)) if (d.kind === "play") played.push(d.seq);
  }
  assert.equal(sub.restarts, 0);
  // Every block played, in order, each once: the junk moved nothing.
  assert.ok(played.length >= 190, `${played.length} played`);
  assert.deepEqual(played, played.map((_, i) => played[0] + i));
  assert.ok(sub.invalid + sub.fragments.invalid > 1000);
});

Deno.test("attack: a hostile Audio-TCP server's NaN capture times and huge sequence jumps end the session", () => {
  const fresh = () => {
    const r = new AudioTcpReceiver();
    r.receive(encodeHello({ ...TEST_FORMAT, protocol: 1 }), 0);
    return r;
  };
  const s = new Int16Array(64);
  const bytes = new Uint8Array(s.buffer);
  const block = (seq: number, captured: number) =>
    encodeBlock({ seq, captured, digest: new Uint8Array(16), bytes, samples: s });
  for (const t of [NaN, Infinity, -Infinity]) {
    assert.throws(() => fresh().receive(block(0, t), 0), ProtocolError, String(t));
  }
  const tracker = new SequenceTracker();
  tracker.stream(42, 8);
  tracker.push({ seq: 0, captured: 0, intact: true, samples: s });
  assert.throws(
    () => tracker.push({ seq: 2 ** 30, captured: 8, intact: true, samples: s }),
    /jumped/,
  );
  // A damaged block's number is not believed: it takes the next slot.
  const t2 = new SequenceTracker();
  t2.stream(42, 8);
  t2.push({ seq: 10, captured: 80, intact: true, samples: s });
  const d = t2.push({ seq: 999_999, captured: 1e15, intact: false, samples: s });
  assert.deepEqual(d.map((x) => [x.kind, x.seq, x.captured]), [["conceal", 11, 88]]);
  assert.deepEqual(t2.push({ seq: 12, captured: 96, intact: true, samples: s }).map((x) => x.seq), [
    12,
  ]);
  assert.equal(t2.counters.lost, 0);
});

Deno.test("attack: one host cannot take every UDP listener slot, and a short subscribe is never answered", () => {
  const table = new ListenerTable<string>({
    secret: new Uint8Array(32).fill(5),
    format: encodeFormat({ ...TEST_FORMAT, mtu: 128 }),
    maxListeners: 64,
    maxPerHost: 8,
    timeoutMs: 5000,
  });
  const join = (key: string) => {
    const [c] = table.receive(encodeSubscribe(null), key, key, 0);
    return table.receive(encodeSubscribe(c.slice(4, 20)), key, key, 0)[0][3];
  };
  for (let port = 1; port <= 8; port++) assert.equal(join(`10.0.0.9:${port}`), UdpMsg.FORMAT);
  assert.equal(join("10.0.0.9:9"), UdpMsg.FULL, "a ninth port of the same host");
  assert.equal(join("10.0.0.10:1"), UdpMsg.FORMAT, "another host still joins");
  assert.equal(join("[::1]:1"), UdpMsg.FORMAT);
  // A BYE frees the host's slot.
  const [c] = table.receive(encodeSubscribe(null), "10.0.0.9:1", "x", 0);
  table.receive(encodeSubscribe(c.slice(4, 20), { bye: true }), "10.0.0.9:1", "x", 0);
  assert.equal(join("10.0.0.9:9"), UdpMsg.FORMAT);
  const short = new Uint8Array(20);
  short.set([0x53, 0x55, UDP_VERSION, UdpMsg.SUBSCRIBE]);
  assert.deepEqual(table.receive(short, "10.6.6.6:1", "x", 0), []);
});
