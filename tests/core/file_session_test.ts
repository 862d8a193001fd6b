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
import { encodeJson, encodeNack, MsgType } from "../../lib/core/file/messages.ts";
import { md5, Md5Stream, toHex } from "../../lib/core/wire/md5.ts";
import { ProtocolError, UserError } from "../../lib/core/errors.ts";

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
 * names (once each); `disk` carries a receiver's held chunks into a resume.
 */
function transfer(
  data: Uint8Array,
  options: { split?: number; corrupt?: Set<number>; disk?: Disk; tamperEnd?: boolean } = {},
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
  const chunkBytes = (i: number) =>
    data.subarray(i * CHUNK, Math.min(data.length, (i + 1) * CHUNK));
  toServer.push(sender.offerFrame());
  let events = deliver();
  assert.equal(events[0]?.type, "accepted");
  const whole = new Md5Stream();
  const resend: number[] = [];
  const collect = (evs: typeof events) => {
    for (const e of evs) if (e.type === "resend") resend.push(e.index);
  };
  for (let i = 0; i < sender.chunks; i++) {
    const bytes = chunkBytes(i);
    whole.update(bytes);
    const frame = new Uint8Array(DATA_OFFSET + CHUNK);
    frame.set(bytes, DATA_OFFSET);
    if (options.corrupt?.has(i) && !corrupted.has(i)) {
      corrupted.add(i);
      frame[DATA_OFFSET] ^= 0xff; // Flipped on the wire, after the digest.
    }
    toServer.push(sender.chunkFrame(i, md5(bytes), frame, bytes.length));
    collect(deliver());
    while (resend.length > 0) {
      const r = resend.shift()!;
      toServer.push(sender.resendFrame(r, md5(chunkBytes(r)), chunkBytes(r)));
      collect(deliver());
    }
  }
  const hex = whole.hex();
  toServer.push(sender.endFrame(options.tamperEnd ? "0".repeat(32) : hex));
  events = deliver();
  return { sender, receiver, disk, events, hex };
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

Deno.test("file session: a resume confirms held chunks by digest and sends only the rest", () => {
  const data = payload(6 * CHUNK + 5);
  // A first session that held chunks 0-2 and was cut.
  const disk = new Disk();
  disk.state = new TransferState(data.length, CHUNK);
  for (let i = 0; i < 3; i++) {
    const c = data.subarray(i * CHUNK, (i + 1) * CHUNK);
    disk.state.receiveData(i, c.length, md5(c), md5(c));
    disk.chunks.set(i, c.slice());
  }
  disk.token = TOKEN;
  const { sender, receiver, events } = transfer(data, { disk, split: 5 });
  assert.ok(events.some((e) => e.type === "done"));
  assert.equal(sender.counters.chunksSkipped, 3);
  assert.equal(sender.counters.chunksSent, 4);
  assert.equal(receiver.counters.checkedChunks, 3);
  assert.deepEqual(assembled(disk, data.length), data);
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
  const offer = encodeJson(MsgType.OFFER, { name: "a", size: 10, chunkSize: CHUNK });
  const end = encodeJson(MsgType.END, { md5: "0".repeat(32) });
  const cases: [string, Uint8Array[]][] = [
    ["data before the offer", [encodeFrame(MsgType.DATA, new Uint8Array(20))]],
    ["end before the offer", [end]],
    ["a second offer", [offer, offer]],
    ["two ends", [offer, end, end]],
    ["a check that carries data", [offer, encodeFrame(MsgType.CHECK, new Uint8Array(21))]],
    ["a chunk index past the end", [offer, encodeFrame(MsgType.CHECK, new Uint8Array(20).fill(9))]],
    ["a frame type the server never takes", [offer, encodeNack(0)]],
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
