/**
 * The file tools as users run them: subprocesses with the tasks' permissions,
 * checking exit codes and one-line errors.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  freePort,
  oneLineError,
  randomFile,
  ROOT,
  runTool,
  startRelay,
  tempDir,
  waitFor,
} from "../support/helpers.ts";
import { KEPT_FAILURES, startFileServer } from "../../tcp/file_server.ts";
import { FILE_CLIENT_PERMS, FILE_SERVER_PERMS, startServerTool } from "../support/tool_process.ts";

const SERVER = "tcp/file_server.ts";
const CLIENT = "tcp/file_client.ts";
// The same permissions as the deno.json tasks.
const isRoot = Deno.uid() === 0;

function client(args: string[], env?: Record<string, string>) {
  return runTool(CLIENT, args, { permissions: FILE_CLIENT_PERMS, env });
}

Deno.test("CLI: the client sends a file given relative to INIT_CWD; SIGTERM stops the server", async () => {
  await using src = await tempDir();
  await using dst = await tempDir();
  const data = await randomFile(join(src.path, "movie.mp4"), 100_000);
  const srv = await startServerTool(SERVER, ["--port", "0", "--dir", dst.path], {
    permissions: FILE_SERVER_PERMS,
  });
  assert.match(srv.output(), /listening on 127\.0\.0\.1:\d+/);
  const r = await client(["--port", String(srv.port), "movie.mp4"], { INIT_CWD: src.path });
  assert.equal(r.code, 0, r.stderr);
  assert.match(
    r.stdout,
    /^movie\.mp4: 100000 bytes \(97\.7 KiB\) in [\d.]+ s, [\d.]+ MB\/s, MD5 [0-9a-f]{32}, stored as received-movie\.mp4\n$/,
  );
  // Not a terminal: progress comes as plain lines, if at all, never with \r.
  assert.equal(r.stderr.includes("\r"), false);
  assert.deepEqual(await Deno.readFile(join(dst.path, "received-movie.mp4")), data);
  assert.match(await srv.stop(), /stopping: partial transfers are kept for resume/);
  assert.equal((await srv.child.status).code, 0);
});

Deno.test("CLI: the client sends chamber.mp4 by default", async () => {
  await using dst = await tempDir();
  await using srv = await startFileServer({ port: 0, dir: dst.path, log: () => {} });
  const r = await client(["--port", String(srv.addr.port)]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(
    await Deno.readFile(join(dst.path, "received-chamber.mp4")),
    await Deno.readFile(join(ROOT, "chamber.mp4")),
  );
});

Deno.test("CLI: missing file, directory and bad flags give one-line errors", async () => {
  await using src = await tempDir();
  const port = String(freePort());
  assert.equal(
    oneLineError(await client(["--port", port, join(src.path, "nope.mp4")])),
    `error: File ${join(src.path, "nope.mp4")} does not exist`,
  );
  assert.equal(
    oneLineError(await client(["--port", port, "/dev/null"])),
    `error: /dev/null is not a regular file or a folder`,
  );
  const bad = await client(["--port", "http"]);
  assert.equal(bad.code, 2);
  assert.match(oneLineError(bad), /Port "http" is not a number/);
  const unknown = await client(["--colour"]);
  assert.equal(unknown.code, 2);
  assert.match(oneLineError(unknown), /Unknown option '--colour'.*Try --help/);
});

Deno.test({
  name: "CLI: an unreadable file gives a one-line error",
  ignore: isRoot, // root reads any file; run as a normal user to cover this
  fn: async () => {
    await using src = await tempDir();
    const path = join(src.path, "secret");
    await Deno.writeTextFile(path, "x");
    await Deno.chmod(path, 0o000);
    assert.match(
      oneLineError(await client(["--port", "1", path])),
      /Cannot read .*permission denied/,
    );
  },
});

Deno.test("CLI: connection refused and unknown host", async () => {
  const port = String(freePort());
  assert.equal(
    oneLineError(await client(["--port", port])),
    `error: Could not connect to 127.0.0.1:${port}: connection refused (is the server running?)`,
  );
  assert.equal(
    oneLineError(await client(["--host", "no-such-host.invalid", "--port", port])),
    `error: Could not connect to no-such-host.invalid:${port}: unknown host`,
  );
});

Deno.test("CLI: port in use, bad DIR and a file over --max-size", async () => {
  await using dst = await tempDir();
  const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = String((busy.addr as Deno.NetAddr).port);
  try {
    const srv = (args: string[]) =>
      runTool(SERVER, ["--port", port, ...args], { permissions: FILE_SERVER_PERMS });
    assert.equal(
      oneLineError(await srv(["--dir", dst.path])),
      `error: Port ${port} on 127.0.0.1 is already in use`,
    );
    assert.equal(
      oneLineError(await srv(["--dir", join(dst.path, "missing")])),
      `error: Directory ${join(dst.path, "missing")} does not exist`,
    );
    assert.equal(
      oneLineError(await srv(["--dir", join(ROOT, "chamber.mp4")])),
      `error: ${join(ROOT, "chamber.mp4")} is not a directory`,
    );
    assert.match(
      oneLineError(await srv(["--max-size", "lots"])),
      /--max-size "lots" is not a size/,
    );
  } finally {
    busy.close();
  }
  await using limited = await startFileServer({
    port: 0,
    dir: dst.path,
    maxSize: 1024,
    log: () => {},
  });
  assert.equal(
    oneLineError(await client(["--port", String(limited.addr.port)])),
    "error: Server refused chamber.mp4: File is 2.3 MiB, over the server's limit of 1.0 KiB",
  );
});

/** Mounts a tmpfs for a test (root only), unmounted when disposed. */
async function tmpfs(dir: string, options: string) {
  await Deno.mkdir(dir, { recursive: true });
  const mount = await new Deno.Command("mount", {
    args: ["-t", "tmpfs", "-o", options, "tmpfs", dir],
  }).output();
  assert.equal(mount.code, 0, new TextDecoder().decode(mount.stderr));
  return {
    async [Symbol.asyncDispose]() {
      await new Deno.Command("umount", { args: [dir] }).output();
    },
  };
}

