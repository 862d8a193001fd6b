/**
 * The proof of possession's core: the salted digest and the limit on
 * proofs that miss, per address and per network.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  hexBytes,
  NETWORK_FACTOR,
  PROOF_BURST,
  PROOF_EVERY_MS,
  ProofLimiter,
  proofOf,
  sameProof,
} from "../../lib/core/file/proof.ts";

Deno.test("proof: MD5 of the salt then the content; another salt or content gives another proof", () => {
  const salt = "00112233445566778899aabbccddeeff";
  const content = new TextEncoder().encode("4821\n");
  const want = createHash("md5").update(hexBytes(salt)).update(content).digest("hex");
  assert.equal(proofOf(salt, content), want);
  assert.notEqual(proofOf("f".repeat(32), content), want);
  // The plain MD5 of the content is not the proof.
  assert.notEqual(createHash("md5").update(content).digest("hex"), want);
  assert.ok(sameProof(want, want));
  assert.ok(!sameProof(want, "0".repeat(32)));
  assert.ok(!sameProof(want, want.slice(1)));
});

Deno.test("proof limiter: a host misses a burst, then one every period; other hosts are not held back; a refund gives one back", () => {
  const limits = new ProofLimiter();
  const t = 1_000_000;
  for (let i = 0; i < PROOF_BURST; i++) {
    assert.ok(limits.mayChallenge("10.0.0.1", t), `miss ${i}`);
    limits.missed("10.0.0.1", t);
  }
  assert.ok(!limits.mayChallenge("10.0.0.1", t), "over its burst");
  assert.ok(limits.mayChallenge("10.0.0.2", t), "another address is not held back");
  assert.ok(!limits.mayChallenge("10.0.0.1", t + PROOF_EVERY_MS - 1));
  assert.ok(limits.mayChallenge("10.0.0.1", t + PROOF_EVERY_MS), "one more after the period");
  limits.missed("10.0.0.1", t + PROOF_EVERY_MS);
  assert.ok(!limits.mayChallenge("10.0.0.1", t + PROOF_EVERY_MS));
  // Its replacement stored: the miss is given back.
  limits.refund("10.0.0.1", t + PROOF_EVERY_MS);
  assert.ok(limits.mayChallenge("10.0.0.1", t + PROOF_EVERY_MS));
});

Deno.test("proof limiter: a network's addresses together miss at most its burst; another network is not held back", () => {
  const limits = new ProofLimiter();
  const t = 1_000_000;
  // Four addresses of one /24 spend its misses, each within its own burst.
  for (let h = 1; h <= NETWORK_FACTOR; h++) {
    for (let i = 0; i < PROOF_BURST; i++) limits.missed(`10.0.0.${h}`, t);
  }
  assert.ok(!limits.mayChallenge("10.0.0.99", t), "a fresh address of that network is held back");
  assert.ok(limits.mayChallenge("10.0.1.1", t), "another network is not");
  assert.ok(limits.mayChallenge("10.0.0.99", t + PROOF_EVERY_MS / NETWORK_FACTOR));
});
