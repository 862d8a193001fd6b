/**
 * Hostile clients against the file server, and a hostile server against
 * the client: offers that fill the disk, taking over another client's
 * partial, planted symbolic links, names long in bytes or with
 * bidirectional controls, the server's paths and escape codes, idle and
 * trickling strangers, NACK floods.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { sendFile, TransferCut } from "../../tcp/file_client.ts";
import { type FileServerOptions, startFileServer } from "../../tcp/file_server.ts";
import {
  encodeJson,
  encodeNack,
  MAX_CHUNK_RETRIES,
  MsgType,
} from "../../lib/core/file/messages.ts";
import { FileSender } from "../../lib/core/file/sender.ts";
import { TransferState } from "../../lib/core/file/transfer_state.ts";
import { CHUNK_CHECK, encodeCheck } from "../../lib/core/file/messages.ts";
import { encodeFrame, FrameDecoder } from "../../lib/core/wire/frame.ts";
import { md5 } from "../../lib/core/crypto/md5.ts";
import { ProtocolError } from "../../lib/core/errors.ts";
import { CLIENT_LIMITS } from "../../lib/core/file/messages.ts";
import { readChunks } from "../../lib/io/conn.ts";
import { writeAll } from "../../lib/io/streams.ts";
import { randomFile, startRelay, tempDir, waitFor } from "../support/helpers.ts";

function server(dir: string, extra: Partial<FileServerOptions> = {}) {
  return startFileServer({ port: 0, dir, log: () => {}, ...extra });
}

async function names(dir: string): Promise<string[]> {
  const out = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
}

/** Connects, sends `frames`, and returns every frame the server answers until it closes. */
async function raw(
  port: number,
  frames: Uint8Array[],
): Promise<{ type: number; payload: Uint8Array }[]> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  for (const f of frames) await writeAll(conn, f);
  await conn.closeWrite();
  const dec = new FrameDecoder(CLIENT_LIMITS);
  const out = [];
  for await (const bytes of readChunks(conn)) {
    dec.push(bytes);
    for (let f = dec.next(); f; f = dec.next()) {
      out.push({ type: f.type, payload: f.payload.slice() });
    }
  }
  conn.close();
  return out;
}

Deno.test("attack: offers of 2 GiB that send nothing cost no disk", async () => {
  await using dst = await tempDir();
  await using srv = await server(dst.path);
  for (let i = 0; i < 5; i++) {
    const answer = await raw(srv.addr.port, [
      encodeJson(MsgType.OFFER, {
        name: `big${i}`,
        size: 2 * 1024 ** 3,
        chunkSize: 1024,
        check: CHUNK_CHECK,
      }),
    ]);
    assert.equal(answer[0].type, MsgType.ACCEPT);
  }
  await waitFor(() => srv.records.length === 5);
  assert.deepEqual(await names(join(dst.path, ".partial")), [], "no .part, no .state");
  // Nor memory: a state of two million chunks holds nothing until a chunk is.
  const state = new TransferState(2 * 1024 ** 3, 1024);
  assert.equal(state.memoryBytes, 0);
  assert.equal(state.serialize().length, 28);
});

Deno.test("attack: another client cannot find, probe or damage a partial upload", async () => {
  await using src = await tempDir();
  await using dst = await tempDir();
  await using srv = await server(dst.path);
  const path = join(src.path, "victim.bin");
  const data = await randomFile(path, 64 * 1024, 21);
  const cut = await (async () => {
    await using relay = startRelay(srv.addr.port, { cutAfter: 40 * 1024 });
    return await sendFile({ port: relay.port, path, chunkSize: 1024 }).catch((e) => e);
  })();
  assert.ok(cut instanceof TransferCut, String(cut));
  await waitFor(() => srv.records.length === 1);
  // The attacker offers the same name, size and chunk size, with no token
  // and then a made-up one: nothing is held for it, and CHECKs of the
  // victim's chunks (with their true digests) are refused with a NACK.
  const chunk0 = data.subarray(0, 1024);
  for (const resume of [undefined, "0".repeat(32)]) {
    const offer = {
      name: "victim.bin",
      size: data.length,
      chunkSize: 1024,
      check: CHUNK_CHECK,
      resume,
    };
    const answer = await raw(srv.addr.port, [
      encodeJson(MsgType.OFFER, offer),
      encodeCheck(0, md5(chunk0)),
    ]);
    const accept = new TextDecoder().decode(answer[0].payload);
    assert.match(accept, /"held":\[\]/, accept);
    assert.equal(answer[1].type, MsgType.NACK, "the check confirms nothing");
  }
  // The victim's partial is intact: it resumes, sending only what was missing.
  const r = await sendFile({ port: srv.addr.port, path, chunkSize: 1024, resume: cut.token });
  assert.ok(r.chunksSkipped >= 30, `${r.chunksSkipped} chunks resumed`);
  assert.equal(r.chunksResent, 0, "no held chunk was damaged");
  assert.deepEqual(await Deno.readFile(join(dst.path, "received-victim.bin")), data);
});

