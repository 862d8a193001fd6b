/**
 * The clock sync core against simulated clocks: offsets of an hour either
 * way, drift up to 1000 ppm either way, jittered and asymmetric paths, a
 * delayed exchange, a clock step, hostile answers, and its schedule.
 */
import assert from "node:assert/strict";
import {
  ClockSync,
  MAX_HELD_BLOCKS,
  SyncedTimeline,
} from "../../lib/core/audio/stages/clock_sync.ts";
import { TwoClocks } from "../support/two_clocks.ts";

const HOUR = 3_600_000;

Deno.test("clock sync: an hour ahead or behind, on a symmetric path, is found to the microsecond", () => {
  for (const offsetMs of [HOUR, -HOUR, 0.3, -300]) {
    const clocks = new TwoClocks({ offsetMs });
    const sync = new ClockSync();
    assert.equal(sync.estimate(0), null);
    clocks.run(sync, 0, 10_000);
    const e = sync.estimate(10_000)!;
    assert.ok(Math.abs(e.offsetMs - offsetMs) < 0.001, `${offsetMs}: ${e.offsetMs}`);
    assert.ok(Math.abs(e.driftPpm) < 0.1, `drift ${e.driftPpm}`);
    assert.ok(Math.abs(e.rttMs - 2) < 0.001, `rtt ${e.rttMs}`);
    // The mapping turns a server time into the client time it happened at.
    assert.ok(Math.abs(sync.toLocal(clocks.server(9_000)) - 9_000) < 0.001);
  }
});

Deno.test("clock sync: drift of up to 1000 ppm either way, under 5 ms of jitter, within 5% (or 10 ppm) and 1 ms", () => {
  for (const driftPpm of [1000, -1000, 100, -100, 2500]) {
    for (const offsetMs of [HOUR, -HOUR]) {
      const clocks = new TwoClocks({ offsetMs, driftPpm, jitterMs: 5, seed: 7 });
      const sync = new ClockSync();
      clocks.run(sync, 0, 120_000);
      const e = sync.estimate(120_000)!;
      assert.ok(
        Math.abs(e.driftPpm - driftPpm) < Math.max(10, Math.abs(driftPpm) * 0.05),
        `${driftPpm} ppm estimated ${e.driftPpm}`,
      );
      const truth = clocks.truth(120_000);
      assert.ok(Math.abs(e.offsetMs - truth) < 1, `offset ${e.offsetMs} vs ${truth}`);
      // Play-out maps server times through it: a block captured now maps to now.
      assert.ok(Math.abs(sync.toLocal(clocks.server(119_500)) - 119_500) < 1);
    }
  }
});

Deno.test("clock sync: an asymmetric path errs by half the asymmetry, never more than half the round trip", () => {
  const clocks = new TwoClocks({ offsetMs: 250, forwardMs: 10, backMs: 2 });
  const sync = new ClockSync();
  clocks.run(sync, 0, 20_000);
  const e = sync.estimate(20_000)!;
  // Forward 10 ms, back 2 ms: the estimate is 4 ms high, as NTP's would be.
  assert.ok(Math.abs(e.offsetMs - 254) < 0.01, `${e.offsetMs}`);
  assert.ok(Math.abs(e.offsetMs - 250) <= e.rttMs / 2);
});

Deno.test("clock sync: one badly delayed exchange does not move the estimate", () => {
  const clocks = new TwoClocks({ offsetMs: -300, driftPpm: 200, jitterMs: 1, seed: 3 });
  const sync = new ClockSync();
  clocks.run(sync, 0, 30_000);
  const before = sync.estimate(30_000)!;
  clocks.exchange(sync, 30_000, 400); // the request sat 400 ms in a queue
  const after = sync.estimate(30_000)!;
  assert.ok(
    Math.abs(after.offsetMs - before.offsetMs) < 0.05,
    `${before.offsetMs} → ${after.offsetMs}`,
  );
  assert.ok(Math.abs(after.driftPpm - before.driftPpm) < 5);
});

Deno.test("clock sync: a congested stretch, all its exchanges delayed one way, is left out", () => {
  const clocks = new TwoClocks({ offsetMs: 1000, jitterMs: 0.5, seed: 9 });
  const sync = new ClockSync();
  clocks.run(sync, 0, 40_000);
  for (let t = 40_000; t < 52_000; t += 1000) clocks.exchange(sync, t, 80);
  clocks.run(sync, 52_000, 60_000);
  const e = sync.estimate(60_000)!;
  assert.ok(Math.abs(e.offsetMs - 1000) < 0.5, `${e.offsetMs}`);
});

