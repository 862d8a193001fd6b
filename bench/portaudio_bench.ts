/**
 * `deno bench bench/portaudio_bench.ts`: what the PortAudio binding adds per
 * 512-frame block at 44.1 kHz. Each iteration waits (untimed) until the
 * device has a block ready or room for one, then times only the call, so
 * the figure is the FFI round trip (a thread hop for `nonblocking` symbols)
 * plus PortAudio's copy, not the audio clock. Runs on a private PulseAudio;
 * skipped where PulseAudio or PortAudio is missing.
 *
 * @module
 */
import { PortAudio } from "../native/mod.ts";
import { soundUnavailable, startPulse } from "../tests/support/pulse.ts";

const permitted = (["ffi", "run", "env", "read", "write"] as const).every((name) =>
  Deno.permissions.querySync({ name }).state === "granted"
);
const why = permitted
  ? await soundUnavailable()
  : "it needs --allow-ffi/run/env/read/write; run `deno task bench-io`";
const pulse = why ? undefined : await startPulse();
if (why) console.log(`portaudio bench skipped: ${why}`);
if (pulse) {
  for (const [k, v] of Object.entries(pulse.env)) Deno.env.set(k, v);
  Deno.env.set("PULSE_SOURCE", "mic.monitor");
  Deno.env.set("PULSE_SINK", "spk");
}
const pa = pulse ? PortAudio.open() : undefined;
const FRAMES = 512;
const input = await pa?.openStream({ direction: "input", framesPerBuffer: FRAMES });
const output = await pa?.openStream({ direction: "output", framesPerBuffer: FRAMES });
await input?.start();
await output?.start();
const block = new Int16Array(FRAMES);

async function until(ready: () => boolean) {
  while (!ready()) await new Promise((r) => setTimeout(r, 1));
}

Deno.bench({
  name: "read 512 frames (block ready)",
  group: "portaudio",
  ignore: !pulse,
  async fn(b) {
    await until(() => input!.readAvailable() >= FRAMES);
    b.start();
    await input!.read(block);
    b.end();
  },
});

Deno.bench({
  name: "write 512 frames (room ready)",
  group: "portaudio",
  ignore: !pulse,
  async fn(b) {
    await until(() => output!.writeAvailable() >= FRAMES);
    b.start();
    await output!.write(block);
    b.end();
  },
});

Deno.bench({
  name: "readAvailable (synchronous FFI call)",
  group: "portaudio",
  ignore: !pulse,
  fn() {
    input!.readAvailable();
  },
});

globalThis.addEventListener("unload", () => {
  // Streams and PortAudio go with the process; stop the private server.
  if (pulse) void pulse[Symbol.asyncDispose]();
});