Deno.test("CLI: a directory the server cannot write to is refused at start", async () => {
  await using dst = await tempDir();
  const ro = join(dst.path, "ro");
  // Root writes through file modes, so as root a read-only mount stands in.
  await using _mount = isRoot ? await tmpfs(ro, "ro,size=64k") : null;
  if (!isRoot) {
    await Deno.mkdir(ro);
    await Deno.chmod(ro, 0o555);
  }
  const r = await runTool(SERVER, ["--port", "0", "--dir", ro], { permissions: FILE_SERVER_PERMS });
  assert.match(oneLineError(r), new RegExp(`^error: Directory ${ro} is not writable`));
});

Deno.test({
  name: "CLI: a full disk fails the transfer with a clear error and keeps nothing half-written",
  ignore: !isRoot, // mounting a tiny tmpfs needs root (CI runs as root)
  fn: async () => {
    await using dst = await tempDir();
    const mnt = join(dst.path, "tiny");
    await using _mount = await tmpfs(mnt, "size=256k");
    await using srv = await startFileServer({ port: 0, dir: mnt, log: () => {} });
    const r = await client(["--port", String(srv.addr.port)]);
    assert.match(
      oneLineError(r),
      /Server could not store the data: no space left on the device; to resume, run again with --resume [0-9a-f]{32}$/,
    );
    const names = [];
    for await (const e of Deno.readDir(mnt)) names.push(e.name);
    assert.deepEqual(names, [".partial"]);
  },
});

Deno.test({
  name:
    "CLI: a full disk fails a folder's files with one error line and a count; what is stored is whole",
  ignore: !isRoot, // mounting a tiny tmpfs needs root (CI runs as root)
  fn: async () => {
    await using src = await tempDir();
    await using dst = await tempDir();
    const mnt = join(dst.path, "tiny");
    await using _mount = await tmpfs(mnt, "size=256k");
    const logged: string[] = [];
    await using srv = await startFileServer({ port: 0, dir: mnt, log: (l) => logged.push(l) });
    const root = join(src.path, "many");
    await Deno.mkdir(root);
    for (let i = 0; i < 300; i++) await randomFile(join(root, `f${i}.bin`), 3000, i);
    const r = await client(["--port", String(srv.addr.port), root]);
    assert.equal(r.code, 1, r.stdout);
    const lines = r.stderr.trim().split("\n");
    assert.equal(lines.length, 2, r.stderr);
    assert.match(lines[0], /^error: .*many\/f\d+\.bin: Server could not store the file/);
    const more = Number(/^error: (\d+) more failed, for the same reason$/.exec(lines[1])?.[1]);
    // Every file the server kept is whole; the others are counted, each logged.
    const stored = [];
    for await (const e of Deno.readDir(join(mnt, "received-many"))) stored.push(e.name);
    assert.ok(stored.length > 0 && stored.length < 300, `${stored.length} stored`);
    assert.equal(stored.length + 1 + more, 300, r.stderr);
    for (const name of stored) {
      assert.deepEqual(
        await Deno.readFile(join(mnt, "received-many", name)),
        await Deno.readFile(join(root, name)),
      );
    }
    assert.equal(logged.filter((l) => /no space left/.test(l)).length, 300 - stored.length);
    assert.ok(srv.records.every((rec) => (rec.failures?.length ?? 0) <= KEPT_FAILURES));
    const staged = [];
    for await (const e of Deno.readDir(join(mnt, ".partial"))) staged.push(e.name);
    assert.deepEqual(staged.filter((n) => n.endsWith(".tmp")), [], "no temporary file is left");
  },
});

