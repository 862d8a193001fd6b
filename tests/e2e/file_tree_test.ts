/**
 * Folders through the file tools as users run them, and hostile folder
 * entries against the server: every file's MD5 and mode bits, empty
 * folders, links, `--update` over a tree, a client killed in the middle of
 * a tree, and paths that try to leave the server's directory.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { randomFile, runTool, tempDir, waitFor } from "../support/helpers.ts";
import { startFileServer } from "../../tcp/file_server.ts";
import {
  CHUNK_CHECK,
  CLIENT_LIMITS,
  CLIENT_LINK_LIMITS,
  decodeError,
  decodeStream,
  encodeJson,
  encodeStream,
  MAX_OPEN_STREAMS,
  MsgType,
  SERVER_LIMITS,
  SERVER_LINK_LIMITS,
} from "../../lib/core/file/messages.ts";
import { decodeEnd, decodeOffer } from "../../lib/core/file/decode_messages.ts";
import { concatBytes, FrameDecoder } from "../../lib/core/wire/frame.ts";
import { type EntryResult, sendEntries } from "../../tcp/file_client.ts";
import { checkSources, walkEntries } from "../../tcp/file_tree.ts";
import { encodePack } from "../../lib/core/file/pack.ts";
import { readChunks } from "../../lib/io/conn.ts";
import { writeAll } from "../../lib/io/streams.ts";
import {
  FILE_CLIENT_PERMS,
  FILE_SERVER_PERMS,
  startServerTool,
  toolCommand,
} from "../support/tool_process.ts";

const CLIENT = "tcp/file_client.ts";

function client(args: string[], env?: Record<string, string>) {
  return runTool(CLIENT, args, { permissions: FILE_CLIENT_PERMS, env });
}

async function md5Of(path: string): Promise<string> {
  return createHash("md5").update(await Deno.readFile(path)).digest("hex");
}

/** Every file below `dir` (relative path → MD5 and mode), and every folder. */
async function tree(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (at: string, rel: string) => {
    for await (const e of Deno.readDir(at)) {
      const path = join(at, e.name);
      const name = rel ? `${rel}/${e.name}` : e.name;
      const info = await Deno.lstat(path);
      if (info.isDirectory) {
        out.set(`${name}/`, "folder");
        await walk(path, name);
      } else if (info.isFile) {
        out.set(name, `${await md5Of(path)} ${(info.mode! & 0o777).toString(8)}`);
      } else out.set(name, "link");
    }
  };
  await walk(dir, "");
  return out;
}

/** A tree with nested and empty folders, unusual names, modes and a link. */
async function makeTree(root: string): Promise<void> {
  await Deno.mkdir(join(root, "a/b/c"), { recursive: true });
  await Deno.mkdir(join(root, "empty"));
  await Deno.mkdir(join(root, "a/also empty"));
  await randomFile(join(root, "top.bin"), 200_000, 1);
  await randomFile(join(root, "a/with space.txt"), 1_000, 2);
  await randomFile(join(root, "a/b/ünïcødé 名前.dat"), 70_000, 3);
  await randomFile(join(root, "a/b/c/-leading-dash"), 5, 4);
  await Deno.writeFile(join(root, "a/b/c/empty-file"), new Uint8Array(0));
  await randomFile(join(root, "run.sh"), 100, 5);
  await Deno.chmod(join(root, "run.sh"), 0o750);
  await Deno.chmod(join(root, "a/with space.txt"), 0o600);
  await Deno.symlink("top.bin", join(root, "link-to-top"));
}

