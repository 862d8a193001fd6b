/**
 * Two machines, two clocks: the server runs under Debian's `faketime` with
 * a clock of its own (seconds behind or ahead, or running a few tenths of a
 * percent fast or slow) and the client on the real clock. Both transports
 * must record the source sample for sample, report latency as it really
 * is, estimate the offset and drift, and never conceal or skip a block
 * because of the clocks.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { StreamReport } from "../../lib/core/report/stream_report.ts";
import { alignBlocks, compareBlocks, readWav, tempDir, writeNoiseWav } from "../support/helpers.ts";
import {
  fakeTimeLibrary,
  ignoreUnless,
  startServerTool,
  toolCommand,
} from "../support/tool_process.ts";
import { now } from "../../lib/io/clock.ts";
import { soundTest } from "../support/pulse.ts";

const BLOCK = 1024;
const BLOCK_MS = (BLOCK / 44100) * 1000;
// Generous, so that a stall of the noisy 2-core machine under four streams is not a late block.
const UDP_TARGET_MS = 100;

// Under CI faketime is installed by .ci/run, and a missing one fails these
// tests instead of skipping them.
const FAKETIME_MISSING = (() => {
  try {
    fakeTimeLibrary();
    return null;
  } catch (err) {
    return (err as Error).message;
  }
})();
const missing = ignoreUnless(FAKETIME_MISSING, "two clocks");

interface Run {
  report: StreamReport;
  /** Client clock just before the server started, and when the client ended, ms. */
  startedAt: number;
  endedAt: number;
  /** Blocks of the recording that differ from the source. */
  different: number[];
  /** Blocks of the recording equal to the source. */
  same: number;
}

/** Streams `seconds` of noise from a server under `clock` to a client on the real clock. */
async function stream(transport: "tcp" | "udp", clock: string, seconds: number): Promise<Run> {
  await using dir = await tempDir();
  const src = join(dir.path, "src.wav");
  const rec = join(dir.path, "rec.wav");
  const source = await writeNoiseWav(src, seconds + 3);
  const startedAt = now();
  await using server = await startServerTool(
    `${transport}/audio_server.ts`,
    ["--port", "0", "--input", src, "--block", String(BLOCK)],
    { faketime: clock, permissions: ["--allow-net", "--allow-read"] },
  );
  // The client runs in a process of its own, as on its own machine: four
  // sessions sharing one event loop would stall each other.
  const report = await runClient(transport, server.port, seconds, join(dir.path, "r.json"), [
    "--output",
    rec,
    ...(transport === "udp" ? ["--latency", String(UDP_TARGET_MS)] : []),
  ]);
  const endedAt = now();
  const { samples } = await readWav(rec);
  const start = alignBlocks(source, samples, BLOCK);
  assert.ok(start >= 0, `${transport} ${clock}: the recording starts on a source block`);
  return { report, startedAt, endedAt, ...compareBlocks(source, samples, BLOCK, start) };
}

