/**
 * A private PulseAudio server for tests: two null sinks, `mic` and `spk`,
 * under its own XDG_RUNTIME_DIR. PortAudio's ALSA `default` device reaches
 * it through the pulse plugin, so `PULSE_SOURCE=mic.monitor` is a
 * microphone and `PULSE_SINK=spk` a speaker.
 */
import { join } from "node:path";
import { ignoreUnless, requireHere, startServerTool } from "./tool_process.ts";
import type { StreamReport } from "../../lib/core/report/stream_report.ts";
import { estimateFrequency } from "../../lib/core/audio/format/tone.ts";
import { loudPart, runTool, tempDir, writeToneWav } from "./helpers.ts";

/** Why the sound tests cannot run here, or `null` if they can. */
export function soundUnavailable(): Promise<string | null> {
  return Promise.resolve(soundMissing());
}

let checked: string | null | undefined;

/**
 * The same, answered at once and remembered: run when a sound test is
 * registered, never at import, so that a module importing this one (a
 * bench under plain `deno bench`) needs no permission for it.
 */
function soundMissing(): string | null {
  if (checked === undefined) checked = checkSound();
  return checked;
}

function checkSound(): string | null {
  for (const tool of ["pulseaudio", "paplay", "parecord"]) {
    const found = new Deno.Command("sh", {
      args: ["-c", 'command -v "$1"', "sh", tool],
      stdout: "null",
      stderr: "null",
    }).outputSync().code === 0;
    if (!found) return `${tool} is not installed (apt-get install pulseaudio pulseaudio-utils)`;
  }
  try {
    Deno.dlopen("libportaudio.so.2", { Pa_GetVersion: { parameters: [], result: "i32" } }).close();
  } catch {
    return "libportaudio2 is not installed";
  }
  return null;
}

/**
 * Registers a test that needs the sound server: ignored, with the reason,
 * where PulseAudio or PortAudio is missing, except under CI, where it runs
 * and a missing dependency fails it ({@link ignoreUnless}).
 */
export function soundTest(name: string, fn: (pulse: Pulse) => Promise<void>): void {
  Deno.test({
    name,
    ignore: ignoreUnless(soundMissing(), "sound"),
    fn: async () => {
      requireHere(soundMissing());
      await using pulse = await startPulse();
      await fn(pulse);
    },
  });
}

/** A running private PulseAudio. */
export interface Pulse extends AsyncDisposable {
  /** Environment for a process that should use it (add PULSE_SOURCE / PULSE_SINK). */
  env: Record<string, string>;
}

/** Starts a private PulseAudio and waits until it answers. */
export async function startPulse(): Promise<Pulse> {
  const runtime = await Deno.makeTempDir({ prefix: "pulse-test-" });
  await Deno.chmod(runtime, 0o700);
  const env = {
    XDG_RUNTIME_DIR: runtime,
    PULSE_SERVER: `unix:${join(runtime, "pulse", "native")}`,
    HOME: runtime,
  };
  const child = new Deno.Command("pulseaudio", {
    args: [
      "-n",
      "--daemonize=no",
      "--exit-idle-time=-1",
      "--disable-shm=yes",
      "--load=module-native-protocol-unix",
      "--load=module-null-sink sink_name=mic",
      "--load=module-null-sink sink_name=spk",
    ],
    env,
    stdout: "null",
    stderr: "null",
    stdin: "null",
  }).spawn();
  const until = Date.now() + 10_000;
  while (true) {
    const r = await new Deno.Command("pactl", {
      args: ["info"],
      env,
      stdout: "null",
      stderr: "null",
    })
      .output();
    if (r.code === 0) break;
    if (Date.now() > until) {
      child.kill("SIGKILL");
      await child.status;
      throw new Error("PulseAudio did not start within 10 s");
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    env,
    async [Symbol.asyncDispose]() {
      try {
        child.kill("SIGTERM");
      } catch {
        // Already gone.
      }
      await child.status;
      await Deno.remove(runtime, { recursive: true }).catch(() => {});
    },
  };
}

/**
 * Records the `spk` sink's monitor with parecord until `stop()`, which
 * returns the loud part of the recording (from the first sample over a
 * threshold, after a short settling time).
 */
export async function recordSpeaker(pulse: Pulse) {
  const dir = await Deno.makeTempDir({ prefix: "speaker-" });
  const path = join(dir, "spk.wav");
  const recorder = new Deno.Command("parecord", {
    args: [
      "--device=spk.monitor",
      "--channels=1",
      "--rate=44100",
      "--format=s16le",
      "--file-format=wav",
      path,
    ],
    env: pulse.env,
  }).spawn();
  return {
    async stop(): Promise<Int16Array> {
      recorder.kill("SIGINT");
      await recorder.status;
      // parecord leaves the header's sizes unset when interrupted: read it raw.
      const bytes = await Deno.readFile(path).catch(() => new Uint8Array(44));
      await Deno.remove(dir, { recursive: true });
      return loudPart(new Int16Array(bytes.slice(44).buffer));
    },
  };
}

/** What {@link micToSpeaker} observed. */
export interface MicToSpeaker {
  /** The client's `--report`. */
  report: StreamReport;
  /** Frequency recorded from the speaker (0 if nothing was heard). */
  heardHz: number;
  /** The client's output, for assertion messages. */
  clientOutput: string;
}

/**
 * Streams a 1000 Hz tone from the microphone to the speaker over a
 * transport, through the real tools and PortAudio: paplay plays the tone
 * into the `mic` sink; the server captures `mic.monitor`; the client plays
 * to the `spk` sink; parecord records `spk.monitor`.
 */
export async function micToSpeaker(
  pulse: Pulse,
  transport: "tcp" | "udp",
  seconds = 6,
): Promise<MicToSpeaker> {
  await using dir = await tempDir();
  const tone = join(dir.path, "tone.wav");
  const reportPath = join(dir.path, "report.json");
  await writeToneWav(tone, 1000, seconds + 6);
  const perms = ["--allow-net", "--allow-ffi", "--allow-read", "--allow-write", "--allow-env"];
  const player = new Deno.Command("paplay", {
    args: [tone],
    env: { ...pulse.env, PULSE_SINK: "mic" },
  }).spawn();
  await using server = await startServerTool(
    `${transport}/audio_server.ts`,
    ["--port", "0", "--input", "default"],
    { permissions: perms, env: { ...pulse.env, PULSE_SOURCE: "mic.monitor" } },
  );
  // A new PulseAudio stream here stalls for about 1.8 s before it runs;
  // let the server's capture get going before the client joins.
  await new Promise((r) => setTimeout(r, 2500));
  const speaker = await recordSpeaker(pulse);
  const client = await runTool(
    `${transport}/audio_client.ts`,
    [
      "--port",
      String(server.port),
      "--output",
      "default",
      "--duration",
      String(seconds),
      "--report",
      reportPath,
    ],
    { permissions: perms, env: { ...pulse.env, PULSE_SINK: "spk" } },
  );
  const heard = (await speaker.stop()).subarray(0, 22050);
  player.kill();
  await player.status;
  const clientOutput = client.stdout + client.stderr;
  if (client.code !== 0) throw new Error(`Client failed: ${clientOutput}`);
  const report = JSON.parse(await Deno.readTextFile(reportPath));
  const heardHz = heard.length > 11025 ? estimateFrequency(heard, 44100) : 0;
  return { report, heardHz, clientOutput };
}