Deno.test("tree: a folder arrives whole: nested and empty folders, odd names, modes; links skipped unless followed", async () => {
  await using src = await tempDir();
  await using dst = await tempDir();
  await using srv = await startFileServer({ port: 0, dir: dst.path, log: () => {} });
  const root = join(src.path, "photos");
  await makeTree(root);
  // Two names a case-insensitive file system would take for one: both are
  // sent, with a warning.
  await Deno.writeTextFile(join(root, "a/b/Case.txt"), "upper");
  await Deno.writeTextFile(join(root, "a/b/case.txt"), "lower");
  const r = await client(["--port", String(srv.addr.port), root]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /^skipped photos\/link-to-top: symbolic link, skipped \(--follow-links/m);
  assert.match(
    r.stderr,
    /^warning: photos\/a\/b\/Case\.txt and photos\/a\/b\/case\.txt differ only in case/m,
  );
  assert.match(
    r.stdout,
    /^photos: 8 files \(264\.8 KiB\) in [\d.]+ s, [\d.]+ [kMG]?B\/s, stored in received-photos; 2 empty folders\n$/,
  );
  const sent = await tree(root);
  sent.delete("link-to-top");
  assert.deepEqual(await tree(join(dst.path, "received-photos")), sent);
  // With --follow-links the link arrives as the file it points to; a
  // second send without --update goes to a folder of its own.
  const again = await client(["--port", String(srv.addr.port), "--follow-links", root]);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /stored in received-photos-1;/);
  assert.equal(
    await md5Of(join(dst.path, "received-photos-1/link-to-top")),
    await md5Of(join(root, "top.bin")),
  );
});

Deno.test("tree --update: an unchanged tree sends nothing; one changed file is all that is sent", async () => {
  await using src = await tempDir();
  await using dst = await tempDir();
  await using srv = await startFileServer({ port: 0, dir: dst.path, log: () => {} });
  const root = join(src.path, "docs");
  await makeTree(root);
  const run = () => client(["--port", String(srv.addr.port), "--update", root]);
  const first = await run();
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, /^docs: 6 files .* stored in received-docs; 2 empty folders$/m);
  const second = await run();
  assert.equal(second.code, 0, second.stderr);
  assert.match(second.stdout, /^docs: 0 files \(0 B\) .*; 2 empty folders, 6 up to date$/m);
  assert.match(second.stdout, /\n0 bytes sent, 6 files up to date\n$/);
  const changed = await randomFile(join(root, "a/b/ünïcødé 名前.dat"), 71_000, 9);
  // An unchanged file whose mode changed stays up to date and takes the new mode.
  await Deno.chmod(join(root, "run.sh"), 0o700);
  const third = await run();
  assert.equal(third.code, 0, third.stderr);
  assert.match(third.stdout, /^docs: 1 file \(69\.3 KiB\) .*, 5 up to date$/m);
  assert.equal((await Deno.stat(join(dst.path, "received-docs/run.sh"))).mode! & 0o777, 0o700);
  assert.match(third.stdout, /\n69\.3 KiB sent, 5 files up to date\n$/);
  assert.deepEqual(
    await Deno.readFile(join(dst.path, "received-docs/a/b/ünïcødé 名前.dat")),
    changed,
  );
  const names = [];
  for await (const e of Deno.readDir(dst.path)) names.push(e.name);
  assert.deepEqual(names.filter((n) => n.startsWith("received-")), ["received-docs"]);
});

Deno.test("tree: files sent in packs are recorded: --update after a plain send finds them all up to date", async () => {
  await using src = await tempDir();
  await using dst = await tempDir();
  await using srv = await startFileServer({ port: 0, dir: dst.path, log: () => {} });
  const root = join(src.path, "many");
  for (let i = 0; i < 3; i++) await Deno.mkdir(join(root, `d${i}`), { recursive: true });
  for (let i = 0; i < 300; i++) {
    await randomFile(join(root, `d${i % 3}`, `f${i}.bin`), 1 + (i * 37) % 3000, i);
  }
  const first = await client(["--port", String(srv.addr.port), root]);
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, /^many: 300 files .* stored in received-many$/m);
  assert.deepEqual(await tree(join(dst.path, "received-many")), await tree(root));
  const again = await client(["--port", String(srv.addr.port), "--update", root]);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /\n0 bytes sent, 300 files up to date\n$/);
  // Each file of a pack is reported with the MD5 of what the server stored: the file's.
  const results: EntryResult[] = [];
  await sendEntries(walkEntries(await checkSources([root])), {
    port: srv.addr.port,
    onResult: (r) => results.push(r),
  });
  assert.equal(results.length, 300);
  for (const r of results) {
    assert.ok(r.ok, String(!r.ok && r.error));
    const name = r.entry.parts!.join("/");
    assert.equal(r.result.md5, await md5Of(join(root, name)), name);
    assert.equal(r.result.storedAs, `received-many-1/${name}`);
  }
});

