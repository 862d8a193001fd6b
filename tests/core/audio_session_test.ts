/**
 * Audio session cores driven without sockets or clocks: the broadcaster
 * and a TCP listener session against the listener's receiver, the sequence
 * tracker, and the UDP listener table against the subscriber, with time
 * passed in.
 */
import assert from "node:assert/strict";
import { TEST_FORMAT } from "../support/helpers.ts";
import { Broadcaster } from "../../lib/core/audio/stages/broadcaster.ts";
import { ListenerSession, SYNC_BURST } from "../../lib/core/audio/tcp/server.ts";
import { AudioTcpReceiver } from "../../lib/core/audio/tcp/client.ts";
import {
  AudioMsg,
  decodeSyncReplyFrame,
  encodeBlock,
  encodeHello,
  encodeSyncReplyFrame,
  encodeSyncRequest,
} from "../../lib/core/audio/tcp/frames.ts";
import { SequenceTracker } from "../../lib/core/audio/stages/sequence_tracker.ts";
import { ListenerTable } from "../../lib/core/audio/udp/server.ts";
import { UdpSubscriber } from "../../lib/core/audio/udp/client.ts";
import {
  encodeFormat,
  encodeSubscribe,
  encodeSync,
  fragmentBlock,
  UDP_VERSION,
  UdpMsg,
} from "../../lib/core/audio/udp/datagrams.ts";
import { encodeFrame } from "../../lib/core/wire/frame.ts";
import { ProtocolError } from "../../lib/core/errors.ts";
import { md5 } from "../../lib/core/crypto/md5.ts";

const BLOCK_MS = 8;

function samples(seq: number): Int16Array {
  return new Int16Array(TEST_FORMAT.block).map((_, i) => seq * 100 + i);
}

Deno.test("audio-tcp session: broadcaster to receiver at every split size, blocks intact and in order", () => {
  const b = new Broadcaster(TEST_FORMAT);
  const stream = [encodeHello(TEST_FORMAT)];
  for (let s = 0; s < 5; s++) stream.push(encodeBlock(b.next(samples(s), 1000 + s * BLOCK_MS)));
  const all = new Uint8Array(stream.reduce((n, f) => n + f.length, 0));
  let at = 0;
  for (const f of stream) all.set(f, (at += f.length) - f.length);
  for (const split of [1, 2, 7, 8, 9, 100, all.length]) {
    const r = new AudioTcpReceiver();
    const events = [];
    for (let i = 0; i < all.length; i += split) {
      events.push(...r.receive(all.slice(i, i + split), 0));
    }
    assert.deepEqual(events.map((e) => e.type), ["hello", "send"], "blocks wait for the sync");
    // The server's answer, on the same clock, releases them.
    const request = events[1].type === "send" ? events[1].bytes : assert.fail();
    const t1 = new DataView(request.buffer, request.byteOffset + 8).getFloat64(0);
    const released = r.receive(encodeSyncReplyFrame({ t1, t2: t1, t3: t1 }), 0);
    const blocks = released.map((e) => e.type === "block" ? e.block : assert.fail());
    assert.deepEqual(blocks.map((x) => x.seq), [0, 1, 2, 3, 4], `split ${split}`);
    assert.ok(blocks.every((x) => x.intact));
    assert.deepEqual(blocks[3].samples, samples(3));
    assert.equal(r.bytes, all.length + 32, "the stream and the 32-byte sync reply");
  }
});

Deno.test("audio-tcp session: a receiver refuses a stream without a hello, a second hello and a cut frame", () => {
  const b = new Broadcaster(TEST_FORMAT);
  const block = encodeBlock(b.next(samples(0), 0));
  assert.throws(() => new AudioTcpReceiver().receive(block, 0), /no hello/);
  const twice = new AudioTcpReceiver();
  twice.receive(encodeHello(TEST_FORMAT), 0);
  assert.throws(() => twice.receive(encodeHello(TEST_FORMAT), 0), ProtocolError);
  const cut = new AudioTcpReceiver();
  cut.receive(encodeHello(TEST_FORMAT), 0);
  cut.receive(block.subarray(0, 10), 0);
  assert.throws(() => cut.closed(), ProtocolError);
  const bad = new AudioTcpReceiver();
  assert.throws(
    () => bad.receive(encodeHello({ ...TEST_FORMAT, rate: 5 }), 0),
    (e: Error) => e instanceof ProtocolError && /Sample rate 5/.test(e.message),
  );
});

