import assert from "node:assert/strict";
import { join } from "node:path";
import { sendFile, TransferCut } from "../../tcp/file_client.ts";
import { type FileServerOptions, startFileServer } from "../../tcp/file_server.ts";
import { encodeFrame } from "../../lib/core/wire/frame.ts";
import { CHUNK_CHECK, encodeJson, MsgType } from "../../lib/core/file/messages.ts";
import { md5, toHex } from "../../lib/core/crypto/md5.ts";
import { writeAll } from "../../lib/io/streams.ts";
import { corruptChunks, randomFile, startRelay, tempDir, waitFor } from "../support/helpers.ts";

const quiet = { log: () => {} };

async function server(dir: string, extra: Partial<FileServerOptions> = {}) {
  return await startFileServer({ port: 0, dir, ...quiet, ...extra });
}

async function files(dir: string): Promise<string[]> {
  const out = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
}

Deno.test("a file arrives identical and is confirmed by MD5", async () => {
  await using src = await tempDir();
  await using dst = await tempDir();
  await using srv = await server(dst.path);
  const data = await randomFile(join(src.path, "chamber.mp4"), 300_000);
  const r = await sendFile({ port: srv.addr.port, path: join(src.path, "chamber.mp4") });
  assert.equal(r.storedAs, "received-chamber.mp4");
  assert.equal(r.md5, toHex(md5(data)));
  assert.deepEqual(await Deno.readFile(join(dst.path, "received-chamber.mp4")), data);
  // Nothing partial is left behind.
  // Nothing partial is left: only the digests of what was stored (--update).
  assert.deepEqual(await files(join(dst.path, ".partial")), ["digests"]);
});

Deno.test("the original 1024-byte chunks and an empty file work", async () => {
  await using src = await tempDir();
  await using dst = await tempDir();
  await using srv = await server(dst.path);
  const data = await randomFile(join(src.path, "a.bin"), 10_000);
  const r = await sendFile({ port: srv.addr.port, path: join(src.path, "a.bin"), chunkSize: 1024 });
  assert.equal(r.chunks, 10);
  assert.deepEqual(await Deno.readFile(join(dst.path, "received-a.bin")), data);
  await Deno.writeFile(join(src.path, "empty"), new Uint8Array(0));
  await sendFile({ port: srv.addr.port, path: join(src.path, "empty") });
  assert.equal((await Deno.stat(join(dst.path, "received-empty"))).size, 0);
});

Deno.test("corrupted chunks are asked for again and the file still arrives identical", async () => {
  await using src = await tempDir();
  await using dst = await tempDir();
  await using srv = await server(dst.path);
  // Corrupt every 5th chunk on its first two sends.
  await using relay = startRelay(srv.addr.port, {
    corrupt: corruptChunks((i, n) => i % 5 === 0 && n < 2),
  });
  const data = await randomFile(join(src.path, "f.bin"), 40 * 1024, 7);
  const r = await sendFile({ port: relay.port, path: join(src.path, "f.bin"), chunkSize: 1024 });
  assert.deepEqual(await Deno.readFile(join(dst.path, "received-f.bin")), data);
  // Chunk 0's first two copies are checked and fail; a corrupted copy
  // that was in flight behind a failed chunk is dropped unchecked.
  const rec = srv.records[0];
  assert.ok(rec.nacks >= 2 && rec.nacks <= 16, `${rec.nacks} NACKs`);
  assert.equal(relay.corrupted, 16);
  // Go-back-N: what was sent again is what failed plus what was dropped after it.
  assert.equal(r.chunksResent, rec.nacks + rec.droppedChunks);
});

Deno.test("a chunk that keeps failing fails the transfer with a clear error", async () => {
  await using src = await tempDir();
  await using dst = await tempDir();
  await using srv = await server(dst.path);
  await using relay = startRelay(srv.addr.port, { corrupt: corruptChunks((i) => i === 3) });
  await randomFile(join(src.path, "f.bin"), 8 * 1024);
  await assert.rejects(
    sendFile({ port: relay.port, path: join(src.path, "f.bin"), chunkSize: 1024 }),
    /Chunk 3 failed its MD5 check 4 times; giving up/,
  );
  assert.equal((await files(dst.path)).includes("received-f.bin"), false);
});