Deno.test("attack: a server that confirms a pack without its files' MD5s fails each of them", async () => {
  await using src = await tempDir();
  const root = join(src.path, "few");
  await Deno.mkdir(root);
  for (const name of ["a", "b", "c"]) await Deno.writeTextFile(join(root, name), name);
  // A server that answers every transfer's END with an ACCEPT and a DONE
  // that is right in all but the pack's MD5s.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serving = (async () => {
    const conn = await listener.accept();
    const link = new FrameDecoder(SERVER_LINK_LIMITS);
    const streams = new Map<number, { decoder: FrameDecoder; size: number }>();
    try {
      for await (const bytes of readChunks(conn)) {
        link.push(bytes);
        for (let f = link.next(); f; f = link.next()) {
          const { id, bytes: inner } = decodeStream(f.payload);
          if (!streams.has(id)) {
            streams.set(id, { decoder: new FrameDecoder(SERVER_LIMITS), size: 0 });
          }
          const s = streams.get(id)!;
          s.decoder.push(inner);
          for (let g = s.decoder.next(); g; g = s.decoder.next()) {
            if (g.type === MsgType.OFFER) s.size = decodeOffer(g.payload).size;
            if (g.type !== MsgType.END) continue;
            const accept = encodeJson(MsgType.ACCEPT, { token: "1".repeat(32), held: [] });
            const done = encodeJson(MsgType.DONE, {
              md5: decodeEnd(g.payload).md5,
              storedAs: "received-few",
              bytes: s.size,
            });
            await writeAll(conn, concatBytes([encodeStream(id, accept), encodeStream(id, done)]));
          }
        }
      }
    } finally {
      conn.close();
    }
  })();
  try {
    const port = (listener.addr as Deno.NetAddr).port;
    const r = await client(["--port", String(port), root]);
    assert.equal(r.code, 1, r.stdout);
    const lines = r.stderr.split("\n").filter((l) => l.startsWith("error:"));
    assert.deepEqual(lines, [
      "error: few/a: Server confirmed a pack of 3 files without each one's MD5",
      "error: 2 more failed, for the same reason",
    ]);
  } finally {
    listener.close();
    await serving.catch(() => {});
  }
});

