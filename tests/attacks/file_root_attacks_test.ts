/**
 * The file server's directory as a contained root: a local user who may
 * write inside DIR swaps stored folders and files for symbolic links while
 * trees arrive, and nothing is written or changed outside DIR; offered
 * modes are masked; a connection's folders are capped.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { oneLineError, randomFile, runTool, tempDir } from "../support/helpers.ts";
import { FILE_CLIENT_PERMS, FILE_SERVER_PERMS, startServerTool } from "../support/tool_process.ts";
import { startFileServer } from "../../tcp/file_server.ts";
import { ContainedRoot } from "../../lib/io/contained_root.ts";

const CLIENT = "tcp/file_client.ts";
const isRoot = Deno.uid() === 0;
/** CI runs as root: there these tests must run, never be ignored. */
const needsRoot = !isRoot && Deno.env.get("CI") !== "true";

/** Every entry below `dir`, with its type, mode and (for files) size. */
async function listing(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (at: string, rel: string) => {
    for await (const e of Deno.readDir(at)) {
      const path = join(at, e.name);
      const info = await Deno.lstat(path);
      const name = rel ? `${rel}/${e.name}` : e.name;
      out.push(`${name} ${(info.mode! & 0o7777).toString(8)} ${info.isFile ? info.size : "-"}`);
      if (info.isDirectory) await walk(path, name);
    }
  };
  await walk(dir, "");
  return out.sort();
}

/**
 * A shell loop, run as `nobody`, that keeps swapping the folders and files
 * it may rename in DIR for links: to the outside folder and to the secret
 * file there.
 */
