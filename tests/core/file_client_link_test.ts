/**
 * The File-TCP client's cores driven with no sockets, no files and no
 * clock: the sender's phase table, and the client link (many transfers on
 * one connection) against every order of answers a server could send.
 */
import assert from "node:assert/strict";
import { DATA_OFFSET, FileSender, TRANSITIONS } from "../../lib/core/file/sender.ts";
import {
  decodeStream,
  encodeJson,
  encodeNack,
  encodeStream,
  MsgType,
  SERVER_LIMITS,
  SERVER_LINK_LIMITS,
  STREAM_OFFSET,
} from "../../lib/core/file/messages.ts";
import { encodeFrame, FrameDecoder } from "../../lib/core/wire/frame.ts";
import { ProtocolError, UserError } from "../../lib/core/errors.ts";
import {
  ClientLink,
  type ClientLinkOptions,
  type OpenedEntry,
  WINDOW,
} from "../../lib/core/file/client_link.ts";
import type { Entry, EntryResult } from "../../lib/core/file/entry.ts";
import { md5, toHex } from "../../lib/core/crypto/md5.ts";
import { proofOf } from "../../lib/core/file/proof.ts";
import { encodePack } from "../../lib/core/file/pack.ts";
import { AudioMsg } from "../../lib/core/audio/tcp/frames.ts";

const TOKEN = "0123456789abcdef0123456789abcdef";
const CHUNK = 1024;
const SALT = "00112233445566778899aabbccddeeff";

Deno.test("sender phases: after the server's error every input is refused with it", () => {
  const s = new FileSender({ name: "a", size: 3 * CHUNK, chunkSize: CHUNK });
  s.offerFrame();
  const refusal = encodeFrame(MsgType.ERROR, new TextEncoder().encode("full"));
  assert.throws(() => s.receive(refusal), UserError);
  assert.equal(s.phase, "failed");
  // An accept after the refusal does not revive the session.
  const accept = encodeJson(MsgType.ACCEPT, { token: TOKEN, held: [] });
  assert.throws(() => s.receive(accept), (e: Error) => e === s.failure);
  assert.equal(s.next, null);
  assert.equal(s.canEnd, false);
  assert.throws(() => s.chunkFrame(0, new Uint8Array(2 * CHUNK), CHUNK), (e) => e === s.failure);
  assert.throws(() => s.endFrame(), (e) => e === s.failure);
  assert.throws(() => s.offerFrame(), (e) => e === s.failure);
  assert.equal(s.token, undefined);
});

Deno.test("sender phases: a malformed answer fails the session for good", () => {
  const s = new FileSender({ name: "a", size: 3 * CHUNK, chunkSize: CHUNK });
  s.offerFrame();
  assert.throws(() => s.receive(encodeJson(MsgType.DONE, {})), ProtocolError);
  assert.equal(s.phase, "failed");
  const accept = encodeJson(MsgType.ACCEPT, { token: TOKEN, held: [] });
  assert.throws(() => s.receive(accept), ProtocolError);
  assert.equal(s.phase, "failed");
});

Deno.test("sender phases: the table ends in done and failed, and every phase may fail", () => {
  assert.deepEqual(TRANSITIONS.failed, []);
  for (const [from, to] of Object.entries(TRANSITIONS)) {
    if (from !== "failed") assert.ok(to.includes("failed"), `${from} may fail`);
  }
  // Every phase is reached from idle.
  const seen = new Set(["idle"]);
  for (let grew = true; grew;) {
    grew = false;
    for (const from of [...seen]) {
      for (const to of TRANSITIONS[from as keyof typeof TRANSITIONS]) {
        if (!seen.has(to)) grew = seen.add(to) !== undefined;
      }
    }
  }
  assert.deepEqual([...seen].sort(), Object.keys(TRANSITIONS).sort());
});

// ---- The client link, against a scripted server ----

/** What the client wrote, frame by frame: each stream's inner frame's type and payload. */
interface Sent {
  id: number;
  type: number;
  payload: Uint8Array;
}

/** A client link with files in memory, and what it wrote and reported. */
class Client {
  readonly link: ClientLink;
  readonly sent: Sent[] = [];
  readonly results: EntryResult[] = [];
  readonly tokens: string[] = [];
  readonly ended: number[] = [];
  /** Stream ids of `prove` actions waiting for the test's answer. */
  readonly proving: number[] = [];
  #decoder = new FrameDecoder(SERVER_LINK_LIMITS);
  #entries: { entry: Entry; opened: OpenedEntry }[];
  #buffer = new Uint8Array(STREAM_OFFSET + DATA_OFFSET + 64 * 1024);
  #now = 0;
  finished = false;

