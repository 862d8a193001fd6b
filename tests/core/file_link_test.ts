/**
 * Many File-TCP transfers on one connection, with no sockets: STREAM
 * frames carrying whole sessions at every split, interleaved, taken apart
 * by the server's real link core ({@link ServerLink}); a folder
 * entry's offer, path checks and confirmation; and what a hostile peer
 * could put in them.
 */
import assert from "node:assert/strict";
import { DATA_OFFSET, FileSender } from "../../lib/core/file/sender.ts";
import { FileReceiver } from "../../lib/core/file/receiver.ts";
import { TransferState } from "../../lib/core/file/transfer_state.ts";
import {
  CHUNK_CHECK,
  CLIENT_LINK_LIMITS,
  decodeStream,
  encodeJson,
  encodeStream,
  fillStreamFrame,
  MAX_PACK_BYTES,
  MAX_PATH_DEPTH,
  MsgType,
  SERVER_LINK_LIMITS,
  STREAM_OFFSET,
} from "../../lib/core/file/messages.ts";
import { decodeDone, decodeOffer } from "../../lib/core/file/decode_messages.ts";
import { MAX_COMPONENT_BYTES, safeRelativePath } from "../../lib/core/file/names.ts";
import { decodePack, encodePack, MAX_PACK_FILES } from "../../lib/core/file/pack.ts";
import { FrameDecoder } from "../../lib/core/wire/frame.ts";
import { ServerLink } from "../../lib/core/file/server_link.ts";
import { jsonBytes } from "../../lib/core/wire/json.ts";
import { md5, toHex } from "../../lib/core/crypto/md5.ts";
import { ProtocolError } from "../../lib/core/errors.ts";

const CHUNK = 1024;

function payload(size: number, seed: number): Uint8Array {
  return new Uint8Array(size).map((_, i) => (i * seed + (i >> 7)) & 0xff);
}

/**
 * Sends `files` over one simulated connection: every transfer opened at
 * once on its own stream, their chunks interleaved one by one, every byte
 * stream cut into pieces of `split`. Returns what each receiver stored.
 */
function link(files: Uint8Array[], split: number) {
  const senders = files.map((data, i) =>
    new FileSender({
      name: "tree",
      path: ["d", `f${i}`],
      size: data.length,
      chunkSize: CHUNK,
      mtime: 1_700_000_000_000 + i,
    })
  );
  const receivers = files.map(() => new FileReceiver());
  const stored = files.map(() => new Map<number, Uint8Array>());
  const done = files.map(() => false);
  const toServer: Uint8Array[] = [];
  const toClient: Uint8Array[] = [];
  const server = new ServerLink();
  const verified = files.map(() => false);
  const client = new FrameDecoder(CLIENT_LINK_LIMITS);
  const cut = (bytes: Uint8Array) => {
    const out = [];
    for (let i = 0; i < bytes.length; i += split) out.push(bytes.slice(i, i + split));
    return out;
  };
  const act = (id: number, events: ReturnType<FileReceiver["receive"]>) => {
    const queue = [...events];
    for (let e = queue.shift(); e; e = queue.shift()) {
      const r = receivers[id];
      if (e.type === "offer") {
        assert.deepEqual(e.offer.path, ["d", `f${id}`]);
        toClient.push(
          encodeStream(id, r.accept(new TransferState(e.offer.size, CHUNK), "a".repeat(32))),
        );
        queue.push(...r.receive(new Uint8Array(0), 0));
      } else if (e.type === "store") stored[id].set(e.index, e.data.slice());
      else if (e.type === "send") toClient.push(encodeStream(id, e.bytes));
      else if (e.type === "verified") {
        verified[id] = true;
        toClient.push(encodeStream(id, r.stored(`received-tree/d/f${id}`)));
      }
    }
  };
  const deliver = () => {
    for (const bytes of toServer.splice(0).flatMap(cut)) {
      server.push(bytes);
      for (let p = server.next(); p; p = server.next()) {
        assert.equal(server.mode, "streams");
        const r = receivers[p.id];
        assert.equal(p.opens, r.phase === "awaiting-offer" && r.buffered === 0 && r.frames === 0);
        const before = r.frames;
        act(p.id, r.receive(p.bytes, 0));
        server.fed(p.id, r.buffered, r.frames - before, verified[p.id] ? "storing" : "open");
        if (verified[p.id]) server.stored(p.id);
      }
    }
    for (const bytes of toClient.splice(0).flatMap(cut)) {
      client.push(bytes);
      for (let f = client.next(); f; f = client.next()) {
        const { id, bytes: inner } = decodeStream(f.payload);
        for (const e of senders[id].receive(inner)) {
          if (e.type === "done") {
            assert.equal(e.done.storedAs, `received-tree/d/f${id}`);
            done[id] = true;
          }
        }
      }
    }
  };
  senders.forEach((s, id) => toServer.push(encodeStream(id, s.offerFrame())));
  deliver();
  const ended = files.map(() => false);
  for (let round = 0; !done.every(Boolean); round++) {
    assert.ok(round < 10_000, "the transfers do not finish");
    // One chunk of each open transfer in turn: their frames interleave.
    senders.forEach((s, id) => {
      const i = s.next;
      if (i === null) {
        if (!ended[id]) toServer.push(encodeStream(id, s.endFrame()));
        ended[id] = true;
        return;
      }
      const data = files[id].subarray(i * CHUNK, (i + 1) * CHUNK);
      const frame = new Uint8Array(STREAM_OFFSET + DATA_OFFSET + CHUNK);
      frame.set(data, STREAM_OFFSET + DATA_OFFSET);
      const inner = s.chunkFrame(i, frame.subarray(STREAM_OFFSET), data.length);
      toServer.push(fillStreamFrame(frame, id, inner.length).slice());
    });
    deliver();
  }
  return { senders, stored };
}