Deno.test("tree: a client killed in the middle of a tree runs again with --update: finished files are skipped, the cut one resumes", async () => {
  await using src = await tempDir();
  await using dst = await tempDir();
  await using srv = await startFileServer({ port: 0, dir: dst.path, log: () => {} });
  const root = join(src.path, "set");
  await Deno.mkdir(root);
  for (let i = 0; i < 5; i++) await randomFile(join(root, `a${i}.bin`), 50_000, i + 1);
  await randomFile(join(root, "m-big.bin"), 48 * 1024 * 1024, 7);
  for (let i = 0; i < 5; i++) await randomFile(join(root, `z${i}.bin`), 50_000, i + 11);
  const child = toolCommand(CLIENT, ["--port", String(srv.addr.port), root], {
    permissions: FILE_CLIENT_PERMS,
    stderr: "null",
  }).spawn();
  // Killed once the big file is partly stored on the server.
  const partial = join(dst.path, ".partial");
  await waitFor(() => {
    for (const e of Deno.readDirSync(partial)) {
      if (e.name.endsWith(".part") && Deno.statSync(join(partial, e.name)).size > 4 << 20) {
        return true;
      }
    }
    return false;
  }, 20_000);
  child.kill("SIGKILL");
  await child.status;
  await waitFor(() => srv.records.some((r) => r.error && r.name === "set/m-big.bin"));
  const r = await client(["--port", String(srv.addr.port), "--update", root]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(
    r.stdout,
    /^set\/m-big\.bin: .*resumed from \S+ \S+ \((\d+) chunks already on server\)/m,
  );
  const resumed = Number(/resumed from \S+ \S+ \((\d+) chunks/.exec(r.stdout)![1]);
  assert.ok(resumed >= 64, `${resumed} chunks of 64 KiB were kept`);
  assert.match(r.stdout, /up to date/);
  assert.deepEqual(await tree(join(dst.path, "received-set")), await tree(root));
});

/** A raw client speaking the link protocol: sends frames, returns each stream's answers. */
async function rawLink(port: number, frames: Uint8Array[]) {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const sending = (async () => {
    for (const f of frames) await writeAll(conn, f);
    await conn.closeWrite();
  })().catch(() => {});
  const link = new FrameDecoder(CLIENT_LINK_LIMITS);
  const inner = new Map<number, FrameDecoder>();
  const answers = new Map<number, { type: number; text: string }[]>();
  let refused: string | undefined;
  try {
    for await (const bytes of readChunks(conn)) {
      link.push(bytes);
      for (let f = link.next(); f; f = link.next()) {
        if (f.type === MsgType.ERROR) {
          refused = decodeError(f.payload);
          continue;
        }
        const { id, bytes: b } = decodeStream(f.payload);
        if (!inner.has(id)) inner.set(id, new FrameDecoder(CLIENT_LIMITS));
        const d = inner.get(id)!;
        d.push(b);
        for (let g = d.next(); g; g = d.next()) {
          const list = answers.get(id) ?? [];
          list.push({ type: g.type, text: new TextDecoder().decode(g.payload) });
          answers.set(id, list);
          if (g.type === MsgType.DONE || g.type === MsgType.ERROR) inner.delete(id);
        }
      }
    }
  } finally {
    conn.close();
    await sending;
  }
  return { answers, refused };
}

/** The frames of one whole folder entry (a small file) on stream `id`. */
function entryFrames(id: number, name: string, path: string[], data: Uint8Array): Uint8Array[] {
  const md5 = createHash("md5").update(data).digest();
  // An update, so that the folder already in DIR (with what was planted in it) is used.
  return oneChunkFrames(id, { name, path, update: md5.toString("hex") }, data);
}

/** The frames of a transfer of one chunk (at most 1 MiB) on stream `id`. */
function oneChunkFrames(id: number, fields: object, data: Uint8Array): Uint8Array[] {
  const md5 = createHash("md5").update(data).digest();
  const offer = { ...fields, size: data.length, chunkSize: 1024 * 1024, check: CHUNK_CHECK };
  const chunk = new Uint8Array(8 + 20 + data.length);
  const v = new DataView(chunk.buffer);
  v.setUint16(0, 0x534b);
  v.setUint8(2, 1);
  v.setUint8(3, MsgType.DATA);
  v.setUint32(4, 20 + data.length);
  v.setUint32(8, 0);
  chunk.set(md5, 12);
  chunk.set(data, 28);
  const frames = [encodeJson(MsgType.OFFER, offer)];
  if (data.length > 0) frames.push(chunk);
  frames.push(encodeJson(MsgType.END, { md5: md5.toString("hex") }));
  return frames.map((f) => encodeStream(id, f));
}

Deno.test("attack: hostile folder entries are refused one by one; the good ones on the same connection arrive", async () => {
  await using dst = await tempDir();
  await using outside = await tempDir();
  await using srv = await startFileServer({ port: 0, dir: dst.path, log: () => {} });
  // A link planted in the destination, pointing out of it.
  await Deno.mkdir(join(dst.path, "received-t"));
  await Deno.symlink(outside.path, join(dst.path, "received-t/planted"));
  const hostile: [string[], RegExp][] = [
    [["..", "escape"], /Path has a "\.\." component/],
    [["a", "..", "..", "x"], /Path has a "\.\." component/],
    [["/etc/passwd"], /holds a slash/],
    [["a\\..\\..\\x"], /holds a slash/],
    [["."], /Path has a "\." component/],
    [["nul\u0000byte"], /control character/],
    [["esc\u001b[31m"], /control character/],
    [["x".repeat(256)], /is 256 bytes, over the 255/],
    [[], /Path is empty|not a list/],
    [["planted", "x"], /goes through received-t\/planted, a symbolic link on the server/],
    [["planted"], /planted/], // a file over the link itself replaces the link, never follows it
  ];
  const frames: Uint8Array[] = [];
  hostile.forEach(([path], i) =>
    frames.push(...entryFrames(i, "t", path, new TextEncoder().encode("evil")))
  );
  const good = new TextEncoder().encode("good data");
  frames.push(...entryFrames(hostile.length, "t", ["sub", "ok.txt"], good));
  const { answers, refused } = await rawLink(srv.addr.port, frames);
  assert.equal(refused, undefined);
  hostile.forEach(([path, why], i) => {
    const a = answers.get(i) ?? [];
    if (path.length === 1 && path[0] === "planted") {
      // Stored over the link: the link is gone, nothing went outside.
      assert.equal(a.at(-1)?.type, MsgType.DONE, JSON.stringify(a));
      return;
    }
    assert.equal(a.at(-1)?.type, MsgType.ERROR, `${JSON.stringify(path)}: ${JSON.stringify(a)}`);
    assert.match(a.at(-1)!.text, why);
  });
  assert.equal(answers.get(hostile.length)?.at(-1)?.type, MsgType.DONE);
  assert.deepEqual(await Deno.readFile(join(dst.path, "received-t/sub/ok.txt")), good);
  const left = [];
  for await (const e of Deno.readDir(outside.path)) left.push(e.name);
  assert.deepEqual(left, [], "nothing was written outside DIR");
  assert.equal((await Deno.lstat(join(dst.path, "received-t/planted"))).isFile, true);
  // Nothing of the refused entries was kept anywhere in DIR.
  const all = await tree(dst.path);
  assert.deepEqual([...all.keys()].filter((k) => /escape|passwd|byte|esc/.test(k)), []);
});

/** Peak resident memory of a process, from /proc, in MiB. */
async function peakMiB(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]) / 1024;
}

