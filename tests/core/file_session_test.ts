/**
 * File-TCP session cores driven against each other with no sockets, no
 * files and no clock: every byte split, resume, NACKs, and the orders a
 * hostile peer could send.
 */
import assert from "node:assert/strict";
import { DATA_OFFSET, FileSender } from "../../lib/core/file/sender.ts";
import { FileReceiver, WholeFileMismatch } from "../../lib/core/file/receiver.ts";
import { TransferState } from "../../lib/core/file/transfer_state.ts";
import { encodeFrame } from "../../lib/core/wire/frame.ts";
import { CHUNK_CHECK, encodeJson, encodeNack, MsgType } from "../../lib/core/file/messages.ts";
import { md5, PrefixMd5, toHex } from "../../lib/core/crypto/md5.ts";
import { ProtocolError, UserError } from "../../lib/core/errors.ts";
import { proofOf } from "../../lib/core/file/proof.ts";

const CHUNK = 1024;

function payload(size: number, seed = 7): Uint8Array {
  return new Uint8Array(size).map((_, i) => (i * seed + (i >> 8)) & 0xff);
}

/** A receiver's "disk": chunks written by `store` events. */
class Disk {
  chunks = new Map<number, Uint8Array>();
  state: TransferState | undefined;
  stored: string | undefined;
  /** The token the server gave for this partial, once it gave one. */
  token: string | undefined;
}

/** The token the test's server gives. */
const TOKEN = "0123456789abcdef0123456789abcdef";

/**
 * Runs a whole transfer between the two cores. `split` cuts every byte
 * stream into pieces of that size; `corrupt` flips a byte of the chunks it
 * names (once each); `window` is how many frames the sender writes before
 * the server reads any (so chunks are in flight when a NACK comes); `disk`
 * carries a receiver's held chunks into a resume.
 */
function transfer(
  data: Uint8Array,
  options: {
    split?: number;
    corrupt?: Set<number>;
    disk?: Disk;
    tamperEnd?: boolean;
    window?: number;
  } = {},
) {
  const disk = options.disk ?? new Disk();
  const sender = new FileSender({
    name: "f.bin",
    size: data.length,
    chunkSize: CHUNK,
    resume: disk.token,
  });
  const receiver = new FileReceiver();
  const toServer: Uint8Array[] = [];
  const toClient: Uint8Array[] = [];
  let now = 0;
  const pieces = (bytes: Uint8Array) => {
    const n = options.split ?? bytes.length;
    const out: Uint8Array[] = [];
    for (let i = 0; i < bytes.length; i += Math.max(1, n)) out.push(bytes.slice(i, i + n));
    return out;
  };
  const corrupted = new Set<number>();
  const serverAct = (events: ReturnType<FileReceiver["receive"]>) => {
    const queue = [...events];
    for (let e = queue.shift(); e; e = queue.shift()) {
      if (e.type === "offer") {
        // Held chunks are found only through the token they were given under.
        if (!disk.state || e.offer.resume !== disk.token) {
          disk.state = new TransferState(e.offer.size, e.offer.chunkSize);
          disk.token = TOKEN;
        }
        toClient.push(receiver.accept(disk.state, disk.token!));
        queue.push(...receiver.receive(new Uint8Array(0), now));
      } else if (e.type === "store") disk.chunks.set(e.index, e.data.slice());
      else if (e.type === "read") {
        queue.push(...receiver.hashChunk(e.index, disk.chunks.get(e.index)!));
      } else if (e.type === "send") toClient.push(e.bytes);
      else if (e.type === "verified") {
        disk.stored = "received-f.bin";
        toClient.push(receiver.stored(disk.stored));
      }
    }
  };
  const deliver = () => {
    while (toServer.length > 0) {
      for (const p of pieces(toServer.shift()!)) {
        now += 10;
        serverAct(receiver.receive(p, now));
      }
    }
    const events = [];
    while (toClient.length > 0) {
      for (const p of pieces(toClient.shift()!)) events.push(...sender.receive(p));
    }
    return events;
  };
  toServer.push(sender.offerFrame());
  let events = deliver();
  assert.equal(events[0]?.type, "accepted");
  const window = options.window ?? 1;
  let ended = false;
  for (let rounds = 0; !events.some((e) => e.type === "done"); rounds++) {
    assert.ok(rounds < 10_000, "the session does not finish");
    for (let n = 0; n < window; n++) {
      const i = sender.next;
      if (i === null) {
        if (!ended) {
          const end = sender.endFrame();
          const fake = encodeJson(MsgType.END, { md5: "0".repeat(32) });
          toServer.push(options.tamperEnd ? fake : end);
        }
        ended = true;
        break;
      }
      const bytes = data.subarray(i * CHUNK, Math.min(data.length, (i + 1) * CHUNK));
      const frame = new Uint8Array(DATA_OFFSET + CHUNK);
      frame.set(bytes, DATA_OFFSET);
      const out = sender.chunkFrame(i, frame, bytes.length).slice();
      if (options.corrupt?.has(i) && !corrupted.has(i)) {
        corrupted.add(i);
        out[DATA_OFFSET] ^= 0xff; // Flipped on the wire, after the digest.
      }
      toServer.push(out);
    }
    events = deliver();
  }
  return { sender, receiver, disk, events, hex: sender.md5! };
}