Deno.test("link: transfers interleaved on streams each arrive whole, at every split size", () => {
  const files = [payload(5 * CHUNK + 17, 3), payload(0, 5), payload(CHUNK, 7), payload(3000, 11)];
  for (const split of [1, 2, 7, 12, 13, 100, 1033, 1 << 20]) {
    const { senders, stored } = link(files, split);
    files.forEach((data, id) => {
      const out = new Uint8Array(data.length);
      for (const [i, c] of stored[id]) out.set(c, i * CHUNK);
      assert.deepEqual(out, data, `file ${id} at split ${split}`);
      assert.equal(senders[id].md5, toHex(md5(data)));
    });
  }
});

Deno.test("link: a STREAM frame too short, or too long for its limit, is a protocol error", () => {
  assert.throws(() => decodeStream(new Uint8Array(3)), ProtocolError);
  const d = new FrameDecoder(SERVER_LINK_LIMITS);
  const huge = new Uint8Array(8);
  new DataView(huge.buffer).setUint32(4, 0xffffffff);
  huge.set([0x53, 0x4b, 1, MsgType.STREAM]);
  d.push(huge);
  assert.throws(() => d.next(), /over the limit/);
  // A client's link frames are not a server's: an ACCEPT is not a link frame.
  const e = new FrameDecoder(SERVER_LINK_LIMITS);
  e.push(encodeJson(MsgType.ACCEPT, {}));
  assert.throws(() => e.next(), /Unknown frame type 2/);
});

