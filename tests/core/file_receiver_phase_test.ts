/**
 * The File-TCP receiver's phases: the transition table, the path a whole
 * session takes through it, and that nothing is taken after an error.
 */
import assert from "node:assert/strict";
import {
  FileReceiver,
  RECEIVER_TRANSITIONS,
  type ReceiverPhase,
} from "../../lib/core/file/receiver.ts";
import { DATA_OFFSET, FileSender } from "../../lib/core/file/sender.ts";
import { TransferState } from "../../lib/core/file/transfer_state.ts";
import { encodeFrame } from "../../lib/core/wire/frame.ts";
import { CHUNK_CHECK, encodeJson, MsgType } from "../../lib/core/file/messages.ts";
import { ProtocolError } from "../../lib/core/errors.ts";
import { proofOf } from "../../lib/core/file/proof.ts";

const CHUNK = 1024;
const TOKEN = "0123456789abcdef0123456789abcdef";
const EMPTY = new Uint8Array(0);

Deno.test("receiver phases: the table reaches every phase, ends in done or failed, and any live phase may fail", () => {
  const phases = Object.keys(RECEIVER_TRANSITIONS) as ReceiverPhase[];
  const seen = new Set<ReceiverPhase>(["awaiting-offer"]);
  for (let grew = true; grew;) {
    grew = false;
    for (const p of [...seen]) {
      for (const q of RECEIVER_TRANSITIONS[p]) if (!seen.has(q)) grew = !!seen.add(q);
    }
  }
  assert.deepEqual([...seen].sort(), [...phases].sort());
  assert.deepEqual(RECEIVER_TRANSITIONS.done, []);
  assert.deepEqual(RECEIVER_TRANSITIONS.failed, []);
  for (const p of phases) {
    if (p !== "done" && p !== "failed") assert.ok(RECEIVER_TRANSITIONS[p].includes("failed"), p);
  }
});

Deno.test("receiver phases: a whole transfer goes awaiting-offer, offered, receiving, verified, done", () => {
  const data = new Uint8Array(3 * CHUNK + 5).map((_, i) => i & 0xff);
  const sender = new FileSender({ name: "f", size: data.length, chunkSize: CHUNK });
  const r = new FileReceiver();
  const seen: ReceiverPhase[] = [r.phase];
  const events = r.receive(sender.offerFrame(), 0);
  seen.push(r.phase);
  assert.equal(events[0].type, "offer");
  sender.receive(r.accept(new TransferState(data.length, CHUNK), TOKEN));
  seen.push(r.phase);
  const frames: Uint8Array[] = [];
  for (let i = sender.next; i !== null; i = sender.next) {
    const chunk = data.subarray(i * CHUNK, (i + 1) * CHUNK);
    const frame = new Uint8Array(DATA_OFFSET + CHUNK);
    frame.set(chunk, DATA_OFFSET);
    frames.push(sender.chunkFrame(i, frame, chunk.length));
  }
  frames.push(sender.endFrame());
  const out = frames.flatMap((f) => r.receive(f, 0));
  assert.equal(out.at(-1)?.type, "verified");
  seen.push(r.phase);
  r.stored("received-f");
  seen.push(r.phase);
  assert.deepEqual(seen, ["awaiting-offer", "offered", "receiving", "verified", "done"]);
});

Deno.test("receiver phases: an update goes offered, challenged, proved, then done or receiving", () => {
  const content = new Uint8Array(100).fill(3);
  const offer = encodeJson(MsgType.OFFER, {
    name: "f",
    size: content.length,
    chunkSize: CHUNK,
    check: CHUNK_CHECK,
    update: true,
  });
  const proof = encodeJson(MsgType.PROOF, { proof: proofOf("ab".repeat(16), content) });
  for (const match of [true, false]) {
    const r = new FileReceiver();
    r.receive(offer, 0);
    r.challenge("ab".repeat(16));
    assert.equal(r.phase, "challenged");
    assert.equal(r.receive(proof, 0)[0].type, "proof");
    assert.equal(r.phase, "proved");
    if (match) r.upToDate("received-f", "0".repeat(32));
    else r.accept(new TransferState(content.length, CHUNK), TOKEN);
    assert.equal(r.phase, match ? "done" : "receiving");
  }
});

Deno.test("receiver phases: after an error every input is refused", () => {
  const offer = encodeJson(MsgType.OFFER, {
    name: "f",
    size: 3 * CHUNK,
    chunkSize: CHUNK,
    check: CHUNK_CHECK,
  });
  const failures: [string, RegExp, (r: FileReceiver) => void][] = [
    [
      "a frame before the offer",
      /must open with its offer/,
      (r) => r.receive(encodeFrame(MsgType.END, EMPTY), 0),
    ],
    ["a client that gave up", /gave up: bye/, (r) => {
      r.receive(offer, 0);
      r.accept(new TransferState(3 * CHUNK, CHUNK), TOKEN);
      r.receive(encodeFrame(MsgType.ERROR, new TextEncoder().encode("bye")), 0);
    }],
    ["a chunk past the file", /chunk|index/i, (r) => {
      r.receive(offer, 0);
      r.accept(new TransferState(3 * CHUNK, CHUNK), TOKEN);
      const chunk = new Uint8Array(4 + 16 + 1);
      new DataView(chunk.buffer).setUint32(0, 99);
      r.receive(encodeFrame(MsgType.DATA, chunk), 0);
    }],
    ["a close mid-transfer", /before its offer was accepted/, (r) => {
      r.receive(offer, 0);
      r.closed();
    }],
  ];
  for (const [what, why, fail] of failures) {
    const r = new FileReceiver();
    assert.throws(() => fail(r), why, what);
    assert.equal(r.phase, "failed", what);
    const refused = /already failed/;
    assert.throws(() => r.receive(offer, 0), refused, what);
    assert.throws(() => r.receive(EMPTY, 0), refused, what);
    assert.throws(() => r.accept(new TransferState(3 * CHUNK, CHUNK), TOKEN), refused, what);
    assert.throws(() => r.hashChunk(0, EMPTY), refused, what);
    assert.throws(() => r.challenge("ab".repeat(16)), refused, what);
    assert.throws(() => r.stored("x"), refused, what);
    assert.throws(() => r.closed(), ProtocolError, what);
  }
});
