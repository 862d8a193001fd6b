/**
 * The automatic jitter target (`--latency auto`), driven with time passed
 * in: it starts at the path's transit, grows at a missing slot when the
 * path says the block may still come (never by skipping audio), shrinks
 * only after a calm spell and then gently, and a fixed target never moves.
 */
import assert from "node:assert/strict";
import {
  CALM_MS,
  HEADROOM_MS,
  JitterBuffer,
  type PlayoutDecision,
  safeStartMs,
} from "../../lib/core/audio/stages/jitter_buffer.ts";

const BLOCK = 1024;
const RATE = 44100;
const MS = (BLOCK / RATE) * 1000;
/** The automatic target's default margin, ms. */
const MARGIN = 0.5;
/** How far past the slowest transit a block with nothing after it is waited for, ms. */
const GRACE = 5;
/** The target a transit needs: plus the margin, up to the next 0.1 ms. */
const need = (transit: number) => Math.ceil((transit + MARGIN) * 10) / 10;

interface Run {
  jb: JitterBuffer;
  decisions: { at: number; d: PlayoutDecision }[];
  played: number;
  concealed: number;
  late: number;
}

/**
 * Block `i` is captured at `i·MS` and arrives `transit(i)` ms later (null:
 * lost). Time runs in 0.25 ms steps; the buffer pops whatever is due.
 */
function simulate(
  blocks: number,
  transit: (i: number) => number | null,
  options: {
    auto?: boolean;
    recoveryMs?: (seq: number) => number;
    quiet?: (i: number) => boolean;
    /** Blocks that come rebuilt from repair data. */
    rebuilt?: (i: number) => boolean;
    /** Where the target starts (default 0: at the first block's transit, to test the adaptation). */
    startMs?: number;
    /** Keep the slot timeline (a recording). */
    keepTimeline?: boolean;
  } = {},
): Run {
  const jb = new JitterBuffer({
    targetMs: 70,
    blockMs: MS,
    auto: options.auto === false ? undefined : {
      maxMs: 300,
      rate: RATE,
      channels: 1,
      recoveryMs: options.recoveryMs,
      startMs: "startMs" in options ? options.startMs : 0,
    },
    keepTimeline: options.keepTimeline,
  });
  const arrivals = [] as { at: number; i: number }[];
  for (let i = 0; i < blocks; i++) {
    const t = transit(i);
    if (t !== null) arrivals.push({ at: i * MS + t, i });
  }
  arrivals.sort((a, b) => a.at - b.at);
  const run: Run = { jb, decisions: [], played: 0, concealed: 0, late: 0 };
  let next = 0;
  const end = blocks * MS + 400;
  for (let now = 0; now < end; now += 0.25) {
    while (next < arrivals.length && arrivals[next].at <= now) {
      const { i, at } = arrivals[next++];
      const level = options.quiet?.(i) ? 10 : 8000;
      const samples = new Int16Array(BLOCK).map((_, j) => (j % 2 ? level : -level));
      const recovered = options.rebuilt?.(i) ?? false;
      const r = jb.push({
        seq: i,
        captured: i * MS,
        intact: true,
        samples,
        arrived: at,
        recovered,
      });
      if (r === "late") run.late++;
    }
    // The stream ends after its last block: no slot past it is asked for.
    while (jb.next !== undefined && jb.next < blocks) {
      const d = jb.pop(now);
      if (!d) break;
      run.decisions.push({ at: now, d });
      if (d.kind === "play") run.played++;
      if (d.kind === "conceal") run.concealed++;
    }
  }
  return run;
}

Deno.test("auto target: a steady path settles at its transit plus the margin and never moves", () => {
  const r = simulate(400, () => MS + 1);
  assert.equal(r.jb.targetMs, need(MS + 1));
  assert.equal(r.jb.target.stretches, 0);
  assert.equal(r.jb.target.squeezed, 0);
  assert.equal(r.concealed, 0);
  assert.equal(r.played, 400);
  // Every block plays at its capture time plus the target.
  for (const { at, d } of r.decisions) {
    if (d.kind === "play") assert.ok(at - d.captured <= r.jb.targetMs + 0.25);
  }
});

Deno.test("auto target: a block held up once is waited for a little, then late; the next is waited for in full", () => {
  // Block 200 takes 40 ms longer. Nothing after it has come when its slot
  // falls due, so it may be late rather than lost: the slot waits, in small
  // stretches, up to a little past the slowest transit seen, then gives up.
  const once = simulate(400, (i) => MS + 1 + (i === 200 ? 40 : 0));
  assert.equal(once.late, 1);
  assert.equal(once.jb.target.stretches, 1);
  assert.ok(once.jb.target.maxMs <= need(MS + 1 + GRACE) + 1e-9, `${once.jb.target.maxMs}`);
  // Another such block within the window: its slot waits as long as the path has shown it needs.
  const again = simulate(400, (i) => MS + 1 + (i === 200 || i === 230 ? 40 : 0));
  assert.ok(again.jb.target.maxMs >= need(MS + 41), `${again.jb.target.maxMs}`);
  assert.equal(again.late, 1);
  const waited = new Set(again.decisions.filter((x) => x.d.kind === "stretch").map((x) => x.d.seq));
  assert.deepEqual([...waited], [200, 230]);
  assert.equal(again.played, 399);
});