Deno.test("folder entries: legal paths pass as they are; every hostile one is refused naming why", () => {
  for (
    const ok of [["a"], ["with space", "ünïcødé 名前.dat"], ["-leading-dash"], ["a", "b", "c"]]
  ) {
    assert.deepEqual(safeRelativePath(ok), ok);
  }
  const bad: [string[], RegExp][] = [
    [[], /empty/],
    [[""], /empty component/],
    [["."], /"\." component/],
    [["a", ".."], /"\.\." component/],
    [["/etc/passwd"], /holds a slash/],
    [["a\\b"], /holds a slash/],
    [["nul\0"], /control character/],
    [["bell\u0007"], /control character/],
    [["bidi\u202e"], /control character/],
    [["x".repeat(MAX_COMPONENT_BYTES + 1)], /256 bytes, over the 255/],
    [["é".repeat(128)], /256 bytes/], // 128 characters, 256 bytes
    [Array(MAX_PATH_DEPTH + 1).fill("d"), /deeper than 128/],
    [Array(20).fill("y".repeat(200)), /over 3800 bytes/],
  ];
  for (const [path, why] of bad) {
    assert.throws(
      () => safeRelativePath(path),
      (e: Error) => e instanceof ProtocolError && why.test(e.message),
      JSON.stringify(path).slice(0, 60),
    );
  }
  // The refusal never prints what it refuses raw.
  assert.throws(
    () => safeRelativePath(["\u001b[31mred"]),
    (e: Error) => !e.message.includes("\u001b"),
  );
});

Deno.test("folder entries: an offer's path, mode, kind and time are checked before anything is made", () => {
  const base = { name: "tree", size: 0, chunkSize: CHUNK, check: CHUNK_CHECK };
  const offer = decodeOffer(
    jsonBytes({ ...base, path: ["a", "b"], mode: 0o750, kind: "dir", mtime: 1234 }),
  );
  assert.deepEqual(offer.path, ["a", "b"]);
  assert.equal(offer.mode, 0o750);
  assert.equal(offer.kind, "dir");
  assert.equal(offer.mtime, 1234);
  for (
    const bad of [
      { path: "a/b" },
      { path: [] },
      { path: ["a", 3] },
      { mode: -1 },
      { mode: 0o10000 },
      { mode: 1.5 },
      { kind: "link", path: ["a"] },
      { kind: "dir" }, // a folder is a path
      { kind: "dir", path: ["a"], size: 5 },
      { mtime: "now" },
      { mtime: 1.5 },
    ]
  ) {
    assert.throws(
      () => decodeOffer(jsonBytes({ ...base, ...bad })),
      ProtocolError,
      JSON.stringify(bad),
    );
  }
});

Deno.test("folder entries: a DONE may name a path below the folder, never one that climbs or hides", () => {
  const done = { md5: "0".repeat(32), bytes: 1 };
  assert.equal(
    decodeDone(jsonBytes({ ...done, storedAs: "received-t/a/b.txt" })).storedAs,
    "received-t/a/b.txt",
  );
  for (const storedAs of ["received-t/../x", "/etc/passwd", "a//b", "a\\b", "a/\u001b[2J", "./a"]) {
    assert.throws(() => decodeDone(jsonBytes({ ...done, storedAs })), ProtocolError, storedAs);
  }
});

Deno.test("folder entries: the sender takes held chunks for an entry (its partial is named by it), never for a plain fresh offer", () => {
  const data = payload(4 * CHUNK, 13);
  const accept = encodeJson(MsgType.ACCEPT, { token: "b".repeat(32), held: [[0, 2]] });
  const entry = new FileSender({
    name: "t",
    path: ["x"],
    size: data.length,
    chunkSize: CHUNK,
    mtime: 5,
  });
  entry.offerFrame();
  assert.deepEqual(entry.receive(accept)[0], {
    type: "accepted",
    held: [[0, 2]],
    token: "b".repeat(32),
  });
  const frame = new Uint8Array(DATA_OFFSET + CHUNK);
  frame.set(data.subarray(0, CHUNK), DATA_OFFSET);
  assert.equal(
    entry.chunkFrame(0, frame, CHUNK)[3],
    MsgType.CHECK,
    "a held chunk goes as its check",
  );
  const plain = new FileSender({ name: "t", size: data.length, chunkSize: CHUNK });
  plain.offerFrame();
  assert.throws(() => plain.receive(accept), /never started/);
});

