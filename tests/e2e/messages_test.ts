/**
 * The everyday messages, with the real tools: a file client at an
 * Audio-TCP port, `-h` and `--help` on every tool (no "(default )" for an
 * empty default), and the demo not claiming files in a folder it removes.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  oneLineError,
  randomFile,
  runTool,
  tempDir,
  waitFor,
  writeNoiseWav,
} from "../support/helpers.ts";
import { FILE_CLIENT_PERMS } from "../support/tool_process.ts";
import { openSource } from "../../lib/io/audio_io.ts";
import { startAudioTcpServer } from "../../tcp/audio_server.ts";
import { runAudioTcpClient } from "../../tcp/audio_client.ts";

Deno.test("messages: a file client at an Audio-TCP port is told that port is an Audio-TCP server", async () => {
  await using dir = await tempDir();
  const wav = join(dir.path, "n.wav");
  await writeNoiseWav(wav, 10);
  const path = join(dir.path, "f.bin");
  await randomFile(path, 10_000);
  const source = await openSource(wav, { rate: 44100, channels: 1, block: 1024 });
  await using server = startAudioTcpServer({ port: 0, source, log: () => {} });
  const r = await runTool("tcp/file_client.ts", ["--port", String(server.addr.port), path], {
    permissions: FILE_CLIENT_PERMS,
  });
  const line = oneLineError(r);
  assert.match(line, /That port is an Audio-TCP server, not a file server/);
  assert.doesNotMatch(line, /Unknown frame type/);
});

Deno.test("messages: a coded Audio-TCP client at a plain server: the server logs that a client sent it a code", async () => {
  await using dir = await tempDir();
  const wav = join(dir.path, "n.wav");
  await writeNoiseWav(wav, 10);
  const source = await openSource(wav, { rate: 44100, channels: 1, block: 1024 });
  const lines: string[] = [];
  await using server = startAudioTcpServer({ port: 0, source, log: (l) => lines.push(l) });
  await assert.rejects(
    runAudioTcpClient({ port: server.addr.port, output: "null", status: false, code: "a-b-c" }),
    /Server does not use a code/,
  );
  await waitFor(() => lines.length > 0);
  assert.match(lines.join("\n"), /A client sent a code to this server, which has none/);
  assert.doesNotMatch(lines.join("\n"), /Unknown frame type/);
});

const TOOLS = [
  "tcp/file_server.ts",
  "tcp/file_client.ts",
  "tcp/audio_server.ts",
  "tcp/audio_client.ts",
  "udp/audio_server.ts",
  "udp/audio_client.ts",
  "udp/relay.ts",
];

Deno.test("messages: -h works like --help on every tool, and no flag shows an empty default", async () => {
  for (const tool of TOOLS) {
    const long = await runTool(tool, ["--help"]);
    const short = await runTool(tool, ["-h"]);
    assert.equal(long.code, 0, `${tool} --help: ${long.stderr}`);
    assert.equal(short.code, 0, `${tool} -h: ${short.stderr}`);
    assert.equal(short.stdout, long.stdout, `${tool}: -h prints the help`);
    assert.doesNotMatch(long.stdout, /\(default \)/, `${tool} shows an empty default`);
    assert.match(long.stdout, /-h, --help/, `${tool}'s help names -h`);
  }
});

Deno.test("messages: the demo never says it wrote files into a folder it then removes", async () => {
  const r = await runTool("demo.ts", [], {
    // As the deno.json task grants them (the file server's root needs libc).
    permissions: [
      "--allow-net=127.0.0.1",
      "--allow-read",
      "--allow-write",
      "--allow-ffi",
      "--allow-env",
      "--allow-run",
      "--allow-sys=uid",
    ],
  });
  assert.equal(r.code, 0, r.stderr);
  for (const m of r.stdout.matchAll(/^wrote ([^\s,]+)/gm)) {
    const exists = await Deno.stat(m[1]).then(() => true, () => false);
    assert.ok(exists, `the demo said "${m[0]}", which it removed`);
  }
  assert.doesNotMatch(r.stdout, /^wrote \/tmp\/sockets-demo-/m);
});
