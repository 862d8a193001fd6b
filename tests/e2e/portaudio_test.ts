/**
 * The PortAudio binding and audio tools on a real (private) PulseAudio
 * server, as users run them.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { LAYOUT } from "../../native/mod.ts";
import { commandExists, ignoreUnless, requireHere } from "../support/tool_process.ts";
import { estimateFrequency, rmsLevel } from "../../lib/core/audio/format/tone.ts";
import {
  loudPart,
  oneLineError,
  readWav,
  runTool,
  tempDir,
  writeToneWav,
} from "../support/helpers.ts";
import { recordSpeaker, soundTest } from "../support/pulse.ts";

const AUDIO_PERMS = [
  "--allow-ffi",
  "--allow-read",
  "--allow-write",
  "--allow-env=INIT_CWD,PORTAUDIO_PATH,PORTAUDIO_DEBUG",
];
const DEVICES_PERMS = ["--allow-ffi", "--allow-env=PORTAUDIO_PATH,PORTAUDIO_DEBUG"];

Deno.test("a PortAudio that cannot be loaded is one line naming the fix", async () => {
  const r = await runTool("tools/devices.ts", [], {
    permissions: DEVICES_PERMS,
    env: { PORTAUDIO_PATH: "/nonexistent/libportaudio.so.2" },
  });
  assert.match(
    oneLineError(r),
    /^error: Could not load PortAudio from PORTAUDIO_PATH=\/nonexistent\/libportaudio\.so\.2 \(.*\); fix the path or unset PORTAUDIO_PATH$/,
  );
});

const header = "/usr/include/portaudio.h";
const CC_MISSING = !(await commandExists("cc")) ||
    !(await Deno.stat(header).then(() => true, () => false))
  ? "needs cc and portaudio19-dev (apt-get install gcc portaudio19-dev)"
  : null;

Deno.test({
  name: "struct offsets match portaudio.h",
  ignore: ignoreUnless(CC_MISSING, "struct layout"),
}, async (t) => {
  requireHere(CC_MISSING);
  await using dir = await tempDir();
  const fields: string[] = [];
  for (const [struct, layout] of Object.entries(LAYOUT)) {
    for (const field of Object.keys(layout)) {
      fields.push(
        field === "size"
          ? `printf("${struct}.size=%zu\\n", sizeof(${struct}));`
          : `printf("${struct}.${field}=%zu\\n", offsetof(${struct}, ${field}));`,
      );
    }
  }
  const src = `#include <stdio.h>\n#include <stddef.h>\n#include <portaudio.h>\nint main(void){${
    fields.join("")
  }return 0;}\n`;
  await Deno.writeTextFile(join(dir.path, "layout.c"), src);
  const build = await new Deno.Command("cc", {
    args: ["-o", join(dir.path, "layout"), join(dir.path, "layout.c")],
  }).output();
  assert.equal(build.code, 0, new TextDecoder().decode(build.stderr));
  const out = new TextDecoder().decode(
    (await new Deno.Command(join(dir.path, "layout")).output()).stdout,
  );
  const expected = Object.entries(LAYOUT).flatMap(([struct, layout]) =>
    Object.entries(layout).map(([field, value]) => `${struct}.${field}=${value}`)
  );
  assert.deepEqual(out.trim().split("\n"), expected);
  void t;
});

soundTest("devices lists the pulse and default devices and marks the defaults", async (pulse) => {
  const r = await runTool("tools/devices.ts", [], { permissions: DEVICES_PERMS, env: pulse.env });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, "", "ALSA's probing noise is kept off stderr");
  assert.match(r.stdout, /^PortAudio V19/);
  assert.match(r.stdout, /ALSA/);
  assert.match(r.stdout, /\s\d+\s+\d+\s+\d+\s+44100\s.*ALSA\s+pulse$/m);
  assert.match(r.stdout, /^\s+\*>\s+\d+\s.*ALSA\s+default$/m);
});

soundTest("a tone played into the microphone is captured through PortAudio", async (pulse) => {
  await using dir = await tempDir();
  const tone = join(dir.path, "tone.wav");
  const rec = join(dir.path, "rec.wav");
  await writeToneWav(tone, 1000, 4);
  const player = new Deno.Command("paplay", {
    args: [tone],
    env: { ...pulse.env, PULSE_SINK: "mic" },
  }).spawn();
  const r = await runTool(
    "tools/audio_local.ts",
    ["--input", "default", "--output", rec, "--duration", "2"],
    { permissions: AUDIO_PERMS, env: { ...pulse.env, PULSE_SOURCE: "mic.monitor" } },
  );
  player.kill();
  await player.status;
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /device \d+ \(default\) -> .*rec\.wav: 44100 Hz, 1 ch, 512-frame blocks/);
  const { info, samples } = await readWav(rec);
  assert.equal(info.rate, 44100);
  assert.ok(samples.length >= 44100 * 1.9, `recorded ${samples.length} samples`);
  const loud = loudPart(samples).subarray(0, 22050);
  assert.ok(loud.length > 11025, "the tone was captured");
  const hz = estimateFrequency(loud, 44100);
  assert.ok(Math.abs(hz - 1000) < 10, `captured ${hz} Hz`);
  const level = rmsLevel(loud);
  assert.ok(Math.abs(level - 0.5 / Math.SQRT2) < 0.05, `captured level ${level}`);
});

soundTest("a tone played through PortAudio reaches the speaker", async (pulse) => {
  const speaker = await recordSpeaker(pulse);
  await new Promise((r) => setTimeout(r, 300));
  const r = await runTool(
    "tools/audio_local.ts",
    ["--input", "tone:880", "--output", "default", "--duration", "1.5"],
    { permissions: AUDIO_PERMS, env: { ...pulse.env, PULSE_SINK: "spk" } },
  );
  await new Promise((r) => setTimeout(r, 300));
  const loud = (await speaker.stop()).subarray(0, 22050);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /0 output underflows/);
  assert.ok(loud.length > 11025, "the tone was heard");
  const hz = estimateFrequency(loud, 44100);
  assert.ok(Math.abs(hz - 880) < 10, `heard ${hz} Hz`);
  assert.ok(Math.abs(rmsLevel(loud) - 0.5 / Math.SQRT2) < 0.05, `heard level ${rmsLevel(loud)}`);
});

Deno.test("a WAV recording killed mid-write still has a valid header", async () => {
  await using dir = await tempDir();
  const out = join(dir.path, "killed.wav");
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...AUDIO_PERMS, "tools/audio_local.ts", "--input", "tone", "--output", out],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const deadline = Date.now() + 20_000;
  while (((await Deno.stat(out).catch(() => null))?.size ?? 0) < 44100) {
    assert.ok(Date.now() < deadline, "the recording grew past 44100 bytes within 20 s");
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill("SIGKILL");
  await child.status;
  const { info, size, samples } = await readWav(out);
  assert.ok(info.dataLength > 0);
  // The header claims all the data or one block less (killed between the two writes).
  assert.ok(size - 44 - info.dataLength <= 1024, `header ${info.dataLength}, file ${size}`);
  assert.ok(Math.abs(estimateFrequency(samples, 44100) - 440) < 2);
});

Deno.test("audio tools refuse bad input in one line", async () => {
  await using dir = await tempDir();
  const run = (args: string[]) =>
    runTool("tools/audio_local.ts", args, { permissions: AUDIO_PERMS });
  assert.match(
    oneLineError(await run(["--input", join(dir.path, "none.wav"), "--output", "null"])),
    /^error: WAV file .*none\.wav does not exist$/,
  );
  const notWav = join(dir.path, "text.wav");
  await Deno.writeTextFile(notWav, "hello");
  assert.match(
    oneLineError(await run(["--input", notWav, "--output", "null"])),
    /is not a WAV file/,
  );
  assert.match(oneLineError(await run(["--input", "null"])), /--input null is not a source/);
  assert.match(oneLineError(await run(["--rate", "7"])), /Sample rate 7 is not supported/);
});

soundTest("an unknown device is one line naming the devices tool", async (pulse) => {
  const r = await runTool(
    "tools/audio_local.ts",
    ["--input", "no such mic", "--output", "null"],
    { permissions: AUDIO_PERMS, env: pulse.env },
  );
  assert.equal(
    oneLineError(r),
    'error: No input device matches "no such mic"; run `deno task devices` to list them',
  );
});
