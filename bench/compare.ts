/**
 * `deno task compare [--seconds 10] [--loss 0,0.01,0.05,0.1] [--burst 1] [--runs 3] [--rows ...] [--block 1024] [--out DIR]`:
 * streams the same source (seeded noise) over Audio-TCP, Audio-UDP without
 * recovery, Audio-UDP as it runs by default (FEC, `--latency auto`) and,
 * when Debian's `gst-launch-1.0` is installed, GStreamer's RTP stack with
 * and without ULPFEC (`gstreamer.ts`), at each loss rate, and writes
 * `DIR/compare.json`, `DIR/compare.md` and `DIR/compare.svg`.
 *
 * Each row is run `--runs` times, the rounds interleaved (every row at
 * every loss, then again), and reported as the median run with the
 * spread. Our clients count `--seconds` from the same event, the stream's
 * first description arriving, so their block counts compare; GStreamer
 * sends `--seconds` of the same source.
 *
 * Loss is real packet loss. As root with `ip` and `nft`, senders and
 * receivers run in two network namespaces joined by a veth pair and
 * nftables drops packets at random on both hosts, for every row, so TCP's
 * own retransmission runs. Otherwise, and for bursty loss (`--burst N`, a
 * Gilbert-Elliott model with mean burst N, which nftables cannot make),
 * UDP rows go through the impairment relay on loopback, impaired both
 * ways, and TCP rows are reported as not measured, never estimated.
 *
 * The TCP client runs with no latency bound (it plays every block, as TCP
 * delivers them), so its percentiles show what head-of-line blocking costs.
 *
 * @module
 */
import { join } from "node:path";
import { onShutdown, parseCount, parseFlags, parseSecondsFlag, runMain } from "../lib/cli/flags.ts";
import { resolveUserPath } from "../lib/io/paths.ts";
import { UsageError, UserError } from "../lib/core/errors.ts";
import { parseProbability } from "../lib/core/wire/impairment.ts";
import {
  combineRuns,
  compareChart,
  type CompareRow,
  intactShare,
  type LossMethod,
  markdownTable,
  sanityProblems,
  type Variant,
  VARIANTS,
} from "./compare_report.ts";
import type { StreamReport } from "../lib/core/report/stream_report.ts";
import { startUdpRelay } from "../udp/relay.ts";
import { startServerTool, toolCommand } from "../tests/support/tool_process.ts";
import { freePort, writeNoiseWav } from "../tests/support/helpers.ts";
import {
  CLIENT_IP,
  createLossyNetwork,
  type LossyNetwork,
  netnsUnavailable,
  SERVER_IP,
} from "./netns.ts";
import {
  blocksIntact,
  GST_LATENCY_MS,
  gstUnavailable,
  runGstPeer,
  toBigEndian,
} from "./gstreamer.ts";

const PERMS = ["--allow-net", "--allow-ffi", "--allow-read", "--allow-write", "--allow-env"];
/** The code both sides share when they are in two namespaces. */
const COMPARE_CODE = "bench-compare-code";
const RATE = 44100;

/** Options of {@link compare}. */
export interface CompareOptions {
  seconds: number;
  losses: number[];
  /** Mean loss burst length in datagrams (default 1: independent losses). */
  burst?: number;
  /** Rows to run (default all of {@link VARIANTS}). */
  variants?: readonly Variant[];
  /** Runs of each row (default 1). */
  runs?: number;
  block: number;
  outDir: string;
  /** Progress lines (default stdout). */
  log?: (line: string) => void;
  /** Use the namespace network when it is available (default true). */
  useNetns?: boolean;
}

/** What every run shares: the network, the source, why the peers cannot run. */
interface Setup {
  net: LossyNetwork | undefined;
  /** The source as a WAV for our servers, and as RTP L16's bytes for GStreamer. */
  wav: string;
  raw: string;
  rawBytes: Uint8Array;
  gstMissing: string | null;
}

/** Child processes running now, so an interrupted run can stop them. */
const children = new Set<Deno.ChildProcess>();

function track(child: Deno.ChildProcess): Deno.ChildProcess {
  children.add(child);
  child.status.finally(() => children.delete(child));
  return child;
}

/** How a row's loss is made: nftables between namespaces, or the relay on loopback. */
function lossMethod(v: Variant, loss: number, o: CompareOptions, s: Setup): LossMethod | string {
  const burst = (o.burst ?? 1) > 1;
  if (v === "tcp" && loss > 0) {
    if (burst) {
      return "nftables drops at random and the relay carries UDP only: bursts are not made for TCP";
    }
    if (!s.net) return "TCP loss needs root with ip and nft (network namespaces and nftables)";
  }
  if (s.net && !(burst && loss > 0)) return "netns+nftables";
  return loss === 0 ? "loopback" : "udp relay";
}