Deno.test("audio-tcp session: a listener's queue is bounded, drops its oldest, and a stuck one is noticed", () => {
  const hello = encodeHello(TEST_FORMAT);
  const l = new ListenerSession({ hello, queueBlocks: 3, stuckMs: 100 });
  const frames = [1, 2, 3, 4, 5].map((n) => new Uint8Array([n]));
  assert.equal(l.take(0), hello, "the hello comes first");
  let dropped = 0;
  for (const f of frames) if (l.push(f, 10)) dropped++;
  assert.equal(dropped, 2);
  assert.equal(l.pending, 3);
  assert.deepEqual(l.take(20), frames[2], "the oldest were dropped");
  assert.equal(l.stuck(100), false, "progress at 20");
  assert.equal(l.stuck(121), true, "nothing taken for 101 ms with frames waiting");
  l.take(130);
  l.take(130);
  assert.equal(l.stuck(1000), false, "an empty queue is never stuck");
  // A listener sends only sync requests: any other frame from it ends the session.
  assert.throws(() => l.receive(encodeFrame(17, new Uint8Array(0)), 0), ProtocolError);
});

Deno.test("sequence tracker: gaps are concealed and counted lost, corruption concealed, stale blocks dropped", () => {
  const t = new SequenceTracker();
  t.stream(1, BLOCK_MS);
  const block = (seq: number, intact = true) => ({
    seq,
    captured: 1000 + seq * BLOCK_MS,
    intact,
    samples: samples(seq),
  });
  assert.deepEqual(t.push(block(0)).map((d) => d.kind), ["play"]);
  const gap = t.push(block(3));
  assert.deepEqual(gap.map((d) => d.kind), ["conceal", "conceal", "play"]);
  assert.deepEqual(gap.map((d) => d.captured), [1008, 1016, 1024]);
  assert.deepEqual(t.push(block(4, false)).map((d) => d.kind), ["conceal"]);
  assert.deepEqual(t.push(block(2)), [], "a block from before is dropped");
  assert.deepEqual(t.counters, { lost: 2, corrupted: 1, late: 0, reordered: 0, duplicate: 1 });
  // A reconnection to the same stream carries on: what was missed meanwhile is lost.
  t.stream(1, BLOCK_MS);
  assert.deepEqual(t.push(block(7)).map((d) => d.kind), ["conceal", "conceal", "play"]);
  assert.equal(t.counters.lost, 4);
  // A restarted server starts a new sequence: no gap is counted.
  t.stream(2, BLOCK_MS);
  assert.deepEqual(t.push(block(900)).map((d) => d.kind), ["play"]);
  assert.equal(t.counters.lost, 4);
  // A huge gap is a resync: counted lost, not filled.
  assert.equal(t.push(block(2000)).length, 1);
  assert.equal(t.counters.lost, 4 + 1099);
});

/** A UDP server table and a subscriber, wired together with time passed in. */
function udpPair(maxListeners = 4) {
  const table = new ListenerTable<string>({
    secret: new Uint8Array(32).fill(5),
    format: encodeFormat({ ...TEST_FORMAT, mtu: 128 }),
    maxListeners,
    timeoutMs: 5000,
  });
  return table;
}

Deno.test("audio-udp session: subscribe, challenge, format, then blocks through the jitter buffer", () => {
  const table = udpPair();
  const sub = new UdpSubscriber({ latencyMs: 30 });
  const now = 1_000_000;
  // Handshake: SUBSCRIBE -> CHALLENGE -> SUBSCRIBE(cookie) -> TEST_FORMAT.
  let toServer = [sub.start(now)];
  let streamed = false;
  for (let round = 0; round < 3 && !streamed; round++) {
    const replies = toServer.flatMap((d) => table.receive(d, "10.0.0.9:5000", "peer", now));
    toServer = [];
    for (const r of replies) {
      for (const e of sub.receive(r, true, now)) {
        if (e.type === "send") toServer.push(e.datagram);
        if (e.type === "stream") streamed = true;
      }
    }
  }
  assert.ok(streamed, "the subscriber got the format");
  assert.equal(table.stats.challengesSent, 1);
  assert.deepEqual(table.live(now), ["peer"]);
  // Blocks 0..9, block 4 lost, block 6 corrupted, delivered 5 ms after capture.
  const b = new Broadcaster(TEST_FORMAT);
  for (let s = 0; s < 10; s++) {
    const block = b.next(samples(s), now + s * BLOCK_MS);
    const frags = fragmentBlock(
      TEST_FORMAT.streamId,
      block.seq,
      block.captured,
      block.digest,
      block.bytes,
      128,
    );
    assert.equal(frags.length, 2);
    if (s === 4) continue;
    if (s === 6) frags[1][60] ^= 1;
    for (const f of frags) sub.receive(f, true, now + s * BLOCK_MS + 5);
  }
  // Play-out: each slot at capture time + 30 ms.
  const kinds: string[] = [];
  for (let t = now; t < now + 9 * BLOCK_MS + 31; t++) {
    const d = sub.pop(t);
    if (d) {
      kinds.push(d.kind === "play" ? `p${d.seq}` : `c${d.seq}`);
      assert.ok(t >= d.captured + 30 && t < d.captured + 31, "played at its due time");
    }
  }
  assert.deepEqual(kinds, ["p0", "p1", "p2", "p3", "c4", "p5", "c6", "p7", "p8", "p9"]);
  sub.finish();
  assert.equal(sub.counters.lost, 1);
  assert.equal(sub.counters.corrupted, 1);
  // A datagram from anyone but the server is refused before any decoder.
  const before = sub.invalid;
  sub.receive(encodeFormat({ ...TEST_FORMAT, streamId: 7, mtu: 128 }), false, now);
  assert.equal(sub.invalid, before + 1);
  assert.equal(sub.format!.streamId, 42);
});