/** The prefix MD5s of `data`'s first `n` chunks: a receiver's held state. */
function prefixDigests(data: Uint8Array, n: number): Uint8Array[] {
  const p = new PrefixMd5();
  return Array.from({ length: n }, (_, i) => p.push(data.subarray(i * CHUNK, (i + 1) * CHUNK)));
}

/** A disk that holds `data`'s first `n` chunks from a cut session. */
function heldDisk(data: Uint8Array, n: number): Disk {
  const disk = new Disk();
  disk.state = new TransferState(data.length, CHUNK);
  const digests = prefixDigests(data, n);
  for (let i = 0; i < n; i++) {
    const c = data.subarray(i * CHUNK, (i + 1) * CHUNK);
    disk.state.receiveData(i, c.length, digests[i], digests[i]);
    disk.chunks.set(i, c.slice());
  }
  disk.token = TOKEN;
  return disk;
}

function assembled(disk: Disk, size: number): Uint8Array {
  const out = new Uint8Array(size);
  for (const [i, c] of disk.chunks) out.set(c, i * CHUNK);
  return out;
}

Deno.test("file session: a whole transfer at every split size stores the file and confirms its MD5", () => {
  const data = payload(5 * CHUNK + 123);
  for (const split of [1, 2, 3, 7, 8, 9, 13, 100, 1024, 1044, 1045, 4096, 1 << 20]) {
    const { sender, disk, events, hex } = transfer(data, { split });
    const done = events.find((e) => e.type === "done");
    assert.ok(done, `split ${split}: no done`);
    assert.equal(done.done.md5, hex);
    assert.equal(hex, toHex(md5(data)));
    assert.equal(sender.phase, "done");
    assert.deepEqual(assembled(disk, data.length), data, `split ${split}`);
    assert.equal(sender.counters.chunksSent, 6);
  }
});

Deno.test("file session: a chunk corrupted on the wire is asked for again and the file arrives intact", () => {
  const data = payload(8 * CHUNK);
  const { sender, receiver, disk, events } = transfer(data, { corrupt: new Set([0, 3, 7]) });
  assert.ok(events.some((e) => e.type === "done"));
  assert.equal(sender.counters.chunksResent, 3);
  assert.equal(receiver.counters.nacks, 3);
  assert.deepEqual(assembled(disk, data.length), data);
});