Deno.test("CLI: a cut transfer names its token in one line, and --resume with it sends only the rest", async () => {
  await using src = await tempDir();
  await using dst = await tempDir();
  await using srv = await startFileServer({ port: 0, dir: dst.path, log: () => {} });
  const path = join(src.path, "big.bin");
  const data = await randomFile(path, 2 * 1024 * 1024, 12);
  let cut: Awaited<ReturnType<typeof client>>;
  {
    await using relay = startRelay(srv.addr.port, { cutAfter: 1024 * 1024 });
    cut = await client(["--port", String(relay.port), path]);
  }
  const line = oneLineError(cut);
  const token = /run again with --resume ([0-9a-f]{32})$/.exec(line)?.[1];
  assert.ok(token, line);
  await waitFor(() => srv.records.length === 1);
  const r = await client(["--port", String(srv.addr.port), "--resume", token, path]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /resumed from \S+ \S+ \((\d+) chunks already on server\)/);
  assert.ok(Number(/resumed from \S+ \S+ \((\d+)/.exec(r.stdout)![1]) >= 12, r.stdout);
  assert.deepEqual(await Deno.readFile(join(dst.path, "received-big.bin")), data);
  // A token that is not one, or one for several files, is a usage error.
  assert.match(
    oneLineError(await client(["--port", String(srv.addr.port), "--resume", "x", path])),
    /^error: --resume "x" is not a token this tool printed$/,
  );
  assert.match(
    oneLineError(await client(["--port", "1", "--resume", token, path, path])),
    /^error: --resume resumes one file; name just that FILE$/,
  );
});

Deno.test("CLI --update: an unchanged file is not sent again; a changed one replaces the stored copy", async () => {
  await using src = await tempDir();
  await using dst = await tempDir();
  const a = join(src.path, "a.bin");
  const b = join(src.path, "b.bin");
  const aData = await randomFile(a, 300_000, 1);
  await randomFile(b, 70_000, 2);
  await using srv = await startServerTool(SERVER, ["--port", "0", "--dir", dst.path], {
    permissions: FILE_SERVER_PERMS,
  });
  const run = () => client(["--port", String(srv.port), "--update", a, b]);
  const first = await run();
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, /stored as received-a\.bin/);
  assert.match(first.stdout, /\n361\.3 KiB sent, 0 files up to date\n$/);
  const storedAt = (await Deno.stat(join(dst.path, "received-a.bin"))).mtime!.getTime();
  // Again, nothing changed: nothing is sent.
  const second = await run();
  assert.equal(second.code, 0, second.stderr);
  assert.match(
    second.stdout,
    /^a\.bin: up to date as received-a\.bin \(293\.0 KiB, MD5 [0-9a-f]{32}\), 0 bytes sent$/m,
  );
  assert.match(second.stdout, /^b\.bin: up to date as received-b\.bin/m);
  assert.match(second.stdout, /\n0 bytes sent, 2 files up to date\n$/);
  assert.equal((await Deno.stat(join(dst.path, "received-a.bin"))).mtime!.getTime(), storedAt);
  await waitFor(() => /received-b\.bin is up to date/.test(srv.output()));
  // b changes: only b is sent, and it replaces the stored copy (no received-b-1.bin).
  const bNew = await randomFile(b, 80_000, 3);
  const third = await run();
  assert.equal(third.code, 0, third.stderr);
  assert.match(third.stdout, /^a\.bin: up to date/m);
  assert.match(third.stdout, /^b\.bin: 80000 bytes .* stored as received-b\.bin$/m);
  assert.match(third.stdout, /\n78\.1 KiB sent, 1 file up to date\n$/);
  assert.deepEqual(await Deno.readFile(join(dst.path, "received-b.bin")), bNew);
  const names = [];
  for await (const e of Deno.readDir(dst.path)) names.push(e.name);
  assert.deepEqual(names.filter((n) => n.startsWith("received-")).sort(), [
    "received-a.bin",
    "received-b.bin",
  ]);
  // A stored copy changed on the server is not trusted: it is sent again.
  const stored = join(dst.path, "received-a.bin");
  await Deno.writeFile(stored, new Uint8Array(300_000));
  const fourth = await run();
  assert.equal(fourth.code, 0, fourth.stderr);
  assert.match(fourth.stdout, /^a\.bin: 300000 bytes .* stored as received-a\.bin$/m);
  assert.deepEqual(await Deno.readFile(stored), aData);
  // Without --update the old behaviour stands: a second copy beside the first.
  const plain = await client(["--port", String(srv.port), a]);
  assert.match(plain.stdout, /stored as received-a-1\.bin/);
});
