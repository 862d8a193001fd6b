/**
 * `deno task compare [--seconds 10] [--loss 0,0.01,0.05,0.1] [--runs 3] [--block 1024] [--out DIR]`:
 * streams the same tone over Audio-TCP and Audio-UDP at each loss rate and
 * writes `DIR/compare.json`, `DIR/compare.md` and `DIR/compare.svg`.
 *
 * Each row is run `--runs` times, the rounds interleaved (every transport
 * at every loss, then again), and reported as the median run with the
 * spread. Both clients count `--seconds` from the same event, the stream's
 * first description arriving, so their block counts compare.
 *
 * Loss is real packet loss. As root with `ip` and `nft`, server and client
 * run in two network namespaces joined by a veth pair and nftables drops
 * packets at random on both hosts, for both transports, so TCP's own
 * retransmission runs. Otherwise UDP goes through the impairment relay on
 * loopback, and TCP rows at non-zero loss are reported as not measured,
 * never estimated.
 *
 * The TCP client runs with no latency bound (it plays every block, as TCP
 * delivers them), so its percentiles show what head-of-line blocking costs;
 * the UDP client runs with its default jitter target.
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
  type CompareRow,
  latencyChart,
  type LossMethod,
  markdownTable,
  sanityProblems,
} from "../lib/core/report/compare.ts";
import type { StreamReport } from "../lib/core/report/stream_report.ts";
import { startUdpRelay } from "../udp/relay.ts";
import { startServerTool, toolCommand } from "../tests/support/tool_process.ts";
import { createLossyNetwork, type LossyNetwork, netnsUnavailable, SERVER_IP } from "./netns.ts";

const PERMS = ["--allow-net", "--allow-ffi", "--allow-read", "--allow-write", "--allow-env"];
/** The code both sides share when they are in two namespaces. */
const COMPARE_CODE = "bench-compare-code";

/** Options of {@link compare}. */
export interface CompareOptions {
  seconds: number;
  losses: number[];
  /** Runs of each row (default 1). */
  runs?: number;
  block: number;
  outDir: string;
  /** Progress lines (default stdout). */
  log?: (line: string) => void;
  /** Use the namespace network when it is available (default true). */
  useNetns?: boolean;
}

/** Child processes running now, so an interrupted run can stop them. */
const children = new Set<Deno.ChildProcess>();

function track(child: Deno.ChildProcess): Deno.ChildProcess {
  children.add(child);
  child.status.finally(() => children.delete(child));
  return child;
}

/** One transport at one loss rate. */
async function runOne(
  transport: "tcp" | "udp",
  loss: number,
  o: CompareOptions,
  net: LossyNetwork | undefined,
): Promise<CompareRow> {
  const base = { transport, loss, block: o.block, seconds: o.seconds };
  let method: LossMethod = net ? "netns+nftables" : loss === 0 ? "loopback" : "udp relay";
  if (!net && transport === "tcp" && loss > 0) {
    return {
      ...base,
      method: "not measured",
      measured: false,
      wire_bytes: null,
      note: "TCP loss needs root with ip and nft (network namespaces and nftables)",
    };
  }
  const host = net ? SERVER_IP : "127.0.0.1";
  await net?.setLoss(loss);
  // Between the namespaces the server listens beyond loopback, so both
  // sides share a code, as two machines would: the audio is sealed.
  const env = net ? { SOCKETS_CODE: COMPARE_CODE } : undefined;
  await using server = await startServerTool(
    `${transport}/audio_server.ts`,
    ["--host", host, "--port", net ? "4444" : "0", "--input", "tone", "--block", String(o.block)],
    { permissions: PERMS, netns: net?.server, env },
  );
  track(server.child);
  let relay;
  try {
    let target = server.port;
    if (!net && transport === "udp" && loss > 0) {
      relay = startUdpRelay({
        port: 0,
        target: { transport: "udp", hostname: "127.0.0.1", port: server.port },
        impair: { loss },
        seed: 1 + Math.round(loss * 1000),
      });
      target = relay.addr.port;
      method = "udp relay";
    }
    const reportPath = join(o.outDir, `.report-${transport}-${loss}.json`);
    const before = await net?.clientBytes();
    const client = track(
      toolCommand(`${transport}/audio_client.ts`, [
        "--host",
        host,
        "--port",
        String(target),
        "--output",
        "null",
        "--duration",
        String(o.seconds),
        "--report",
        reportPath,
        ...(transport === "tcp" ? ["--latency", "600000"] : []),
      ], { permissions: PERMS, netns: net?.client, stderr: "piped", env }).spawn(),
    );
    const out = await client.output();
    if (out.code !== 0) {
      throw new UserError(
        `${transport} client failed at ${loss * 100}% loss: ${
          new TextDecoder().decode(out.stderr).trim()
        }`,
      );
    }
    const { transport: _, ...report }: StreamReport = JSON.parse(
      await Deno.readTextFile(reportPath),
    );
    await Deno.remove(reportPath);
    const after = await net?.clientBytes();
    let wire: number | null = null;
    if (before && after) wire = after.rx - before.rx + after.tx - before.tx;
    return { ...base, method, measured: true, ...report, wire_bytes: wire };
  } finally {
    await relay?.close();
  }
}

/** Runs the whole comparison and writes its three files. Returns the rows. */
export async function compare(o: CompareOptions): Promise<CompareRow[]> {
  const log = o.log ?? ((l: string) => console.log(l));
  await Deno.mkdir(o.outDir, { recursive: true });
  const why = o.useNetns === false ? "not asked for" : await netnsUnavailable();
  const net = why ? undefined : await createLossyNetwork();
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
      ? `loss by nftables in network namespaces ${net.server} and ${net.client}`
      : `no network namespaces (${why}): UDP loss by the impairment relay, TCP loss not measured`,
  );
  const runs = o.runs ?? 1;
  const results = new Map<string, CompareRow[]>();
  try {
    for (let run = 1; run <= runs; run++) {
      for (const loss of o.losses) {
        for (const transport of ["tcp", "udp"] as const) {
          const of = runs > 1 ? ` (run ${run} of ${runs})` : "";
          log(`${transport} at ${+(loss * 100).toFixed(2)}% loss, ${o.seconds} s${of} ...`);
          const row = await runOne(transport, loss, o, net);
          const problems = sanityProblems(row);
          if (problems.length) log(`  sanity: ${problems.join("; ")}`);
          const key = `${transport}@${loss}`;
          results.set(key, [...(results.get(key) ?? []), row]);
        }
      }
    }
  } finally {
    off();
    await net?.close();
  }
  const rows = [...results.values()].map(combineRuns);
  await Deno.writeTextFile(join(o.outDir, "compare.json"), JSON.stringify(rows, null, 2) + "\n");
  await Deno.writeTextFile(join(o.outDir, "compare.md"), markdownTable(rows) + "\n");
  await Deno.writeTextFile(join(o.outDir, "compare.svg"), latencyChart(rows));
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
    const rows = await compare({
      seconds: parseSecondsFlag("seconds", flags.seconds),
      losses,
      runs: parseCount("runs", flags.runs),
      block,
      outDir,
    });
    console.log("\n" + markdownTable(rows));
    console.log(`\nwrote ${join(outDir, "compare.json")}, compare.md and compare.svg`);
  });
}