Deno.test("file session: chunks in flight after a bad one are dropped and sent again after it, at every split", () => {
  const data = payload(20 * CHUNK + 77);
  for (const split of [1, 7, 1044, 1 << 20]) {
    for (const window of [2, 5, 30]) {
      const { sender, receiver, disk, events, hex } = transfer(data, {
        corrupt: new Set([0, 4, 5, 19, 20]),
        window,
        split,
      });
      const what = `split ${split}, window ${window}`;
      assert.ok(events.some((e) => e.type === "done"), what);
      assert.equal(hex, toHex(md5(data)), what);
      // A corrupted copy that was in flight behind another bad chunk is
      // dropped unchecked, so 1 to 5 NACKs.
      assert.ok(receiver.counters.nacks >= 1 && receiver.counters.nacks <= 5, what);
      // Everything sent after a bad chunk and before its NACK came back
      // was dropped and sent again: resent = the bad ones + the dropped.
      assert.equal(
        sender.counters.chunksResent,
        receiver.counters.nacks + receiver.counters.droppedChunks,
        what,
      );
      if (window > 2) assert.ok(receiver.counters.droppedChunks > 0, what);
      assert.deepEqual(assembled(disk, data.length), data, what);
    }
  }
});

Deno.test("file session: a chunk that fails every time ends the transfer, with nothing stored past it", () => {
  const data = payload(4 * CHUNK);
  const sender = new FileSender({ name: "f", size: data.length, chunkSize: CHUNK });
  const receiver = new FileReceiver();
  const state = new TransferState(data.length, CHUNK);
  let stored = 0;
  const act = (bytes: Uint8Array) => {
    const out: Uint8Array[] = [];
    for (const e of receiver.receive(bytes, 0)) {
      if (e.type === "offer") out.push(receiver.accept(state, TOKEN));
      else if (e.type === "send") out.push(e.bytes);
      else if (e.type === "store") stored++;
    }
    for (const o of out) sender.receive(o);
  };
  act(sender.offerFrame());
  assert.throws(() => {
    for (let n = 0; n < 20; n++) {
      const i = sender.next!;
      const frame = new Uint8Array(DATA_OFFSET + CHUNK);
      frame.set(data.subarray(i * CHUNK, (i + 1) * CHUNK), DATA_OFFSET);
      const out = sender.chunkFrame(i, frame, CHUNK).slice();
      if (i === 1) out[DATA_OFFSET + 9] ^= 1;
      act(out);
    }
  }, /Chunk 1 failed its MD5 check 4 times/);
  assert.equal(stored, 1);
  assert.equal(state.heldCount, 1);
});

Deno.test("file session: a resume confirms held chunks by digest and sends only the rest", () => {
  const data = payload(6 * CHUNK + 5);
  // A first session that held chunks 0-2 and was cut.
  const disk = heldDisk(data, 3);
  for (const split of [5, 1 << 20]) {
    const { sender, receiver, events, hex } = transfer(data, { disk: heldDisk(data, 3), split });
    assert.ok(events.some((e) => e.type === "done"));
    assert.equal(hex, toHex(md5(data)));
    assert.equal(sender.counters.chunksSkipped, 3);
    assert.equal(sender.counters.chunksSent, 4);
    assert.equal(receiver.counters.checkedChunks, 3);
  }
  transfer(data, { disk, window: 4 });
  assert.deepEqual(assembled(disk, data.length), data);
});

Deno.test("file session: a held chunk damaged on the server's disk is found on resume and sent again", () => {
  const data = payload(6 * CHUNK);
  const disk = heldDisk(data, 4);
  disk.chunks.get(1)![100] ^= 0x40; // The partial file rotted between sessions.
  const { sender, receiver, events } = transfer(data, { disk, window: 8 });
  assert.ok(events.some((e) => e.type === "done"));
  assert.equal(receiver.counters.nacks, 1);
  // Chunks 0-3 went as CHECKs and 4-5 as data; the server then found
  // chunk 1 damaged, dropped 4 and 5, and everything from chunk 1 came again.
  assert.equal(sender.counters.chunksSkipped, 4);
  assert.equal(sender.counters.chunksSent, 2);
  assert.equal(receiver.counters.droppedChunks, 2);
  assert.equal(sender.counters.chunksResent, 5);
  assert.deepEqual(assembled(disk, data.length), data);
});

