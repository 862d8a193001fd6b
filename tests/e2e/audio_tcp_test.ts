/** Audio-TCP end to end on loopback. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type AudioSource, openSource } from "../../lib/io/audio_io.ts";
import { AUDIO_CLIENT_LIMITS, AudioMsg, BLOCK_PREFIX } from "../../lib/core/audio/tcp/frames.ts";
import { startAudioTcpServer } from "../../tcp/audio_server.ts";
import { runAudioTcpClient } from "../../tcp/audio_client.ts";
import {
  alignBlocks,
  compareBlocks,
  freePort,
  oneLineError,
  readWav,
  runTool,
  slotTimeline,
  startRelay,
  tempDir,
  writeNoiseWav,
} from "../support/helpers.ts";
import { micToSpeaker, soundTest } from "../support/pulse.ts";

const BLOCK = 512;
// These tests are about what arrives, not when: a generous latency bound
// keeps a noisy machine's stalls from turning into skipped blocks.
const quiet = { log: () => {}, status: false, latencyMs: 5000 };

async function wavServer(path: string, port = 0) {
  const source = await openSource(path, { rate: 44100, channels: 1, block: BLOCK });
  return startAudioTcpServer({ port, source, log: () => {} });
}

Deno.test("a recording equals its WAV source sample for sample", async () => {
  await using dir = await tempDir();
  const src = join(dir.path, "src.wav");
  const rec = join(dir.path, "rec.wav");
  const source = await writeNoiseWav(src, 3);
  await using server = await wavServer(src);
  const report = await runAudioTcpClient({
    port: server.addr.port,
    output: rec,
    duration: 2,
    ...quiet,
  });
  const { samples } = await readWav(rec);
  const start = alignBlocks(source, samples, BLOCK);
  assert.ok(start >= 0, "the recording starts on a source block");
  const cmp = compareBlocks(source, samples, BLOCK, start);
  assert.deepEqual(cmp.different, []);
  assert.equal(cmp.same, report.blocks_received);
  assert.ok(report.blocks_received > 150, `${report.blocks_received} blocks`);
  assert.equal(report.blocks_lost + report.blocks_corrupted + report.blocks_concealed, 0);
  assert.ok(report.bytes_received >= report.blocks_received * (BLOCK * 2 + BLOCK_PREFIX));
  const l = report.latency_ms;
  assert.ok(l.p50 <= l.p95 && l.p95 <= l.p99 && l.p99 <= l.max);
});

Deno.test("three listeners at once each record the stream", async () => {
  await using dir = await tempDir();
  const src = join(dir.path, "src.wav");
  const source = await writeNoiseWav(src, 3);
  await using server = await wavServer(src);
  const reports = await Promise.all([0, 1, 2].map((i) =>
    runAudioTcpClient({
      port: server.addr.port,
      output: join(dir.path, `rec${i}.wav`),
      duration: 1.5,
      ...quiet,
    })
  ));
  for (let i = 0; i < 3; i++) {
    const { samples } = await readWav(join(dir.path, `rec${i}.wav`));
    const start = alignBlocks(source, samples, BLOCK);
    assert.ok(start >= 0);
    assert.deepEqual(compareBlocks(source, samples, BLOCK, start).different, []);
    assert.ok(reports[i].blocks_received > 100);
  }
  assert.equal(server.stats.listenersServed, 3);
});

Deno.test("corrupted blocks are counted and concealed, never recorded", async () => {
  await using dir = await tempDir();
  const src = join(dir.path, "src.wav");
  const rec = join(dir.path, "rec.wav");
  const source = await writeNoiseWav(src, 3);
  await using server = await wavServer(src);
  let blocks = 0;
  await using relay = startRelay(server.addr.port, {
    inspect: "toClient",
    limits: AUDIO_CLIENT_LIMITS,
    // Flip a sample byte in every 10th block.
    corrupt: (type) => type === AudioMsg.BLOCK && ++blocks % 10 === 0 ? BLOCK_PREFIX + 100 : null,
  });
  const report = await runAudioTcpClient({ port: relay.port, output: rec, duration: 2, ...quiet });
  assert.ok(relay.corrupted >= 15, `${relay.corrupted} corrupted`);
  // The relay may have corrupted one last block after the client stopped reading.
  assert.ok(
    report.blocks_corrupted === relay.corrupted || report.blocks_corrupted === relay.corrupted - 1,
    `report ${report.blocks_corrupted}, relay ${relay.corrupted}`,
  );
  assert.equal(report.blocks_concealed, report.blocks_corrupted);
  const { samples } = await readWav(rec);
  const start = alignBlocks(source, samples, BLOCK);
  const cmp = compareBlocks(source, samples, BLOCK, start);
  // Every block that differs from the source is a concealment: half-level
  // faded repeat of the block before it, never the corrupted bytes.
  assert.equal(cmp.different.length, report.blocks_corrupted);
  for (const b of cmp.different) {
    const played = samples.subarray(b * BLOCK, (b + 1) * BLOCK);
    const before = samples.subarray((b - 1) * BLOCK, b * BLOCK);
    assert.ok(
      played.every((v, i) => Math.abs(v - Math.round(before[i] * 0.5 * (1 - i / BLOCK))) <= 1),
    );
  }
});

/** A source as fast as the machine goes: 4096-frame stereo blocks, 1 ms apart. */
function fastSource(): AudioSource {
  let seq = 0;
  let closed = false;
  const spec = { rate: 44100, channels: 2, block: 4096 };
  return {
    spec,
    label: "fast",
    overflows: 0,
    async read() {
      if (closed) return null;
      await new Promise((r) => setTimeout(r, 1));
      const samples = new Int16Array(4096 * 2).fill(seq++ % 1000);
      return { samples, captured: performance.timeOrigin + performance.now() };
    },
    close() {
      closed = true;
      return Promise.resolve();
    },
    [Symbol.asyncDispose]() {
      return this.close();
    },
  };
}

