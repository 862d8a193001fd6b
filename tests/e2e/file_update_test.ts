/**
 * `--update` as an attacker and as a newcomer meet it: the up-to-date
 * answer needs proof of the content (no oracle on stored files, no mode
 * change without it, wrong proofs throttled), the digest book is not
 * poisoned by two transfers finishing together, every stored file of a
 * folder of mixed sizes is recorded, and a cut or interrupted run resumes
 * by the same command with `--update`.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { randomFile, runTool, startRelay, tempDir, waitFor } from "../support/helpers.ts";
import { startFileServer } from "../../tcp/file_server.ts";
import {
  CHUNK_CHECK,
  CLIENT_LIMITS,
  CLIENT_LINK_LIMITS,
  encodeJson,
  encodeStream,
  MsgType,
} from "../../lib/core/file/messages.ts";
import { FrameDecoder, HEADER_LENGTH, writeHeader } from "../../lib/core/wire/frame.ts";
import { sendFile } from "../../tcp/file_client.ts";
import { DigestBook } from "../../lib/io/file_store/digest_book.ts";
import { ContainedRoot } from "../../lib/io/contained_root.ts";
import { resumeCommand } from "../../lib/cli/resume.ts";
import { writeAll } from "../../lib/io/streams.ts";
import { FILE_CLIENT_PERMS, toolCommand } from "../support/tool_process.ts";

const CLIENT = "tcp/file_client.ts";

function client(args: string[]) {
  return runTool(CLIENT, args, { permissions: FILE_CLIENT_PERMS });
}

/** One transfer over a connection of its own, spoken frame by frame. */
class RawTransfer {
  #conn: Deno.Conn;
  #decoder = new FrameDecoder(CLIENT_LIMITS);
  #buf = new Uint8Array(64 * 1024);