Deno.test("file session: a file changed in its held part since the cut arrives as it is now", () => {
  const old = payload(6 * CHUNK);
  const now = old.slice();
  now[2 * CHUNK + 5] ^= 1; // Chunk 2 edited; chunks 0-3 were held.
  const disk = heldDisk(old, 4);
  const { receiver, events, hex } = transfer(now, { disk, window: 3 });
  assert.ok(events.some((e) => e.type === "done"));
  assert.equal(hex, toHex(md5(now)));
  assert.equal(receiver.counters.nacks, 1);
  assert.deepEqual(assembled(disk, now.length), now);
});

Deno.test("file session: an empty file is offered, ended and confirmed", () => {
  const { events, hex } = transfer(new Uint8Array(0));
  assert.equal(hex, "d41d8cd98f00b204e9800998ecf8427e");
  assert.ok(events.some((e) => e.type === "done"));
});

Deno.test("file session: a whole-file MD5 that differs is a mismatch, never a stored file", () => {
  assert.throws(() => transfer(payload(3 * CHUNK), { tamperEnd: true }), WholeFileMismatch);
});

Deno.test("file session: the receiver refuses every out-of-order message a client could send", () => {
  const offer = encodeJson(MsgType.OFFER, {
    name: "a",
    size: 3 * CHUNK,
    chunkSize: CHUNK,
    check: CHUNK_CHECK,
  });
  const end = encodeJson(MsgType.END, { md5: "0".repeat(32) });
  const cases: [string, Uint8Array[]][] = [
    ["data before the offer", [encodeFrame(MsgType.DATA, new Uint8Array(20))]],
    ["end before the offer", [end]],
    ["a second offer", [offer, offer]],
    ["two ends", [offer, end, end]],
    ["a check that carries data", [offer, encodeFrame(MsgType.CHECK, new Uint8Array(21))]],
    ["a chunk index past the end", [offer, encodeFrame(MsgType.CHECK, new Uint8Array(20).fill(9))]],
    ["a frame type the server never takes", [offer, encodeNack(0)]],
    ["a chunk sent before the one expected", [
      offer,
      encodeFrame(MsgType.CHECK, new Uint8Array(20).fill(0, 0, 3).fill(1, 3, 4)),
    ]],
    ["an end before every chunk", [offer, end]],
    ["an offer from a client older than prefix MD5s", [
      encodeFrame(
        MsgType.OFFER,
        new TextEncoder().encode('{"name":"a","size":10,"chunkSize":1024}'),
      ),
    ]],
  ];
  for (const [what, frames] of cases) {
    const r = new FileReceiver();
    assert.throws(
      () => {
        for (const f of frames) {
          for (const e of r.receive(f, 0)) {
            if (e.type === "offer") {
              r.accept(new TransferState(e.offer.size, e.offer.chunkSize), TOKEN);
            }
          }
          r.receive(new Uint8Array(0), 0);
        }
      },
      ProtocolError,
      what,
    );
  }
  // A client that says it gave up ends the session with its words.
  const r = new FileReceiver();
  assert.throws(
    () => r.receive(encodeFrame(MsgType.ERROR, new TextEncoder().encode("bye")), 0),
    /Client gave up: bye/,
  );
  // A client that leaves before its offer, or mid-frame.
  assert.throws(() => new FileReceiver().closed(), /before its offer/);
  const cut = new FileReceiver();
  cut.receive(offer.subarray(0, 5), 0);
  assert.throws(() => cut.closed(), ProtocolError);
});

