/**
 * `deno task bench-udp-fanout [--listeners 50] [--seconds 10]`: an
 * Audio-UDP server (a process of its own, a tone, 1024-frame blocks) and
 * N light listeners in this process, each the real subscriber core on a
 * socket of its own: they subscribe, run the handshake when there is a
 * code, and open, reassemble and check every block. The server's CPU over
 * the steady part is measured from /proc, with a code and without, side
 * by side. It runs with --allow-all because Deno grants /proc only so.
 *
 * @module
 */
import { parseCount, parseFlags, parseSecondsFlag, runMain } from "../lib/cli/flags.ts";
import { UserError } from "../lib/core/errors.ts";
import { UdpSubscriber } from "../lib/core/audio/udp/client.ts";
import { startServerTool } from "../tests/support/tool_process.ts";

const PERMS = ["--allow-net", "--allow-ffi", "--allow-read", "--allow-env"];
const CODE = "bench-fanout-code";

/** CPU seconds (user + system) a process has used. */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // clock ticks (USER_HZ = 100)
}

/** A listener: the subscriber core on its own socket; counts blocks it completes. */
function listener(port: number, code: string | undefined, stop: AbortSignal) {
  const socket = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
  const server: Deno.NetAddr = { transport: "udp", hostname: "127.0.0.1", port };
  const sub = new UdpSubscriber({
    latencyMs: 100,
    code: code === undefined
      ? undefined
      : { code, random: crypto.getRandomValues(new Uint8Array(48)) },
  });
  let blocks = 0;
  const send = (d: Uint8Array) => socket.send(d, server).catch(() => {});
  const act = (events: ReturnType<UdpSubscriber["receive"]>) => {
    for (const e of events) {
      if (e.type === "send") send(e.datagram);
      else if (e.type === "block") blocks++;
      else if (e.type === "refused") throw new UserError(e.message);
    }
  };
  send(sub.start(performance.now()));
  const timer = setInterval(() => act(sub.tick(performance.now())), 100);
  stop.addEventListener("abort", () => {
    clearInterval(timer);
    socket.close();
  });
  const done = (async () => {
    for await (const [d] of socket) {
      act(sub.receive(d, true, performance.now()));
      // Play out what is due, so the jitter buffer's window moves on.
      while (sub.pop(performance.now())) { /* played */ }
    }
  })().catch(() => {});
  return { done, blocks: () => blocks };
}

async function run(n: number, seconds: number, code?: string) {
  await using server = await startServerTool(
    "udp/audio_server.ts",
    ["--port", "0", "--input", "tone", "--max-per-host", String(n)],
    { permissions: PERMS, env: code ? { SOCKETS_CODE: code } : undefined },
  );
  const stop = new AbortController();
  // One after another, 50 ms apart: each handshake answered counts as a
  // guess from the address until it confirms, so many at once from one
  // host are throttled.
  const ls = [];
  for (let i = 0; i < n; i++) {
    ls.push(listener(server.port, code, stop.signal));
    await new Promise((r) => setTimeout(r, 50));
  }
  // Let every listener settle before measuring.
  await new Promise((r) => setTimeout(r, 2000));
  const before = ls.map((l) => l.blocks());
  const c0 = await cpuSeconds(server.child.pid);
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const cpu = (await cpuSeconds(server.child.pid) - c0) / ((performance.now() - t0) / 1000);
  const got = ls.map((l, i) => l.blocks() - before[i]);
  stop.abort();
  await Promise.all(ls.map((l) => l.done));
  await server.stop();
  return { cpu, fewest: Math.min(...got), most: Math.max(...got) };
}

runMain(async () => {
  const { flags } = parseFlags(
    Deno.args,
    {
      listeners: { type: "string", default: "50", value: "N", help: "listeners" },
      seconds: { type: "string", default: "10", value: "S", help: "seconds measured" },
    } as const,
    {
      usage: "deno task bench-udp-fanout",
      summary: "The Audio-UDP server's CPU with N listeners, with a code and without.",
    },
  );
  const n = parseCount("listeners", flags.listeners);
  const seconds = parseSecondsFlag("seconds", flags.seconds);
  const expected = Math.round(seconds * 44100 / 1024);
  for (const [name, code] of [["without a code", undefined], ["with a code", CODE]] as const) {
    const r = await run(n, seconds, code);
    console.log(
      `${name}: server ${(r.cpu * 100).toFixed(1)}% of a core for ${n} listeners; ` +
        `each listener completed ${r.fewest} to ${r.most} of about ${expected} blocks in ${seconds} s`,
    );
  }
});
