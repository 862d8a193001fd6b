/**
 * The File-TCP server's link core driven with no sockets: how it sniffs a
 * connection's first frame, splits STREAM frames at every split, and every
 * order of messages a peer could send it (data before an offer, unknown
 * stream ids, too many streams, a proof no challenge asked for, errors
 * mid-stream, an early close).
 */
import assert from "node:assert/strict";
import {
  CodeSentToPlain,
  type LinkMode,
  ServerLink,
  SINGLE,
  type TransferPiece,
} from "../../lib/core/file/server_link.ts";
import { FileReceiver } from "../../lib/core/file/receiver.ts";
import { TransferState } from "../../lib/core/file/transfer_state.ts";
import {
  CHUNK_CHECK,
  encodeError,
  encodeJson,
  encodeStream,
  MAX_OPEN_STREAMS,
  MsgType,
} from "../../lib/core/file/messages.ts";
import { MAX_CONNECTION_HELD } from "../../lib/core/file/stream_budget.ts";
import { SecureMsg } from "../../lib/core/crypto/secure_stream.ts";
import { concatBytes, encodeFrame } from "../../lib/core/wire/frame.ts";
import { ProtocolError, UserError } from "../../lib/core/errors.ts";

const CHUNK = 1024;
const TOKEN = "0123456789abcdef0123456789abcdef";

function offer(extra: Record<string, unknown> = {}): Uint8Array {
  return encodeJson(MsgType.OFFER, {
    name: "f",
    size: 2 * CHUNK,
    chunkSize: CHUNK,
    check: CHUNK_CHECK,
    ...extra,
  });
}

/** Every piece the link gives for `bytes`, pushed in pieces of `split`. */
function pieces(link: ServerLink, bytes: Uint8Array, split = bytes.length): TransferPiece[] {
  const out: TransferPiece[] = [];
  for (let i = 0; i < bytes.length; i += Math.max(1, split)) {
    link.push(bytes.slice(i, i + split));
    for (let p = link.next(); p; p = link.next()) out.push({ ...p, bytes: p.bytes.slice() });
  }
  return out;
}

/** Each transfer's bytes, joined, from the pieces. */
function joined(ps: TransferPiece[]): Map<number, Uint8Array> {
  const by = new Map<number, Uint8Array[]>();
  for (const p of ps) by.set(p.id, [...by.get(p.id) ?? [], p.bytes]);
  return new Map([...by].map(([id, parts]) => [id, concatBytes(parts)]));
}

Deno.test("server link: a connection that opens with an offer is one transfer, at every split", () => {
  const bytes = concatBytes([offer(), encodeJson(MsgType.END, { md5: "0".repeat(32) })]);
  for (const split of [1, 2, 3, 4, 5, 17, bytes.length]) {
    const link = new ServerLink();
    const modes: LinkMode[] = [];
    const out: TransferPiece[] = [];
    for (let i = 0; i < bytes.length; i += split) {
      link.push(bytes.slice(i, i + split));
      modes.push(link.mode);
      for (let p = link.next(); p; p = link.next()) out.push({ ...p, bytes: p.bytes.slice() });
    }
    // Sniffing until the first frame's type (its fourth byte) came.
    assert.equal(modes[0], split < 4 ? "sniffing" : "single", `split ${split}`);
    assert.equal(modes.at(-1), "single");
    assert.ok(out.every((p) => p.id === SINGLE));
    assert.deepEqual(out.map((p) => p.opens), out.map((_, i) => i === 0), "opens once");
    assert.deepEqual(joined(out).get(SINGLE), bytes, `split ${split}`);
    assert.deepEqual(link.open, [SINGLE]);
  }
});