Deno.test("file session: the sender refuses every out-of-order message a server could send", () => {
  const accept = encodeJson(MsgType.ACCEPT, { token: TOKEN, held: [] });
  const done = encodeJson(MsgType.DONE, { md5: "0".repeat(32), storedAs: "x", bytes: 1 });
  const fresh = () => {
    const s = new FileSender({ name: "a", size: 3 * CHUNK, chunkSize: CHUNK });
    s.offerFrame();
    return s;
  };
  assert.throws(() => fresh().receive(encodeNack(0)), ProtocolError, "NACK before accept");
  assert.throws(() => fresh().receive(done), ProtocolError, "DONE before accept");
  const s = fresh();
  s.receive(accept);
  assert.throws(() => s.receive(accept), ProtocolError, "a second accept");
  const t = fresh();
  t.receive(accept);
  assert.throws(() => t.receive(encodeNack(2)), ProtocolError, "NACK for a chunk not sent");
  assert.throws(() => t.receive(done), ProtocolError, "DONE before END");
  assert.throws(
    () => fresh().receive(encodeJson(MsgType.ACCEPT, { token: TOKEN, held: [[0, 9]] })),
    ProtocolError,
    "held chunks past the end",
  );
  const resumed = () => {
    const s = new FileSender({ name: "a", size: 3 * CHUNK, chunkSize: CHUNK, resume: TOKEN });
    s.offerFrame();
    return s;
  };
  assert.throws(
    () => resumed().receive(encodeJson(MsgType.ACCEPT, { token: TOKEN, held: [[1, 2]] })),
    ProtocolError,
    "held chunks that do not start the file",
  );
  assert.throws(
    () => resumed().receive(encodeJson(MsgType.ACCEPT, { token: TOKEN, held: [[0, 1], [2, 3]] })),
    ProtocolError,
    "held chunks with a gap",
  );
  assert.throws(
    () => fresh().receive(encodeJson(MsgType.ACCEPT, { held: [] })),
    ProtocolError,
    "an accept without a token",
  );
  assert.throws(
    () => fresh().receive(encodeFrame(MsgType.ERROR, new TextEncoder().encode("full"))),
    (e: Error) => e instanceof UserError && /refused a: full/.test(e.message),
  );
  assert.throws(() => fresh().closed(), /without answering/);
});

Deno.test("file session --update: a stored file is skipped once the client proves it holds it, nothing sent", () => {
  const data = payload(5000);
  const hex = toHex(md5(data));
  const salt = "5a".repeat(16);
  const sender = new FileSender({
    name: "f.bin",
    size: data.length,
    chunkSize: CHUNK,
    update: true,
  });
  const receiver = new FileReceiver();
  const [offer] = receiver.receive(sender.offerFrame(), 1);
  assert.equal(offer.type, "offer");
  assert.equal(offer.type === "offer" && offer.offer.update, true);
  // The shell stores a file of this size: it asks for proof, and nothing moves meanwhile.
  assert.deepEqual(sender.receive(receiver.challenge(salt)), [{ type: "challenge", salt }]);
  assert.equal(sender.phase, "proving");
  assert.equal(sender.next, null);
  assert.equal(sender.canEnd, false);
  const proof = proofOf(salt, data);
  assert.deepEqual(receiver.receive(sender.proofFrame(proof), 2), [{ type: "proof", proof }]);
  // It matches what the shell kept: DONE.
  const events = sender.receive(receiver.upToDate("received-f.bin", hex));
  assert.deepEqual(events, [{
    type: "done",
    done: { md5: hex, storedAs: "received-f.bin", bytes: 5000, upToDate: true },
  }]);
  assert.equal(sender.phase, "done");
  assert.equal(sender.md5, hex);
  assert.equal(sender.counters.chunksSent, 0);
  assert.equal(receiver.md5, hex);
  // Nothing more is taken from the client.
  assert.deepEqual(receiver.receive(encodeJson(MsgType.END, { md5: hex }), 3), []);
});

Deno.test("file session --update: a file the server does not hold, or whose proof misses, is sent whole", () => {
  const data = payload(5000);
  for (const challenged of [false, true]) {
    const sender = new FileSender({ name: "f.bin", size: 5000, chunkSize: CHUNK, update: true });
    const receiver = new FileReceiver();
    const [offer] = receiver.receive(sender.offerFrame(), 1);
    assert.equal(offer.type, "offer");
    if (challenged) {
      const [c] = sender.receive(receiver.challenge("00".repeat(16)));
      assert.equal(c.type, "challenge");
      const [p] = receiver.receive(sender.proofFrame(proofOf("00".repeat(16), data)), 2);
      assert.equal(p.type, "proof");
    }
    const [accepted] = sender.receive(receiver.accept(new TransferState(5000, CHUNK), TOKEN));
    assert.equal(accepted.type, "accepted");
    assert.equal(sender.next, 0);
  }
});

