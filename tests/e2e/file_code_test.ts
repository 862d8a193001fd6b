/**
 * File-TCP with a shared code, through the real server and client: the
 * right code, a wrong one (nothing written), none, one from the
 * environment, tampering and a known plaintext on the wire, guesses
 * throttled, and a server beyond loopback that draws its own code.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { sendFile } from "../../tcp/file_client.ts";
import { startFileServer } from "../../tcp/file_server.ts";
import { SecureMsg } from "../../lib/core/crypto/secure_stream.ts";
import {
  contains,
  oneLineError,
  randomFile,
  runTool,
  startRelay,
  tap,
  tempDir,
  waitFor,
} from "../support/helpers.ts";
import {
  FILE_CLIENT_PERMS,
  FILE_SERVER_PERMS,
  REPO_ROOT,
  startServerTool,
} from "../support/tool_process.ts";

const CODE = "bamol-tisek-ruvan";
const PERMS = FILE_SERVER_PERMS;

/** A file whose every 4 KiB holds a marker that must never be seen on the wire. */
const MARKER = new TextEncoder().encode("PLAINTEXT-MARKER-7f3a");
async function markedFile(path: string, size: number): Promise<Uint8Array> {
  const data = new Uint8Array(size).map((_, i) => (i * 31 + (i >> 9)) & 255);
  for (let at = 0; at + MARKER.length < size; at += 4096) data.set(MARKER, at);
  await Deno.writeFile(path, data);
  return data;
}

async function entries(dir: string): Promise<string[]> {
  const out = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
}

Deno.test("code: the right code sends the file sealed; the wire never shows its plaintext", async () => {
  await using src = await tempDir();
  await using dst = await tempDir();
  const path = join(src.path, "secret.bin");
  const data = await markedFile(path, 600_000);
  await using srv = await startFileServer({ port: 0, dir: dst.path, code: CODE, log: () => {} });
  const wire = tap(srv.addr.port);
  const r = await sendFile({ port: wire.port, path, code: "Bamol Tisek RUVAN" });
  await wire.close();
  assert.equal(r.storedAs, "received-secret.bin");
  assert.deepEqual(await Deno.readFile(join(dst.path, "received-secret.bin")), data);
  const seen = wire.toServer();
  assert.ok(seen.length > data.length, "the whole file crossed the tap");
  assert.equal(contains(seen, MARKER), false, "the marker never crossed in clear");
  assert.equal(contains(seen, new TextEncoder().encode("secret.bin")), false, "nor the name");
  // The same file without a code does show it: the tap sees what is sent.
  await using plain = await startFileServer({ port: 0, dir: dst.path, log: () => {} });
  const clear = tap(plain.addr.port);
  await sendFile({ port: clear.port, path });
  await clear.close();
  assert.ok(contains(clear.toServer(), MARKER));
});

Deno.test("code: a wrong code or none ends it in one line on both sides; nothing is written", async () => {
  await using src = await tempDir();
  await using dst = await tempDir();
  const path = join(src.path, "f.bin");
  await markedFile(path, 100_000);
  await using srv = await startFileServer({ port: 0, dir: dst.path, code: CODE, log: () => {} });
  await assert.rejects(
    sendFile({ port: srv.addr.port, path, code: "bamol-tisek-ruvaz" }),
    /^Error: The code does not match$|The code does not match/,
  );
  await assert.rejects(sendFile({ port: srv.addr.port, path }), /This server needs a code/);
  await waitFor(() => srv.records.length === 2);
  assert.equal(srv.records[0].error, "The code does not match");
  assert.deepEqual(await entries(dst.path), [".partial"]);
  assert.deepEqual(await entries(join(dst.path, ".partial")), []);
  // A coded client at a plain server is told so.
  await using plain = await startFileServer({ port: 0, dir: dst.path, log: () => {} });
  await assert.rejects(
    sendFile({ port: plain.addr.port, path, code: CODE }),
    /Server does not use a code/,
  );
});

Deno.test("code: a frame changed on the way is reported as tampering, not an MD5 failure", async () => {
  await using src = await tempDir();
  await using dst = await tempDir();
  const path = join(src.path, "t.bin");
  await markedFile(path, 400_000);
  await using srv = await startFileServer({ port: 0, dir: dst.path, code: CODE, log: () => {} });
  let sealed = 0;
  await using relay = startRelay(srv.addr.port, {
    inspect: "toServer",
    limits: {
      maxPayload: {
        [SecureMsg.PAKE]: 65,
        [SecureMsg.CONFIRM]: 32,
        [SecureMsg.SEALED]: 1 << 20,
        [SecureMsg.REFUSED]: 1024,
      },
    },
    // Flip a byte in the fourth sealed frame (a DATA chunk).
    corrupt: (type) => type === SecureMsg.SEALED && ++sealed === 4 ? 100 : null,
  });
  const err = await sendFile({ port: relay.port, path, code: CODE }).catch((e) => e);
  assert.match(String(err), /failed its authentication: tampered with on the way/);
  await waitFor(() => srv.records.length === 1);
  assert.match(srv.records[0].error!, /A frame from the client failed its authentication/);
});