  constructor(entries: { entry: Entry; opened: OpenedEntry }[], options: ClientLinkOptions = {}) {
    this.#entries = [...entries];
    this.link = new ClientLink({ chunkSize: CHUNK, ...options });
  }

  /** Does what the link says until it waits for the server (or is finished). */
  pump(): void {
    for (;;) {
      const a = this.link.poll(this.#now++);
      this.drain();
      if (a.kind === "wait") return;
      if (a.kind === "finished") {
        this.finished = true;
        return;
      }
      if (a.kind === "send") this.#write(a.bytes);
      else if (a.kind === "open") {
        const next = this.#entries.shift();
        if (next) this.link.open(next.entry, next.opened, this.#now);
        else this.link.noMore();
      } else if (a.kind === "read") {
        this.#buffer.set(
          a.data!.subarray(a.offset, a.offset + a.length),
          STREAM_OFFSET + DATA_OFFSET,
        );
        const out = this.link.chunk(a.id, a.index, this.#buffer, a.length)!;
        this.#write(out.bytes.slice());
      } else if (a.kind === "prove") {
        this.proving.push(a.id);
        return;
      }
    }
  }

  /** Feeds the server's bytes, then does what the link says. */
  feed(bytes: Uint8Array): void {
    this.link.receive(bytes);
    this.drain();
    this.pump();
  }

  /** Takes the link's events. */
  drain(): void {
    for (const e of this.link.events()) {
      if (e.type === "result") this.results.push(e.result);
      else if (e.type === "token") this.tokens.push(e.token);
      else this.ended.push(e.id);
    }
  }

  #write(bytes: Uint8Array): void {
    this.#decoder.push(bytes);
    for (let f = this.#decoder.next(); f !== null; f = this.#decoder.next()) {
      const { id, bytes: inner } = decodeStream(f.payload);
      const d = new FrameDecoder(SERVER_LIMITS);
      d.push(inner);
      const m = d.next()!;
      this.sent.push({ id, type: m.type, payload: m.payload.slice() });
    }
  }

  /** The types the client sent on stream `id`, in order. */
  types(id: number): number[] {
    return this.sent.filter((s) => s.id === id).map((s) => s.type);
  }
}

function payload(size: number, seed = 7): Uint8Array {
  return new Uint8Array(size).map((_, i) => (i * seed + (i >> 8)) & 0xff);
}

/** A named file held in memory. */
function file(name: string, data: Uint8Array, extra: Partial<Entry> = {}) {
  return { entry: { name, size: data.length, ...extra }, opened: { data, size: data.length } };
}

/** A server's frame on stream `id`. */
function onStream(id: number, inner: Uint8Array): Uint8Array {
  return encodeStream(id, inner);
}

const accept = (held: [number, number][] = []) =>
  encodeJson(MsgType.ACCEPT, { token: TOKEN, held });
const done = (data: Uint8Array, extra: Record<string, unknown> = {}) =>
  encodeJson(MsgType.DONE, { md5: toHex(md5(data)), storedAs: "a", bytes: data.length, ...extra });
const streamError = (why: string) => encodeFrame(MsgType.ERROR, new TextEncoder().encode(why));

Deno.test("client link: a file is sent whole whichever way the server's bytes are split", () => {
  const data = payload(3 * CHUNK - 100);
  const a = onStream(0, accept());
  const d = onStream(0, done(data));
  let runs = 0;
  for (let p = 0; p <= a.length; p++) {
    for (let q = 0; q < d.length; q++) {
      const c = new Client([file("a", data)]);
      c.pump();
      // The accept's head; its tail with the DONE's head (once the END went); the rest.
      c.feed(a.subarray(0, p));
      c.feed(a.subarray(p));
      c.feed(d.subarray(0, q));
      c.feed(d.subarray(q));
      assert.equal(c.results.length, 1, `split ${p}/${q}`);
      const r = c.results[0];
      assert.ok(r.ok);
      assert.equal(r.result.md5, toHex(md5(data)));
      assert.equal(r.result.chunksSent, 3);
      assert.equal(r.result.bytesSent, data.length);
      assert.deepEqual(c.types(0), [
        MsgType.OFFER,
        MsgType.DATA,
        MsgType.DATA,
        MsgType.DATA,
        MsgType.END,
      ]);
      assert.deepEqual(c.tokens, [TOKEN]);
      assert.ok(c.finished);
      runs++;
    }
  }
  assert.ok(runs > 1000);
});

Deno.test("client link: an answer on a stream never opened fails the connection", () => {
  const c = new Client([file("a", payload(2 * CHUNK))]);
  c.pump();
  assert.throws(() => c.feed(onStream(1, accept())), /stream 1, which was never opened/);
  // The shell then fails every open transfer with it.
  c.link.abort(new UserError("cut"));
  c.drain();
  assert.equal(c.results.length, 1);
  assert.equal(c.results[0].ok, false);
});

Deno.test("client link: an answer for a transfer that already failed is let go", () => {
  const c = new Client([file("a", payload(2 * CHUNK)), file("b", payload(2 * CHUNK))]);
  c.pump();
  c.feed(onStream(0, streamError("no room")));
  assert.equal(c.results.length, 1);
  assert.ok(!c.results[0].ok && /refused a: no room/.test(String(c.results[0].error)));
  // The server's own refusal is not answered.
  assert.deepEqual(c.types(0), [MsgType.OFFER]);
  c.feed(onStream(0, accept())); // late: ignored
  c.feed(onStream(1, accept()));
  c.feed(onStream(1, done(payload(2 * CHUNK))));
  assert.equal(c.results.length, 2);
  assert.ok(c.results[1].ok);
});

Deno.test("client link: DONE before the data fails that transfer only, and the server is told", () => {
  const data = payload(2 * CHUNK);
  const c = new Client([file("a", data), file("b", data)]);
  c.pump();
  // Neither chunk has gone when the DONE comes: the server is not yet owed one.
  c.link.receive(onStream(0, accept()));
  c.feed(onStream(0, done(data)));
  const failed = c.results.find((r) => r.entry.name === "a")!;
  assert.ok(!failed.ok && failed.error instanceof ProtocolError);
  assert.equal(failed.token, TOKEN, "a transfer the server accepted can resume");
  assert.equal(c.types(0).at(-1), MsgType.ERROR);
  c.feed(onStream(1, accept()));
  c.feed(onStream(1, done(data)));
  assert.ok(c.results.find((r) => r.entry.name === "b")!.ok);
  assert.ok(c.finished);
});

Deno.test("client link: a NACK goes back to that chunk; the END is sent once", () => {
  const data = payload(3 * CHUNK);
  const c = new Client([file("a", data)]);
  c.pump();
  c.feed(onStream(0, accept()));
  assert.deepEqual(c.types(0), [
    MsgType.OFFER,
    MsgType.DATA,
    MsgType.DATA,
    MsgType.DATA,
    MsgType.END,
  ]);
  c.feed(onStream(0, encodeNack(1)));
  assert.deepEqual(c.types(0).slice(5), [MsgType.DATA, MsgType.DATA]);
  c.feed(onStream(0, done(data)));
  const r = c.results[0];
  assert.ok(r.ok);
  assert.equal(r.result.chunksResent, 2);
});

Deno.test("client link --update: a challenge is answered by the proof, and later offers carry it", () => {
  // A megabyte read and unsent: the next file is opened once this one ended.
  const data = payload(1024 * 1024 + 1);
  const other = payload(200, 3);
  const c = new Client([file("a", data), file("b", other)], { update: true });
  c.pump();
  assert.deepEqual(c.types(0), [MsgType.OFFER]); // an update offer waits for its answer
  c.feed(onStream(0, encodeJson(MsgType.CHALLENGE, { salt: SALT })));
  const proof = c.sent.find((s) => s.id === 0 && s.type === MsgType.PROOF)!;
  assert.equal(JSON.parse(new TextDecoder().decode(proof.payload)).proof, proofOf(SALT, data));
  c.feed(onStream(0, done(data, { upToDate: true })));
  const r = c.results.find((r) => r.entry.name === "a")!;
  assert.ok(r.ok && r.result.upToDate && r.result.bytesSent === 0);
  // A file opened after the challenge offers its proof at once.
  const late = c.sent.find((s) => s.id === 1 && s.type === MsgType.OFFER)!;
  assert.equal(JSON.parse(new TextDecoder().decode(late.payload)).proof, proofOf(SALT, other));
});

Deno.test("client link --update: a file on disk is proved by a read the shell does", () => {
  const data = payload(3 * CHUNK);
  const big = { entry: { name: "big", size: data.length }, opened: { size: data.length } };
  const c = new Client([big], { update: true });
  c.pump();
  c.feed(onStream(0, encodeJson(MsgType.CHALLENGE, { salt: SALT })));
  assert.deepEqual(c.proving, [0]);
  c.link.proved(0, proofOf(SALT, data));
  c.pump();
  assert.deepEqual(c.types(0), [MsgType.OFFER, MsgType.PROOF]);
  // A read that fails fails the transfer, and the server is told.
  c.link.readFailed(0, new UserError("Cannot read big: gone"));
  c.pump();
  assert.equal(c.types(0).at(-1), MsgType.ERROR);
  assert.ok(!c.results[0].ok);
});

Deno.test("client link: a pack's DONE reports each file; one without each file's MD5 fails them all", () => {
  const files = [payload(10), payload(20, 3)];
  const members: Entry[] = [
    { name: "d", parts: ["x"], size: 10, source: "d/x" },
    { name: "d", parts: ["y"], size: 20, source: "d/y" },
  ];
  const data = encodePack(files.map((f, i) => ({ path: members[i].parts!, data: f })));
  const pack = () => ({
    entry: { name: "d", kind: "pack" as const, members, size: 30 },
    opened: { data, size: data.length, pack: { members, sizes: [10, 20] } },
  });
  const md5s = files.map((f) => toHex(md5(f)));
  const good = new Client([pack()]);
  good.pump();
  good.feed(onStream(0, accept()));
  good.feed(
    onStream(0, done(data, { storedAs: "d", md5s: [md5s[0], ""], failed: [[1, "no room"]] })),
  );
  assert.equal(good.results.length, 2);
  const [x, y] = good.results;
  assert.ok(x.ok && x.result.storedAs === "d/x" && x.result.md5 === md5s[0]);
  assert.ok(!y.ok && /refused d\/y: no room/.test(String(y.error)));
  const short = new Client([pack()]);
  short.pump();
  short.feed(onStream(0, accept()));
  short.feed(onStream(0, done(data, { storedAs: "d", md5s: [md5s[0]] })));
  assert.equal(short.results.length, 2);
  for (const r of short.results) assert.ok(!r.ok && r.error instanceof ProtocolError);
  assert.equal(short.types(0).at(-1), MsgType.ERROR);
});

Deno.test("client link: the server's error on the connection, or its close, fails every open transfer", () => {
  const c = new Client([file("a", payload(2 * CHUNK)), file("b", payload(2 * CHUNK))]);
  c.pump();
  c.feed(onStream(0, accept()));
  assert.throws(() => c.feed(streamError("shutting down")), /refused the transfer: shutting down/);
  const closed = c.link.closed();
  assert.ok(closed instanceof UserError);
  c.link.abort(closed);
  c.drain();
  assert.equal(c.results.length, 2);
  for (const r of c.results) assert.ok(!r.ok);
  assert.equal((c.results[0] as { token?: string }).token, TOKEN);
  assert.equal(new Client([]).link.closed(), undefined);
});

Deno.test("client link: an Audio-TCP server's greeting is named as such", () => {
  const c = new Client([file("a", payload(10))]);
  c.pump();
  const hello = new Uint8Array([0, 0, 0, AudioMsg.HELLO, 0, 0]);
  assert.throws(() => c.feed(hello), /Audio-TCP server, not a file server/);
});

Deno.test("client link: at most a window of transfers is open, and a closed one makes room", () => {
  const small = Array.from({ length: WINDOW + 8 }, (_, i) => file(`f${i}`, payload(10, i + 1)));
  const c = new Client(small);
  c.pump();
  assert.equal(c.link.transfers, WINDOW);
  // Files of one chunk go whole with their offer, before any accept.
  assert.deepEqual(c.types(0), [MsgType.OFFER, MsgType.DATA, MsgType.END]);
  c.feed(onStream(0, accept()));
  c.feed(onStream(0, done(small[0].opened.data)));
  assert.equal(c.link.opened, WINDOW + 1);
  assert.equal(c.link.transfers, WINDOW);
});

Deno.test("client link: files read whole wait while a megabyte waits to be sent", () => {
  const big = Array.from({ length: 4 }, (_, i) => file(`f${i}`, payload(600 * 1024, i + 1)));
  const c = new Client(big);
  c.pump();
  // Two offers out, nothing accepted: 1.2 MB read and unsent, so no third read.
  assert.equal(c.link.opened, 2);
  c.feed(onStream(0, accept()));
  // Once the first went, the next is read.
  assert.equal(c.link.opened, 3);
});

Deno.test("client link: the server failing one transfer mid-stream leaves the others going", () => {
  const data = payload(3 * CHUNK);
  const c = new Client([file("a", data), file("b", data)]);
  c.pump();
  c.feed(onStream(0, accept()));
  c.feed(onStream(1, accept()));
  c.feed(onStream(0, streamError("disk full")));
  const a = c.results.find((r) => r.entry.name === "a")!;
  assert.ok(!a.ok && /failed the transfer: disk full/.test(String(a.error)));
  assert.equal(a.token, TOKEN, "it can resume");
  assert.equal(c.types(0).at(-1), MsgType.END, "the server's own failure is not answered");
  assert.equal(c.link.transfers, 1);
  c.feed(onStream(1, done(data)));
  assert.ok(c.results.find((r) => r.entry.name === "b")!.ok);
  assert.ok(c.finished);
});
