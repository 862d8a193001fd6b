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
 * 3. The peer the issue names, when Debian's `snapserver` and `snapclient`
 *    are installed: Snapcast, its server under the same libfaketime clocks,
 *    the same tone, raw PCM, its client writing to a file; what share of
 *    its output is silence after its first sound. Its latency is its
 *    buffer setting by design; it is not measured here.
 *
 * @module
 */
import { parseFlags, parseSecondsFlag, runMain } from "../lib/cli/flags.ts";
import { ClockSync } from "../lib/core/audio/stages/clock_sync.ts";
import type { StreamReport } from "../lib/core/report/stream_report.ts";
import { now } from "../lib/io/clock.ts";
import { runAudioTcpClient } from "../tcp/audio_client.ts";
import { runAudioUdpClient } from "../udp/audio_client.ts";
import { TwoClocks, type TwoClocksModel } from "../tests/support/two_clocks.ts";
import { commandExists, fakeTimeLibrary, startServerTool } from "../tests/support/tool_process.ts";
import { freePort } from "../tests/support/helpers.ts";
import { join } from "node:path";

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

/** 48 kHz stereo s16le, Snapcast's default format. */
const SNAP_RATE = 48000;

/** Writes `seconds` of a 440 Hz tone as raw 48 kHz stereo s16le. */
async function writeSnapTone(path: string, seconds: number) {
  const frames = seconds * SNAP_RATE;
  const pcm = new Int16Array(frames * 2);
  for (let i = 0; i < frames; i++) {
    pcm[2 * i] = pcm[2 * i + 1] = Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / SNAP_RATE));
  }
  await Deno.writeFile(path, new Uint8Array(pcm.buffer));
}

/**
 * Snapcast for `seconds`, its server under `clock`, with a `bufferMs`
 * buffer: seconds written by its client, and 20 ms stretches of silence
 * after its first sound (a tone never has one).
 */
async function snapRun(
  dir: string,
  tone: string,
  clock: string,
  bufferMs: number,
  seconds: number,
) {
  const port = freePort();
  const name = `${bufferMs}-${clock.replace(/\W/g, "")}`;
  const out = join(dir, `${name}.raw`);
  const conf = join(dir, `${name}.conf`);
  await Deno.mkdir(join(dir, name));
  await Deno.writeTextFile(
    conf,
    `[stream]\nsource = file://${tone}?name=t\nport = ${port}\nbuffer = ${bufferMs}\n` +
      `codec = pcm\nbind_to_address = 127.0.0.1\n[http]\nenabled = false\n[tcp]\nenabled = false\n` +
      `[server]\ndatadir = ${join(dir, name)}\n[logging]\nsink = null\n`,
  );
  const server = new Deno.Command("snapserver", {
    args: ["-c", conf],
    env: { LD_PRELOAD: fakeTimeLibrary(), FAKETIME: clock },
    stdout: "null",
    stderr: "null",
  }).spawn();
  await new Promise((r) => setTimeout(r, 1000));
  const client = new Deno.Command("snapclient", {
    args: [
      "-h",
      "127.0.0.1",
      "-p",
      String(port),
      "--player",
      `file:filename=${out}`,
      "--logsink",
      "null",
    ],
    stdout: "null",
    stderr: "null",
  }).spawn();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  client.kill("SIGTERM");
  await client.status;
  server.kill("SIGTERM");
  await server.status;
  const bytes = await Deno.readFile(out);
  const pcm = new Int16Array(bytes.buffer, 0, Math.floor(bytes.length / 4) * 2);
  // 20 ms stretches, silent or not; silences count after the first sound.
  const chunk = SNAP_RATE / 50;
  let heard = false;
  let silent = 0;
  for (let at = 0; at + chunk <= pcm.length / 2; at += chunk) {
    let loud = 0;
    for (let i = at; i < at + chunk; i++) loud = Math.max(loud, Math.abs(pcm[2 * i]));
    if (loud >= 50) heard = true;
    else if (heard) silent++;
  }
  return { played: pcm.length / 2 / SNAP_RATE, silent };
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

  if (!(await commandExists("snapserver")) || !(await commandExists("snapclient"))) {
    console.log("\n3. Snapcast rows skipped: apt-get install snapserver snapclient");
    return;
  }
  const dir = await Deno.makeTempDir({ prefix: "bench-snap-" });
  try {
    const tone = join(dir, "tone.raw");
    await writeSnapTone(tone, seconds + 10);
    console.log(
      `\n3. Snapcast 0.26 (Debian), ${seconds} s, the same clocks, raw PCM, client to a file; ` +
        "all four at once\n",
    );
    console.log(
      "| buffer | server clock | seconds written | 20 ms silences after the first sound |",
    );
    console.log("| --: | --- | --: | --: |");
    const runs = [
      [1000, `+0 x${rate}`],
      [1000, "+0 x1"],
      [100, `+0 x${rate}`],
      [100, "+0 x1"],
    ] as const;
    const results = await Promise.all(
      runs.map(([buffer, clock]) => snapRun(dir, tone, clock, buffer, seconds)),
    );
    runs.forEach(([buffer, clock], i) => {
      const r = results[i];
      console.log(`| ${buffer} ms | ${clock} | ${r.played.toFixed(1)} | ${r.silent} |`);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