Deno.test("packs: small files round-trip; a malformed manifest is a protocol error, never a wrong file", () => {
  const files = [
    { path: ["a", "x.txt"], mode: 0o640, mtime: 5, data: payload(100, 3) },
    { path: ["empty"], data: new Uint8Array(0) },
    { path: ["b", "c", "y.bin"], data: payload(3000, 7) },
  ];
  const bytes = encodePack(files);
  const back = decodePack(bytes);
  assert.deepEqual(
    back.map((f) => [f.path, f.mode, f.mtime, [...f.data]]),
    files.map((f) => [f.path, f.mode, f.mtime, [...f.data]]),
  );
  const withManifest = (manifest: unknown, tail = new Uint8Array(0)) => {
    const m = jsonBytes(manifest);
    const out = new Uint8Array(4 + m.length + tail.length);
    new DataView(out.buffer).setUint32(0, m.length);
    out.set(m, 4);
    out.set(tail, 4 + m.length);
    return out;
  };
  const bad: [Uint8Array, RegExp][] = [
    [new Uint8Array(3), /too short/],
    [Uint8Array.of(0, 0, 1, 0, 123), /runs past its end/],
    [withManifest([]), /not a JSON object/],
    [withManifest({ files: [] }), /1 to 1024 files/],
    [
      withManifest({ files: Array(MAX_PACK_FILES + 1).fill({ path: ["a"], size: 0 }) }),
      /1 to 1024 files/,
    ],
    [withManifest({ files: [{ path: "a", size: 0 }] }), /malformed file/],
    [withManifest({ files: [{ path: ["a"], size: -1 }] }), /malformed file/],
    [
      withManifest({ files: [{ path: ["a"], size: 1, mode: 0o10000 }] }, new Uint8Array(1)),
      /malformed file/,
    ],
    [withManifest({ files: [{ path: ["a"], size: 5 }] }, new Uint8Array(4)), /run past its end/],
    [withManifest({ files: [{ path: ["a"], size: 3 }] }, new Uint8Array(4)), /does not list/],
  ];
  for (const [b, why] of bad) {
    assert.throws(
      () => decodePack(b),
      (e: Error) => e instanceof ProtocolError && why.test(e.message),
      String(why),
    );
  }
  // Every truncation of a good pack is refused.
  for (let n = 0; n < bytes.length; n += 97) {
    assert.throws(() => decodePack(bytes.subarray(0, n)), ProtocolError);
  }
});

Deno.test("packs: an offer of a pack names no path and no update and stays under the limit; its DONE lists failures cleanly", () => {
  const base = { name: "tree", chunkSize: CHUNK, check: CHUNK_CHECK, kind: "pack" };
  assert.equal(decodeOffer(jsonBytes({ ...base, size: 1000 })).kind, "pack");
  for (
    const bad of [{ size: MAX_PACK_BYTES + 1 }, { size: 10, path: ["a"] }, {
      size: 10,
      update: true,
    }]
  ) {
    assert.throws(
      () => decodeOffer(jsonBytes({ ...base, ...bad })),
      ProtocolError,
      JSON.stringify(bad),
    );
  }
  const done = { md5: "0".repeat(32), bytes: 1, storedAs: "received-tree" };
  const d = decodeDone(jsonBytes({ ...done, failed: [[3, "bad \u001b[2J name"]] }));
  assert.deepEqual(d.failed, [[3, "bad ?[2J name"]], "escape codes never reach the terminal");
  for (const failed of [[[-1, "x"]], [[1]], "x", [[1, "y".repeat(2000)]]]) {
    assert.throws(
      () => decodeDone(jsonBytes({ ...done, failed })),
      ProtocolError,
      JSON.stringify(failed).slice(0, 40),
    );
  }
  // A pack's files' MD5s: each one's, or empty for a file not stored.
  const md5s = ["", "0123456789abcdef0123456789abcdef"];
  assert.deepEqual(decodeDone(jsonBytes({ ...done, md5s })).md5s, md5s);
  for (
    const bad of ["x", [1], ["0".repeat(31)], ["G".repeat(32)], ["\u001b"], Array(1025).fill("")]
  ) {
    assert.throws(
      () => decodeDone(jsonBytes({ ...done, md5s: bad })),
      /lists its files' MD5s wrongly/,
      JSON.stringify(bad).slice(0, 40),
    );
  }
});
