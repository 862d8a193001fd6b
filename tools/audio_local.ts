/**
 * `deno task audio-local --input SPEC --output SPEC [--duration SECONDS]`:
 * connects an audio source to a sink on this machine, with no network:
 * record the microphone to a WAV, play a WAV or a tone, or hear yourself.
 *
 * @module
 */
import { onShutdown, parseFlags, parseSecondsFlag, runMain } from "../lib/cli/flags.ts";
import { blockMs } from "../lib/core/audio/format/spec.ts";
import { audioFlags, specFromFlags } from "../lib/cli/audio_shell.ts";
import { openSink, openSource } from "../lib/io/audio_io.ts";
import { rmsLevel } from "../lib/core/audio/format/tone.ts";

const FLAGS = {
  input: {
    type: "string",
    default: "default",
    value: "SPEC",
    help: "default, N, NAME, tone[:HZ] or FILE.wav",
  },
  output: {
    type: "string",
    default: "default",
    value: "SPEC",
    help: "default, N, NAME, FILE.wav or null",
  },
  duration: {
    type: "string",
    default: "",
    value: "SECONDS",
    help: "stop after this long (default: until the input ends or Ctrl-C)",
  },
  ...audioFlags(),
} as const;

runMain(async () => {
  const { flags } = parseFlags(Deno.args, FLAGS, {
    usage: "deno task audio-local",
    summary: "Connect an audio source to a sink on this machine (check devices before streaming).",
  });
  const spec = specFromFlags(flags);
  const seconds = flags.duration ? parseSecondsFlag("duration", flags.duration) : Infinity;
  await using source = await openSource(flags.input, spec);
  await using sink = await openSink(flags.output, source.spec);
  const s = source.spec;
  console.log(
    `${source.label} -> ${sink.label}: ${s.rate} Hz, ${s.channels} ch, ${s.block}-frame blocks ` +
      `(${blockMs(s).toFixed(1)} ms)`,
  );
  let stop = false;
  const off = onShutdown(() => {
    stop = true;
  });
  const maxBlocks = Math.ceil((seconds * s.rate) / s.block);
  let blocks = 0;
  let peak = 0;
  while (!stop && blocks < maxBlocks) {
    const block = await source.read();
    if (!block) break;
    await sink.write(block.samples);
    peak = Math.max(peak, rmsLevel(block.samples));
    blocks++;
  }
  off();
  const secs = (blocks * s.block) / s.rate;
  console.log(
    `${blocks} blocks (${secs.toFixed(2)} s), loudest block ${
      (20 * Math.log10(peak || 1e-9)).toFixed(1)
    } dBFS RMS, ` +
      `${source.overflows} input overflows, ${sink.underflows} output underflows`,
  );
});
