/**
 * Strangers who never prove anything against the file server: streams
 * held one frame short of complete across many connections (the server's
 * memory stays bounded), and a connection kept alive by link frames that
 * carry a byte of a message each (closed at the idle timeout).
 */
import assert from "node:assert/strict";
import net from "node:net";
import {
  CHUNK_CHECK,
  DATA_PREFIX,
  encodeJson,
  encodeStream,
  MAX_CHUNK_SIZE,
  MsgType,
} from "../../lib/core/file/messages.ts";
import { HEADER_LENGTH, writeHeader } from "../../lib/core/wire/frame.ts";
import { startFileServer } from "../../tcp/file_server.ts";
import { sendFile } from "../../tcp/file_client.ts";
import { SecureMsg, SecureStream } from "../../lib/core/crypto/secure_stream.ts";
import { join } from "node:path";
import { randomFile, tempDir, waitFor } from "../support/helpers.ts";
import { FILE_SERVER_PERMS, startServerTool } from "../support/tool_process.ts";

/** A TCP connection from source address `from` (a loopback address of its own). */
export async function connectFrom(from: string, port: number): Promise<net.Socket> {
  const s = net.connect({ host: "127.0.0.1", port, localAddress: from });
  await new Promise<void>((resolve, reject) => {
    s.once("connect", () => resolve());
    s.once("error", reject);
  });
  s.on("error", () => {});
  return s;
}

/** Writes `bytes`, resolving once the socket took them (false if it failed). */
function send(s: net.Socket, bytes: Uint8Array): Promise<boolean> {
  return new Promise((resolve) => s.write(bytes, (err) => resolve(!err)));
}

/** The server process's peak resident memory (VmHWM), bytes. */
async function peakMemory(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

/** A stream's inner DATA frame claiming a whole chunk, one byte short of it. */
function dataOneShort(id: number): Uint8Array {
  const inner = new Uint8Array(HEADER_LENGTH + DATA_PREFIX + MAX_CHUNK_SIZE - 1);
  writeHeader(inner, MsgType.DATA, DATA_PREFIX + MAX_CHUNK_SIZE);
  return encodeStream(id, inner);
}

Deno.test("attack: 32 connections of 32 streams each one frame short of complete leave the server under 200 MB", async () => {
  await using dst = await tempDir();
  await using srv = await startServerTool(
    "tcp/file_server.ts",
    ["--port", "0", "--dir", dst.path, "--idle-timeout", "20"],
    { permissions: FILE_SERVER_PERMS },
  );
  const offer = encodeJson(MsgType.OFFER, {
    name: "held.bin",
    size: MAX_CHUNK_SIZE,
    chunkSize: MAX_CHUNK_SIZE,
    check: CHUNK_CHECK,
  });
  const conns: net.Socket[] = [];
  try {
    // 8 connections from each of 4 addresses: the server's 32 clients.
    for (let i = 0; i < 32; i++) conns.push(await connectFrom(`127.0.9.${1 + (i % 4)}`, srv.port));
    await Promise.all(conns.map(async (c) => {
      for (let id = 0; id < 32; id++) {
        // Half the streams offer first; half send their data with no offer.
        if (id % 2 === 1 && !await send(c, encodeStream(id, offer))) return;
        if (!await send(c, dataOneShort(id))) return;
      }
    }));
    await new Promise((r) => setTimeout(r, 1000));
    const peak = await peakMemory(srv.child.pid);
    console.log(`server peak memory: ${(peak / 1024 ** 2).toFixed(0)} MiB`);
    assert.ok(peak < 200 * 1024 ** 2, `server's peak memory is ${peak} bytes`);
  } finally {
    for (const c of conns) c.destroy();
  }
});

Deno.test("attack: link frames carrying a byte of a message each do not keep a connection past the idle timeout", async () => {
  await using dst = await tempDir();
  await using srv = await startFileServer({ port: 0, dir: dst.path, log: () => {}, idleMs: 600 });
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: srv.addr.port });
  const offer = encodeJson(MsgType.OFFER, {
    name: "drip",
    size: 10,
    chunkSize: 1024,
    check: CHUNK_CHECK,
  });
  const started = performance.now();
  let closed = false;
  for (let i = 0; i < offer.length - 1 && !closed; i++) {
    const frame = encodeStream(0, offer.subarray(i, i + 1));
    closed = await conn.write(frame).then(() => false, () => true);
    await new Promise((r) => setTimeout(r, 100));
    closed ||= srv.records.some((r) => /no progress/.test(r.error ?? ""));
  }
  conn.close();
  const elapsed = performance.now() - started;
  await waitFor(() => srv.records.some((r) => /no progress for 0.6 s/.test(r.error ?? "")));
  assert.ok(elapsed < 3000, `closed after ${elapsed.toFixed(0)} ms of dripping`);
});

