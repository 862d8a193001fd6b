/**
 * `deno task bench-udp-damage [--seconds 12] [--runs 1]`: Audio-UDP under
 * damage, not only loss (issue 24), on loopback through the impairment
 * relay (DATA and REPAIR datagrams only), everything in this process,
 * every client recording to a WAV file that is then checked slot by slot
 * against the source (seeded noise: every block unique):
 *
 * - 4% loss plus 2% corrupted datagrams (with 4% reordered and 2%
 *   duplicated), 1024-frame blocks;
 * - one header bit flipped in 5% of datagrams, 256-frame blocks;
 * - a clean path with three listeners joining at once, 1024-frame blocks,
 *   beside three Audio-TCP listeners on the same source: the share of the
 *   first 5 s played as sent, and the worst listener's p99 after the
 *   first 5 s.
 *
 * "Intact" is a slot holding its source block byte for byte; "misplaced"
 * is a slot holding anything but its own block or a concealment.
 *
 * @module
 */
import { join } from "node:path";
import { parseCount, parseFlags, parseSecondsFlag, runMain } from "../lib/cli/flags.ts";
import { openSource } from "../lib/io/audio_io.ts";
import { startAudioUdpServer } from "../udp/audio_server.ts";
import { runAudioUdpClient } from "../udp/audio_client.ts";
import { startAudioTcpServer } from "../tcp/audio_server.ts";
import { runAudioTcpClient } from "../tcp/audio_client.ts";
import { startUdpRelay } from "../udp/relay.ts";
import { UdpMsg } from "../lib/core/audio/udp/datagrams.ts";
import type { ImpairmentConfig } from "../lib/core/wire/impairment.ts";
import type { StreamReport } from "../lib/core/report/stream_report.ts";
import { readWav, slotTimeline, writeNoiseWav } from "../tests/support/helpers.ts";

const RATE = 44100;
const quiet = { log: () => {}, status: false };

interface Row {
  path: string;
  block: number;
  listeners: number;
  intact: number;
  intactFirst5s: number;
  misplaced: number;
  concealed: number;
  stretches: number;
  damaged: number;
  trialRebuilt: number;
  overhead: string;
  p99Settled: number | null;
}

/** Share of `slots` holding their own block, over the first `count` slots (all when null). */
function share(
  t: ReturnType<typeof slotTimeline>,
  samples: Int16Array,
  source: Int16Array,
  block: number,
  count: number | null,
) {
  const n = Math.min(t.slots, count ?? t.slots);
  let same = 0;
  for (let b = 0; b < n; b++) {
    const at = (t.start + b) * block;
    if (samples.subarray(b * block, (b + 1) * block).every((v, i) => v === source[at + i])) same++;
  }
  return n === 0 ? 0 : same / n;
}

async function udpRow(
  dir: string,
  name: string,
  block: number,
  impair: ImpairmentConfig | null,
  listeners: number,
  seconds: number,
): Promise<Row> {
  const src = join(dir, `${name}.wav`);
  const source = await writeNoiseWav(src, seconds + 4);
  const srv = startAudioUdpServer({
    port: 0,
    source: await openSource(src, { rate: RATE, channels: 1, block }),
    log: () => {},
  });
  const relay = impair &&
    startUdpRelay({
      port: 0,
      target: srv.addr,
      impair,
      seed: 7,
      types: [UdpMsg.DATA, UdpMsg.REPAIR],
    });
  const port = relay ? relay.addr.port : srv.addr.port;
  const recs = Array.from({ length: listeners }, (_, i) => join(dir, `${name}-rec-${i}.wav`));
  const reports = await Promise.all(
    recs.map((output) => runAudioUdpClient({ port, output, duration: seconds, ...quiet })),
  );
  await relay?.close();
  await srv.close();
  const rows: Row[] = [];
  for (const [i, r] of reports.entries()) {
    const { samples } = await readWav(recs[i]);
    const t = slotTimeline(source, samples, block);
    const fec = r.fec as { blocks: number; repair: number } | null;
    const k = fec ? fec.blocks * (r.fragments_per_block as number) : 0;
    rows.push({
      path: impair ? JSON.stringify(impair) : "clean",
      block,
      listeners,
      intact: t.slots ? t.same / t.slots : 0,
      intactFirst5s: share(t, samples, source, block, Math.floor((5000 * RATE) / 1000 / block)),
      misplaced: t.wrong.length,
      concealed: t.concealed,
      stretches: r.target_stretches as number,
      damaged: r.datagrams_damaged as number,
      trialRebuilt: r.blocks_trial_rebuilt as number,
      overhead: fec ? `${Math.round((fec.repair / k) * 100)}%` : "none",
      p99Settled: r.latency_settled_ms?.p99 ?? null,
    });
  }
  // The worst listener: fewest intact, then highest p99.
  return rows.reduce((a, b) =>
    b.intact < a.intact || (b.intact === a.intact && (b.p99Settled ?? 0) > (a.p99Settled ?? 0))
      ? b
      : a
  );
}