Deno.test("auto target: a block a little slower than any before is waited for, not lost", () => {
  // Every 50th block 3 ms slower than the rest: within the grace.
  const r = simulate(400, (i) => MS + 1 + (i % 50 === 25 ? 3 : 0));
  assert.equal(r.late, 0);
  assert.equal(r.concealed, 0);
  assert.equal(r.played, 400);
});

Deno.test("auto target: rises quickly under jitter, waiting instead of concealing", () => {
  // Calm, then from block 100 on every 10th block takes 20 ms longer.
  const jitter = (i: number) => MS + 1 + (i >= 100 && i % 10 === 0 ? 20 : 0);
  const r = simulate(400, jitter);
  assert.ok(r.jb.target.stretches >= 1, "the target grew");
  assert.ok(r.jb.targetMs >= need(MS + 21), `target ${r.jb.targetMs}`);
  // The first slow block's slot waited (a stretch) rather than being lost.
  const firstStretch = r.decisions.find((x) => x.d.kind === "stretch")!;
  assert.ok(firstStretch, "a stretch decision");
  // At most the first jittered block is late; after the target rose none are.
  assert.ok(r.late <= 1, `${r.late} late`);
  assert.ok(r.concealed <= 1, `${r.concealed} concealed`);
  // A stretch keeps its slot: the slot is decided after it (played, or concealed if it never came).
  const s = firstStretch.d;
  const after = r.decisions.find((x) =>
    x.at > firstStretch.at && x.d.seq === s.seq && x.d.kind !== "stretch"
  );
  assert.ok(after, "the stretched slot was decided later");
  assert.ok(r.jb.target.maxMs > r.jb.target.minMs);
});

Deno.test("auto target: falls back slowly on a calm path, squeezing by at most 1% a block", () => {
  // Jitter for the first 100 blocks, then calm for the rest.
  const r = simulate(800, (i) => MS + 1 + (i < 100 && i % 7 === 3 ? 25 : 0));
  const peak = r.jb.target.maxMs;
  assert.ok(peak >= need(MS + 26), `peak ${peak}`);
  assert.ok(r.jb.target.squeezed > 0, "it shrank");
  // Back to the calm path's need (its transit, the headroom and the margin), within half a millisecond.
  assert.ok(r.jb.targetMs <= need(MS + 1 + HEADROOM_MS) + 0.5, `final ${r.jb.targetMs}`);
  // Not while the jitter lasts, nor in the calm spell after the last stretch.
  const squeezed = r.decisions.filter((x) => x.d.kind === "play" && x.d.samples.length < BLOCK);
  assert.ok(squeezed.length > 0);
  assert.ok(squeezed[0].d.seq >= 100, `first squeeze at block ${squeezed[0].d.seq}`);
  const lastStretch = r.decisions.findLast((x) => x.d.kind === "stretch")!;
  assert.ok(squeezed[0].at >= lastStretch.at + CALM_MS, `first squeeze at ${squeezed[0].at} ms`);
  for (const x of squeezed) {
    if (x.d.kind === "play") assert.ok(x.d.samples.length >= BLOCK - Math.floor(BLOCK / 100));
  }
  // Only the first slow block, before the target knew, was concealed; shrinking conceals nothing.
  assert.ok(r.concealed <= 1, `${r.concealed} concealed`);
  assert.ok(!r.decisions.some((x) => x.d.kind === "conceal" && x.d.seq >= 100));
});

Deno.test("auto target: quiet blocks are squeezed harder", () => {
  const r = simulate(600, (i) => MS + 1 + (i < 50 && i % 7 === 3 ? 25 : 0), {
    quiet: (i) => i > 150,
  });
  const cuts = r.decisions.filter((x) => x.d.kind === "play" && x.d.samples.length < BLOCK - 10);
  assert.ok(cuts.length > 0, "a quiet block lost more than 1% of its frames");
  for (const x of cuts) if (x.d.kind === "play") assert.ok(x.d.samples.length >= BLOCK / 2);
});