Deno.test("a cut transfer resumes and verified chunks are not sent again", async () => {
  await using src = await tempDir();
  await using dst = await tempDir();
  await using srv = await server(dst.path);
  const data = await randomFile(join(src.path, "big.bin"), 2 * 1024 * 1024, 3);
  const path = join(src.path, "big.bin");
  let token = "";
  {
    await using relay = startRelay(srv.addr.port, { cutAfter: 1024 * 1024 + 5000 });
    const cut = await sendFile({ port: relay.port, path, chunkSize: 64 * 1024 }).catch((e) => e);
    // The error says how to resume.
    assert.ok(cut instanceof TransferCut, String(cut));
    assert.match(cut.message, new RegExp(`run again with --resume ${cut.token}$`));
    token = cut.token;
  }
  // Nothing partial looks complete.
  assert.equal((await files(dst.path)).includes("received-big.bin"), false);
  // Wait for the server to notice the cut and save its state.
  await waitFor(() => srv.records.length > 0);
  const r = await sendFile({ port: srv.addr.port, path, chunkSize: 64 * 1024, resume: token });
  assert.ok(r.chunksSkipped >= 15, `skipped ${r.chunksSkipped}`);
  assert.equal(r.chunksSent + r.chunksSkipped, 32);
  assert.equal(srv.records[1].dataChunks, r.chunksSent);
  assert.deepEqual(await Deno.readFile(join(dst.path, "received-big.bin")), data);
});

Deno.test("a transfer resumes after the server restarts", async () => {
  await using src = await tempDir();
  await using dst = await tempDir();
  const path = join(src.path, "r.bin");
  const data = await randomFile(path, 1024 * 1024, 11);
  const first = await server(dst.path);
  const port = first.addr.port;
  const relay = startRelay(port, { stallAfter: 600 * 1024 });
  let token = "";
  const sending = assert.rejects(
    sendFile({ port: relay.port, path, chunkSize: 32 * 1024, onToken: (t) => token = t }),
  );
  // Stop the server once it has stored over half the file.
  const partDir = join(dst.path, ".partial");
  const stored = async () => {
    let n = 0;
    for (const f of await files(partDir)) {
      if (f.endsWith(".part")) n += (await Deno.stat(join(partDir, f))).size;
    }
    return n;
  };
  const deadline = Date.now() + 10_000;
  while (await stored() < 512 * 1024) {
    assert.ok(Date.now() < deadline, "the server stored half the file within 10 s");
    await new Promise((r) => setTimeout(r, 10));
  }
  await first.close();
  await sending;
  await relay.close();
  await using second = await server(dst.path, { port });
  const r = await sendFile({ port, path, chunkSize: 32 * 1024, resume: token });
  assert.ok(r.chunksSkipped >= 16, `kept ${r.chunksSkipped} chunks across the restart`);
  assert.equal(second.records[0].dataChunks, 32 - r.chunksSkipped);
  assert.deepEqual(await Deno.readFile(join(dst.path, "received-r.bin")), data);
});

Deno.test("a changed source file is caught on resume and its chunks sent again", async () => {
  await using src = await tempDir();
  await using dst = await tempDir();
  await using srv = await server(dst.path);
  const path = join(src.path, "c.bin");
  await randomFile(path, 512 * 1024, 5);
  let token = "";
  {
    await using relay = startRelay(srv.addr.port, { cutAfter: 300 * 1024 });
    await assert.rejects(
      sendFile({ port: relay.port, path, chunkSize: 16 * 1024, onToken: (t) => token = t }),
    );
  }
  await waitFor(() => srv.records.length > 0);
  const changed = await randomFile(path, 512 * 1024, 6); // same size, new bytes
  const r = await sendFile({ port: srv.addr.port, path, chunkSize: 16 * 1024, resume: token });
  assert.ok(r.chunksSkipped >= 10, `the server held ${r.chunksSkipped} chunks`);
  // The first CHECK already differed: the server dropped what it held and
  // the client went back to chunk 0.
  assert.equal(srv.records.at(-1)!.nacks, 1);
  assert.ok(r.chunksResent >= r.chunksSkipped, "every held chunk was rejected and resent");
  assert.deepEqual(await Deno.readFile(join(dst.path, "received-c.bin")), changed);
});

Deno.test("8 concurrent clients, two with the same name, never corrupt each other", async () => {
  await using src = await tempDir();
  await using dst = await tempDir();
  await using srv = await server(dst.path);
  const sent = await Promise.all(
    Array.from({ length: 8 }, async (_, i) => {
      const path = join(src.path, `f${i}.bin`);
      const data = await randomFile(path, 200_000 + i * 1000, i + 1);
      const name = i < 2 ? "same.bin" : `f${i}.bin`;
      const r = await sendFile({ port: srv.addr.port, path, name, chunkSize: 4096 });
      return { data, r };
    }),
  );
  for (const { data, r } of sent) {
    assert.deepEqual(await Deno.readFile(join(dst.path, r.storedAs)), data, r.storedAs);
  }
  const names = sent.slice(0, 2).map((s) => s.r.storedAs).sort();
  assert.deepEqual(names, ["received-same-1.bin", "received-same.bin"]);
});