  private constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  static async open(port: number): Promise<RawTransfer> {
    return new RawTransfer(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  send(...frames: Uint8Array[]): Promise<void> {
    return (async () => {
      for (const f of frames) await writeAll(this.#conn, f);
    })();
  }

  /** The server's next frame, or null when it closed. */
  async next(): Promise<{ type: number; json: Record<string, unknown> } | null> {
    for (;;) {
      const f = this.#decoder.next();
      if (f) {
        let json = {};
        try {
          json = JSON.parse(new TextDecoder().decode(f.payload));
        } catch {
          // A NACK's payload is not JSON.
        }
        return { type: f.type, json };
      }
      const n = await this.#conn.read(this.#buf);
      if (n === null) return null;
      this.#decoder.push(this.#buf.subarray(0, n));
    }
  }

  close(): void {
    try {
      this.#conn.close();
    } catch {
      // Already closed.
    }
  }
}

function md5Hex(...parts: Uint8Array[]): string {
  const h = createHash("md5");
  for (const p of parts) h.update(p);
  return h.digest("hex");
}

function offerFrame(fields: object, size: number, chunkSize = 1024 * 1024): Uint8Array {
  return encodeJson(MsgType.OFFER, { ...fields, size, chunkSize, check: CHUNK_CHECK });
}

/** DATA frames for `data` in chunks of `chunkSize`, each with its prefix MD5, and the END. */
function dataFrames(data: Uint8Array, chunkSize = 1024 * 1024): Uint8Array[] {
  const h = createHash("md5");
  const out: Uint8Array[] = [];
  for (let i = 0, at = 0; at < data.length; i++, at += chunkSize) {
    const chunk = data.subarray(at, Math.min(data.length, at + chunkSize));
    h.update(chunk);
    const frame = new Uint8Array(HEADER_LENGTH + 20 + chunk.length);
    writeHeader(frame, MsgType.DATA, 20 + chunk.length);
    new DataView(frame.buffer).setUint32(HEADER_LENGTH, i);
    frame.set(h.copy().digest(), HEADER_LENGTH + 4);
    frame.set(chunk, HEADER_LENGTH + 20);
    out.push(frame);
  }
  out.push(encodeJson(MsgType.END, { md5: md5Hex(data) }));
  return out;
}

Deno.test("attack: an --update offer with a guessed MD5 gets no up-to-date answer and no mode change without proof; wrong proofs are throttled", async () => {
  await using src = await tempDir();
  await using dst = await tempDir();
  await using srv = await startFileServer({ port: 0, dir: dst.path, log: () => {} });
  const pin = new TextEncoder().encode("4821\n");
  await Deno.writeFile(join(src.path, "pin.txt"), pin);
  await sendFile({ port: srv.addr.port, path: join(src.path, "pin.txt") });
  const stored = join(dst.path, "received-pin.txt");
  await Deno.chmod(stored, 0o600); // kept private on the server
  assert.equal((await Deno.stat(stored)).mode! & 0o777, 0o600);
  const probe = async (proof?: (salt: string) => string) => {
    const t = await RawTransfer.open(srv.addr.port);
    try {
      // The guess is right: today's server said "up to date" for the MD5 alone.
      await t.send(offerFrame({ name: "pin.txt", update: md5Hex(pin), mode: 0o666 }, pin.length));
      const first = await t.next();
      assert.ok(first, "the server answers");
      assert.ok(
        first.type !== MsgType.DONE,
        `no answer from the MD5 alone (got ${JSON.stringify(first.json)})`,
      );
      if (first.type !== MsgType.CHALLENGE || !proof) return first;
      await t.send(encodeJson(MsgType.PROOF, { proof: proof(String(first.json.salt)) }));
      return await t.next();
    } finally {
      t.close();
    }
  };
  // Asked for a proof, one that does not match gets the file asked for, never "up to date".
  const first = await probe();
  assert.equal(first?.type, MsgType.CHALLENGE, "an update of a stored file asks for proof");
  const wrong = await probe(() => md5Hex(new TextEncoder().encode("0000\n")));
  assert.equal(wrong?.type, MsgType.ACCEPT, "a wrong proof: the file is to be sent");
  assert.equal((await Deno.stat(stored)).mode! & 0o777, 0o600, "no mode change unproven");
  // Guessing on: 40 more wrong guesses from this address, then the right one.
  for (let g = 1; g <= 40; g++) {
    const guess = new TextEncoder().encode(`${String(g).padStart(4, "0")}\n`);
    const r = await probe((salt) => md5Hex(hexBytes(salt), guess));
    assert.notEqual(r?.type, MsgType.DONE, `guess ${g} is wrong`);
  }
  const right = await probe((salt) => md5Hex(hexBytes(salt), pin));
  assert.notEqual(right?.type, MsgType.DONE, "after 41 misses the right guess is not confirmed");
  assert.equal((await Deno.stat(stored)).mode! & 0o777, 0o600, "no mode change");
  assert.deepEqual(await Deno.readFile(stored), pin);
});

function hexBytes(hex: string): Uint8Array {
  return new Uint8Array(hex.match(/../g)!.map((b) => parseInt(b, 16)));
}

Deno.test("attack: two transfers of one name finishing together do not poison the digest book: an honest --update is never told up to date for bytes the server does not hold", async () => {
  await using src = await tempDir();
  await using dst = await tempDir();
  await using srv = await startFileServer({ port: 0, dir: dst.path, log: () => {} });
  const size = 3 * 1024 * 1024 + 5;
  for (let round = 0; round < 24; round++) {
    const name = `doc${round}.bin`;
    const honest = await randomFile(join(src.path, name), size, 100 + round);
    const evil = await randomFile(join(src.path, "evil.bin"), size, 200 + round);
    const peers = await Promise.all([honest, evil].map(() => RawTransfer.open(srv.addr.port)));
    const frames = [honest, evil].map((d) => dataFrames(d));
    // Both offered as updates (replacing what is stored), both accepted,
    // all their data sent; their ENDs go together.
    for (const p of peers) await p.send(offerFrame({ name, update: md5Hex(evil) }, size));
    for (const p of peers) assert.equal((await p.next())?.type, MsgType.ACCEPT);
    for (const [i, p] of peers.entries()) await p.send(...frames[i].slice(0, -1));
    const order = round % 2 === 0 ? [0, 1] : [1, 0];
    await Promise.all(order.map((i) => peers[i].send(frames[i].at(-1)!)));
    for (const p of peers) assert.equal((await p.next())?.type, MsgType.DONE);
    for (const p of peers) p.close();
    const r = await sendFile({ port: srv.addr.port, path: join(src.path, name), update: true });
    const held = await Deno.readFile(join(dst.path, `received-${name}`));
    if (r.upToDate) {
      assert.equal(md5Hex(held), md5Hex(honest), `round ${round}: told up to date wrongly`);
    }
    assert.equal(md5Hex(held), md5Hex(honest), `round ${round}: the honest copy is stored`);
  }
});

Deno.test("tree --update after a plain send of a folder mixing large and packed small files in many folders: nothing is sent, all up to date, the first time", async () => {
  await using src = await tempDir();
  const root = join(src.path, "mixed");
  // As in /usr/share/doc: folders of small files (packed, a pack spanning
  // many folders), and now and then one that also holds files over 64 KiB.
  let n = 0;
  let files = 0;
  for (let g = 0; g < 4; g++) {
    const mixedFolder = join(root, `g${g}`, "a-mixed");
    await Deno.mkdir(mixedFolder, { recursive: true });
    await randomFile(join(mixedFolder, "a.txt"), 300, ++n);
    await randomFile(join(mixedFolder, "m.bin"), 3 * 1024 * 1024, ++n);
    await randomFile(join(mixedFolder, "n.bin"), 100_000, ++n);
    await randomFile(join(mixedFolder, "z.txt"), 200, ++n);
    files += 4;
    for (let d = 0; d < 70; d++) {
      const folder = join(root, `g${g}`, `b${String(d).padStart(2, "0")}`);
      await Deno.mkdir(folder);
      await randomFile(join(folder, "c.txt"), 100 + d, ++n);
      files++;
    }
  }
  for (let attempt = 0; attempt < 3; attempt++) {
    await using dst = await tempDir();
    await using srv = await startFileServer({ port: 0, dir: dst.path, log: () => {} });
    const first = await client(["--port", String(srv.addr.port), root]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, new RegExp(`^mixed: ${files} files `, "m"));
    const again = await client(["--port", String(srv.addr.port), "--update", root]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(
      again.stdout,
      new RegExp(`\\n0 bytes sent, ${files} files up to date\\n$`),
      `attempt ${attempt}: ${again.stdout.split("\n").slice(-3).join(" ")}`,
    );
  }
});

Deno.test("digest book: a page dropped from memory and written to again before its save keeps every entry", async () => {
  await using dir = await tempDir();
  const entry = (name: string) => {
    const info = Deno.lstatSync(join(dir.path, name));
    return {
      size: info.size,
      md5: "0".repeat(32),
      mtimeMs: info.mtime!.getTime(),
      ino: info.ino!,
      dev: info.dev!,
    };
  };
  for (let f = 0; f < 70; f++) {
    await Deno.mkdir(join(dir.path, `d${f}`));
    for (const n of ["a", "b"]) {
      await Deno.writeFile(join(dir.path, `d${f}`, n), new Uint8Array([f]));
    }
  }
  using root = ContainedRoot.open(dir.path);
  const book = new DigestBook(root);
  // d0's page is dropped (more than 64 folders follow) with its save still
  // queued; then d0 gets another entry, and is dropped and saved again.
  book.record("d0/a", entry("d0/a"));
  for (let f = 1; f < 70; f++) book.record(`d${f}/a`, entry(`d${f}/a`));
  book.record("d0/b", entry("d0/b"));
  for (let f = 1; f < 70; f++) book.record(`d${f}/b`, entry(`d${f}/b`));
  await book.flush();
  const again = new DigestBook(root);
  for (let f = 0; f < 70; f++) {
    for (const n of ["a", "b"]) assert.ok(again.lookup(`d${f}/${n}`, 1), `d${f}/${n} is recorded`);
  }
});

Deno.test("attack: the digest book's folder swapped for a link to outside DIR: its salt and pages are never written there, nor read from there", async () => {
  await using dir = await tempDir();
  await using outside = await tempDir();
  await Deno.writeTextFile(join(dir.path, "f"), "x");
  await Deno.mkdir(join(dir.path, ".partial"));
  await Deno.symlink(outside.path, join(dir.path, ".partial", "digests"));
  // A salt planted outside: a book that followed the link would take it.
  const planted = "0".repeat(32);
  await Deno.writeTextFile(join(outside.path, "salt"), planted);
  using root = ContainedRoot.open(dir.path);
  const book = new DigestBook(root);
  assert.notEqual(book.salt, planted);
  const info = Deno.lstatSync(join(dir.path, "f"));
  book.record("f", {
    size: 1,
    md5: "0".repeat(32),
    mtimeMs: info.mtime!.getTime(),
    ino: info.ino!,
    dev: info.dev!,
  });
  await book.flush();
  const names = [];
  for await (const e of Deno.readDir(outside.path)) names.push(e.name);
  assert.deepEqual(names, ["salt"], "nothing but the planted salt outside DIR");
  assert.equal(await Deno.readTextFile(join(outside.path, "salt")), planted);
});

/** Starts the client tool; resolves its output once it exits. */
function spawnClient(args: string[]) {
  const child = toolCommand(CLIENT, args, { permissions: FILE_CLIENT_PERMS, stderr: "piped" })
    .spawn();
  const output = child.output();
  return { child, output };
}

Deno.test("CLI: Ctrl-C prints the command that resumes; the same command with --update resumes, reporting the bytes actually sent", async () => {
  await using src = await tempDir();
  await using dst = await tempDir();
  await using srv = await startFileServer({ port: 0, dir: dst.path, log: () => {} });
  const path = join(src.path, "big.bin");
  const size = 24 * 1024 * 1024;
  const data = await randomFile(path, size, 5);
  let cut;
  let relayPort = 0;
  {
    // The relay holds the data after 8 MiB: the user presses Ctrl-C.
    await using relay = startRelay(srv.addr.port, { stallAfter: 8 * 1024 * 1024 });
    relayPort = relay.port;
    const run = spawnClient(["--port", String(relay.port), path]);
    await waitFor(() => {
      for (const e of Deno.readDirSync(join(dst.path, ".partial"))) {
        if (
          e.name.endsWith(".part") && Deno.statSync(join(dst.path, ".partial", e.name)).size > 0
        ) {
          return true;
        }
      }
      return false;
    }, 20_000);
    await new Promise((r) => setTimeout(r, 500));
    run.child.kill("SIGINT");
    cut = await run.output;
  }
  const stderr = new TextDecoder().decode(cut.stderr);
  assert.notEqual(cut.code, 0);
  const line = /^.*to resume.*--update.*$/m.exec(stderr)?.[0];
  assert.ok(line, `a line says how to resume:\n${stderr}`);
  assert.equal(
    line,
    `interrupted; to resume, run: deno task file-client --update --port ${relayPort} ${path}`,
  );
  await waitFor(() => srv.records.length === 1);
  const r = await client(["--port", String(srv.addr.port), "--update", path]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(await Deno.readFile(join(dst.path, "received-big.bin")), data);
  const sent = /^big\.bin: (\d+) bytes .*resumed from ([\d.]+ MiB)/m.exec(r.stdout);
  assert.ok(sent, r.stdout);
  assert.ok(Number(sent[1]) < size - 4 * 1024 * 1024, `only the rest is sent: ${r.stdout}`);
  assert.doesNotMatch(r.stdout, /\n24\.0 MiB sent/);
});

Deno.test("CLI: Ctrl-C after the last byte, before the confirmation: the same command with --update finds the file up to date and stores no second copy", async () => {
  await using src = await tempDir();
  await using dst = await tempDir();
  await using srv = await startFileServer({ port: 0, dir: dst.path, log: () => {} });
  const path = join(src.path, "whole.bin");
  await randomFile(path, 3 * 1024 * 1024, 6);
  const accept = encodeStream(0, encodeJson(MsgType.ACCEPT, { token: "0".repeat(32), held: [] }));
  {
    // The server's ACCEPT reaches the client; its DONE never does.
    await using relay = startRelay(srv.addr.port, {
      inspect: "toClient",
      limits: CLIENT_LINK_LIMITS,
      stallAfter: accept.length,
    });
    const run = spawnClient(["--port", String(relay.port), path]);
    await waitFor(() => srv.records.some((r) => r.storedAs === "received-whole.bin"), 20_000);
    run.child.kill("SIGINT");
    const out = await run.output;
    assert.notEqual(out.code, 0);
    assert.match(new TextDecoder().decode(out.stderr), /to resume.*--update/);
  }
  const r = await client(["--port", String(srv.addr.port), "--update", path]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^whole\.bin: up to date as received-whole\.bin/m);
  const names = [];
  for await (const e of Deno.readDir(dst.path)) names.push(e.name);
  assert.deepEqual(names.filter((n) => n.startsWith("received-")), ["received-whole.bin"]);
});

Deno.test("the resume command is the same command with --update, quoted for a shell", () => {
  assert.equal(
    resumeCommand("file-client", ["--port", "4545", "my file's.bin", "plain/a.txt"]),
    "deno task file-client --update --port 4545 'my file'\\''s.bin' plain/a.txt",
  );
  assert.equal(
    resumeCommand("file-client", ["--update", "dir"]),
    "deno task file-client --update dir",
  );
});
