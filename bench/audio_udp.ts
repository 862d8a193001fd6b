/**
 * `deno task bench-audio-udp [--seconds 20] [--loss 0.05]`: plain Audio-UDP
 * (`--fec off`, a fixed 70 ms target) on loopback with a tone and
 * 1024-frame blocks. First a clean run (latency against the jitter
 * target), then one through the impairment relay at random datagram loss:
 * concealed blocks against the expected 1 - (1 - p)^fragments, and latency
 * still bounded by the target. `deno task compare` measures Audio-UDP with
 * FEC and `--latency auto` beside it.
 *
 * @module
 */
import { parseFlags, parseSecondsFlag, runMain } from "../lib/cli/flags.ts";

/** The fixed target: three 1024-frame blocks, Audio-UDP's default before `--latency auto`. */
const TARGET_MS = 70;
import { UsageError } from "../lib/core/errors.ts";
import { openSource } from "../lib/io/audio_io.ts";
import { parseProbability } from "../lib/core/wire/impairment.ts";
import { startAudioUdpServer } from "../udp/audio_server.ts";
import { runAudioUdpClient } from "../udp/audio_client.ts";
import { startUdpRelay } from "../udp/relay.ts";
import type { StreamReport } from "../lib/core/report/stream_report.ts";

const FLAGS = {
  seconds: { type: "string", default: "10", value: "S", help: "length of the clean run" },
  "loss-seconds": {
    type: "string",
    default: "60",
    value: "S",
    help: "length of the lossy run (long enough that chance is not the error)",
  },
  loss: { type: "string", default: "0.05", value: "P", help: "datagram loss of the second run" },
} as const;

function line(name: string, r: StreamReport): string {
  const l = r.latency_ms;
  return `${name}: ${r.blocks_received} played, ${r.blocks_lost} lost, ${r.blocks_late} late, ` +
    `${r.blocks_concealed} concealed; latency p50 ${l.p50} p95 ${l.p95} p99 ${l.p99} max ${l.max} ms ` +
    `(target ${r.target_latency_ms} ms)`;
}

runMain(async () => {
  const { flags } = parseFlags(Deno.args, FLAGS, {
    usage: "deno task bench-audio-udp",
    summary: "Latency and concealment of Audio-UDP on loopback, clean and under loss.",
  });
  const seconds = parseSecondsFlag("seconds", flags.seconds);
  const p = parseProbability(flags.loss);
  if (p === null) throw new UsageError(`--loss ${flags.loss} is not a probability`);
  const source = await openSource("tone:440", { rate: 44100, channels: 1, block: 1024 });
  await using server = startAudioUdpServer({ port: 0, source, log: () => {}, fec: "off" });

  const clean = await runAudioUdpClient({
    port: server.addr.port,
    output: "null",
    duration: seconds,
    status: false,
    latencyMs: TARGET_MS,
  });
  const target = clean.target_latency_ms as number;
  console.log(line("clean", clean));
  console.log(
    `  p99 ${clean.latency_ms.p99} ms against target + 2 = ${target + 2} ms: ${
      clean.latency_ms.p99 <= target + 2 ? "met" : "MISSED"
    }`,
  );

  await using relay = startUdpRelay({
    port: 0,
    target: server.addr,
    impair: { loss: p },
    seed: 42,
  });
  const lossy = await runAudioUdpClient({
    port: relay.addr.port,
    output: "null",
    duration: parseSecondsFlag("loss-seconds", flags["loss-seconds"]),
    status: false,
    latencyMs: TARGET_MS,
  });
  const f = lossy.fragments_per_block as number;
  const slots = lossy.blocks_received + lossy.blocks_concealed;
  const measured = lossy.blocks_concealed / slots;
  const expected = 1 - (1 - p) ** f;
  const c = relay.model.counters;
  const actualP = c.dropped / c.seen;
  const expectedActual = 1 - (1 - actualP) ** f;
  console.log(line(`loss ${(p * 100).toFixed(1)}%`, lossy));
  console.log(
    `  relay dropped ${c.dropped} of ${c.seen} datagrams (${
      (c.dropped / c.seen * 100).toFixed(2)
    }%); ` +
      `${f} fragments per block`,
  );
  console.log(
    `  concealed ${(measured * 100).toFixed(2)}% of ${slots} slots; expected 1-(1-p)^${f} = ` +
      `${(expected * 100).toFixed(2)}%; off by ${
        (Math.abs(measured - expected) / expected * 100).toFixed(1)
      }% (target within 10%)`,
  );
  console.log(
    `  against the relay's actual loss: expected ${(expectedActual * 100).toFixed(2)}%, off by ${
      (Math.abs(measured - expectedActual) / expectedActual * 100).toFixed(1)
    }%`,
  );
  console.log(
    `  latency p99 ${lossy.latency_ms.p99} ms against target + 2 = ${target + 2} ms: ${
      lossy.latency_ms.p99 <= target + 2 ? "bounded" : "NOT bounded"
    } (max ${lossy.latency_ms.max} ms)`,
  );
});
