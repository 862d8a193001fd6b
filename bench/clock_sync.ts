/**
 * `deno task bench-clock [--seconds 120] [--ppm 1000]`: how well the two
 * clocks are matched.
 *
 * 1. Simulated (the sync core alone, 20 seeds of two minutes each per
 *    row): the offset error against the true offset, checked every second
 *    after the first ten, for a range of jitters and an asymmetric path,
 *    beside the plain NTP estimate from the latest exchange alone.
 * 2. Real (both tools, loopback, a tone): the server under `faketime`
 *    with its clock `--ppm` fast, for `--seconds` (1000 ppm for 2 minutes
 *    stands for 100 ppm for 20 minutes), beside the same run with the
 *    clocks agreeing: latency held, blocks concealed or late, and the
 *    estimated drift and offset against the truth.
 *
 * @module
 */
import { parseFlags, parseSecondsFlag, runMain } from "../lib/cli/flags.ts";
import { ClockSync } from "../lib/core/audio/clock_sync.ts";
import type { StreamReport } from "../lib/core/report/stream_report.ts";
import { now } from "../lib/io/clock.ts";
import { runAudioTcpClient } from "../tcp/audio_client.ts";
import { runAudioUdpClient } from "../udp/audio_client.ts";
import { TwoClocks, type TwoClocksModel } from "../tests/support/two_clocks.ts";
import { fakeTimeLibrary, startServerTool } from "../tests/support/tool_process.ts";

const FLAGS = {
  seconds: { type: "string", default: "120", value: "S", help: "length of each real run" },
  ppm: { type: "string", default: "1000", value: "PPM", help: "how fast the server's clock runs" },
} as const;

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

/** Offset errors of our estimate and of the latest exchange alone, ms; drift errors, ppm. */
function simulate(model: Omit<TwoClocksModel, "seed">) {
  const ours: number[] = [];
  const naive: number[] = [];
  const drift: number[] = [];
  for (let seed = 1; seed <= 20; seed++) {
    const clocks = new TwoClocks({ ...model, seed });
    const sync = new ClockSync();
    let latest = 0;
    for (let t = 0; t < 120_000; t += 1000) {
      latest = clocks.run(sync, t, t + 1000) ?? latest;
      if (t < 10_000) continue;
      const at = t + 1000;
      ours.push(Math.abs(sync.estimate(at)!.offsetMs - clocks.truth(at)));
      naive.push(Math.abs(latest - clocks.truth(at)));
    }
    drift.push(Math.abs(sync.estimate(120_000)!.driftPpm - (model.driftPpm ?? 0)));
  }
  return { ours, naive, drift };
}

async function realRun(transport: "tcp" | "udp", clock: string, seconds: number) {
  await using server = await startServerTool(
    `${transport}/audio_server.ts`,
    ["--port", "0", "--input", "tone", "--block", "1024"],
    { faketime: clock, permissions: ["--allow-net", "--allow-read"] },
  );
  const startedAt = now();
  const options = { port: server.port, output: "null", duration: seconds, status: false };
  const r: StreamReport = transport === "udp"
    ? await runAudioUdpClient({ ...options, latencyMs: 100, log: () => {} })
    : await runAudioTcpClient({ ...options, log: () => {} });
  return { r, elapsed: now() - startedAt };
}

runMain(async () => {
  const { flags } = parseFlags(Deno.args, FLAGS, {
    usage: "deno task bench-clock",
    summary: "Clock sync: offset error against jitter, and latency held against a skewed clock.",
  });
  const seconds = parseSecondsFlag("seconds", flags.seconds);
  const ppm = Number(flags.ppm);

  console.log(
    "1. Simulated: offset error against the true offset (server an hour ahead, 100 ppm fast)",
  );
  console.log("   ms, |estimate - truth| each second after the first 10 s, 20 seeds × 2 minutes\n");
  console.log(
    "| one-way delay | ours p50 | ours p95 | ours max | latest exchange p50 | p95 | max | drift error p95 |",
  );
  console.log("| --- | --: | --: | --: | --: | --: | --: | --: |");
  const rows: [string, Omit<TwoClocksModel, "seed">][] = [
    ["1 ms, no jitter", { offsetMs: 3_600_000, driftPpm: 100 }],
    ["1 ms + up to 1 ms", { offsetMs: 3_600_000, driftPpm: 100, jitterMs: 1 }],
    ["1 ms + up to 5 ms", { offsetMs: 3_600_000, driftPpm: 100, jitterMs: 5 }],
    ["1 ms + up to 20 ms", { offsetMs: 3_600_000, driftPpm: 100, jitterMs: 20 }],
    ["1 ms + up to 50 ms", { offsetMs: 3_600_000, driftPpm: 100, jitterMs: 50 }],
    ["10 ms there, 2 ms back", { offsetMs: 3_600_000, driftPpm: 100, forwardMs: 10, backMs: 2 }],
  ];
  const f = (x: number) => x.toFixed(2);
  for (const [name, model] of rows) {
    const { ours, naive, drift } = simulate(model);
    console.log(
      `| ${name} | ${f(quantile(ours, 0.5))} | ${f(quantile(ours, 0.95))} | ${
        f(Math.max(...ours))
      } | ${f(quantile(naive, 0.5))} | ${f(quantile(naive, 0.95))} | ${f(Math.max(...naive))} | ${
        quantile(drift, 0.95).toFixed(1)
      } ppm |`,
    );
  }

  try {
    fakeTimeLibrary();
  } catch (err) {
    console.log(`\n2. Real runs skipped: ${(err as Error).message}`);
    return;
  }
  const rate = 1 + ppm / 1e6;
  console.log(
    `\n2. Real: ${seconds} s on loopback, a tone, server clock ${ppm} ppm fast (faketime "+0 x${rate}") ` +
      `beside clocks agreeing; both runs at once\n`,
  );
  console.log(
    "| transport | server clock | latency p50 | p99 | max | concealed | late | drift est. | offset est. | offset truth |",
  );
  console.log("| --- | --- | --: | --: | --: | --: | --: | --: | --: | --: |");
  for (const transport of ["udp", "tcp"] as const) {
    const [skewed, agreeing] = await Promise.all([
      realRun(transport, `+0 x${rate}`, seconds),
      realRun(transport, "+0 x1", seconds),
    ]);
    for (
      const [name, run, p] of [[`${ppm} ppm fast`, skewed, ppm], ["agreeing", agreeing, 0]] as const
    ) {
      const r = run.r;
      console.log(
        `| ${transport} | ${name} | ${r.latency_ms.p50} | ${r.latency_ms.p99} | ${r.latency_ms.max} | ` +
          `${r.blocks_concealed} | ${r.blocks_late} | ${r.clock_drift_ppm} ppm | ${r.clock_offset_ms} ms | ` +
          `${((run.elapsed * p) / 1e6).toFixed(1)} ms |`,
      );
    }
  }
});
