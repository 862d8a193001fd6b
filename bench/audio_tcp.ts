/**
 * `deno task bench-audio-tcp [--seconds 10] [--listeners 50]`: Audio-TCP on
 * loopback. Part 1: one client playing to `null` (a real client process
 * with its `--report`): capture-to-sink latency and both processes' CPU.
 * Part 2: fan-out: many listeners (light in-process readers that check
 * every block's MD5 and sequence) on one server process, whose CPU is
 * measured alone.
 *
 * CPU is read from /proc/PID/stat (user + system time) over the window,
 * as a fraction of one core.
 *
 * @module
 */
import { join } from "node:path";
import { parseFlags, parseSecondsFlag, runMain } from "../lib/cli/flags.ts";

import { readChunks } from "../lib/io/conn.ts";
import { now } from "../lib/io/clock.ts";
import { writeAll } from "../lib/io/streams.ts";
import { AudioTcpReceiver } from "../lib/core/audio/tcp/client.ts";
import { blockMs, DEFAULT_SPEC } from "../lib/core/audio/format/spec.ts";
import type { StreamReport } from "../lib/core/report/stream_report.ts";
import { startServerTool, toolCommand } from "../tests/support/tool_process.ts";

const PERMS = ["--allow-net", "--allow-ffi", "--allow-read", "--allow-write", "--allow-env"];

/** CPU seconds (user + system) a process has used. */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // clock ticks (USER_HZ = 100)
}

function startServer(listeners = 1) {
  // Every listener here is on loopback: one host, so its cap is raised.
  const args = ["--port", "0", "--input", "tone", "--max-per-host", String(listeners)];
  return startServerTool("tcp/audio_server.ts", args, {
    permissions: PERMS,
  });
}

/** A light listener: reads, checks MD5 and sequence, counts. */
async function listener(port: number, seconds: number) {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  conn.setNoDelay(true);
  const counts = { blocks: 0, corrupted: 0, gaps: 0 };
  const timer = setTimeout(() => conn.close(), seconds * 1000);
  let expected: number | undefined;
  try {
    const receiver = new AudioTcpReceiver();
    for await (const bytes of readChunks(conn)) {
      for (const e of receiver.receive(bytes, now())) {
        // Answer the clock sync like a real client; blocks wait for it.
        if (e.type === "send") await writeAll(conn, e.bytes);
        if (e.type !== "block") continue;
        const b = e.block;
        if (!b.intact) counts.corrupted++;
        if (expected !== undefined && b.seq !== expected) counts.gaps++;
        expected = b.seq + 1;
        counts.blocks++;
      }
    }
  } catch {
    // Closed by the timer.
  } finally {
    clearTimeout(timer);
  }
  return counts;
}

const FLAGS = {
  seconds: { type: "string", default: "10", value: "S", help: "length of each part" },
  listeners: { type: "string", default: "50", value: "N", help: "listeners in the fan-out part" },
} as const;

runMain(async () => {
  const { flags } = parseFlags(Deno.args, FLAGS, {
    usage: "deno task bench-audio-tcp",
    summary: "Latency, CPU and fan-out of Audio-TCP on loopback.",
  });
  const seconds = parseSecondsFlag("seconds", flags.seconds);
  const n = Number(flags.listeners);
  const block = blockMs(DEFAULT_SPEC);

  // Part 1: one real client.
  {
    const server = await startServer();
    const dir = await Deno.makeTempDir();
    try {
      // The server's own cost with no listener: capture (a paced tone).
      const i0 = await cpuSeconds(server.child.pid);
      const ti = performance.now();
      await new Promise((r) => setTimeout(r, 3000));
      const idleCpu = (await cpuSeconds(server.child.pid) - i0) / ((performance.now() - ti) / 1000);
      const report = join(dir, "r.json");
      const client = toolCommand("tcp/audio_client.ts", [
        "--port",
        String(server.port),
        "--output",
        "null",
        "--duration",
        String(seconds),
        "--report",
        report,
      ], { permissions: PERMS }).spawn();
      client.stdout.cancel();
      // Measure CPU over the middle of the session, after start-up.
      await new Promise((r) => setTimeout(r, 1000));
      const s0 = await cpuSeconds(server.child.pid);
      const c0 = await cpuSeconds(client.pid);
      const t0 = performance.now();
      await new Promise((r) => setTimeout(r, (seconds - 2) * 1000));
      const window = (performance.now() - t0) / 1000;
      const serverCpu = (await cpuSeconds(server.child.pid) - s0) / window;
      const clientCpu = (await cpuSeconds(client.pid) - c0) / window;
      await client.status;
      const r: StreamReport = JSON.parse(await Deno.readTextFile(report));
      const l = r.latency_ms;
      console.log(`one stream, ${seconds} s, 512-frame blocks (${block.toFixed(1)} ms):`);
      console.log(
        `  latency p50 ${l.p50} ms, p95 ${l.p95} ms, p99 ${l.p99} ms, max ${l.max} ms ` +
          `(target p99 <= ${(block + 2).toFixed(1)} ms: ${l.p99 <= block + 2 ? "met" : "MISSED"})`,
      );
      console.log(
        `  blocks ${r.blocks_received} received, ${r.blocks_lost} lost, ${r.blocks_late} late`,
      );
      console.log(
        `  CPU: server ${(serverCpu * 100).toFixed(2)}% of a core, client ${
          (clientCpu * 100).toFixed(2)
        }% (target under 2% per stream); server with no listener ${(idleCpu * 100).toFixed(2)}%`,
      );
    } finally {
      await server.stop();
      await Deno.remove(dir, { recursive: true });
    }
  }

  // Part 2: fan-out.
  {
    const server = await startServer(n);
    try {
      const s0 = await cpuSeconds(server.child.pid);
      const t0 = performance.now();
      const results = await Promise.all(
        Array.from({ length: n }, () => listener(server.port, seconds)),
      );
      const window = (performance.now() - t0) / 1000;
      const serverCpu = (await cpuSeconds(server.child.pid) - s0) / window;
      const blocks = results.map((r) => r.blocks);
      const expected = Math.floor((seconds * 1000) / block);
      const gaps = results.reduce((a, r) => a + r.gaps, 0);
      const corrupted = results.reduce((a, r) => a + r.corrupted, 0);
      console.log(`fan-out: ${n} listeners, ${seconds} s:`);
      console.log(
        `  blocks per listener min ${Math.min(...blocks)}, max ${Math.max(...blocks)} ` +
          `(about ${expected} captured), ${gaps} sequence gaps, ${corrupted} corrupted`,
      );
      console.log(
        `  server CPU ${(serverCpu * 100).toFixed(1)}% of a core (target under 50%)`,
      );
    } finally {
      await server.stop();
    }
  }
});