/** One variant at one loss rate. */
async function runOne(v: Variant, loss: number, o: CompareOptions, s: Setup): Promise<CompareRow> {
  const transport: "tcp" | "udp" = v === "tcp" ? "tcp" : "udp";
  const base = {
    variant: v,
    transport,
    loss,
    burst: o.burst ?? 1,
    block: o.block,
    seconds: o.seconds,
  };
  const method = lossMethod(v, loss, o, s);
  const peer = v === "gst-rtp" || v === "gst-rtp+ulpfec";
  const notMeasured = (note: string): CompareRow => ({
    ...base,
    method: "not measured",
    measured: false,
    wire_bytes: null,
    note,
  });
  if (method !== "netns+nftables" && method !== "loopback" && method !== "udp relay") {
    return notMeasured(method);
  }
  if (peer && s.gstMissing) return notMeasured(s.gstMissing);
  const net = method === "netns+nftables" ? s.net : undefined;
  await s.net?.setLoss(net ? loss : 0);
  const relayFor = (port: number) =>
    method === "udp relay"
      ? startUdpRelay({
        port: 0,
        target: { transport: "udp", hostname: "127.0.0.1", port },
        // Both ways, as nftables drops on both hosts.
        impair: { loss, burst: o.burst ?? 1 },
        both: true,
        // Seeded by the loss rate, so every run repeats; the peers' seed is
        // one apart from ours. (It once counted the processes running, which
        // was 1 for ours and 0 for the peers when nothing lingered.)
        seed: 1 + Math.round(loss * 1000) + (peer ? 0 : 1),
      })
      : undefined;
  const before = await net?.clientBytes();
  const wire = async () => {
    const after = await net?.clientBytes();
    return before && after ? after.rx - before.rx + after.tx - before.tx : null;
  };
  if (peer) {
    const listenPort = net ? 5004 : freePort();
    const relay = relayFor(listenPort);
    const output = join(o.outDir, `.gst-${v}-${loss}.raw`);
    try {
      await runGstPeer({
        source: s.raw,
        output,
        fec: v === "gst-rtp+ulpfec",
        to: net
          ? { hostname: CLIENT_IP, port: listenPort }
          : { hostname: "127.0.0.1", port: relay?.addr.port ?? listenPort },
        listenPort,
        senderNs: net?.server,
        receiverNs: net?.client,
      }, track);
      const got = await Deno.readFile(output);
      const { blocks, intact } = blocksIntact(s.rawBytes, got, o.block);
      return {
        ...base,
        method,
        measured: true,
        intact_share: intact / blocks,
        blocks_received: intact,
        blocks_lost: blocks - intact,
        target_note: `${GST_LATENCY_MS} ms (rtpjitterbuffer, configured)`,
        note: "GStreamer rows: blocks found intact in what rtpL16depay wrote (two 512-frame " +
          "RTP packets a block); latency not measured, gst-launch-1.0 gives no per-packet timing.",
        wire_bytes: await wire(),
      };
    } finally {
      await relay?.close();
      await Deno.remove(output).catch(() => {});
    }
  }
  const host = net ? SERVER_IP : "127.0.0.1";
  // Between the namespaces the server listens beyond loopback, so both
  // sides share a code, as two machines would: the audio is sealed.
  const env = net ? { SOCKETS_CODE: COMPARE_CODE } : undefined;
  await using server = await startServerTool(
    `${transport}/audio_server.ts`,
    [
      "--host",
      host,
      "--port",
      net ? "4444" : "0",
      "--input",
      s.wav,
      "--block",
      String(o.block),
      ...(v === "udp" ? ["--fec", "off"] : []),
    ],
    { permissions: PERMS, netns: net?.server, env },
  );
  track(server.child);
  const relay = relayFor(server.port);
  try {
    const reportPath = join(o.outDir, `.report-${v}-${loss}.json`);
    const latency = v === "tcp"
      // No bound: it plays every block as TCP delivers them.
      ? ["--latency", "600000"]
      // The fixed three-block target Audio-UDP had before `--latency auto`.
      : v === "udp"
      ? ["--latency", String(Math.ceil((3 * o.block * 1000) / RATE))]
      : [];
    const client = track(
      toolCommand(`${transport}/audio_client.ts`, [
        "--host",
        host,
        "--port",
        String(relay?.addr.port ?? server.port),
        "--output",
        "null",
        "--duration",
        String(o.seconds),
        "--report",
        reportPath,
        ...latency,
      ], { permissions: PERMS, netns: net?.client, stderr: "piped", env }).spawn(),
    );
    const out = await client.output();
    if (out.code !== 0) {
      throw new UserError(
        `${v} client failed at ${loss * 100}% loss: ${new TextDecoder().decode(out.stderr).trim()}`,
      );
    }
    const { transport: _, ...report }: StreamReport = JSON.parse(
      await Deno.readTextFile(reportPath),
    );
    await Deno.remove(reportPath);
    return {
      ...base,
      method,
      measured: true,
      ...report,
      intact_share: intactShare(report),
      wire_bytes: await wire(),
    };
  } finally {
    await relay?.close();
  }
}