Deno.test("audio-udp session: renewals, silence, restarts and a full server, all by passing time in", () => {
  const sub = new UdpSubscriber();
  const t0 = 5000;
  assert.equal(sub.start(t0)[3], UdpMsg.SUBSCRIBE);
  assert.deepEqual(sub.tick(t0 + 400), [], "not yet time to renew");
  assert.equal(sub.tick(t0 + 999)[0].type, "send", "a timer a little early still renews");
  const silent = sub.tick(t0 + 5001);
  assert.deepEqual(silent, [{ type: "silent", streaming: false }]);
  // A full server, before any stream: said once.
  const full = new UdpSubscriber();
  full.start(0);
  assert.deepEqual(full.receive(new Uint8Array([0x53, 0x55, UDP_VERSION, UdpMsg.FULL]), true, 1), [{
    type: "full",
  }]);
  // A restart: a new stream id is a new stream; counters carry on.
  const r = new UdpSubscriber();
  r.start(0);
  assert.equal(r.receive(encodeFormat({ ...TEST_FORMAT, mtu: 128 }), true, 1)[0].type, "stream");
  assert.deepEqual(
    r.receive(encodeFormat({ ...TEST_FORMAT, mtu: 128 }), true, 2),
    [],
    "same stream",
  );
  const again = r.receive(encodeFormat({ ...TEST_FORMAT, streamId: 43, mtu: 128 }), true, 3);
  assert.deepEqual(again.map((e) => e.type === "stream" && e.restarted), [true]);
  assert.equal(r.restarts, 1);
  // Hostile datagrams are counted, never thrown.
  for (let i = 0; i < 500; i++) {
    const d = new Uint8Array(1 + (i % 200)).map((_, j) => (i * 31 + j * 7) & 0xff);
    if (i % 2 === 0 && d.length > 4) d.set([0x53, 0x55, 1, i % 7]);
    r.receive(d, true, 10);
  }
  assert.ok(r.invalid > 0);
});

Deno.test("audio-udp table: an unproven address gets only a smaller challenge; the cap and expiry hold", () => {
  const table = udpPair(2);
  // A subscribe shorter than the padded 64 bytes is not answered at all.
  for (const size of [20, 24, 63]) {
    const small = new Uint8Array(size);
    small.set([0x53, 0x55, UDP_VERSION, UdpMsg.SUBSCRIBE]);
    assert.deepEqual(table.receive(small, "a:1", "a", 0), [], `${size} bytes`);
  }
  const answer = table.receive(encodeSubscribe(null), "a:1", "a", 0);
  assert.equal(answer.length, 1);
  assert.equal(answer[0][3], UdpMsg.CHALLENGE);
  assert.ok(answer[0].length < 64, "a reply smaller than the request");
  assert.equal(table.stats.listenersJoined, 0, "an unproven address joins nothing");
  const cookie = (d: Uint8Array) => d.slice(4, 20);
  const join = (who: string) => {
    const [c] = table.receive(encodeSubscribe(null), who, who, 0);
    return table.receive(encodeSubscribe(cookie(c)), who, who, 0);
  };
  assert.deepEqual(join("a:1").map((d) => d[3]), [UdpMsg.FORMAT]);
  assert.deepEqual(join("b:1").map((d) => d[3]), [UdpMsg.FORMAT]);
  assert.deepEqual(join("c:1").map((d) => d[3]), [UdpMsg.FULL], "over the cap");
  assert.equal(table.stats.listenersRefused, 1);
  // Another address's cookie does not work.
  const [stolen] = table.receive(encodeSubscribe(null), "a:1", "a", 0);
  assert.equal(
    table.receive(encodeSubscribe(cookie(stolen)), "d:1", "d", 0)[0][3],
    UdpMsg.CHALLENGE,
  );
  assert.deepEqual(table.live(4000), ["a:1", "b:1"]);
  assert.deepEqual(table.live(5001), [], "silent for over 5 s: forgotten");
  assert.equal(table.stats.listenersForgotten, 2);
});

