/**
 * The comparison: its pure parts, a small real run (with GStreamer's rows
 * where it is installed, always under CI), bursty loss through the relay,
 * and cleanup.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  combineRuns,
  compareChart,
  type CompareRow,
  intactShare,
  markdownTable,
  sanityProblems,
  VARIANTS,
} from "../../bench/compare_report.ts";
import { gstUnavailable } from "../../bench/gstreamer.ts";
import { namespacesOf, netnsUnavailable } from "../../bench/netns.ts";
import { ignoreUnless, requireHere } from "../support/tool_process.ts";
import { ROOT, tempDir } from "../support/helpers.ts";

function row(extra: Partial<CompareRow> = {}): CompareRow {
  const r: CompareRow = {
    variant: "udp",
    transport: "udp",
    loss: 0.05,
    method: "udp relay",
    measured: true,
    block: 1024,
    seconds: 10,
    wire_bytes: 1000,
    blocks_received: 390,
    blocks_lost: 30,
    blocks_late: 1,
    blocks_corrupted: 2,
    blocks_concealed: 33,
    bytes_received: 900000,
    duration_s: 10,
    reconnects: 0,
    latency_ms: { p50: 70, p95: 71, p99: 72, max: 75 },
    ...extra,
  };
  return { intact_share: intactShare(r as Required<CompareRow>), ...r };
}

Deno.test("sanity checks catch disordered percentiles and counts that do not add up", () => {
  assert.deepEqual(sanityProblems(row()), []);
  assert.match(
    sanityProblems(row({ latency_ms: { p50: 80, p95: 71, p99: 72, max: 75 } }))[0],
    /percentiles out of order/,
  );
  assert.match(sanityProblems(row({ blocks_received: 5000 })).join(), /blocks accounted for/);
  assert.match(sanityProblems(row({ blocks_concealed: 3 }))[0], /3 concealed for 33/);
  assert.match(
    sanityProblems(row({ blocks_lost: -1, blocks_concealed: 2 })).join(),
    /whole number/,
  );
  assert.match(sanityProblems(row({ intact_share: 0.99 })).join(), /does not match the counts/);
  // A sink that fell behind: its skipped blocks are late, never concealed;
  // its skipped concealments count for the slots they stood in for.
  const behind = { blocks_late: 5, blocks_sink_late: 4, blocks_concealed: 30, blocks_lost: 29 };
  assert.deepEqual(sanityProblems(row({ ...behind, concealments_skipped: 2 })), []);
  assert.match(
    sanityProblems(row({ ...behind, concealments_skipped: 1 })).join(),
    /30 concealed and 1 skipped for 32/,
  );
  const unmeasured: CompareRow = {
    variant: "tcp",
    transport: "tcp",
    loss: 0.05,
    method: "not measured",
    measured: false,
    note: "needs root",
    wire_bytes: null,
    block: 1024,
    seconds: 10,
  };
  assert.deepEqual(sanityProblems(unmeasured), []);
  // A peer measured from outside: blocks intact, no latency.
  const peer: CompareRow = {
    variant: "gst-rtp",
    transport: "udp",
    loss: 0.05,
    method: "udp relay",
    measured: true,
    wire_bytes: null,
    block: 1024,
    seconds: 10,
    blocks_received: 380,
    blocks_lost: 50,
    intact_share: 380 / 430,
    target_note: "200 ms (rtpjitterbuffer, configured)",
    note: "GStreamer rows: latency not measured.",
  };
  assert.deepEqual(sanityProblems(peer), []);
  assert.match(sanityProblems({ ...peer, intact_share: 1.5 }).join(), /share intact/);
  const md = markdownTable([row(), unmeasured, peer]);
  assert.match(
    md,
    /\| udp \| 5% \| udp relay \| 92\.2% \| 390 \| 30 \| 1 \| 2 \| 33 \| – \| 70 ms \|/,
  );
  assert.match(md, /\| tcp \| 5% \| not measured: needs root \|/);
  assert.match(
    md,
    /\| gst-rtp \| 5% \| udp relay \| 88\.37% \| 380 \| 50 \| – \| – \| – \| – \| not measured \|/,
  );
  assert.match(md, /200 ms \(rtpjitterbuffer, configured\)/);
  assert.match(md, /GStreamer rows: latency not measured\./, "the peer's note is printed");
  const svg = compareChart([row(), row({ loss: 0 }), unmeasured, peer]);
  assert.match(svg, /^<svg /);
  assert.match(svg, /udp p99/);
  assert.match(svg, /Share of blocks played intact/);
  assert.match(svg, /latency not measured:/);
  assert.match(svg, /not measured:/);
});

Deno.test("repeated runs make one row: the median run, with each figure's range", () => {
  const runs = [
    row({ blocks_received: 380, latency_ms: { p50: 90, p95: 95, p99: 99, max: 120 } }),
    row({ blocks_received: 395, latency_ms: { p50: 70, p95: 75, p99: 80, max: 90 } }),
    row({ blocks_received: 390, latency_ms: { p50: 75, p95: 80, p99: 85, max: 95 } }),
  ];
  const r = combineRuns(runs);
  assert.equal(r.runs, 3);
  assert.equal(r.latency_ms!.p50, 75, "the median run by p50");
  assert.equal(r.blocks_received, 390);
  assert.deepEqual(r.spread!.blocks_received, [380, 395]);
  assert.deepEqual(r.spread!.p99, [80, 99]);
  const md = markdownTable([r]);
  assert.match(md, /\| 390 \(380–395\) \|/);
  assert.match(md, /\| 75 ms \(70–90\) \|/);
  assert.match(md, /median \(by p50, or by share intact where latency is not measured\) of 3 runs/);
});

const FIELDS = [
  "variant",
  "transport",
  "loss",
  "method",
  "intact_share",
  "blocks_received",
  "blocks_lost",
  "blocks_corrupted",
  "blocks_concealed",
  "blocks_late",
  "bytes_received",
  "latency_ms",
  "wire_bytes",
];

const GST_MISSING = await gstUnavailable();

Deno.test("compare runs at a small size and writes sane JSON, a table and a chart", async () => {
  // Under CI GStreamer is installed and its rows must run; elsewhere they may say why not.
  if (Deno.env.get("CI") === "true") requireHere(GST_MISSING);
  await using out = await tempDir();
  const proc = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      join(ROOT, "bench/compare.ts"),
      "--seconds",
      "2",
      "--loss",
      "0,0.05",
      "--runs",
      "2",
      "--out",
      out.path,
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const cmd = await proc.output();
  const stdout = new TextDecoder().decode(cmd.stdout);
  assert.equal(cmd.code, 0, new TextDecoder().decode(cmd.stderr));
  assert.match(stdout, /\| row \| loss \|/, "the table is printed");
  // No run failed its sanity checks (the message shows the run that did).
  assert.doesNotMatch(stdout, /sanity:/, stdout);
  const rows: CompareRow[] = JSON.parse(await Deno.readTextFile(join(out.path, "compare.json")));
  assert.deepEqual(
    rows.map((r) => [r.variant, r.loss]),
    [0, 0.05].flatMap((loss) => VARIANTS.map((v) => [v, loss])),
  );
  const netns = (await netnsUnavailable()) === null;
  for (const r of rows) {
    const at = `${r.variant} at ${r.loss}`;
    if (!r.measured) {
      const tcpWithoutRoot = !netns && r.variant === "tcp" && r.loss > 0;
      const peerMissing = GST_MISSING !== null && r.variant.startsWith("gst");
      assert.ok(tcpWithoutRoot || peerMissing, `${at} not measured: ${r.note}`);
      continue;
    }
    assert.deepEqual(sanityProblems(r), [], at);
    assert.equal(r.runs, 2);
    if (r.variant.startsWith("gst")) {
      // Measured from outside: blocks intact of the source, no latency.
      assert.equal(r.latency_ms, undefined, `${at}: latency is never estimated`);
      assert.ok(r.blocks_received! + r.blocks_lost! >= 80, JSON.stringify(r));
      if (r.loss === 0) assert.equal(r.intact_share, 1, `${at}: a clean path is all intact`);
      continue;
    }
    for (const f of FIELDS) assert.ok(f in r, `${at}: no ${f}`);
    for (const k of ["p50", "p95", "p99", "max"] as const) {
      assert.equal(typeof r.latency_ms![k], "number");
    }
    // Two runs, the row their median, with each figure's range around it.
    const [lo, hi] = r.spread!.p50!;
    assert.ok(lo <= r.latency_ms!.p50 && r.latency_ms!.p50 <= hi, JSON.stringify(r.spread));
    const [rlo, rhi] = r.spread!.blocks_received!;
    assert.ok(rlo <= r.blocks_received! && r.blocks_received! <= rhi);
    // Our clients count their two seconds from the stream's start: on a
    // clean path, the same number of blocks within a few, whichever row.
    if (r.loss === 0) {
      assert.ok(
        Math.abs(r.blocks_received! + r.blocks_concealed! - 2 * 44100 / 1024) < 6,
        JSON.stringify(r),
      );
    }
    if (r.variant === "udp") assert.equal(r.fragments_per_block, 2);
    if (r.variant === "udp+fec") {
      assert.equal(r.fragments_per_block, 4);
      assert.deepEqual(r.fec, { scheme: "rs-gf256", blocks: 2, repair: 4 });
      assert.equal(r.target_latency_auto, true);
    }
    if (netns) {
      assert.equal(r.method, "netns+nftables");
      assert.ok(r.wire_bytes! > r.bytes_received!, "the wire carries headers too");
    }
  }
  const at5 = (v: string) => rows.find((r) => r.variant === v && r.loss === 0.05)!;
  assert.ok(at5("udp").blocks_lost! > 0, "plain UDP loses blocks under loss");
  assert.ok((at5("udp+fec").blocks_recovered as number) > 0, "FEC rebuilds blocks");
  // And loses fewer: what FEC does. (Its share played intact is higher too
  // on a quiet machine, but late blocks, a loaded machine's, count there.)
  const lostShare = (r: CompareRow) =>
    r.blocks_lost! / (r.blocks_received! + r.blocks_lost! + r.blocks_late! + r.blocks_corrupted!);
  assert.ok(
    lostShare(at5("udp+fec")) < lostShare(at5("udp")),
    `FEC loses fewer: ${JSON.stringify([at5("udp+fec"), at5("udp")])}`,
  );
  const md = await Deno.readTextFile(join(out.path, "compare.md"));
  assert.ok(md.includes("| udp+fec | 5% |"));
  const svg = await Deno.readTextFile(join(out.path, "compare.svg"));
  assert.match(svg, /<svg /);
  assert.match(svg, /Share of blocks played intact/);
  assert.deepEqual(await namespacesOf(proc.pid), [], "namespaces removed");
});

const NETNS_MISSING = await netnsUnavailable();

Deno.test({
  name: "an interrupted compare removes its namespaces and rules",
  ignore: ignoreUnless(NETNS_MISSING, "network namespaces"),
}, async (t) => {
  requireHere(NETNS_MISSING);
  await using out = await tempDir();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      join(ROOT, "bench/compare.ts"),
      "--seconds",
      "30",
      "--out",
      out.path,
    ],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const deadline = Date.now() + 120_000;
  while (!text.includes("tcp at 0% loss")) {
    assert.ok(Date.now() < deadline, `no "tcp at 0% loss" within 120 s: ${text}`);
    const { value, done } = await reader.read();
    assert.ok(!done, `the bench ended before its first row: ${text}`);
    text += value ?? "";
  }
  assert.equal((await namespacesOf(child.pid)).length, 2, "the run made its two namespaces");
  child.kill("SIGTERM");
  const status = await child.status;
  await reader.cancel();
  assert.notEqual(status.code, 0);
  assert.deepEqual(await namespacesOf(child.pid), []);
  void t;
});

Deno.test("without namespaces, or with bursts, UDP loss comes from the relay and TCP under loss is not measured", async () => {
  const { compare } = await import("../../bench/compare.ts");
  await using out = await tempDir();
  const rows = await compare({
    seconds: 1.5,
    losses: [0, 0.1],
    variants: ["tcp", "udp"],
    block: 1024,
    outDir: out.path,
    useNetns: false,
    log: () => {},
  });
  assert.deepEqual(rows.map((r) => [r.variant, r.loss, r.method, r.measured]), [
    ["tcp", 0, "loopback", true],
    ["udp", 0, "loopback", true],
    ["tcp", 0.1, "not measured", false],
    ["udp", 0.1, "udp relay", true],
  ]);
  assert.equal(rows[2].latency_ms, undefined, "never estimated");
  for (const r of rows) assert.deepEqual(sanityProblems(r), []);
  assert.ok(rows[3].blocks_lost! > 0);
  // Bursts: nftables cannot make them, so even as root UDP goes through the
  // relay (Gilbert-Elliott) and TCP is not measured.
  const bursty = await compare({
    seconds: 1.5,
    losses: [0.1],
    burst: 4,
    variants: ["tcp", "udp+fec"],
    block: 1024,
    outDir: out.path,
    log: () => {},
  });
  assert.deepEqual(bursty.map((r) => [r.variant, r.method, r.burst]), [
    ["tcp", "not measured", 4],
    ["udp+fec", "udp relay", 4],
  ]);
  assert.match(bursty[0].note!, /bursts/);
  assert.deepEqual(sanityProblems(bursty[1]), []);
  assert.match(await Deno.readTextFile(join(out.path, "compare.md")), /10% \(bursts of 4\)/);
});