/** Runs the whole comparison and writes its three files. Returns the rows. */
export async function compare(o: CompareOptions): Promise<CompareRow[]> {
  const log = o.log ?? ((l: string) => console.log(l));
  await Deno.mkdir(o.outDir, { recursive: true });
  const variants = o.variants ?? VARIANTS;
  const why = o.useNetns === false ? "not asked for" : await netnsUnavailable();
  const gstMissing = variants.some((v) => v.startsWith("gst")) ? await gstUnavailable() : null;
  // One source for every row: noise, so GStreamer's packets can be found
  // bit for bit in what it writes.
  const wav = join(o.outDir, ".source.wav");
  const raw = join(o.outDir, ".source.raw");
  const samples = await writeNoiseWav(wav, o.seconds + 10, RATE);
  const rawBytes = toBigEndian(samples.subarray(0, Math.round(o.seconds * RATE)));
  await Deno.writeFile(raw, rawBytes);
  const net = why ? undefined : await createLossyNetwork();
  const setup: Setup = { net, wav, raw, rawBytes, gstMissing };
  // Ctrl-C or SIGTERM: stop the tools and remove the namespaces before exiting.
  const off = onShutdown(async () => {
    for (const c of children) {
      try {
        c.kill("SIGKILL");
      } catch {
        // Already gone.
      }
    }
    await net?.close();
    Deno.exit(130);
  });
  log(
    net
      ? `loss by nftables in network namespaces ${net.server} and ${net.client}` +
        ((o.burst ?? 1) > 1 ? "; bursts by the relay on loopback (UDP rows only)" : "")
      : `no network namespaces (${why}): UDP loss by the impairment relay, TCP loss not measured`,
  );
  if (gstMissing) log(`GStreamer rows not measured: ${gstMissing}`);
  const runs = o.runs ?? 1;
  const results = new Map<string, CompareRow[]>();
  try {
    for (let run = 1; run <= runs; run++) {
      for (const loss of o.losses) {
        for (const v of variants) {
          const of = runs > 1 ? ` (run ${run} of ${runs})` : "";
          log(`${v} at ${+(loss * 100).toFixed(2)}% loss, ${o.seconds} s${of} ...`);
          const row = await runOne(v, loss, o, setup);
          const problems = sanityProblems(row);
          if (problems.length) log(`  sanity: ${problems.join("; ")}`);
          const key = `${v}@${loss}`;
          results.set(key, [...(results.get(key) ?? []), row]);
        }
      }
    }
  } finally {
    off();
    await net?.close();
    await Deno.remove(wav).catch(() => {});
    await Deno.remove(raw).catch(() => {});
  }
  const rows = [...results.values()].map(combineRuns);
  await Deno.writeTextFile(join(o.outDir, "compare.json"), JSON.stringify(rows, null, 2) + "\n");
  await Deno.writeTextFile(join(o.outDir, "compare.md"), markdownTable(rows) + "\n");
  await Deno.writeTextFile(join(o.outDir, "compare.svg"), compareChart(rows));
  return rows;
}

const FLAGS = {
  seconds: { type: "string", default: "10", value: "S", help: "seconds per run" },
  loss: {
    type: "string",
    default: "0,0.01,0.05,0.1",
    value: "P,P,...",
    help: "packet loss rates",
  },
  runs: { type: "string", default: "3", value: "N", help: "runs of each row (median and spread)" },
  burst: {
    type: "string",
    default: "1",
    value: "N",
    help: "mean loss burst length (Gilbert-Elliott; above 1 the relay makes UDP loss)",
  },
  rows: {
    type: "string",
    default: VARIANTS.join(","),
    value: "ROW,...",
    help: "rows to run",
  },
  block: { type: "string", default: "1024", value: "FRAMES", help: "frames per block, both" },
  out: { type: "string", default: "compare-out", value: "DIR", help: "where the results go" },
} as const;

if (import.meta.main) {
  runMain(async () => {
    const { flags } = parseFlags(Deno.args, FLAGS, {
      usage: "deno task compare",
      summary: "Compare Audio-TCP and Audio-UDP latency and loss under real packet loss.",
    });
    const losses = flags.loss.split(",").map((t) => {
      const p = parseProbability(t);
      if (p === null || p >= 1) throw new UsageError(`--loss ${t} is not a loss rate below 1`);
      return p;
    });
    const block = Number(flags.block);
    if (!Number.isInteger(block) || block < 64 || block > 8192) {
      throw new UsageError("--block must be 64 to 8192 frames");
    }
    const outDir = resolveUserPath(flags.out);
    const burst = Number(flags.burst);
    if (!(burst >= 1 && burst <= 100)) throw new UsageError("--burst must be 1 to 100 datagrams");
    const variants = flags.rows.split(",").map((t) => t.trim()).filter(Boolean);
    for (const v of variants) {
      if (!(VARIANTS as readonly string[]).includes(v)) {
        throw new UsageError(`--rows ${v} is not one of ${VARIANTS.join(", ")}`);
      }
    }
    const rows = await compare({
      seconds: parseSecondsFlag("seconds", flags.seconds),
      losses,
      burst,
      variants: variants as Variant[],
      runs: parseCount("runs", flags.runs),
      block,
      outDir,
    });
    console.log("\n" + markdownTable(rows));
    console.log(`\nwrote ${join(outDir, "compare.json")}, compare.md and compare.svg`);
  });
}