/** Client time → the server's clock, an hour behind the client's. */
const SERVER_BEHIND = (t: number) => t - 3_600_000;

Deno.test("audio-tcp session: blocks wait for clock sync, then arrive on the client's clock", () => {
  const b = new Broadcaster(TEST_FORMAT);
  const l = new ListenerSession({
    hello: encodeHello(TEST_FORMAT),
    queueBlocks: 64,
    stuckMs: 5000,
  });
  const r = new AudioTcpReceiver();
  const t = 10_000;
  l.push(encodeBlock(b.next(samples(0), SERVER_BEHIND(t))), SERVER_BEHIND(t));
  const first = [
    ...r.receive(l.take(SERVER_BEHIND(t))!, t + 1),
    ...r.receive(l.take(SERVER_BEHIND(t))!, t + 1),
  ];
  assert.deepEqual(first.map((e) => e.type), ["hello", "send"], "block 0 waits for the sync");
  assert.equal(first[0].type === "hello" && first[0].sync, true);
  // The request reaches the server 1 ms later; its reply, taken ahead of
  // any queued block, 1 ms after that.
  const request = first[1].type === "send" ? first[1].bytes : new Uint8Array();
  l.receive(request, SERVER_BEHIND(t + 2));
  l.push(encodeBlock(b.next(samples(1), SERVER_BEHIND(t + BLOCK_MS))), SERVER_BEHIND(t + 2));
  const reply = l.take(SERVER_BEHIND(t + 2))!;
  assert.equal(reply[3], AudioMsg.SYNC_REPLY, "the reply goes ahead of the queued block");
  const after = r.receive(reply, t + 3);
  assert.deepEqual(after.map((e) => e.type), ["block"]);
  const e = r.clock(t + 3)!;
  assert.equal(e.offsetMs, -3_600_000);
  assert.equal(e.rttMs, 2);
  // Capture times are now the client's: block 0 was captured at t.
  assert.equal(after[0].type === "block" && after[0].block.captured, t);
  const next = r.receive(l.take(SERVER_BEHIND(t + 10))!, t + 11);
  assert.equal(next[0].type === "block" && next[0].block.captured, t + BLOCK_MS);
  // A reply to no request of ours is refused and counted, never used.
  r.receive(encodeSyncReplyFrame({ t1: 5, t2: 6, t3: 7 }), t + 12);
  assert.equal(r.syncRefused, 1);
  assert.equal(r.clock(t + 12)!.samples, 1);
  // The schedule asks again soon (the burst).
  assert.ok(r.nextTick()! <= t + 41);
  assert.equal(r.tick(t + 41)[0].type, "send");
});

Deno.test("audio-tcp session: a protocol 1 server gets no sync requests; blocks pass on its clock", () => {
  const r = new AudioTcpReceiver();
  const hello = r.receive(encodeHello({ ...TEST_FORMAT, protocol: 1 }), 0);
  assert.deepEqual(hello.map((e) => e.type), ["hello"]);
  assert.equal(hello[0].type === "hello" && hello[0].sync, false);
  // Its MD5 covers the samples only.
  const s = samples(0);
  const bytes = new Uint8Array(s.buffer);
  const got = r.receive(
    encodeBlock({ seq: 0, captured: 777, digest: md5(bytes), bytes, samples: s }),
    5,
  );
  assert.equal(got[0].type === "block" && got[0].block.captured, 777);
  assert.equal(got[0].type === "block" && got[0].block.intact, true);
  assert.equal(r.nextTick(), null);
  assert.deepEqual(r.tick(1e9), []);
  assert.equal(r.clock(5), null);
});