Deno.test("attack: 100,000 tiny entries on one connection: the server's memory stays bounded and it goes on", async () => {
  await using dst = await tempDir();
  // The server as users run it, so that its own peak memory can be read.
  await using srv = await startServerTool(
    "tcp/file_server.ts",
    ["--port", "0", "--dir", dst.path],
    {
      permissions: FILE_SERVER_PERMS,
    },
  );
  const frames: Uint8Array[] = [];
  const N = 100_000;
  for (let i = 0; i < N; i++) {
    frames.push(encodeStream(
      i,
      encodeJson(MsgType.OFFER, {
        name: "many",
        path: ["..", String(i)],
        size: 1,
        chunkSize: 1024,
        check: CHUNK_CHECK,
      }),
    ));
  }
  frames.push(...entryFrames(N, "many", ["last.txt"], new Uint8Array([42])));
  const { answers } = await rawLink(srv.port, frames);
  assert.equal(answers.size, N + 1);
  assert.match(answers.get(0)!.at(-1)!.text, /"\.\." component/);
  assert.equal(answers.get(N)?.at(-1)?.type, MsgType.DONE);
  assert.deepEqual(
    await Deno.readFile(join(dst.path, "received-many/last.txt")),
    new Uint8Array([42]),
  );
  const peak = await peakMiB(srv.child.pid);
  assert.ok(peak < 200, `the server's peak memory was ${peak.toFixed(0)} MiB`);
  // More transfers open at once than the window allows: the connection is refused.
  const flood = Array.from({ length: MAX_OPEN_STREAMS + 1 }, (_, i) =>
    encodeStream(
      i,
      encodeJson(MsgType.OFFER, {
        name: "f",
        path: [`x${i}`],
        size: 10,
        chunkSize: 1024,
        check: CHUNK_CHECK,
      }),
    ));
  const r = await rawLink(srv.port, flood);
  assert.match(r.refused ?? "", new RegExp(`more than ${MAX_OPEN_STREAMS} transfers at once`));
});