Deno.test("a connection cut mid-stream: the client reconnects, counts what it missed lost and stays aligned", async () => {
  await using dir = await tempDir();
  const src = join(dir.path, "src.wav");
  const rec = join(dir.path, "rec.wav");
  const source = await writeNoiseWav(src, 4);
  await using server = await wavServer(src);
  // Every connection through the relay is cut after about 60 blocks.
  await using relay = startRelay(server.addr.port, {
    inspect: "toClient",
    limits: AUDIO_CLIENT_LIMITS,
    cutAfter: 60 * (8 + BLOCK_PREFIX + BLOCK * 2) + 100,
  });
  const report = await runAudioTcpClient({ port: relay.port, output: rec, duration: 2, ...quiet });
  assert.ok(report.reconnects >= 1, `${report.reconnects} reconnects`);
  // The same stream went on while the client reconnected: what it missed is lost, not forgotten.
  assert.ok(
    report.blocks_lost >= report.reconnects,
    `${report.blocks_lost} lost over ${report.reconnects} reconnects`,
  );
  assert.equal(report.blocks_concealed, report.blocks_lost);
  // Concealments hold each missed block's place, so the recording stays aligned with its
  // source: every block that differs is one of them.
  const { samples } = await readWav(rec);
  const cmp = compareBlocks(source, samples, BLOCK, alignBlocks(source, samples, BLOCK));
  assert.equal(cmp.different.length, report.blocks_concealed);
  assert.equal(cmp.same, report.blocks_received);
});

Deno.test("a listener that never reads is dropped; another keeps every block", async () => {
  await using server = startAudioTcpServer({
    port: 0,
    source: fastSource(),
    queueBlocks: 16,
    stuckMs: 500,
    log: () => {},
  });
  const stuck = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
  const report = await runAudioTcpClient({
    port: server.addr.port,
    output: "null",
    duration: 4,
    ...quiet,
  });
  stuck.close();
  assert.ok(report.blocks_received > 500, `${report.blocks_received} blocks`);
  assert.equal(report.blocks_lost, 0);
  assert.ok(server.stats.blocksDroppedForSlowListeners > 0, "the stuck listener lost its oldest");
  assert.equal(server.stats.listenersDropped, 1, "the stuck listener was disconnected");
});

Deno.test("the client reconnects when the server restarts and keeps counting", async () => {
  await using dir = await tempDir();
  const src = join(dir.path, "src.wav");
  await writeNoiseWav(src, 5);
  const port = freePort();
  const first = await wavServer(src, port);
  const lines: string[] = [];
  const client = runAudioTcpClient({
    port,
    output: join(dir.path, "rec.wav"),
    duration: 3,
    status: false,
    log: (l) => lines.push(l),
  });
  await new Promise((r) => setTimeout(r, 1000));
  await first.close();
  await new Promise((r) => setTimeout(r, 300));
  await using second = await wavServer(src, port);
  const report = await client;
  assert.ok(report.reconnects >= 1, `reconnects ${report.reconnects}`);
  assert.ok(report.blocks_received > 130, `${report.blocks_received} blocks over both servers`);
  assert.ok(second.stats.listenersServed === 1);
  assert.match(lines[0], /reconnecting in \d+ ms/);
});

Deno.test("garbage sent to the server drops only that connection", async () => {
  await using dir = await tempDir();
  const src = join(dir.path, "src.wav");
  await writeNoiseWav(src, 3);
  const logs: string[] = [];
  const source = await openSource(src, { rate: 44100, channels: 1, block: BLOCK });
  await using server = startAudioTcpServer({ port: 0, source, log: (l) => logs.push(l) });
  const client = runAudioTcpClient({
    port: server.addr.port,
    output: "null",
    duration: 1.5,
    ...quiet,
  });
  const bad = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
  await bad.write(new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n"));
  const buf = new Uint8Array(65536);
  while ((await bad.read(buf).catch(() => null)) !== null);
  bad.close();
  const report = await client;
  assert.match(logs.join("\n"), /bad magic\); disconnected/);
  assert.ok(report.blocks_received > 100);
});

