/**
 * Audio-UDP client: subscribes to an Audio-UDP server, reassembles each
 * block from its fragments, checks its MD5, and plays it through a jitter
 * buffer with a target latency. Lost fragments are rebuilt from the
 * server's Reed-Solomon repairs; corrupted blocks are never played; gaps
 * are concealed; blocks that come after their slot are counted late. The
 * target follows the path (`--latency auto`, the default) or stays fixed.
 * The client is `lib/cli/audio_udp_client.ts`; this file is its command line.
 *
 * Run: `deno task audio-udp-client [--host 127.0.0.1] [--port 4444] [--output default] [--latency auto|MS]`
 *
 * @module
 */
import { parseFlags, parsePort, parseSecondsFlag, runMain } from "../lib/cli/flags.ts";
import { CLIENT_FLAGS, runClientTool } from "../lib/cli/audio_shell.ts";
import { CODE_FLAG, resolveCode, withCodePrompt } from "../lib/cli/code.ts";
import { runAudioUdpClient } from "../lib/cli/audio_udp_client.ts";

export { type AudioUdpClientOptions, runAudioUdpClient } from "../lib/cli/audio_udp_client.ts";

const FLAGS = {
  ...CLIENT_FLAGS,
  code: CODE_FLAG,
  timeout: {
    type: "string",
    default: "5",
    value: "SECONDS",
    help: "give up on a server that answers nothing for this long",
  },
  latency: {
    type: "string",
    default: "auto",
    value: "auto|MS",
    help: "jitter buffer target, capture to play-out (auto follows the path)",
  },
} as const;

if (import.meta.main) {
  runMain(async () => {
    const { flags } = parseFlags(Deno.args, FLAGS, {
      usage: "deno task audio-udp-client",
      summary: "Play live audio from an Audio-UDP server, checking every block's MD5.",
    });
    const code = resolveCode(flags.code);
    await runClientTool(
      flags,
      (duration, signal) =>
        withCodePrompt(code, (code) =>
          runAudioUdpClient({
            code,
            host: flags.host,
            port: parsePort(flags.port),
            output: flags.output,
            latencyMs: flags.latency === "auto"
              ? "auto"
              : parseSecondsFlag("latency", flags.latency, "milliseconds (or auto)"),
            duration,
            timeoutMs: parseSecondsFlag("timeout", flags.timeout) * 1000,
            signal,
          })),
    );
  });
}
