/**
 * Audio-UDP server: captures one source and sends each block, fragmented
 * into datagrams of at most `--mtu` bytes that all carry the block's MD5,
 * to every subscribed listener. Listeners subscribe, prove their address
 * with a cookie, renew every second, and are forgotten when silent.
 *
 * Each group of blocks (two by default) is followed by Reed-Solomon repair
 * datagrams, so a listener rebuilds lost fragments without asking
 * (`--fec`, `lib/core/audio/stages/fec.ts`). The server is
 * `lib/cli/audio_udp_server.ts`; this file is its command line.
 *
 * Run: `deno task audio-udp-server [--host 127.0.0.1] [--port 4444] [--input default] [--block 1024] [--mtu 1200] [--fec on|off|BLOCKS:PERCENT]`
 *
 * @module
 */
import { blockBytes, describeSpec } from "../lib/core/audio/format/spec.ts";
import { checkMtu, planCut } from "../lib/core/audio/udp/fanout.ts";
import { describeFec, parseFec } from "../lib/core/audio/stages/fec.ts";
import { CODE_FLAG, resolveCode } from "../lib/cli/code.ts";
import { parseFlags, runMain } from "../lib/cli/flags.ts";
import { runServerTool, serverFlags, specFromFlags } from "../lib/cli/audio_shell.ts";
import { startAudioUdpServer } from "../lib/cli/audio_udp_server.ts";

export {
  type AudioUdpServer,
  type AudioUdpServerOptions,
  startAudioUdpServer,
  type UdpServerStats,
} from "../lib/cli/audio_udp_server.ts";
export { checkMtu };

const FLAGS = {
  ...serverFlags(1024),
  mtu: { type: "string", default: "1200", value: "BYTES", help: "largest datagram sent" },
  fec: {
    type: "string",
    default: "on",
    value: "on|off|B:P",
    help: "Reed-Solomon repairs: P% extra per group of B blocks (on is 2:50)",
  },
  code: CODE_FLAG,
} as const;

if (import.meta.main) {
  runMain(async () => {
    const { flags } = parseFlags(Deno.args, FLAGS, {
      usage: "deno task audio-udp-server",
      summary: "Stream live audio over UDP in MD5-checked fragments to subscribed listeners.",
    });
    const spec = specFromFlags(flags);
    const mtu = checkMtu(Number(flags.mtu), blockBytes(spec));
    const code = resolveCode(flags.code, { host: flags.host });
    const fec = parseFec(flags.fec);
    const plan = planCut(blockBytes(spec), mtu, code !== undefined, fec);
    await runServerTool(
      flags,
      (source, host, port, maxPerHost) =>
        startAudioUdpServer({ host, port, source, mtu, maxPerHost, code, fec }),
      (server, source) =>
        `audio-udp server listening on ${server.addr.hostname}:${server.addr.port}: ` +
        `${source.label}, ${describeSpec(server.spec)}, ` +
        `${plan.fragments} datagrams per block at MTU ${mtu}, ` +
        describeFec(plan.fec, plan.fragments) +
        (code ? ", listeners need the code" : ""),
      ({ stats: st }) =>
        `stopped: ${st.blocksCaptured} blocks captured, ${st.datagramsSent} datagrams sent, ` +
        `${st.listenersJoined} listeners joined, ${st.datagramsInvalid} invalid datagrams dropped`,
    );
  });
}