Deno.test("attack: a symbolic link planted where a partial's files go is never followed", async () => {
  await using src = await tempDir();
  await using dst = await tempDir();
  await using srv = await server(dst.path);
  const path = join(src.path, "s.bin");
  const data = await randomFile(path, 32 * 1024, 4);
  // The attacker knows a token (its own) and the naming scheme; it plants
  // links to a file it wants truncated, then resumes with that token.
  const victim = join(src.path, "precious.txt");
  await Deno.writeTextFile(victim, "do not truncate me");
  const token = "ab".repeat(16);
  const id = createHash("sha256").update(token).digest("hex").slice(0, 32);
  const state = new TransferState(data.length, 1024);
  state.receiveData(0, 1024, md5(data.subarray(0, 1024)), md5(data.subarray(0, 1024)));
  await Deno.writeFile(join(src.path, "state"), state.serialize());
  await Deno.symlink(victim, join(dst.path, ".partial", `${id}.part`));
  await Deno.symlink(join(src.path, "state"), join(dst.path, ".partial", `${id}.state`));
  const r = await sendFile({ port: srv.addr.port, path, chunkSize: 1024, resume: token });
  assert.equal(r.chunksSkipped, 0, "the planted state was not used");
  assert.equal(await Deno.readTextFile(victim), "do not truncate me");
  assert.deepEqual(await Deno.readFile(join(dst.path, "received-s.bin")), data);
});

Deno.test("attack: names long in bytes and with bidirectional controls are stored safely, nothing orphaned", async () => {
  await using src = await tempDir();
  await using dst = await tempDir();
  await using srv = await server(dst.path);
  const path = join(src.path, "x.bin");
  const data = await randomFile(path, 5000);
  // 200 "中" pass a count of UTF-16 units but are 600 bytes.
  const long = await sendFile({ port: srv.addr.port, path, name: "中".repeat(200) + ".mp4" });
  assert.ok(new TextEncoder().encode(long.storedAs).length <= 255, long.storedAs);
  assert.deepEqual(await Deno.readFile(join(dst.path, long.storedAs)), data);
  const bidi = await sendFile({ port: srv.addr.port, path, name: "invoice\u202Efdp.exe" });
  assert.equal(bidi.storedAs, "received-invoice_fdp.exe");
  // Only the digests of stored files (--update) stay: no partial is orphaned.
  assert.deepEqual(await names(join(dst.path, ".partial")), ["digests"], "no orphan");
});

Deno.test("attack: a failure on the server never sends the client the server's paths", async () => {
  await using src = await tempDir();
  await using dst = await tempDir();
  await using srv = await server(dst.path);
  // The staging folder replaced by a file: creating the partial fails with
  // an error that names the path.
  await Deno.remove(join(dst.path, ".partial"), { recursive: true });
  await Deno.writeTextFile(join(dst.path, ".partial"), "");
  const path = join(src.path, "p.bin");
  await randomFile(path, 5000);
  const err = await sendFile({ port: srv.addr.port, path }).catch((e) => e);
  assert.ok(err instanceof Error);
  assert.ok(!err.message.includes(dst.path), err.message);
  assert.match(err.message, /Server failed the transfer/);
  // The server's own log has the whole story.
  await waitFor(() => srv.records.length === 1);
  assert.ok(srv.records[0].error?.length, "logged");
});

