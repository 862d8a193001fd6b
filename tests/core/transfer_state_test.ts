import assert from "node:assert/strict";
import { TransferState } from "../../lib/core/file/transfer_state.ts";
import { md5 } from "../../lib/core/crypto/md5.ts";
import { ProtocolError, UserError } from "../../lib/core/errors.ts";
import { MAX_CHUNK_RETRIES } from "../../lib/core/file/messages.ts";

const chunk = (i: number, n = 1024) => new Uint8Array(n).fill(i + 1);

Deno.test("state stores verified chunks, rejects bad ones and ignores duplicates", () => {
  const s = new TransferState(2500, 1024);
  assert.equal(s.chunks, 3);
  assert.equal(s.lengthOf(2), 452);
  const d0 = md5(chunk(0));
  assert.equal(s.receiveData(0, 1024, d0, d0), "store");
  assert.equal(s.receiveData(0, 1024, d0, d0), "duplicate");
  const bad = md5(chunk(9));
  assert.equal(s.receiveData(1, 1024, bad, md5(chunk(1))), "retry");
  assert.equal(s.isHeld(1), false);
  assert.equal(s.failuresOf(1), 1);
  assert.equal(s.heldCount, 1);
  assert.deepEqual(s.heldRanges(), [[0, 1]]);
});

Deno.test("state gives up after too many failures of one chunk", () => {
  const s = new TransferState(4096, 1024);
  const a = md5(chunk(1));
  const b = md5(chunk(2));
  for (let i = 0; i < MAX_CHUNK_RETRIES; i++) assert.equal(s.receiveData(1, 1024, a, b), "retry");
  assert.throws(() => s.receiveData(1, 1024, a, b), UserError);
});

Deno.test("state rejects impossible indices and lengths", () => {
  const s = new TransferState(4096, 1024);
  const d = md5(chunk(0));
  assert.throws(() => s.receiveData(4, 1024, d, d), ProtocolError);
  assert.throws(() => s.receiveData(0, 10, d, d), ProtocolError);
  assert.throws(() => s.receiveCheck(99, d), ProtocolError);
});

Deno.test("state drops every held chunk from one that turns out to differ", () => {
  const s = new TransferState(4096, 1024);
  const ds = [0, 1, 2, 3].map((i) => md5(chunk(i)));
  for (let i = 0; i < 4; i++) s.receiveData(i, 1024, ds[i], ds[i]);
  // A CHECK that differs at chunk 2: chunks 2 and 3 are stale.
  assert.equal(s.receiveCheck(2, ds[0]), "retry");
  assert.deepEqual(s.heldRanges(), [[0, 2]]);
  assert.equal(s.failuresOf(2), 1);
  // Verified data that differs from the held copy replaces it and drops the rest.
  s.receiveData(2, 1024, ds[2], ds[2]);
  s.receiveData(3, 1024, ds[3], ds[3]);
  const other = md5(chunk(7));
  assert.equal(s.receiveData(1, 1024, other, other), "store");
  assert.deepEqual(s.heldRanges(), [[0, 2]]);
  assert.equal(s.truncate(0), 2);
  assert.equal(s.heldCount, 0);
});

Deno.test("state round-trips through bytes and resumes with CHECKs", () => {
  const s = new TransferState(5000, 1024);
  const ds = [0, 1, 2, 3, 4].map((i) => md5(chunk(i)));
  s.receiveData(0, 1024, ds[0], ds[0]);
  s.receiveData(1, 1024, ds[1], ds[1]);
  const r = TransferState.deserialize(s.serialize(), 5000, 1024)!;
  assert.ok(r);
  assert.deepEqual(r.heldRanges(), [[0, 2]]);
  assert.equal(r.receiveCheck(0, ds[0]), "duplicate");
  // A held chunk whose check value differs is dropped (and so is every later one).
  assert.equal(r.receiveCheck(1, ds[3]), "retry");
  assert.equal(r.isHeld(1), false);
  // A saved state with a gap holds only the prefix before the gap: checks
  // are prefix MD5s, so nothing past a gap can have been verified.
  s.receiveData(3, 1024, ds[3], ds[3]);
  const gap = TransferState.deserialize(s.serialize(), 5000, 1024)!;
  assert.deepEqual(gap.heldRanges(), [[0, 2]]);
  assert.equal(gap.prefixLength, 2);
});

Deno.test("state refuses damaged or foreign saved bytes", () => {
  const s = new TransferState(5000, 1024);
  const bytes = s.serialize();
  assert.equal(TransferState.deserialize(bytes, 5001, 1024), null);
  assert.equal(TransferState.deserialize(bytes, 5000, 2048), null);
  assert.equal(TransferState.deserialize(bytes.subarray(1), 5000, 1024), null);
  const bad = bytes.slice();
  bad[0] ^= 1;
  assert.equal(TransferState.deserialize(bad, 5000, 1024), null);
  const extraBit = bytes.slice();
  extraBit[24] = 0xff; // claims chunks 5..7, which do not exist
  assert.equal(TransferState.deserialize(extraBit, 5000, 1024), null);
});

Deno.test("an empty file is complete at once", () => {
  const s = new TransferState(0, 1024);
  assert.equal(s.chunks, 0);
  assert.equal(s.complete, true);
});
