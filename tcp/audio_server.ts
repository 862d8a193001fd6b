/**
 * Audio-TCP server: captures one source and broadcasts each block, with its
 * MD5, to every connected listener. A slow or stuck listener never delays
 * capture or the others: each has a bounded queue that loses its oldest
 * blocks when full, and one that stays stuck is disconnected. The server
 * is `lib/cli/audio_tcp_server.ts`; this file is its command line.
 *
 * Run: `deno task audio-tcp-server [--host 127.0.0.1] [--port 4444] [--input default]`
 *
 * @module
 */
import { describeSpec } from "../lib/core/audio/format/spec.ts";
import { CODE_FLAG, resolveCode } from "../lib/cli/code.ts";
import { parseFlags, runMain } from "../lib/cli/flags.ts";
import { runServerTool, serverFlags } from "../lib/cli/audio_shell.ts";
import { startAudioTcpServer } from "../lib/cli/audio_tcp_server.ts";

export {
  type AudioTcpServer,
  type AudioTcpServerOptions,
  type AudioTcpServerStats,
  startAudioTcpServer,
} from "../lib/cli/audio_tcp_server.ts";

if (import.meta.main) {
  runMain(async () => {
    const { flags } = parseFlags(Deno.args, { ...serverFlags(512), code: CODE_FLAG }, {
      usage: "deno task audio-tcp-server",
      summary: "Broadcast live audio over TCP, each block with its MD5, to every listener.",
    });
    const code = resolveCode(flags.code, { host: flags.host });
    await runServerTool(
      flags,
      (source, host, port, maxPerHost) =>
        startAudioTcpServer({ host, port, source, maxPerHost, code }),
      (server, source) =>
        `audio-tcp server listening on ${server.addr.hostname}:${server.addr.port}: ` +
        `${source.label}, ${describeSpec(server.spec)}` +
        (code ? ", listeners need the code" : ""),
      ({ stats: st }) =>
        `stopped: ${st.blocksCaptured} blocks captured, ${st.listenersServed} listeners served, ` +
        `${st.blocksDroppedForSlowListeners} blocks dropped for slow listeners, ` +
        `${st.listenersDropped} stuck listeners disconnected`,
    );
  });
}