Deno.test("CLI: refused connections, foreign peers and bad flags are one line", async () => {
  const perms = ["--allow-net", "--allow-ffi", "--allow-read", "--allow-write", "--allow-env"];
  const port = freePort();
  const client = (args: string[]) => runTool("tcp/audio_client.ts", args, { permissions: perms });
  assert.equal(
    oneLineError(await client(["--port", String(port), "--output", "null"])),
    `error: Could not connect to 127.0.0.1:${port}: connection refused (is the server running?)`,
  );
  const http = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serving = (async () => {
    for await (const c of http) {
      await c.write(new TextEncoder().encode("HTTP/1.1 200 OK\r\n\r\nhello"));
      c.close();
    }
  })();
  const foreign = await client([
    "--port",
    String((http.addr as Deno.NetAddr).port),
    "--output",
    "null",
  ]);
  http.close();
  await serving.catch(() => {});
  assert.match(
    oneLineError(foreign),
    /^error: Peer at 127\.0\.0\.1:\d+ is not an Audio-TCP server: .*bad magic/,
  );
  const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const busyPort = (busy.addr as Deno.NetAddr).port;
  const server = await runTool("tcp/audio_server.ts", [
    "--port",
    String(busyPort),
    "--input",
    "tone",
  ], {
    permissions: perms,
  });
  busy.close();
  assert.equal(oneLineError(server), `error: Port ${busyPort} on 127.0.0.1 is already in use`);
});

soundTest("microphone to speaker over Audio-TCP through PortAudio", async (pulse) => {
  const { report, heardHz, clientOutput } = await micToSpeaker(pulse, "tcp");
  // PulseAudio's ALSA plug-in stalls a new playback stream for a second or
  // two; blocks that arrive meanwhile are skipped as late.
  assert.ok(report.blocks_received > 150, clientOutput);
  assert.equal(report.blocks_corrupted, 0);
  // Within the client's default latency bound (automatic: its highest, plus the sink side's two blocks).
  const [, highest] = report.latency_bound_range_ms as [number, number];
  assert.equal(report.latency_bound_auto, true);
  assert.ok(
    report.latency_ms.p99 <= highest + 2 * (1024 / 44.1),
    `p99 ${report.latency_ms.p99} ms`,
  );
  assert.ok(Math.abs(heardHz - 1000) < 10, `heard ${heardHz} Hz`);
});

Deno.test("a stall past --latency is skipped and counted late; the stream goes on at its bound", async () => {
  await using dir = await tempDir();
  const src = join(dir.path, "src.wav");
  await writeNoiseWav(src, 4);
  const run = async (latencyMs: number | "auto") => {
    await using server = await wavServer(src);
    // The network holds everything for 500 ms once 100 KB went through
    // (about a second in).
    await using relay = startRelay(server.addr.port, {
      inspect: "toClient",
      limits: AUDIO_CLIENT_LIMITS,
      pause: { after: 100_000, ms: 500 },
    });
    return await runAudioTcpClient({
      port: relay.port,
      output: "null",
      duration: 2.5,
      ...quiet,
      latencyMs,
      // As a sound device plays: a file keeps every slot (the next test).
      keepTimeline: false,
    });
  };
  const [bounded, loose, auto] = await Promise.all([run(100), run(5000), run("auto")]);
  // The automatic bound grew at the stall: nothing skipped.
  assert.equal(auto.blocks_late, 0, JSON.stringify(auto));
  assert.ok((auto.latency_bound_grew as number) >= 1, JSON.stringify(auto));
  assert.equal(auto.latency_bound_auto, true);
  // With a 100 ms bound, the blocks held past it (about 400 ms of them)
  // are late; with 5 s, none is.
  const blockMs = BLOCK / 44.1;
  assert.ok(
    bounded.blocks_late >= 300 / blockMs && bounded.blocks_late <= 600 / blockMs,
    JSON.stringify(bounded),
  );
  assert.equal(loose.blocks_late, 0, JSON.stringify(loose));
  // After the stall the bounded session is back within its bound.
  assert.ok(bounded.latency_ms.p50 < 100, `p50 ${bounded.latency_ms.p50}`);
  assert.ok(loose.latency_ms.max >= 400, `the loose session waited: max ${loose.latency_ms.max}`);
});

Deno.test("a recording through a stall keeps every block in its slot, whatever the bound", async () => {
  await using dir = await tempDir();
  const src = join(dir.path, "src.wav");
  const rec = join(dir.path, "rec.wav");
  const source = await writeNoiseWav(src, 4);
  await using server = await wavServer(src);
  await using relay = startRelay(server.addr.port, {
    inspect: "toClient",
    limits: AUDIO_CLIENT_LIMITS,
    pause: { after: 100_000, ms: 500 },
  });
  // Even with the old fixed 100 ms bound, a file skips nothing.
  const r = await runAudioTcpClient({
    port: relay.port,
    output: rec,
    duration: 2.5,
    ...quiet,
    latencyMs: 100,
  });
  const { samples } = await readWav(rec);
  const t = slotTimeline(source, samples, BLOCK);
  assert.deepEqual(t.wrong, [], JSON.stringify(r));
  assert.equal(t.same, t.slots, `every slot its own block: ${JSON.stringify(r)}`);
  assert.equal(r.blocks_late, 0);
  assert.ok(r.latency_ms.max >= 400, "the stall happened");
});