/** Runs the real client tool for `seconds` and returns its `--report`. */
async function runClient(
  transport: "tcp" | "udp",
  port: number,
  seconds: number,
  reportPath: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<StreamReport> {
  const out = await toolCommand(`${transport}/audio_client.ts`, [
    "--port",
    String(port),
    "--duration",
    String(seconds),
    "--report",
    reportPath,
    ...args,
  ], { env, stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, text);
  return JSON.parse(await Deno.readTextFile(reportPath));
}

/** What holds whatever the clocks: every block recorded intact, on time, none concealed. */
function assertClean(what: string, r: Run, seconds: number) {
  const rep = r.report;
  assert.deepEqual(
    r.different,
    [],
    `${what}: blocks differ from the source; report ${JSON.stringify(rep)}`,
  );
  assert.equal(r.same, rep.blocks_received, what);
  assert.ok(
    rep.blocks_received > ((seconds - 1) * 1000) / BLOCK_MS,
    `${what}: ${rep.blocks_received} blocks`,
  );
  assert.equal(
    rep.blocks_lost + rep.blocks_corrupted + rep.blocks_concealed + rep.blocks_late,
    0,
    `${what}: ${JSON.stringify(rep)}`,
  );
}

/**
 * Latency as it is. A WAV source stamps a block with the capture time of its
 * first sample, one block before it is sent; so TCP's truth is a block plus
 * a loopback hop, and UDP's is its target.
 */
function assertTrueLatency(what: string, transport: "tcp" | "udp", rep: StreamReport) {
  const l = rep.latency_ms;
  if (transport === "udp") {
    assert.ok(
      Math.abs(l.p50 - UDP_TARGET_MS) < 5,
      `${what}: p50 ${l.p50} ms, target ${UDP_TARGET_MS}`,
    );
    // The tail is the noisy machine's (timers, four streams on two cores); a
    // clock 0.3 s off would put it hundreds of ms out.
    assert.ok(l.p99 - l.p50 < 50, `${what}: p50 ${l.p50} ms, p99 ${l.p99}`);
  } else {
    assert.ok(l.p50 >= BLOCK_MS && l.p50 < BLOCK_MS + 5, `${what}: p50 ${l.p50} ms`);
    assert.ok(l.p99 - l.p50 < 50, `${what}: p50 ${l.p50} ms, p99 ${l.p99}`);
  }
}

function within(what: string, estimate: unknown, truth: number, share: number) {
  assert.equal(typeof estimate, "number", `${what}: not reported`);
  const e = estimate as number;
  assert.ok(Math.abs(e - truth) <= Math.abs(truth) * share, `${what}: ${e}, truth ${truth}`);
}

Deno.test({
  name:
    "two clocks: seconds behind or ahead, both transports record every block and report true latency",
  ignore: missing,
  fn: async () => {
    const cases = [
      ["udp", "-0.3s", -300],
      ["udp", "+2s", 2000],
      ["tcp", "-0.3s", -300],
      ["tcp", "+2s", 2000],
    ] as const;
    const runs = await Promise.all(cases.map(([t, clock]) => stream(t, clock, 4)));
    cases.forEach(([transport, clock, offset], i) => {
      const what = `${transport}, server clock ${clock}`;
      const r = runs[i];
      assertClean(what, r, 4);
      assertTrueLatency(what, transport, r.report);
      within(`${what}: clock_offset_ms`, r.report.clock_offset_ms, offset, 0.1);
      assert.ok((r.report.clock_rtt_ms as number) < 10, `${what}: rtt ${r.report.clock_rtt_ms}`);
    });
  },
});

Deno.test({
  name:
    "two clocks: a server clock 0.3% fast or slow for a minute, no block concealed, skipped or late",
  ignore: missing,
  fn: async () => {
    const cases = [
      ["udp", "+0 x1.003", 3000],
      ["udp", "+0 x0.997", -3000],
      ["tcp", "+0 x1.003", 3000],
      ["tcp", "+0 x0.997", -3000],
    ] as const;
    // Two sessions at a time (each a server and a client process): four at
    // once on two cores stalled the WAV sinks now and then, a sink's
    // hiccup and not the clocks'.
    const runs = [
      ...await Promise.all(cases.slice(0, 2).map(([t, clock]) => stream(t, clock, 60))),
      ...await Promise.all(cases.slice(2).map(([t, clock]) => stream(t, clock, 60))),
    ];
    cases.forEach(([transport, clock, ppm], i) => {
      const what = `${transport}, server clock ${clock}`;
      const r = runs[i];
      assertClean(what, r, 60);
      assertTrueLatency(what, transport, r.report);
      within(`${what}: clock_drift_ppm`, r.report.clock_drift_ppm, ppm, 0.1);
      // The server's clock started with the client's and ran away from it:
      // by the end it was (run time × drift) off. Latency is true only if
      // the play-out followed that.
      const truth = ((r.endedAt - r.startedAt) * ppm) / 1e6;
      within(`${what}: clock_offset_ms`, r.report.clock_offset_ms, truth, 0.1);
    });
  },
});

soundTest(
  "two clocks: into a sound device, a sender 0.3% fast or slow is followed, the device's queue held",
  async (pulse) => {
    fakeTimeLibrary(); // throws, saying what to install, where faketime is missing
    await using dir = await tempDir();
    // UDP from a server 0.3% fast and TCP from one 0.3% slow, both into the
    // private PulseAudio's speaker for 40 s.
    const cases = [["udp", "+0 x1.003", 3000], ["tcp", "+0 x0.997", -3000]] as const;
    const reports = await Promise.all(cases.map(async ([transport, clock], i) => {
      await using server = await startServerTool(
        `${transport}/audio_server.ts`,
        ["--port", "0", "--input", "tone:440", "--block", String(BLOCK)],
        { faketime: clock, permissions: ["--allow-net", "--allow-read"] },
      );
      return await runClient(transport, server.port, 40, join(dir.path, `${i}.json`), [
        "--output",
        "default",
      ], { ...pulse.env, PULSE_SINK: "spk" });
    }));
    cases.forEach(([transport, clock, ppm], i) => {
      const r = reports[i];
      const what = `${transport}, server clock ${clock}, into a device`;
      within(`${what}: rate_correction_ppm`, r.rate_correction_ppm, ppm, 0.1);
      // 0.3% of what was played (about 40 s × 44100 frames) taken out or put
      // in, less the first seconds, before the drift was known.
      const played = r.blocks_received * BLOCK;
      within(
        `${what}: frames removed or added`,
        ppm > 0 ? r.frames_removed : -(r.frames_added as number),
        (played * ppm) / 1e6,
        0.2,
      );
      // Held: at the end the device's queue is within two blocks of where it
      // settled (the matcher leaves a block's wobble alone); unmatched, it
      // would be 120 ms over or run dry.
      const error = r.sink_queue_error_ms as number;
      assert.ok(Math.abs(error) <= 2 * BLOCK_MS, `${what}: queue ${error} ms off`);
      // A new PulseAudio stream stalls as it starts; a few blocks may be lost then, never after.
      assert.ok(r.blocks_concealed <= 5, `${what}: ${JSON.stringify(r)}`);
    });
  },
);