Deno.test("code: wrong guesses from one address are throttled after three", async () => {
  await using src = await tempDir();
  await using dst = await tempDir();
  const path = join(src.path, "g.bin");
  await markedFile(path, 10_000);
  await using srv = await startFileServer({ port: 0, dir: dst.path, code: CODE, log: () => {} });
  for (let i = 0; i < 3; i++) {
    await assert.rejects(
      sendFile({ port: srv.addr.port, path, code: `wrong-guess-${i}` }),
      /The code does not match/,
    );
  }
  // Even the right code waits now: the address is held for seconds.
  await assert.rejects(
    sendFile({ port: srv.addr.port, path, code: CODE }),
    /Too many wrong codes from your address; try again in \d+ s/,
  );
});

Deno.test("code CLI: from SOCKETS_CODE; beyond loopback a server draws and prints one", async () => {
  await using src = await tempDir();
  await using dst = await tempDir();
  const path = join(src.path, "e.bin");
  const data = await markedFile(path, 50_000);
  await using srv = await startFileServer({ port: 0, dir: dst.path, code: CODE, log: () => {} });
  const r = await runTool("tcp/file_client.ts", ["--port", String(srv.addr.port), path], {
    permissions: PERMS,
    env: { SOCKETS_CODE: CODE },
  });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(await Deno.readFile(join(dst.path, "received-e.bin")), data);
  // A wrong code is one line and a non-zero exit.
  const wrong = await runTool("tcp/file_client.ts", ["--port", String(srv.addr.port), path], {
    permissions: PERMS,
    env: { SOCKETS_CODE: "not-the-code" },
  });
  assert.equal(oneLineError(wrong), "error: The code does not match");
  // --code on the command line works, with a warning about the process list.
  const flagged = await runTool(
    "tcp/file_client.ts",
    ["--port", String(srv.addr.port), "--code", CODE, path],
    { permissions: PERMS },
  );
  assert.equal(flagged.code, 0, flagged.stderr);
  assert.match(flagged.stderr, /warning: a code given with --code can be seen by other users/);
  // Listening on every address without a code: the server draws one.
  const open = await startServerTool(
    "tcp/file_server.ts",
    ["--host", "0.0.0.0", "--port", "0", "--dir", dst.path],
    { permissions: PERMS },
  );
  try {
    const code = /code: ([a-z]{5}-[a-z]{5}-[a-z]{5})/.exec(open.output())?.[1];
    assert.ok(code, open.output());
    assert.match(open.output(), /clients need the code/);
    const ok = await runTool("tcp/file_client.ts", ["--port", String(open.port), path], {
      permissions: PERMS,
      env: { SOCKETS_CODE: code },
    });
    assert.equal(ok.code, 0, ok.stderr);
  } finally {
    await open.stop();
  }
});

Deno.test("code: a client on a terminal that meets a server needing a code asks for it once", async () => {
  await using src = await tempDir();
  await using dst = await tempDir();
  await using srv = await startFileServer({ dir: dst.path, port: 0, code: CODE });
  const path = join(src.path, "asked.bin");
  const data = await randomFile(path, 70_000, 3);
  // `script` gives the client a terminal; the code is typed into it.
  const client = [
    Deno.execPath(),
    "run",
    ...FILE_CLIENT_PERMS,
    join(REPO_ROOT, "tcp/file_client.ts"),
    "--port",
    String(srv.addr.port),
    path,
  ].map((a) => `'${a}'`).join(" ");
  const child = new Deno.Command("script", {
    args: ["-qec", client, "/dev/null"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: { SOCKETS_CODE: "" },
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(`${CODE}\n`));
  await writer.close();
  const out = await child.output();
  const text = new TextDecoder().decode(out.stdout);
  assert.equal(out.code, 0, text);
  assert.match(text, /This server needs a code\. Code:/);
  assert.match(text, /stored as received-asked\.bin/);
  assert.deepEqual(await Deno.readFile(join(dst.path, "received-asked.bin")), data);
});