Deno.test("file session --update: no skip without a proof, nor one that names another size; the receiver takes only a proof after its challenge", () => {
  const data = payload(5000);
  const hex = toHex(md5(data));
  const skip = (done: Record<string, unknown>) =>
    encodeJson(MsgType.DONE, { md5: hex, storedAs: "received-f.bin", bytes: 5000, ...done });
  // No update asked for, or no proof sent: a DONE at the offer is out of order.
  for (const update of [undefined, true] as const) {
    const s = new FileSender({ name: "f.bin", size: 5000, chunkSize: CHUNK, update });
    s.offerFrame();
    assert.throws(() => s.receive(skip({ upToDate: true })), ProtocolError);
  }
  // Proved: another size, or no upToDate flag, are refused.
  for (const wrong of [{ bytes: 4999, upToDate: true }, {}]) {
    const s = new FileSender({ name: "f.bin", size: 5000, chunkSize: CHUNK, update: true });
    s.offerFrame();
    s.receive(encodeJson(MsgType.CHALLENGE, { salt: "11".repeat(16) }));
    s.proofFrame(proofOf("11".repeat(16), data));
    assert.throws(() => s.receive(skip(wrong)), ProtocolError, JSON.stringify(wrong));
    assert.notEqual(s.phase, "done");
  }
  // A challenge to a plain offer, or a second one, is out of order.
  const plain = new FileSender({ name: "f.bin", size: 5000, chunkSize: CHUNK });
  plain.offerFrame();
  assert.throws(
    () => plain.receive(encodeJson(MsgType.CHALLENGE, { salt: "11".repeat(16) })),
    ProtocolError,
  );
  // The receiver: no skip before a proof, no challenge of a plain offer,
  // nothing but a proof after a challenge, and a malformed update refused.
  const r = new FileReceiver();
  r.receive(new FileSender({ name: "g", size: 1, chunkSize: CHUNK }).offerFrame(), 1);
  assert.throws(() => r.upToDate("received-g", hex), /Nothing to skip/);
  assert.throws(() => r.challenge("11".repeat(16)), /Nothing to challenge/);
  const u = new FileReceiver();
  const updater = new FileSender({ name: "g", size: 1, chunkSize: CHUNK, update: true });
  u.receive(updater.offerFrame(), 1);
  assert.throws(() => u.upToDate("received-g", hex), /Nothing to skip/);
  u.challenge("11".repeat(16));
  assert.throws(() => u.receive(encodeJson(MsgType.END, { md5: hex }), 2), /Expected a proof/);
  const bad = encodeJson(MsgType.OFFER, {
    name: "g",
    size: 1,
    chunkSize: CHUNK,
    check: CHUNK_CHECK,
    update: "NOT-AN-MD5",
  });
  assert.throws(() => new FileReceiver().receive(bad, 1), /malformed update/);
});

Deno.test("file session --update: a proof sent with the offer (the salt known from an earlier challenge) is answered at once", () => {
  const data = payload(3000);
  const hex = toHex(md5(data));
  const salt = "7c".repeat(16);
  const sender = new FileSender({
    name: "f.bin",
    size: data.length,
    chunkSize: CHUNK,
    update: true,
    proof: proofOf(salt, data),
  });
  const receiver = new FileReceiver();
  const [offer] = receiver.receive(sender.offerFrame(), 1);
  assert.equal(offer.type === "offer" && offer.offer.proof, proofOf(salt, data));
  // The shell checked it: no challenge, DONE at once.
  assert.throws(() => receiver.challenge(salt), /Nothing to challenge/);
  const [done] = sender.receive(receiver.upToDate("received-f.bin", hex));
  assert.equal(done.type, "done");
  assert.equal(sender.phase, "done");
  // A proof without update is malformed.
  const bad = encodeJson(MsgType.OFFER, {
    name: "g",
    size: 1,
    chunkSize: CHUNK,
    check: CHUNK_CHECK,
    proof: hex,
  });
  assert.throws(() => new FileReceiver().receive(bad, 1), /malformed proof/);
});
