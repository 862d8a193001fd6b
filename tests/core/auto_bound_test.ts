/**
 * Audio-TCP's automatic latency bound, driven with time passed in: it
 * starts safe, grows at once at a stall, and comes down after a calm spell.
 */
import assert from "node:assert/strict";
import {
  AutoBound,
  TCP_AUTO_MIN_MS,
  TCP_AUTO_START_MS,
  TCP_AUTO_WARMUP_MS,
} from "../../lib/core/audio/stages/auto_bound.ts";
import { CALM_MS, HEADROOM_MS } from "../../lib/core/audio/stages/auto_target.ts";

const MS = (1024 / 44100) * 1000;

Deno.test("TCP auto bound: starts safe, covers a stall at once, comes down after a calm spell", () => {
  // Allowed down to the path's need (a sound device's default floor is 100 ms).
  const b = new AutoBound({ minMs: 0 });
  assert.equal(b.ms, TCP_AUTO_START_MS);
  let now = 0;
  const feed = (blocks: number, latency: (i: number) => number) => {
    for (let i = 0; i < blocks; i++, now += MS) b.observe(latency(i), now);
  };
  // The warm-up (the sink opening): a late block then is not followed.
  feed(Math.floor(TCP_AUTO_WARMUP_MS / MS), (i) => (i === 3 ? 400 : MS + 2));
  assert.equal(b.ms, TCP_AUTO_START_MS);
  assert.equal(b.grew, 0);
  // A clean start: the bound holds for the calm spell, then comes down.
  feed(Math.floor(CALM_MS / MS) - 2, () => MS + 2);
  assert.equal(b.ms, TCP_AUTO_START_MS, "not before a calm spell");
  feed(400, () => MS + 2);
  assert.ok(b.ms <= MS + 2 + HEADROOM_MS + 0.01, `came down to ${b.ms}`);
  // A 600 ms retransmission stall: the blocks held up arrive late, the bound covers them.
  feed(30, (i) => Math.max(MS + 2, 600 - i * MS));
  assert.equal(b.grew, 1);
  assert.ok(b.ms >= 600, `grew to ${b.ms}`);
  const grown = b.ms;
  // It stays up while stalls come again, then comes down after calm.
  feed(100, () => MS + 2);
  assert.equal(b.ms, grown, "no coming down within the calm spell");
  feed(900, () => MS + 2);
  assert.ok(b.ms <= MS + 2 + HEADROOM_MS + 0.01, `came down again to ${b.ms}`);
  assert.equal(b.maxMsSeen, grown);
});

Deno.test("TCP auto bound: never above its largest", () => {
  const b = new AutoBound({ startMs: 100, maxMs: 500 });
  b.observe(20, 0);
  b.observe(4000, TCP_AUTO_WARMUP_MS);
  assert.equal(b.ms, 500);
});

Deno.test("TCP auto bound: by default it comes down no lower than the old fixed 100 ms", () => {
  const b = new AutoBound();
  for (let i = 0, now = 0; i < 1000; i++, now += MS) b.observe(MS + 2, now);
  assert.equal(b.ms, TCP_AUTO_MIN_MS);
});
