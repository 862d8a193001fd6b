/**
 * Hostile silent servers against every client: one that accepts and says
 * nothing, one whose backlog takes the connection but never accepts it.
 * Each client ends with one line and a non-zero exit at its `--timeout`.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { oneLineError, randomFile, runTool, tempDir, writeNoiseWav } from "../support/helpers.ts";
import { openSource } from "../../lib/io/audio_io.ts";
import { startAudioTcpServer } from "../../tcp/audio_server.ts";
import { runAudioTcpClient } from "../../tcp/audio_client.ts";
import { FILE_CLIENT_PERMS } from "../support/tool_process.ts";

/** A TCP server that accepts (or, with `accept` false, never accepts) and never says a word. */
function silentServer(accept: boolean): Deno.TcpListener {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  if (accept) {
    (async () => {
      const held: Deno.Conn[] = [];
      for await (const c of l) held.push(c); // kept open, never read nor written
    })().catch(() => {});
  }
  return l;
}

for (const accept of [true, false]) {
  const how = accept ? "accepts and says nothing" : "never accepts";
  Deno.test(`silent server: the file client gives up on a server that ${how}`, async () => {
    await using src = await tempDir();
    const path = join(src.path, "f.bin");
    await randomFile(path, 200_000);
    using listener = silentServer(accept);
    const started = performance.now();
    const r = await runTool(
      "tcp/file_client.ts",
      ["--port", String(listener.addr.port), "--timeout", "1", path],
      { permissions: FILE_CLIENT_PERMS },
    );
    const seconds = (performance.now() - started) / 1000;
    assert.match(oneLineError(r), /made no progress for 1 s/);
    assert.ok(seconds < 10, `took ${seconds.toFixed(1)} s`);
  });
}

Deno.test("silent server: the Audio-TCP client gives up on a server that accepts and says nothing", async () => {
  using listener = silentServer(true);
  const started = performance.now();
  const r = await runTool("tcp/audio_client.ts", [
    "--port",
    String(listener.addr.port),
    "--output",
    "null",
    "--timeout",
    "1",
  ]);
  const seconds = (performance.now() - started) / 1000;
  assert.match(oneLineError(r), /not an Audio-TCP server/);
  assert.ok(seconds < 10, `took ${seconds.toFixed(1)} s`);
});

Deno.test("silent server: the Audio-UDP client gives up on a port that answers nothing at its --timeout", async () => {
  const silent = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
  const started = performance.now();
  const r = await runTool("udp/audio_client.ts", [
    "--port",
    String((silent.addr as Deno.NetAddr).port),
    "--output",
    "null",
    "--timeout",
    "1",
  ]).finally(() => silent.close());
  const seconds = (performance.now() - started) / 1000;
  assert.match(oneLineError(r), /No answer from/);
  assert.ok(seconds < 4, `took ${seconds.toFixed(1)} s`);
});

Deno.test("silent server: the Audio-TCP client stops reconnecting to a lost server at its --timeout", async () => {
  await using dir = await tempDir();
  const wav = join(dir.path, "n.wav");
  await writeNoiseWav(wav, 30);
  const source = await openSource(wav, { rate: 44100, channels: 1, block: 1024 });
  const server = startAudioTcpServer({ port: 0, source, log: () => {} });
  const port = server.addr.port;
  const lines: string[] = [];
  const client = runAudioTcpClient({
    port,
    output: "null",
    status: false,
    timeoutMs: 1000,
    log: (l) => lines.push(l),
  });
  await new Promise((r) => setTimeout(r, 700));
  const lost = performance.now();
  await server.close();
  await assert.rejects(client, /No stream from .* for 1 s \(--timeout\); gave up/);
  const seconds = (performance.now() - lost) / 1000;
  assert.ok(seconds < 5, `gave up ${seconds.toFixed(1)} s after the server left`);
  assert.ok(lines.some((l) => /reconnecting/.test(l)), "it tried to reconnect first");
});
