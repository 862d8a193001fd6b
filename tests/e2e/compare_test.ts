/** The TCP-versus-UDP comparison: its pure parts, a small real run, and cleanup. */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  combineRuns,
  type CompareRow,
  latencyChart,
  markdownTable,
  sanityProblems,
} from "../../lib/core/report/compare.ts";
import { leftoverNamespaces, netnsUnavailable } from "../../bench/netns.ts";
import { ignoreUnless, requireHere } from "../support/tool_process.ts";
import { ROOT, tempDir } from "../support/helpers.ts";

function row(extra: Partial<CompareRow> = {}): CompareRow {
  return {
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
}

Deno.test("sanity checks catch disordered percentiles and counts that do not add up", () => {
  assert.deepEqual(sanityProblems(row()), []);
  assert.match(
    sanityProblems(row({ latency_ms: { p50: 80, p95: 71, p99: 72, max: 75 } }))[0],
    /percentiles out of order/,
  );
  assert.match(sanityProblems(row({ blocks_received: 5000 }))[0], /blocks accounted for/);
  assert.match(sanityProblems(row({ blocks_concealed: 3 }))[0], /3 concealed for 33/);
  assert.match(
    sanityProblems(row({ blocks_lost: -1, blocks_concealed: 2 })).join(),
    /whole number/,
  );
  const unmeasured: CompareRow = {
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
  const md = markdownTable([row(), unmeasured]);
  assert.match(md, /\| udp \| 5% \| udp relay \| 390 \| 30 \| 1 \| 2 \| 33 \| 70 ms \|/);
  assert.match(md, /\| tcp \| 5% \| not measured: needs root \|/);
  const svg = latencyChart([row(), row({ loss: 0 }), unmeasured]);
  assert.match(svg, /^<svg /);
  assert.match(svg, /UDP p99/);
  assert.match(svg, /not measured/);
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
  assert.match(md, /median \(by p50\) of 3 runs/);
});

const FIELDS = [
  "transport",
  "loss",
  "method",
  "blocks_received",
  "blocks_lost",
  "blocks_corrupted",
  "blocks_concealed",
  "blocks_late",
  "bytes_received",
  "latency_ms",
  "wire_bytes",
];

Deno.test("compare runs at a small size and writes sane JSON, a table and a chart", async () => {
  await using out = await tempDir();
  const cmd = await new Deno.Command(Deno.execPath(), {
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
  }).output();
  const stdout = new TextDecoder().decode(cmd.stdout);
  assert.equal(cmd.code, 0, new TextDecoder().decode(cmd.stderr));
  assert.match(stdout, /\| transport \| loss \|/, "the table is printed");
  const rows: CompareRow[] = JSON.parse(await Deno.readTextFile(join(out.path, "compare.json")));
  assert.deepEqual(rows.map((r) => [r.transport, r.loss]), [
    ["tcp", 0],
    ["udp", 0],
    ["tcp", 0.05],
    ["udp", 0.05],
  ]);
  const netns = (await netnsUnavailable()) === null;
  for (const r of rows) {
    if (!r.measured) {
      assert.ok(!netns && r.transport === "tcp" && r.loss > 0, "only TCP under loss without root");
      assert.match(r.note!, /root/);
      continue;
    }
    for (const f of FIELDS) assert.ok(f in r, `${r.transport} ${r.loss}: no ${f}`);
    for (const k of ["p50", "p95", "p99", "max"] as const) {
      assert.equal(typeof r.latency_ms![k], "number");
    }
    assert.deepEqual(sanityProblems(r), [], `${r.transport} at ${r.loss}`);
    // Two runs, the row their median, with each figure's range around it.
    assert.equal(r.runs, 2);
    const [lo, hi] = r.spread!.p50!;
    assert.ok(lo <= r.latency_ms!.p50 && r.latency_ms!.p50 <= hi, JSON.stringify(r.spread));
    const [rlo, rhi] = r.spread!.blocks_received!;
    assert.ok(rlo <= r.blocks_received! && r.blocks_received! <= rhi);
    // Both clients count their two seconds from the stream's start: on a
    // clean path, the same number of blocks within a few, either transport.
    if (r.loss === 0) {
      assert.ok(
        Math.abs(r.blocks_received! + r.blocks_concealed! - 2 * 44100 / 1024) < 6,
        JSON.stringify(r),
      );
    }
    if (r.transport === "udp") assert.equal(r.fragments_per_block, 2);
    if (netns) {
      assert.equal(r.method, "netns+nftables");
      assert.ok(r.wire_bytes! > r.bytes_received!, "the wire carries headers too");
    }
  }
  const udpLossy = rows.find((r) => r.transport === "udp" && r.loss > 0)!;
  assert.ok(udpLossy.blocks_lost! > 0, "UDP loses blocks under loss");
  assert.ok((await Deno.readTextFile(join(out.path, "compare.md"))).includes("| udp | 5% |"));
  assert.match(await Deno.readTextFile(join(out.path, "compare.svg")), /<svg /);
  assert.deepEqual(await leftoverNamespaces(), [], "namespaces removed");
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
  assert.equal((await leftoverNamespaces()).length, 2, "the run made its two namespaces");
  child.kill("SIGTERM");
  const status = await child.status;
  await reader.cancel();
  assert.notEqual(status.code, 0);
  assert.deepEqual(await leftoverNamespaces(), []);
  void t;
});

Deno.test("without namespaces, UDP loss comes from the relay and TCP under loss is not measured", async () => {
  const { compare } = await import("../../bench/compare.ts");
  await using out = await tempDir();
  const rows = await compare({
    seconds: 1.5,
    losses: [0, 0.1],
    block: 1024,
    outDir: out.path,
    useNetns: false,
    log: () => {},
  });
  assert.deepEqual(rows.map((r) => [r.transport, r.loss, r.method, r.measured]), [
    ["tcp", 0, "loopback", true],
    ["udp", 0, "loopback", true],
    ["tcp", 0.1, "not measured", false],
    ["udp", 0.1, "udp relay", true],
  ]);
  assert.equal(rows[2].latency_ms, undefined, "never estimated");
  for (const r of rows) assert.deepEqual(sanityProblems(r), []);
  assert.ok(rows[3].blocks_lost! > 0);
});
