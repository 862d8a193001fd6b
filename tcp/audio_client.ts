/**
 * Audio-TCP client: plays (or records) what an Audio-TCP server sends,
 * checking every block's MD5. A block that fails is concealed, never
 * played. It learns the format from the server, reconnects with backoff
 * when the stream breaks or the server restarts, and keeps counting. The
 * client is `lib/cli/audio_tcp_client.ts`; this file is its command line.
 *
 * Run: `deno task audio-tcp-client [--host 127.0.0.1] [--port 4444] [--output default]`
 *
 * @module
 */
import { parseFlags, parsePort, parseSecondsFlag, runMain } from "../lib/cli/flags.ts";
import { CLIENT_FLAGS, runClientTool } from "../lib/cli/audio_shell.ts";
import { CODE_FLAG, resolveCode, withCodePrompt } from "../lib/cli/code.ts";
import { AUDIO_TCP_TIMEOUT_MS, runAudioTcpClient } from "../lib/cli/audio_tcp_client.ts";

export {
  AUDIO_TCP_TIMEOUT_MS,
  type AudioTcpClientOptions,
  runAudioTcpClient,
} from "../lib/cli/audio_tcp_client.ts";

const FLAGS = {
  ...CLIENT_FLAGS,
  code: CODE_FLAG,
  timeout: {
    type: "string",
    default: String(AUDIO_TCP_TIMEOUT_MS / 1000),
    value: "SECONDS",
    help: "give up reconnecting to a lost server after this long",
  },
  latency: {
    type: "string",
    default: "auto",
    value: "auto|MS",
    help:
      "most capture-to-sink latency on a device (auto follows the path); later blocks are skipped",
  },
} as const;

if (import.meta.main) {
  runMain(async () => {
    const { flags } = parseFlags(Deno.args, FLAGS, {
      usage: "deno task audio-tcp-client",
      summary: "Play live audio from an Audio-TCP server, checking every block's MD5.",
    });
    const code = resolveCode(flags.code);
    await runClientTool(
      flags,
      (duration, signal) =>
        withCodePrompt(code, (code) =>
          runAudioTcpClient({
            code,
            host: flags.host,
            port: parsePort(flags.port),
            output: flags.output,
            duration,
            latencyMs: flags.latency === "auto"
              ? "auto"
              : parseSecondsFlag("latency", flags.latency, "milliseconds (or auto)"),
            timeoutMs: parseSecondsFlag("timeout", flags.timeout) * 1000,
            signal,
          })),
    );
  });
}