/** Audio-TCP on the clean path, `listeners` joining at once: the worst p99 after 5 s. */
async function tcpP99(dir: string, seconds: number, listeners: number): Promise<StreamReport> {
  const src = join(dir, "tcp.wav");
  await writeNoiseWav(src, seconds + 4);
  const srv = startAudioTcpServer({
    port: 0,
    source: await openSource(src, { rate: RATE, channels: 1, block: 1024 }),
    log: () => {},
  });
  const reports = await Promise.all(
    Array.from({ length: listeners }, (_, i) =>
      runAudioTcpClient({
        port: srv.addr.port,
        output: join(dir, `tcp-rec-${i}.wav`),
        duration: seconds,
        ...quiet,
      })),
  );
  await srv.close();
  const p99 = (r: StreamReport) => r.latency_settled_ms?.p99 ?? 0;
  return reports.reduce((a, b) => (p99(b) > p99(a) ? b : a));
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

if (import.meta.main) {
  runMain(async () => {
    const { flags } = parseFlags(Deno.args, {
      seconds: { type: "string", default: "12", value: "S", help: "seconds each session plays" },
      runs: { type: "string", default: "1", value: "N", help: "runs of each row" },
      rows: { type: "string", default: "loss,flip,clean", value: "LIST", help: "rows to run" },
    }, {
      usage: "deno task bench-udp-damage",
      summary: "Audio-UDP under loss, corruption and header bit flips, checked slot by slot.",
    });
    const seconds = parseSecondsFlag("seconds", flags.seconds, "seconds");
    const runs = parseCount("runs", flags.runs);
    const dir = await Deno.makeTempDir({ prefix: `sockets-bench-damage-${Deno.pid}-` });
    try {
      const rows: Row[] = [];
      let tcp: StreamReport | undefined;
      for (let run = 0; run < runs; run++) {
        const want = flags.rows.split(",");
        if (want.includes("loss")) {
          const impair = { loss: 0.04, corrupt: 0.02, reorder: 0.04, duplicate: 0.02 };
          rows.push(await udpRow(dir, `loss-${run}`, 1024, impair, 1, seconds));
        }
        if (want.includes("flip")) {
          rows.push(await udpRow(dir, `flip-${run}`, 256, { corruptHeader: 0.05 }, 1, seconds));
        }
        if (want.includes("clean")) {
          rows.push(await udpRow(dir, `clean-${run}`, 1024, null, 3, seconds));
          tcp = await tcpP99(dir, seconds, 3);
        }
      }
      console.log(
        "| path | block | listeners | intact | intact, first 5 s | misplaced | concealed | stretches | " +
          "datagrams damaged | trial rebuilds | repair overhead | p99 after 5 s |",
      );
      console.log("|---|---|---|---|---|---|---|---|---|---|---|---|");
      for (const r of rows) {
        console.log(
          `| ${r.path} | ${r.block} | ${r.listeners} | ${pct(r.intact)} | ${
            pct(r.intactFirst5s)
          } | ` +
            `${r.misplaced} | ${r.concealed} | ${r.stretches} | ${r.damaged} | ${r.trialRebuilt} | ` +
            `${r.overhead} | ${r.p99Settled ?? "-"} ms |`,
        );
      }
      console.log(
        `Audio-TCP, clean, 1024-frame blocks, 3 listeners: worst p99 after 5 s ${
          tcp?.latency_settled_ms?.p99 ?? "-"
        } ms ` +
          `(whole session ${tcp?.latency_ms.p99} ms)`,
      );
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  });
}
