import assert from "node:assert/strict";
import { LinkSplitter } from "../../lib/core/file/link_splitter.ts";
import { MAX_CONNECTION_HELD, StreamBudget } from "../../lib/core/file/stream_budget.ts";
import {
  CHUNK_CHECK,
  DATA_PREFIX,
  encodeError,
  encodeJson,
  encodeStream,
  MAX_CHUNK_SIZE,
  MsgType,
} from "../../lib/core/file/messages.ts";
import { FileReceiver } from "../../lib/core/file/receiver.ts";
import { concatBytes, HEADER_LENGTH, writeHeader } from "../../lib/core/wire/frame.ts";
import { ProtocolError } from "../../lib/core/errors.ts";
import { SecureStream } from "../../lib/core/crypto/secure_stream.ts";

Deno.test("link splitter: a stream's bytes pass through at every split, nothing held whole", () => {
  const inner = [new Uint8Array([1, 2, 3]), new Uint8Array(0), new Uint8Array(300).fill(7)];
  const wire = concatBytes([
    encodeStream(5, inner[0]),
    encodeStream(6, inner[1]),
    encodeStream(5, inner[2]),
    encodeError("bye"),
  ]);
  for (let cut = 1; cut < wire.length; cut += 7) {
    const s = new LinkSplitter();
    const got = new Map<number, number[]>();
    const errors: string[] = [];
    for (const part of [wire.subarray(0, cut), wire.subarray(cut)]) {
      for (const p of s.push(part)) {
        if (p.type === "error") errors.push(p.message);
        else got.set(p.id, [...(got.get(p.id) ?? []), ...p.bytes]);
      }
    }
    s.finish();
    assert.deepEqual(got.get(5), [...inner[0], ...inner[2]]);
    assert.deepEqual(got.get(6) ?? [], []);
    assert.deepEqual(errors, ["bye"]);
  }
  const cut = new LinkSplitter();
  cut.push(wire.subarray(0, 10));
  assert.throws(() => cut.finish(), ProtocolError);
  assert.throws(() => new LinkSplitter().push(new Uint8Array(8).fill(1)), /bad magic/);
});

Deno.test("stream budget: a connection's streams hold at most one chunk's frame together", () => {
  const b = new StreamBudget();
  b.update(1, MAX_CONNECTION_HELD - 10, 1);
  b.update(2, 10, 1);
  assert.equal(b.held, MAX_CONNECTION_HELD);
  assert.equal(b.messages, 2);
  assert.throws(() => b.update(3, 1, 0), /over the limit/);
  const c = new StreamBudget();
  c.update(1, MAX_CONNECTION_HELD, 0);
  c.drop(1);
  c.update(2, MAX_CONNECTION_HELD, 0); // what an ended stream held no longer counts
  c.update(2, 0, 3);
  assert.equal(c.held, 0);
  assert.equal(c.messages, 3);
});

Deno.test("receiver: before its offer a transfer takes offer-sized frames only, then DATA no larger than its chunks", () => {
  const dataHeader = (length: number) => {
    const h = new Uint8Array(HEADER_LENGTH);
    writeHeader(h, MsgType.DATA, length);
    return h;
  };
  // A 1 MiB DATA header before any offer is refused at its header.
  assert.throws(
    () => new FileReceiver().receive(dataHeader(DATA_PREFIX + MAX_CHUNK_SIZE), 0),
    /must open with its offer/,
  );
  const r = new FileReceiver();
  const offer = encodeJson(MsgType.OFFER, {
    name: "a",
    size: 4096,
    chunkSize: 1024,
    check: CHUNK_CHECK,
  });
  assert.equal(r.receive(offer, 0)[0].type, "offer");
  // Its header is checked before a byte of its payload is held.
  r.receive(dataHeader(DATA_PREFIX + 1025), 0);
  assert.throws(() => r.receive(new Uint8Array(1), 0), /over the limit of 1044/);
});

Deno.test("a coded client's first bytes are told apart from any other protocol's", () => {
  const start = new SecureStream("client", {
    code: "a-b-c",
    context: "file-tcp",
    random: new Uint8Array(48).fill(3),
    maxInner: 64,
  }).start();
  assert.ok(SecureStream.isStart(start));
  // "GET " has a space, 32, where a frame's type is: not a handshake.
  assert.ok(!SecureStream.isStart(new TextEncoder().encode("GET / HTTP/1.1\r\n")));
  assert.ok(!SecureStream.isStart(encodeStream(1, new Uint8Array(4))));
});