Deno.test("audio-tcp session: sync requests are bounded in size and rate; anything else ends the session", () => {
  const fresh = () =>
    new ListenerSession({ hello: encodeHello(TEST_FORMAT), queueBlocks: 4, stuckMs: 5000 });
  const l = fresh();
  // A burst of ten at once is allowed, an eleventh is not.
  for (let i = 0; i < SYNC_BURST; i++) l.receive(encodeSyncRequest(i + 1), 1000);
  assert.throws(() => l.receive(encodeSyncRequest(99), 1000), /faster than 2 a second/);
  // Two a second may go on for ever.
  const steady = fresh();
  for (let i = 0; i < 100; i++) steady.receive(encodeSyncRequest(i + 1), 1000 + i * 500);
  assert.equal(steady.syncPending, true);
  // Wrong sizes and times that are not numbers.
  assert.throws(
    () => fresh().receive(encodeFrame(AudioMsg.SYNC, new Uint8Array(4)), 0),
    /8 bytes|4 bytes/,
  );
  assert.throws(
    () => fresh().receive(encodeFrame(AudioMsg.SYNC, new Uint8Array(9)), 0),
    ProtocolError,
  );
  assert.throws(() => fresh().receive(encodeSyncRequest(NaN), 0), /not a number/);
  assert.throws(
    () => fresh().receive(encodeFrame(AudioMsg.BLOCK, new Uint8Array(4)), 0),
    ProtocolError,
  );
  // Every reply echoes its request and is stamped when taken.
  const s = fresh();
  s.take(0); // the hello
  s.receive(encodeSyncRequest(123.5), 40);
  const reply = s.take(45)!;
  assert.deepEqual(decodeSyncReplyFrame(reply.subarray(8)), { t1: 123.5, t2: 40, t3: 45 });
});

Deno.test("audio-udp session: sync rides on subscribe; the server an hour behind, slots fall due on the client's clock", () => {
  const table = udpPair();
  const sub = new UdpSubscriber({ latencyMs: 30 });
  const t = 2_000_000;
  const at = (d: Uint8Array, when: number) =>
    table.receive(d, "10.0.0.9:5000", "peer", SERVER_BEHIND(when));
  // SUBSCRIBE -> CHALLENGE -> SUBSCRIBE(cookie, t1) -> TEST_FORMAT + SYNC, 1 ms each way.
  const [challenge] = at(sub.start(t), t + 1);
  assert.equal(challenge[3], UdpMsg.CHALLENGE);
  const [subscribe] = sub.receive(challenge, true, t + 2).map((e) =>
    e.type === "send" ? e.datagram : new Uint8Array()
  );
  const replies = at(subscribe, t + 3);
  assert.deepEqual(replies.map((d) => d[3]), [UdpMsg.FORMAT, UdpMsg.SYNC]);
  // Block 0 arrives before the SYNC: it waits.
  const b = new Broadcaster(TEST_FORMAT);
  const block = (s: number) => {
    const x = b.next(samples(s), SERVER_BEHIND(t + s * BLOCK_MS));
    return fragmentBlock(TEST_FORMAT.streamId, x.seq, x.captured, x.digest, x.bytes, 128);
  };
  sub.receive(replies[0], true, t + 4);
  for (const f of block(0)) sub.receive(f, true, t + 4);
  assert.equal(sub.nextDue(), null, "nothing is due before the clocks are known");
  assert.deepEqual(sub.receive(replies[1], true, t + 4).map((e) => e.type), ["block"]);
  assert.equal(sub.clock(t + 4)!.offsetMs, -3_600_000);
  for (const f of block(1)) sub.receive(f, true, t + BLOCK_MS + 1);
  // Slots fall due at capture (client's clock) plus the target.
  assert.equal(sub.nextDue(), t + 30);
  assert.equal(sub.pop(t + 29.9), null);
  assert.equal(sub.pop(t + 30)!.kind, "play");
  assert.equal(sub.pop(t + BLOCK_MS + 30)!.captured, t + BLOCK_MS);
  // The next renewals carry sync requests and say the format is known:
  // the server answers with a SYNC only.
  const renew = sub.tick(sub.nextTick());
  assert.equal(renew.length, 1);
  const answer = renew[0].type === "send" ? at(renew[0].datagram, t + 100) : [];
  assert.deepEqual(answer.map((d) => d[3]), [UdpMsg.SYNC]);
  assert.equal(table.stats.syncsAnswered, 2);
  // An unproven address asking for sync gets a challenge, never a SYNC.
  const forged = encodeSubscribe(new Uint8Array(16).fill(9), { t1: 5, haveFormat: true });
  assert.deepEqual(table.receive(forged, "10.6.6.6:1", "x", 0).map((d) => d[3]), [
    UdpMsg.CHALLENGE,
  ]);
  assert.equal(table.stats.syncsAnswered, 2);
  // A SYNC answering no request of ours is refused.
  sub.receive(encodeSync({ t1: 1, t2: 2, t3: 3 }), true, t + 200);
  assert.equal(sub.syncRefused, 1);
});