Deno.test("server link: STREAM frames interleaved give each stream its bytes, whole, at every split", () => {
  const inner = [offer({ name: "a" }), offer({ name: "bb" }), offer({ name: "ccc" })];
  const frames = concatBytes([
    encodeStream(0, inner[0].subarray(0, 10)),
    encodeStream(2, inner[2]),
    encodeStream(0, inner[0].subarray(10)),
    encodeStream(1, new Uint8Array(0)),
    encodeStream(1, inner[1]),
  ]);
  for (const split of [1, 2, 7, 12, 13, 100, frames.length]) {
    const link = new ServerLink();
    const out = pieces(link, frames, split);
    assert.equal(link.mode, "streams");
    const got = joined(out);
    // Ids grow: stream 1, after 2 was opened, is one that ended, and is dropped.
    assert.deepEqual([...got.keys()], [0, 2], `split ${split}`);
    assert.deepEqual(got.get(0), inner[0]);
    assert.deepEqual(got.get(2), inner[2]);
    assert.deepEqual(out.filter((p) => p.opens).map((p) => p.id), [0, 2]);
  }
});

Deno.test("server link: a client with a code at a server without one is told so", () => {
  const link = new ServerLink();
  const pake = encodeFrame(SecureMsg.PAKE, new Uint8Array(32));
  link.push(pake.subarray(0, 2));
  assert.throws(
    () => link.push(pake.subarray(2)),
    (e: Error) => e instanceof CodeSentToPlain && /without --code/.test(e.toClient),
  );
});

Deno.test("server link: another tool's client (an Audio-TCP hello) is one transfer the receiver refuses", () => {
  const link = new ServerLink();
  const [p] = pieces(link, encodeFrame(16, new Uint8Array(8)));
  assert.equal(link.mode, "single");
  assert.throws(() => new FileReceiver().receive(p.bytes, 0), /must open with its offer/);
});

Deno.test("server link: data before the offer on a stream fails that transfer; the link goes on", () => {
  const link = new ServerLink();
  const data = encodeFrame(MsgType.DATA, new Uint8Array(20 + 5));
  const out = pieces(link, concatBytes([encodeStream(0, data), encodeStream(1, offer())]));
  const r0 = new FileReceiver();
  assert.throws(() => r0.receive(out[0].bytes, 0), /must open with its offer/);
  link.fed(0, 0, 0, "ended");
  const r1 = new FileReceiver();
  assert.equal(r1.receive(out[1].bytes, 0)[0].type, "offer");
  link.fed(1, r1.buffered, r1.frames, "open");
  assert.deepEqual(link.open, [1]);
  // The failed stream's later bytes are dropped.
  assert.deepEqual(pieces(link, encodeStream(0, data)), []);
});

Deno.test("server link: bytes for unknown or ended stream ids are dropped, a higher id opens", () => {
  const link = new ServerLink();
  assert.deepEqual(pieces(link, encodeStream(3, offer())).map((p) => [p.id, p.opens]), [[3, true]]);
  link.fed(3, 0, 1, "ended");
  assert.deepEqual(pieces(link, encodeStream(3, offer())), [], "ended");
  assert.deepEqual(pieces(link, encodeStream(1, offer())), [], "never opened, below the last");
  assert.deepEqual(pieces(link, encodeStream(9, offer())).map((p) => [p.id, p.opens]), [[9, true]]);
  assert.deepEqual(pieces(link, encodeStream(9, offer())).map((p) => [p.id, p.opens]), [[
    9,
    false,
  ]]);
});

Deno.test("server link: more than the open-stream limit ends the connection; ended and stored streams make room", () => {
  const link = new ServerLink();
  for (let id = 0; id < MAX_OPEN_STREAMS; id++) pieces(link, encodeStream(id, offer()));
  assert.equal(link.open.length, MAX_OPEN_STREAMS);
  // One ends, one is being stored (it still counts), so one more opens.
  link.fed(0, 0, 1, "ended");
  link.fed(1, 0, 1, "storing");
  pieces(link, encodeStream(100, offer()));
  assert.throws(
    () => pieces(link, encodeStream(101, offer())),
    (e: Error) => e instanceof ProtocolError && /more than 32 transfers/.test(e.message),
  );
  const again = new ServerLink();
  for (let id = 0; id < MAX_OPEN_STREAMS; id++) {
    pieces(again, encodeStream(id, offer()));
    again.fed(id, 0, 1, id === 0 ? "storing" : "open");
  }
  assert.throws(() => pieces(again, encodeStream(50, offer())), /more than 32/);
  again.stored(0);
  assert.deepEqual(pieces(again, encodeStream(51, offer())).map((p) => p.id), [51]);
});