Deno.test("attack: a hostile server's escape codes and NACK floods stop at the client", () => {
  const fresh = () => {
    const s = new FileSender({ name: "a", size: 4096, chunkSize: 1024 });
    s.offerFrame();
    s.receive(encodeJson(MsgType.ACCEPT, { token: "1".repeat(32), held: [] }));
    return s;
  };
  // A stored name with an escape sequence (clear the screen) is refused.
  const s = fresh();
  for (let i = 0; i < 4; i++) s.chunkFrame(i, new Uint8Array(20 + 8 + 1024), 1024);
  s.endFrame();
  const done = encodeJson(MsgType.DONE, { md5: "0".repeat(32), storedAs: "x\x1b[2J", bytes: 4096 });
  assert.throws(() => s.receive(done), ProtocolError);
  // An error message's escape codes are printed as "?".
  assert.throws(
    () => fresh().receive(encodeFrame(MsgType.ERROR, new TextEncoder().encode("no\x1b[31m\u202e"))),
    (e: Error) => e.message.endsWith("no?[31m?"),
  );
  // Asking for one chunk more often than a server of ours ever would.
  const f = fresh();
  f.chunkFrame(0, new Uint8Array(20 + 8 + 1024), 1024);
  for (let i = 0; i <= MAX_CHUNK_RETRIES; i++) f.receive(encodeNack(0));
  assert.throws(() => f.receive(encodeNack(0)), /asked for chunk 0 5 times/);
  // A server that claims to hold chunks of a transfer never started.
  const g = new FileSender({ name: "a", size: 4096, chunkSize: 1024 });
  g.offerFrame();
  assert.throws(
    () => g.receive(encodeJson(MsgType.ACCEPT, { token: "1".repeat(32), held: [[0, 2]] })),
    /never started/,
  );
});

Deno.test("attack: idle and trickling strangers on one host never lock out another", async () => {
  await using src = await tempDir();
  await using dst = await tempDir();
  await using srv = await server(dst.path, { idleMs: 600, maxPerHost: 4 });
  // Six idle connections from 127.0.0.2 (netcat binds the source address).
  const strangers = Array.from({ length: 6 }, () =>
    new Deno.Command("nc", {
      args: ["-s", "127.0.0.2", "127.0.0.1", String(srv.addr.port)],
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
    }).spawn());
  try {
    // The fifth and sixth are refused at once, naming the reason.
    const refused = await Promise.all(strangers.map(async (c) => {
      const reader = c.stdout.getReader();
      const timer = setTimeout(() => reader.cancel(), 400);
      const first = await reader.read().catch(() => ({ value: undefined }));
      clearTimeout(timer);
      reader.releaseLock();
      return new TextDecoder().decode(first.value ?? new Uint8Array());
    }));
    const busy = refused.filter((t) => t.includes("connections from your address"));
    assert.equal(busy.length, 2, JSON.stringify(refused));
    // A client on another host is served meanwhile.
    const path = join(src.path, "ok.bin");
    const data = await randomFile(path, 100_000);
    await sendFile({ port: srv.addr.port, path });
    assert.deepEqual(await Deno.readFile(join(dst.path, "received-ok.bin")), data);
  } finally {
    for (const c of strangers) {
      try {
        c.kill();
      } catch {
        // Already gone.
      }
      await c.status;
    }
  }
  // A trickler, one byte every 100 ms of a frame it never finishes, is
  // closed after 600 ms without a whole message.
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: srv.addr.port });
  const offer = encodeJson(MsgType.OFFER, {
    name: "t",
    size: 10,
    chunkSize: 1024,
    check: CHUNK_CHECK,
  });
  const started = performance.now();
  for (let i = 0; i < offer.length - 1; i++) {
    if ((await conn.write(offer.subarray(i, i + 1)).catch(() => 0)) === 0) break;
    await new Promise((r) => setTimeout(r, 100));
    if (srv.records.some((r) => /no progress/.test(r.error ?? ""))) break;
  }
  conn.close();
  const elapsed = performance.now() - started;
  await waitFor(() => srv.records.some((r) => /no progress for 0.6 s/.test(r.error ?? "")));
  assert.ok(elapsed < 3000, `closed after ${elapsed} ms of trickling`);
});