Deno.test("auto target: a lost block whose repairs are still to come is waited for at once", () => {
  // Groups of two blocks: block 2g's repairs leave with block 2g+1, one
  // block later. Block 60 comes one block late, rebuilt from its group's
  // repairs; block 40 was rebuilt before it, so the path is known to lose
  // datagrams and a missing block is worth waiting for.
  const recoveryMs = (seq: number) => (1 - (seq % 2)) * MS;
  const rebuilt = (i: number) => i === 40 || i === 60;
  const r = simulate(200, (i) => (i === 60 ? 2 * MS + 1 : MS + 1), { recoveryMs, rebuilt });
  assert.equal(r.concealed, 0, "nothing concealed");
  assert.equal(r.late, 0);
  const stretches = r.decisions.filter((x) => x.d.kind === "stretch");
  assert.deepEqual(stretches.map((x) => x.d.seq), [60], "one stretch, at block 60's slot");
  // Without the recovery time the same slot is concealed and the block late.
  const plain = simulate(200, (i) => (i === 60 ? 2 * MS + 1 : MS + 1), { rebuilt });
  assert.equal(plain.late, 1);
  // Nor is it waited for with nothing to say the path loses datagrams: it may just be late.
  const unknown = simulate(200, (i) => (i === 60 ? 2 * MS + 1 : MS + 1), { recoveryMs });
  assert.equal(unknown.late, 1);
});

Deno.test("a fixed target never moves, whatever the path does", () => {
  const r = simulate(300, (i) => MS + 1 + (i % 5 === 0 ? 90 : 0), { auto: false });
  assert.equal(r.jb.targetMs, 70);
  assert.deepEqual([r.jb.target.minMs, r.jb.target.maxMs], [70, 70]);
  assert.equal(r.jb.target.stretches + r.jb.target.squeezed, 0);
  assert.ok(r.late > 0);
  assert.ok(!r.decisions.some((x) => x.d.kind === "stretch"));
});

Deno.test("auto target: by default it starts at a safe margin, so a clean path with a slow start never stretches, then comes down after a calm spell", () => {
  // The first blocks a little slow (a listener joining while others do), then steady.
  const r = simulate(600, (i) => (i < 40 ? MS + 1 + (i % 7) * 4 : MS + 1), { startMs: undefined });
  const stretches = r.decisions.filter((x) => x.d.kind === "stretch");
  assert.equal(stretches.length, 0, "no stretch from the first block");
  assert.equal(r.concealed, 0);
  assert.equal(r.played, 600);
  assert.equal(r.jb.target.maxMs, safeStartMs(MS), "started at the safe margin");
  assert.ok(safeStartMs(MS) >= 3 * MS);
  // Came down to what the path needs after the calm spell, squeezing as a device does.
  assert.ok(r.jb.target.minMs < safeStartMs(MS) - 20, `lowest ${r.jb.target.minMs}`);
  assert.ok(r.jb.target.squeezed > 0);
});

Deno.test("auto target keeping the timeline: nothing is squeezed, the target steps down, and every slot holds its block", () => {
  const r = simulate(600, (i) => (i < 40 ? MS + 1 + (i % 7) * 4 : MS + 1), {
    startMs: undefined,
    keepTimeline: true,
  });
  assert.equal(r.jb.target.squeezed, 0);
  assert.ok(r.jb.target.minMs <= need(MS + 25 + HEADROOM_MS), `came down to ${r.jb.target.minMs}`);
  const plays = r.decisions.filter((x) => x.d.kind === "play");
  assert.equal(plays.length, 600);
  for (const [k, x] of plays.entries()) {
    assert.equal(x.d.seq, k);
    assert.equal((x.d as { samples: Int16Array }).samples.length, BLOCK, "never squeezed");
  }
});

Deno.test("auto target keeping the timeline: slots skipped when the stream jumps ahead are concealed in place", () => {
  // Blocks 10 to 99 never come (a long outage), with a fixed-size window of 64.
  for (const auto of [true, false]) {
    const r = simulate(160, (i) => (i >= 10 && i < 100 ? null : MS + 1), {
      keepTimeline: true,
      auto,
    });
    const slots = r.decisions.filter((x) => x.d.kind !== "stretch").map((x) => x.d.seq);
    const all = Array.from({ length: 160 }, (_, k) => k);
    assert.deepEqual(slots, all, `one decision per slot, in order (auto ${auto})`);
  }
  // Blocks 20 to 119 held up for seconds, then all at once: the slots
  // concealed meanwhile are never decided again, the rest are kept.
  const stalled = simulate(200, (i) => (i < 20 ? MS + 1 : i < 120 ? 2600 - i * MS : MS + 1), {
    keepTimeline: true,
    auto: false,
  });
  const kept = stalled.decisions.filter((x) => x.d.kind !== "stretch").map((x) => x.d.seq);
  assert.deepEqual(
    kept,
    Array.from({ length: 200 }, (_, k) => k),
    "every slot kept across the jump",
  );
});