Deno.test("clock sync: after the server's clock steps, the estimate follows within a few exchanges", () => {
  const clocks = new TwoClocks({ offsetMs: 0, driftPpm: 50, jitterMs: 1, seed: 5 });
  const sync = new ClockSync();
  clocks.run(sync, 0, 60_000);
  clocks.step = 500; // the server's clock jumps half a second ahead
  clocks.run(sync, 60_000, 64_000);
  const e = sync.estimate(64_000)!;
  assert.ok(Math.abs(e.offsetMs - clocks.truth(64_000)) < 1.5, `${e.offsetMs}`);
  clocks.step = -2000; // and then two seconds back
  clocks.run(sync, 64_000, 70_000);
  assert.ok(Math.abs(sync.estimate(70_000)!.offsetMs - clocks.truth(70_000)) < 1.5);
});

Deno.test("clock sync: answers to no request, repeated, impossible or not numbers are refused", () => {
  const sync = new ClockSync();
  assert.equal(sync.answer(5, 10, 11, 7), "it answers no request of ours");
  const t1 = sync.stamp(100);
  assert.match(sync.answer(t1, NaN, 1, 102)!, /finite/);
  const t1b = sync.stamp(200);
  assert.match(sync.answer(t1b, 500, 499, 202)!, /before it received/);
  const t1c = sync.stamp(300);
  assert.match(sync.answer(t1c, 500, 520, 302)!, /longer than the round trip/);
  const t1d = sync.stamp(400);
  assert.equal(sync.answer(t1d, 900, 900.1, 402), null);
  assert.equal(sync.answer(t1d, 900, 900.1, 402), "it answers no request of ours");
  assert.equal(sync.estimate(402)!.samples, 1);
  // Two requests in the same millisecond still get distinct stamps.
  assert.notEqual(sync.stamp(500), sync.stamp(500));
});

Deno.test("clock sync: a burst at the start, retries backing off until answered, then one a second", () => {
  const sync = new ClockSync();
  assert.ok(sync.due(0));
  // Unanswered: ask again after 40, 80, 160... ms, never less than once a second.
  const asked: number[] = [];
  for (let i = 0; i < 8; i++) {
    asked.push(Math.max(0, sync.nextDue()));
    sync.stamp(asked[i]);
  }
  const gaps = (ts: number[]) => ts.slice(1).map((x, i) => x - ts[i]);
  assert.deepEqual(gaps(asked), [40, 80, 160, 320, 640, 1000, 1000]);
  // Answered at once: a burst of five 40 ms apart, then one a second.
  const clocks = new TwoClocks({ offsetMs: 10 });
  const times: number[] = [];
  let t = sync.nextDue();
  while (t < 10_000) {
    t = Math.max(t, sync.nextDue());
    times.push(t);
    clocks.exchange(sync, t);
  }
  assert.deepEqual(gaps(times).slice(0, 6), [40, 40, 40, 40, 40, 1000]);
  assert.ok(gaps(times).slice(5).every((g) => g === 1000));
});

Deno.test("synced timeline: blocks wait for the first answer, at most 64 (the oldest dropped), then go on the client's clock", () => {
  const timeline = new SyncedTimeline<{ seq: number; captured: number }>(new ClockSync());
  for (let seq = 0; seq < MAX_HELD_BLOCKS + 10; seq++) {
    assert.deepEqual(timeline.arrive({ seq, captured: 5000 + seq }), [], "waits");
  }
  assert.equal(timeline.answer({ t1: 1, t2: 2, t3: 3 }, 4), null, "an answer to no request");
  // The server's clock is 1000 ms ahead: t1 = 100, t2 = t3 = 1101, t4 = 102.
  const t1 = timeline.sync.stamp(100);
  const released = timeline.answer({ t1, t2: 1101, t3: 1101 }, 102)!;
  assert.equal(released.length, MAX_HELD_BLOCKS);
  assert.deepEqual(released[0], { seq: 10, captured: 4010 });
  assert.deepEqual(timeline.arrive({ seq: 99, captured: 6000 }), [{ seq: 99, captured: 5000 }]);
});

Deno.test("clock sync: when most exchanges at the start were held behind a stall, the quickest set the estimate", () => {
  // Seen through a relay that held the server's replies behind its blocks:
  // one clock (truth: offset 0, drift 0), forward and back delays in ms.
  const seen: [number, number, number][] = [
    [0, 5.04, 0.55],
    [41, 2.79, 38.68],
    [82, 2.28, 40.75],
    [162, 1.78, 0.24],
    [205, 1.73, 0.19],
    [246, 1.61, 41.17],
    [1248, 0.74, 354.36],
    [2250, 1.4, 0.17],
  ];
  const sync = new ClockSync();
  for (const [t1, there, back] of seen) {
    const stamped = sync.stamp(1000 + t1);
    const t2 = stamped + there;
    assert.equal(sync.answer(stamped, t2, t2, t2 + back), null);
  }
  const e = sync.estimate(3500)!;
  // A one-sided millisecond over two seconds is ~500 ppm; the median
  // exchange here was congested, and taking its bound gave over 4000.
  assert.ok(Math.abs(e.driftPpm) < 800, `drift ${e.driftPpm} ppm`);
  assert.ok(Math.abs(e.offsetMs) < 2, `offset ${e.offsetMs} ms`);
});
