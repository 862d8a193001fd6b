/**
 * The drift compensator against a simulated device: a sender faster or
 * slower than the device, with a device that takes audio in chunks, and
 * no drift at all (then nothing is touched).
 */
import assert from "node:assert/strict";
import { RateMatcher, stretch } from "../../lib/core/audio/stages/rate_match.ts";

const RATE = 44100;
const BLOCK = 1024;

/**
 * Feeds `seconds` of blocks from a sender running `senderPpm` fast into a
 * device that plays at exactly RATE, taking audio every `chunkMs`; returns
 * the matcher and the frames the device held at each block, in order.
 */
function simulate(
  senderPpm: number,
  seconds: number,
  chunkMs = 10,
  measuredPpm = senderPpm,
  knownAfterS = 2,
) {
  const m = new RateMatcher({ rate: RATE, channels: 1 });
  const blockS = BLOCK / RATE / (1 + senderPpm / 1e6);
  let held = 4096; // frames in the device when the stream starts
  let played = 0; // frames the device has taken, by its clock
  const levels: number[] = [];
  const block = new Int16Array(BLOCK).map((_, i) => Math.round(8000 * Math.sin(i / 7)));
  for (let t = 0; t < seconds; t += blockS) {
    // The device plays what its clock says, a chunk at a time.
    const due = Math.floor((t * 1000) / chunkMs) * chunkMs * RATE / 1000;
    held = Math.max(0, held - (due - played));
    played = due;
    const out = m.next(block, held, t > knownAfterS ? measuredPpm : 0);
    held += out.length;
    levels.push(held);
  }
  return { m, levels };
}

Deno.test("rate match: with no drift nothing is touched; the output stays sample-exact", () => {
  const m = new RateMatcher({ rate: RATE, channels: 2 });
  const block = new Int16Array(2 * BLOCK).map((_, i) => i * 3);
  for (let i = 0; i < 2000; i++) {
    const wobble = 3000 + ((i * 37) % 700); // a queue that wobbles by less than a block
    assert.equal(m.next(block, wobble, i % 2 ? 4 : -4), block, `block ${i}`);
  }
  assert.equal(m.framesAdded + m.framesRemoved, 0);
});

Deno.test("rate match: a sender 0.3% fast or slow, or 100 ppm, is followed and the device's queue held", () => {
  for (const ppm of [3000, -3000, 100, -100]) {
    const { m, levels } = simulate(ppm, 120);
    const expected = (m.framesIn * ppm) / 1e6;
    const net = m.framesRemoved - m.framesAdded;
    assert.ok(
      Math.abs(net - expected) < Math.max(0.05 * Math.abs(expected), BLOCK),
      `${ppm}: ${net} vs ${expected}`,
    );
    // Held: the level at the end is within two blocks of where it settled
    // (without matching it would be 0.3% × 120 s = 16,000 frames off).
    const settled = levels[Math.round(levels.length / 10)];
    const end = levels[levels.length - 1];
    assert.ok(Math.abs(end - settled) < 2 * BLOCK, `${ppm}: ${settled} → ${end}`);
  }
});

Deno.test("rate match: the correction reported is the one in force, not the mean that trails it", () => {
  // As in a real session: the drift is known only after 4 s, the run is 40 s.
  for (const ppm of [3000, -3000, 100]) {
    const { m } = simulate(ppm, 40, 10, ppm, 4);
    assert.ok(Math.abs(m.recentPpm - ppm) < 0.05 * Math.abs(ppm), `${ppm}: now ${m.recentPpm}`);
    // The session's mean is 10% short: 4 s of 40 went uncorrected.
    assert.ok(Math.abs(m.meanPpm) < 0.93 * Math.abs(ppm), `${ppm}: mean ${m.meanPpm}`);
  }
});

Deno.test("rate match: a wrong drift estimate is corrected by the queue's level", () => {
  // The sender is 0.2% fast but the sync says 0: the level alone pulls it back.
  const { levels } = simulate(2000, 240, 10, 0);
  const settled = levels[Math.round(levels.length / 10)];
  const end = levels[levels.length - 1];
  assert.ok(Math.abs(end - settled) < 4 * BLOCK, `${settled} → ${end}`);
});

Deno.test("rate match: stretching keeps the ends, so blocks still join, and the channels apart", () => {
  const stereo = new Int16Array([0, 100, 10, 110, 20, 120, 30, 130]);
  const longer = stretch(stereo, 2, 5);
  assert.equal(longer.length, 10);
  assert.deepEqual([longer[0], longer[1]], [0, 100]);
  assert.deepEqual([longer[8], longer[9]], [30, 130]);
  assert.deepEqual(Array.from(longer.filter((_, i) => i % 2 === 0)), [0, 8, 15, 23, 30]);
  assert.deepEqual(Array.from(stretch(stereo, 2, 3).filter((_, i) => i % 2 === 1)), [
    100,
    115,
    130,
  ]);
});