Deno.test("an existing received file is kept unless the server overwrites", async () => {
  await using src = await tempDir();
  await using dst = await tempDir();
  const path = join(src.path, "k.txt");
  await Deno.writeTextFile(join(dst.path, "received-k.txt"), "old");
  await Deno.writeTextFile(path, "new");
  {
    await using srv = await server(dst.path);
    assert.equal((await sendFile({ port: srv.addr.port, path })).storedAs, "received-k-1.txt");
    assert.equal(await Deno.readTextFile(join(dst.path, "received-k.txt")), "old");
  }
  await using srv = await server(dst.path, { overwrite: true });
  assert.equal((await sendFile({ port: srv.addr.port, path })).storedAs, "received-k.txt");
  assert.equal(await Deno.readTextFile(join(dst.path, "received-k.txt")), "new");
});

Deno.test("hostile names are stored as a safe base name inside DIR", async () => {
  await using src = await tempDir();
  await using dst = await tempDir();
  await using srv = await server(join(dst.path));
  const path = join(src.path, "x");
  await Deno.writeTextFile(path, "payload");
  const cases: [string, string][] = [
    ["../../escape.txt", "received-escape.txt"],
    ["/etc/passwd", "received-passwd"],
    ["..\\win.ini", "received-win.ini"],
    ["ctl\u0001\u0000.txt", "received-ctl__.txt"],
  ];
  for (const [name, stored] of cases) {
    assert.equal((await sendFile({ port: srv.addr.port, path, name })).storedAs, stored);
  }
  await assert.rejects(sendFile({ port: srv.addr.port, path, name: ".." }), /no usable base name/);
  const parent = join(dst.path, "..");
  assert.equal((await files(parent)).includes("escape.txt"), false);
  assert.deepEqual(
    (await files(dst.path)).filter((n) => n !== ".partial"),
    cases.map((c) => c[1]).sort(),
  );
});

Deno.test("files over --max-size are refused with the limit named", async () => {
  await using src = await tempDir();
  await using dst = await tempDir();
  await using srv = await server(dst.path, { maxSize: 1000 });
  const path = join(src.path, "big");
  await randomFile(path, 2000);
  await assert.rejects(
    sendFile({ port: srv.addr.port, path }),
    /Server refused big: File is 2.0 KiB, over the server's limit of 1000 B/,
  );
});

Deno.test("garbage, hostile frames and idle clients do not stop the server", async () => {
  await using src = await tempDir();
  await using dst = await tempDir();
  await using srv = await server(dst.path, { idleMs: 300 });
  const attacks: Uint8Array[] = [
    new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
    crypto.getRandomValues(new Uint8Array(5000)),
    (() => { // A header claiming 4 GiB.
      const f = encodeFrame(MsgType.OFFER, new Uint8Array(0));
      new DataView(f.buffer).setUint32(4, 0xffffffff);
      return f;
    })(),
    encodeJson(MsgType.OFFER, { name: "x", size: -1, chunkSize: 1024 }),
    encodeJson(MsgType.OFFER, { name: "x", size: 1e15, chunkSize: 1024 }),
    encodeFrame(MsgType.OFFER, new TextEncoder().encode("{not json")),
    encodeFrame(MsgType.DATA, new Uint8Array(30)), // data before an offer
    encodeJson(MsgType.OFFER, { name: "t", size: 10_000, chunkSize: 1024 }).subarray(0, 12),
    new Uint8Array(0), // connects and says nothing: idle timeout
  ];
  for (const bytes of attacks) {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: srv.addr.port });
    await writeAll(conn, bytes).catch(() => {});
    if (bytes.length > 0 && bytes[0] === 0x53 && bytes.length === 12) await conn.closeWrite();
    // The server answers with an error frame or closes; either way it ends.
    const buf = new Uint8Array(4096);
    while ((await conn.read(buf).catch(() => null)) !== null);
    conn.close();
  }
  assert.equal(srv.records.length, attacks.length);
  for (const r of srv.records) assert.ok(r.error && !r.error.includes("\n"), r.error);
  assert.match(srv.records.at(-1)!.error!, /no progress for 0.3 s/);
  // Still serving.
  const path = join(src.path, "ok");
  const data = await randomFile(path, 5000);
  await sendFile({ port: srv.addr.port, path });
  assert.deepEqual(await Deno.readFile(join(dst.path, "received-ok")), data);
});

