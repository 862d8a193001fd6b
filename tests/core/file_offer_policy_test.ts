/**
 * The File-TCP server's offer policy with no disk: the size limit, names,
 * which offers are asked for proof and what a proof proves, which partial
 * an offer resumes, the mode of a file found up to date, and a pack's
 * files each checked on its own.
 */
import assert from "node:assert/strict";
import {
  entryToken,
  judgeProof,
  modeToSet,
  offerLabel,
  packEntries,
  partialFor,
  planOffer,
  sameStored,
  storedPath,
  updateStep,
} from "../../lib/core/file/offer_policy.ts";
import { CHUNK_CHECK, type Offer } from "../../lib/core/file/messages.ts";
import { decodeOffer } from "../../lib/core/file/decode_messages.ts";
import { encodePack } from "../../lib/core/file/pack.ts";
import { jsonBytes } from "../../lib/core/wire/json.ts";
import { ProtocolError, UserError } from "../../lib/core/errors.ts";

const LIMITS = { maxSize: 1000, overwrite: false };

function offer(extra: Record<string, unknown> = {}): Offer {
  return decodeOffer(
    jsonBytes({ name: "f.txt", size: 10, chunkSize: 1024, check: CHUNK_CHECK, ...extra }),
  );
}

Deno.test("offer policy: over the size limit is refused naming both sizes; a name is made safe", () => {
  assert.throws(
    () => planOffer(offer({ size: 1001 }), LIMITS),
    (e: Error) =>
      e instanceof UserError && /1001 B, over the server's limit of 1000 B/.test(e.message),
  );
  const plan = planOffer(offer({ size: 1000 }), LIMITS);
  assert.deepEqual(plan, { base: "f.txt", reuse: false, parts: undefined, isDir: false });
  assert.equal(storedPath(plan, undefined), "received-f.txt");
  assert.equal(storedPath(plan, "received-t/a/f.txt"), "received-t/a/f.txt");
  assert.equal(planOffer(offer({ update: true }), LIMITS).reuse, true);
  assert.equal(planOffer(offer(), { ...LIMITS, overwrite: true }).reuse, true);
  const entry = planOffer(offer({ name: "t", path: ["a", "b"], kind: "dir", size: 0 }), LIMITS);
  assert.deepEqual([entry.parts, entry.isDir], [["a", "b"], true]);
});

Deno.test("offer policy: a transfer is logged by its path, as a pack, or by its name", () => {
  assert.equal(offerLabel(offer({ name: "t", path: ["a", "b.txt"] })), "t/a/b.txt");
  assert.equal(offerLabel(offer({ name: "t", kind: "pack" })), "t (a pack of small files)");
  assert.equal(offerLabel(offer()), "f.txt");
});

Deno.test("offer policy: only an update of a file the book holds is asked for proof", () => {
  assert.equal(updateStep(offer(), true), "accept", "not an update");
  assert.equal(updateStep(offer({ update: true }), false), "accept", "the book holds nothing");
  assert.equal(updateStep(offer({ update: true }), true), "challenge");
  assert.equal(
    updateStep(offer({ update: true, proof: "a".repeat(32) }), true),
    "check-proof",
    "a proof with the offer",
  );
});

Deno.test("offer policy: a proof is up to date only when it matches the stored file, still there", () => {
  const want = "0123456789abcdef0123456789abcdef";
  assert.equal(judgeProof(want, true, want), "up-to-date");
  assert.equal(judgeProof(want, true, "f".repeat(32)), "miss");
  assert.equal(judgeProof(null, true, want), "unknown", "nothing to compare with");
  assert.equal(judgeProof(want, false, "f".repeat(32)), "unknown", "the file changed meanwhile");
  const id = { ino: 1, dev: 2, mtimeMs: 3 };
  assert.ok(sameStored(id, { ...id }));
  assert.ok(!sameStored(id, undefined));
  assert.ok(!sameStored(id, { ...id, mtimeMs: 4 }));
  assert.ok(!sameStored(id, { ...id, ino: 9 }));
});

Deno.test("offer policy: a folder entry's partial is named by the entry; other offers resume by token", () => {
  const entry = offer({ name: "t", path: ["a"], mtime: 5 });
  const choice = partialFor(entry);
  assert.equal(choice.named, true);
  assert.equal(choice.resume, entryToken(entry));
  assert.match(choice.resume!, /^[0-9a-f]{32}$/);
  assert.notEqual(entryToken(offer({ name: "t", path: ["a"], mtime: 6 })), choice.resume);
  assert.notEqual(entryToken(offer({ name: "t", path: ["a"], mtime: 5, size: 11 })), choice.resume);
  assert.deepEqual(partialFor(offer({ resume: "b".repeat(32), mtime: 5 })), {
    resume: "b".repeat(32),
    named: false,
  });
  assert.deepEqual(partialFor(offer()), { resume: undefined, named: false });
});

Deno.test("offer policy: a file found up to date takes the sender's mode, masked, only if it differs", () => {
  assert.equal(modeToSet(offer(), 0o100644), undefined, "no mode sent");
  assert.equal(modeToSet(offer({ mode: 0o644 }), 0o100644), undefined, "already so");
  assert.equal(modeToSet(offer({ mode: 0o600 }), 0o100644), 0o600);
  assert.equal(modeToSet(offer({ mode: 0o4755 }), 0o100755), undefined, "set-id bits are masked");
});

Deno.test("offer policy: a pack's files are each checked on their own; a bad path refuses only its file", () => {
  const data = encodePack([
    { path: ["a", "x.txt"], mode: 0o640, data: new Uint8Array([1, 2, 3]) },
    { path: [".."], data: new Uint8Array([4]) },
    { path: ["y"], data: new Uint8Array([5, 6]) },
  ]);
  const entries = packEntries(data, "t");
  assert.deepEqual(entries.map((e) => e.name), ["t/a/x.txt", "t/..", "t/y"]);
  const [x, bad, y] = entries;
  assert.ok("parts" in x && "parts" in y && "refused" in bad);
  assert.deepEqual([x.parts, x.mode], [["a", "x.txt"], 0o640]);
  assert.deepEqual([...data.subarray(x.start, x.end)], [1, 2, 3]);
  assert.deepEqual([...data.subarray(y.start, y.end)], [5, 6]);
  assert.ok(bad.refused instanceof ProtocolError);
  assert.throws(() => packEntries(new Uint8Array(3), "t"), ProtocolError);
});