Deno.test("tree --fsync: a server that syncs each file before confirming stores small and large files intact", async () => {
  await using src = await tempDir();
  await using dst = await tempDir();
  await using srv = await startFileServer({ port: 0, dir: dst.path, log: () => {}, fsync: true });
  const root = join(src.path, "synced");
  await makeTree(root);
  await randomFile(join(root, "large.bin"), 3 * 1024 * 1024 + 5, 8);
  const r = await client(["--port", String(srv.addr.port), root]);
  assert.equal(r.code, 0, r.stderr);
  const sent = await tree(root);
  sent.delete("link-to-top");
  assert.deepEqual(await tree(join(dst.path, "received-synced")), sent);
});

Deno.test("attack: a pack's hostile files fail one by one in its DONE; its good files arrive; nothing lands outside", async () => {
  await using dst = await tempDir();
  await using outside = await tempDir();
  const logged: string[] = [];
  await using srv = await startFileServer({
    port: 0,
    dir: dst.path,
    log: (line) => logged.push(line),
  });
  const good = new TextEncoder().encode("good");
  const pack = encodePack([
    { path: ["..", "escape"], data: good },
    { path: ["ok", "one.txt"], mode: 0o640, data: good },
    { path: ["x".repeat(300)], data: good },
    { path: ["ok", "two.txt"], data: new Uint8Array(0) },
    { path: ["nul\u0000"], data: good },
    // Its folders are made for the next file; the file itself then cannot
    // take a folder's place.
    { path: ["ok", "sub", "inner.txt"], data: good },
    { path: ["ok", "sub"], data: good },
  ]);
  const { answers } = await rawLink(
    srv.addr.port,
    oneChunkFrames(0, { name: "p", kind: "pack" }, pack),
  );
  const done = answers.get(0)!.at(-1)!;
  assert.equal(done.type, MsgType.DONE, done.text);
  const failed = JSON.parse(done.text).failed as [number, string][];
  assert.deepEqual(failed.map(([i]) => i), [0, 2, 4, 6]);
  assert.match(failed[0][1], /"\.\." component/);
  assert.match(failed[1][1], /300 bytes/);
  assert.equal(failed[3][1], "received-p/ok/sub is a folder on the server");
  assert.deepEqual(await Deno.readFile(join(dst.path, "received-p/ok/sub/inner.txt")), good);
  assert.equal(logged.filter((l) => l.includes("p/ok/sub: ")).length, 1, logged.join("\n"));
  assert.deepEqual(await Deno.readFile(join(dst.path, "received-p/ok/one.txt")), good);
  assert.equal((await Deno.stat(join(dst.path, "received-p/ok/one.txt"))).mode! & 0o777, 0o640);
  assert.equal((await Deno.readFile(join(dst.path, "received-p/ok/two.txt"))).length, 0);
  assert.deepEqual([...(await tree(dst.path)).keys()].filter((k) => /escape|nul/.test(k)), []);
  const left = [];
  for await (const e of Deno.readDir(outside.path)) left.push(e.name);
  assert.deepEqual(left, []);
  // A pack whose manifest lies about its sizes fails whole: nothing is stored from it.
  const lying = encodePack([{ path: ["liar.txt"], data: good }]);
  new DataView(lying.buffer).setUint32(0, 2);
  const r = await rawLink(srv.addr.port, oneChunkFrames(0, { name: "q", kind: "pack" }, lying));
  assert.equal(r.answers.get(0)!.at(-1)!.type, MsgType.ERROR);
  assert.match(r.answers.get(0)!.at(-1)!.text, /manifest/);
  await assert.rejects(Deno.stat(join(dst.path, "received-q/liar.txt")), Deno.errors.NotFound);
});