Deno.test("partial transfers nobody resumed are removed after --keep-partial", async () => {
  await using src = await tempDir();
  await using dst = await tempDir();
  const path = join(src.path, "s.bin");
  await randomFile(path, 256 * 1024);
  {
    await using srv = await server(dst.path);
    await using relay = startRelay(srv.addr.port, { cutAfter: 100 * 1024 });
    await assert.rejects(sendFile({ port: relay.port, path, chunkSize: 16 * 1024 }));
    await waitFor(() => srv.records.length > 0);
  }
  const partial = join(dst.path, ".partial");
  const names = await files(partial);
  assert.equal(names.length, 2, "data and state were kept for resume");
  // A day old: kept by a server that keeps partials for 7 days...
  const dayAgo = new Date(Date.now() - 86_400_000);
  for (const n of names) await Deno.utime(join(partial, n), dayAgo, dayAgo);
  await (await server(dst.path)).close();
  assert.deepEqual(await files(partial), names);
  // ...and removed by one that keeps them for an hour.
  const logs: string[] = [];
  await (await server(dst.path, { keepPartialMs: 3_600_000, log: (l) => logs.push(l) })).close();
  assert.deepEqual(await files(partial), []);
  assert.deepEqual(logs, ["removed 1 partial transfers nobody resumed"]);
});

Deno.test("32 clients are served at once and the 33rd is told the server is busy", async () => {
  await using src = await tempDir();
  await using dst = await tempDir();
  // All on loopback, one host: its own cap is lifted to reach the total.
  await using srv = await server(dst.path, { maxPerHost: 64, idleMs: 10_000 });
  const held: Deno.TcpConn[] = [];
  try {
    for (let i = 0; i < 32; i++) {
      const c = await Deno.connect({ hostname: "127.0.0.1", port: srv.addr.port });
      await writeAll(
        c,
        encodeJson(MsgType.OFFER, { name: `c${i}`, size: 10, chunkSize: 1024, check: CHUNK_CHECK }),
      );
      // Each is a session: the server accepts its offer.
      const buf = new Uint8Array(256);
      assert.ok((await c.read(buf))! > 0, `client ${i} accepted`);
      held.push(c);
    }
    const extra = await Deno.connect({ hostname: "127.0.0.1", port: srv.addr.port });
    const buf = new Uint8Array(256);
    const n = (await extra.read(buf)) ?? 0;
    extra.close();
    assert.match(new TextDecoder().decode(buf.subarray(8, n)), /Server is busy \(32 clients\)/);
  } finally {
    for (const c of held) c.close();
  }
  // Once they leave, a transfer goes through.
  await waitFor(() => srv.records.length === 32);
  const path = join(src.path, "after.bin");
  const data = await randomFile(path, 4000);
  await sendFile({ port: srv.addr.port, path });
  assert.deepEqual(await Deno.readFile(join(dst.path, "received-after.bin")), data);
});

Deno.test("hostile connections while a transfer runs leave it intact", async () => {
  await using src = await tempDir();
  await using dst = await tempDir();
  await using srv = await server(dst.path, { idleMs: 5000 });
  const path = join(src.path, "long.bin");
  const data = await randomFile(path, 4 * 1024 * 1024, 8);
  // The transfer is held mid-file for a second while the attacks land.
  await using relay = startRelay(srv.addr.port, { pause: { after: 1024 * 1024, ms: 1000 } });
  let chunks = 0;
  const sending = sendFile({ port: relay.port, path, onChunk: () => chunks++ });
  await waitFor(() => chunks > 4);
  const attacks = [
    crypto.getRandomValues(new Uint8Array(5000)),
    encodeJson(MsgType.OFFER, { name: "../../etc/passwd", size: 10, chunkSize: 1 }),
    encodeFrame(MsgType.DATA, new Uint8Array(30)),
    encodeJson(MsgType.OFFER, {
      name: "long.bin",
      size: data.length,
      chunkSize: 65536,
      check: CHUNK_CHECK,
    }),
  ];
  await Promise.all(attacks.map(async (bytes) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: srv.addr.port });
    await writeAll(conn, bytes).catch(() => {});
    await conn.closeWrite().catch(() => {});
    const buf = new Uint8Array(4096);
    while ((await conn.read(buf).catch(() => null)) !== null);
    conn.close();
  }));
  const r = await sending;
  assert.equal(r.storedAs, "received-long.bin");
  assert.deepEqual(await Deno.readFile(join(dst.path, "received-long.bin")), data);
  assert.equal(srv.records.filter((x) => x.error).length, attacks.length);
});