const CODE = "quartz-meadow-lantern";

/** Sends a coded client's first frame from `from`; the type of the server's first answer (0: none). */
async function firstAnswer(from: string, port: number): Promise<{ type: number; text: string }> {
  const s = await connectFrom(from, port);
  const hello = new SecureStream("client", {
    code: CODE,
    context: "file-tcp",
    random: crypto.getRandomValues(new Uint8Array(48)),
    maxInner: 1024,
  }).start();
  await send(s, hello);
  const got = await new Promise<Uint8Array>((resolve) => {
    const timer = setTimeout(() => resolve(new Uint8Array(0)), 1500);
    s.once("data", (d: Uint8Array) => {
      clearTimeout(timer);
      resolve(new Uint8Array(d));
    });
  });
  s.destroy();
  return { type: got[3] ?? 0, text: new TextDecoder().decode(got.subarray(HEADER_LENGTH)) };
}

Deno.test("attack: 8 handshakes at once from one address: 3 answered, the rest told the server is busy", async () => {
  await using dst = await tempDir();
  await using srv = await startFileServer({ port: 0, dir: dst.path, code: CODE, log: () => {} });
  const answers = await Promise.all(
    Array.from({ length: 8 }, () => firstAnswer("127.0.9.1", srv.addr.port)),
  );
  const answered = answers.filter((a) => a.type === SecureMsg.PAKE).length;
  assert.equal(answered, 3, `first answers: ${answers.map((a) => a.type)}`);
  for (const a of answers.filter((a) => a.type !== SecureMsg.PAKE)) {
    assert.match(a.text, /busy.*handshakes under way from your address/);
  }
});

Deno.test("attack: 32 idle connections from 4 addresses do not lock out a client with the code, and 'busy' arrives as busy", async () => {
  await using src = await tempDir();
  await using dst = await tempDir();
  const path = join(src.path, "ok.bin");
  const data = await randomFile(path, 100_000);
  await using srv = await startFileServer({ port: 0, dir: dst.path, code: CODE, log: () => {} });
  const idle: net.Socket[] = [];
  try {
    for (let i = 0; i < 32; i++) {
      idle.push(await connectFrom(`127.0.9.${1 + (i % 4)}`, srv.addr.port));
    }
    await new Promise((r) => setTimeout(r, 200));
    await sendFile({ port: srv.addr.port, path, code: CODE });
    assert.deepEqual(await Deno.readFile(join(dst.path, "received-ok.bin")), data);
  } finally {
    for (const c of idle) c.destroy();
  }
  // A server with room for one client, taken: a coded client is told it is busy.
  await using full = await startFileServer({
    port: 0,
    dir: dst.path,
    code: CODE,
    log: () => {},
    maxClients: 1,
  });
  const holder = await connectFrom("127.0.9.5", full.addr.port);
  try {
    await new Promise((r) => setTimeout(r, 100));
    await assert.rejects(sendFile({ port: full.addr.port, path, code: CODE }), /busy/);
  } finally {
    holder.destroy();
  }
});

Deno.test("a coded client at a plain server: the server logs that a client sent it a code, the client is told", async () => {
  await using src = await tempDir();
  await using dst = await tempDir();
  const path = join(src.path, "c.bin");
  await randomFile(path, 1000);
  const lines: string[] = [];
  await using srv = await startFileServer({ port: 0, dir: dst.path, log: (l) => lines.push(l) });
  await assert.rejects(
    sendFile({ port: srv.addr.port, path, code: CODE }),
    /Server does not use a code/,
  );
  await waitFor(() => lines.length > 0);
  assert.match(lines.join("\n"), /a client sent a code to this server, which has none/i);
});