Deno.test("server link: a proof no challenge asked for is refused by its transfer", () => {
  const link = new ServerLink();
  const proof = encodeJson(MsgType.PROOF, { proof: "a".repeat(32) });
  const [p] = pieces(link, encodeStream(0, concatBytes([offer({ update: true }), proof])));
  const r = new FileReceiver();
  assert.equal(r.receive(p.bytes, 0)[0].type, "offer");
  // The server accepts (the book holds nothing): the proof is out of order.
  assert.throws(
    () => r.accept(new TransferState(2 * CHUNK, CHUNK), TOKEN) && r.receive(new Uint8Array(0), 0),
    /Unexpected frame type 11/,
  );
  assert.equal(r.phase, "failed");
});

Deno.test("server link: an ERROR on the link ends the connection; one on a stream ends that transfer", () => {
  const link = new ServerLink();
  pieces(link, encodeStream(0, offer()));
  assert.throws(
    () => pieces(link, encodeError("bye")),
    (e: Error) => e instanceof UserError && /Client gave up: bye/.test(e.message),
  );
  const other = new ServerLink();
  const out = pieces(
    other,
    concatBytes([encodeStream(0, offer()), encodeStream(0, encodeError("no"))]),
  );
  const r = new FileReceiver();
  r.receive(out[0].bytes, 0);
  r.accept(new TransferState(2 * CHUNK, CHUNK), TOKEN);
  assert.throws(() => r.receive(out[1].bytes, 0), /Client gave up: no/);
});

Deno.test("server link: an early close mid-frame is a protocol error; otherwise the open transfers are left to end", () => {
  const cut = new ServerLink();
  const frame = encodeStream(0, offer());
  pieces(cut, frame.subarray(0, frame.length - 3));
  assert.throws(() => cut.finish(), /middle of a frame/);
  assert.deepEqual(cut.open, [0], "still open, for the shell to end");
  const link = new ServerLink();
  pieces(link, concatBytes([encodeStream(0, offer()), encodeStream(1, offer())]));
  link.fed(0, 0, 1, "storing");
  assert.deepEqual(link.finish(), [1]);
  // A connection that closes before its first frame's type has no transfer.
  const short = new ServerLink();
  short.push(Uint8Array.of(0x53, 0x4b));
  assert.equal(short.mode, "sniffing");
  assert.deepEqual(short.finish(), []);
});

Deno.test("server link: streams holding unfinished messages past a chunk's frame end the connection; progress is whole messages", () => {
  const link = new ServerLink();
  const holding = MAX_CONNECTION_HELD / 4;
  assert.equal(link.progress, 0);
  for (let id = 0; id < 4; id++) {
    pieces(link, encodeStream(id, offer()));
    link.fed(id, holding, 1, "open");
  }
  assert.equal(link.progress, 4);
  assert.throws(() => link.fed(4, 1, 0, "open"), /over the limit/);
  // A one-transfer connection's progress is its transfer's messages.
  const single = new ServerLink();
  pieces(single, offer());
  single.fed(SINGLE, 0, 1, "open");
  single.fed(SINGLE, 10 * MAX_CONNECTION_HELD, 2, "open");
  assert.equal(single.progress, 3);
});

Deno.test("server link: every piece is taken before the next push", () => {
  const link = new ServerLink();
  link.push(concatBytes([encodeStream(0, offer()), encodeStream(1, offer())]));
  link.next();
  assert.throws(() => link.push(encodeStream(2, offer())), /Take every piece/);
});