function swapper(dir: string, outside: string): Deno.ChildProcess {
  const script = `
    cd "$1" || exit 1
    n=0
    while :; do
      n=$((n + 1))
      if [ $((n % 2)) = 0 ]; then target="$2"; else target="$2/secret"; fi
      for p in received-tree* received-tree*/* received-tree*/*/*; do
        case "$p" in *.moved*) continue ;; esac
        [ -L "$p" ] && continue
        [ -e "$p" ] || continue
        mv -T "$p" "$p.moved$n" 2>/dev/null && ln -sfn "$target" "$p" 2>/dev/null
      done
      # Now and then the links go, so that the server makes folders again.
      if [ $((n % 10)) = 0 ]; then
        for p in received-tree* received-tree*/* received-tree*/*/*; do
          [ -L "$p" ] && rm -f "$p" 2>/dev/null
        done
      fi
    done`;
  return new Deno.Command("setpriv", {
    args: [
      "--reuid=nobody",
      "--regid=nogroup",
      "--clear-groups",
      "bash",
      "-c",
      script,
      "swapper",
      dir,
      outside,
    ],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
}

/** A tree of 2,000 small files (sent in packs) and a few large ones, its folders all 0777. */
async function makeTree(root: string): Promise<void> {
  for (let d = 0; d < 20; d++) {
    const folder = join(root, `d${d}`);
    await Deno.mkdir(join(folder, "sub"), { recursive: true });
    for (let f = 0; f < 100; f++) {
      await Deno.writeTextFile(join(f % 2 ? folder : join(folder, "sub"), `f${f}`), `file ${f}`);
    }
    if (d % 5 === 0) await randomFile(join(folder, "large.bin"), 200_000, d + 1);
    await Deno.chmod(join(folder, "sub"), 0o777);
    await Deno.chmod(folder, 0o777);
  }
  await Deno.chmod(root, 0o777);
}

Deno.test({
  name:
    "attack: a local user swapping stored folders and files for links while a tree arrives changes nothing outside DIR",
  ignore: needsRoot,
  async fn() {
    await using base = await tempDir();
    await Deno.chmod(base.path, 0o755);
    const dir = join(base.path, "store");
    const outside = join(base.path, "outside");
    const src = join(base.path, "src");
    await Deno.mkdir(dir);
    await Deno.mkdir(outside);
    // A shared drop folder: the local user may write in it.
    await Deno.chmod(dir, 0o777);
    await Deno.chmod(outside, 0o755);
    const secret = join(outside, "secret");
    await Deno.writeTextFile(secret, "root's own");
    await Deno.chmod(secret, 0o600);
    await makeTree(join(src, "tree"));
    const before = await listing(outside);
    await using srv = await startServerTool("tcp/file_server.ts", [
      "--port",
      "0",
      "--dir",
      dir,
    ], { permissions: FILE_SERVER_PERMS });
    const attacker = swapper(dir, outside);
    try {
      for (let round = 0; round < 4; round++) {
        await runTool(CLIENT, ["--port", String(srv.port), join(src, "tree")], {
          permissions: FILE_CLIENT_PERMS,
        });
      }
    } finally {
      attacker.kill("SIGKILL");
      await attacker.status;
    }
    const swapped = (await listing(dir)).filter((line) => line.includes(".moved"));
    assert.ok(swapped.length > 0, "the local user swapped stored entries for links");
    assert.deepEqual(await listing(outside), before, "nothing outside DIR was made or changed");
    assert.equal((await Deno.lstat(secret)).mode! & 0o7777, 0o600);
    assert.equal(await Deno.readTextFile(secret), "root's own");
  },
});

Deno.test({
  name: "attack: offered modes are masked: a 0777 folder and a 04777 file are stored 0755",
  async fn() {
    await using src = await tempDir();
    await using dst = await tempDir();
    await using srv = await startFileServer({ port: 0, dir: dst.path, log: () => {} });
    const root = join(src.path, "m");
    await Deno.mkdir(join(root, "open"), { recursive: true });
    await Deno.writeTextFile(join(root, "open/run"), "#!/bin/sh\n");
    await Deno.chmod(join(root, "open/run"), 0o4777);
    await Deno.chmod(join(root, "open"), 0o777);
    const r = await runTool(CLIENT, ["--port", String(srv.addr.port), root], {
      permissions: FILE_CLIENT_PERMS,
    });
    assert.equal(r.code, 0, r.stderr);
    const folder = await Deno.lstat(join(dst.path, "received-m/open"));
    const file = await Deno.lstat(join(dst.path, "received-m/open/run"));
    assert.equal(folder.mode! & 0o7777, 0o755, "no group or other write on a folder");
    assert.equal(file.mode! & 0o7777, 0o755, "no setuid, no group or other write on a file");
  },
});

Deno.test({
  name: "attack: a pack of deep paths makes no more folders than the cap; the rest fail naming it",
  async fn() {
    await using src = await tempDir();
    await using dst = await tempDir();
    await using srv = await startFileServer({
      port: 0,
      dir: dst.path,
      log: () => {},
      maxFolders: 50,
    });
    const root = join(src.path, "deep");
    for (let f = 0; f < 10; f++) {
      const path = join(root, `f${f}`, "a", "b", "c", "d", "e", "g", "h", "i", "j");
      await Deno.mkdir(path, { recursive: true });
      await Deno.writeTextFile(join(path, "x"), "x");
    }
    const r = await runTool(CLIENT, ["--port", String(srv.addr.port), root], {
      permissions: FILE_CLIENT_PERMS,
    });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /at most 50 folders/);
    let folders = 0;
    for (const line of await listing(dst.path)) {
      if (line.startsWith("received-deep/") && line.endsWith(" -")) folders++;
    }
    assert.ok(folders <= 50, `${folders} folders made`);
    // As the message says, running again with --update sends the rest.
    let again = r;
    for (let run = 0; run < 3 && again.code !== 0; run++) {
      again = await runTool(CLIENT, ["--port", String(srv.addr.port), "--update", root], {
        permissions: FILE_CLIENT_PERMS,
      });
    }
    assert.equal(again.code, 0, again.stderr);
    const deep = "a/b/c/d/e/g/h/i/j/x";
    for (let f = 0; f < 10; f++) {
      assert.equal(await Deno.readTextFile(join(dst.path, `received-deep/f${f}/${deep}`)), "x");
    }
  },
});

Deno.test("contained root: a link anywhere on the way, `..` and absolute paths are refused; a folder swapped for a link after opening is not followed", async () => {
  await using base = await tempDir();
  const dir = join(base.path, "root");
  const outside = join(base.path, "outside");
  await Deno.mkdir(join(dir, "a/b"), { recursive: true });
  await Deno.mkdir(outside);
  await Deno.writeTextFile(join(outside, "secret"), "keep");
  await Deno.chmod(join(outside, "secret"), 0o600);
  await Deno.symlink(outside, join(dir, "a/link"));
  await Deno.symlink(join(outside, "secret"), join(dir, "a/b/file-link"));
  using root = ContainedRoot.open(dir);
  const refused = (f: () => unknown, why: RegExp) => assert.throws(f, why);
  refused(() => root.create("a/link/new"), /symbolic link/);
  refused(() => root.mkdir("a/link/new"), /symbolic link/);
  refused(() => root.chmod("a/b/file-link", 0o777), /symbolic link/);
  refused(() => root.open("a/b/file-link", { read: true }), /symbolic link/);
  refused(() => root.create("../outside/new"), /not a path inside/);
  refused(() => root.create("a/../../outside/new"), /not a path inside/);
  refused(() => root.create(join(outside, "new")), /not a path inside/);
  refused(() => root.rename("a/b", "a/link/b"), /symbolic link/);
  refused(() => root.link("a/b/file-link", "a/link/x"), /symbolic link/);
  // A folder used once, then swapped for a link: the next call refuses it.
  root.create("a/b/first").close();
  await Deno.rename(join(dir, "a/b"), join(dir, "a/moved"));
  await Deno.symlink(outside, join(dir, "a/b"));
  refused(() => root.create("a/b/second"), /symbolic link/);
  refused(() => root.rename("a/moved/first", "a/b/first"), /symbolic link/);
  refused(() => root.chmod("a/b", 0o777), /symbolic link/);
  assert.equal(root.lstat("a/b")?.isSymlink, true);
  assert.deepEqual([...Deno.readDirSync(outside)].map((e) => e.name), ["secret"]);
  assert.equal((await Deno.lstat(join(outside, "secret"))).mode! & 0o777, 0o600);
  // What stays inside works: made, written, renamed, reopened, read.
  root.mkdir("c");
  const fd = root.create("c/x.tmp", 0o640);
  fd.writeAll(new TextEncoder().encode("inside"));
  fd.close();
  fd.close(); // idempotent
  root.rename("c/x.tmp", "c/x");
  using file = root.open("c/x", { read: true, write: true });
  assert.equal(file.stat().size, 6);
  assert.equal(new TextDecoder().decode(root.readFile("c/x")), "inside");
  assert.throws(() => root.mkdir("c"), Deno.errors.AlreadyExists);
  // Another thread's own handle on the same folder outlives this one.
  const again = ContainedRoot.adopt(root.duplicate(), dir);
  root.close();
  assert.equal(again.lstat("c/x")?.isFile, true);
  again.close();
});

Deno.test("contained root: a file server that cannot load libc refuses to start, in one line naming the fix", async () => {
  await using dst = await tempDir();
  const args = ["--port", "0", "--dir", dst.path];
  const noFfi = await runTool("tcp/file_server.ts", args, {
    permissions: FILE_SERVER_PERMS.filter((p) => p !== "--allow-ffi"),
  });
  assert.match(
    oneLineError(noFfi),
    /^error: Cannot keep writes inside .*: Deno needs --allow-ffi to load libc/,
  );
  const badPath = await runTool("tcp/file_server.ts", args, {
    permissions: FILE_SERVER_PERMS,
    env: { LIBC_PATH: "/nonexistent/libc.so.6" },
  });
  assert.match(
    oneLineError(badPath),
    /^error: Cannot keep writes inside .*: Could not load libc from LIBC_PATH=\/nonexistent\/libc\.so\.6 .*unset LIBC_PATH$/,
  );
});
