/**
 * The socket benches: end-to-end streaming and a file transfer over
 * loopback. They need network, file and environment access, so plain
 * `deno bench` (which grants nothing) lists them as ignored with the
 * reason; `deno task bench-io` runs them with the permission set
 * `bench-io` from deno.json.
 *
 * @module
 */
import { md5 } from "../lib/core/crypto/md5.ts";
import {
  decodeFormat,
  decodeFragment,
  encodeSubscribe,
  type Fragment,
  fragmentsOf,
  type UdpFormat,
  UdpMsg,
} from "../lib/core/audio/udp/datagrams.ts";
import { Reassembler } from "../lib/core/audio/stages/reassembly.ts";
import { stripCheck } from "../lib/core/audio/stages/datagram_check.ts";
import { blockBytes } from "../lib/core/audio/format/spec.ts";
import { AudioTcpReceiver } from "../lib/core/audio/tcp/client.ts";
import type { AudioSource } from "../lib/io/audio_io.ts";
import { readChunks } from "../lib/io/conn.ts";
import { now } from "../lib/io/clock.ts";
import { writeAll } from "../lib/io/streams.ts";
import { startAudioTcpServer } from "../tcp/audio_server.ts";
import { startAudioUdpServer } from "../udp/audio_server.ts";
import { startFileServer } from "../tcp/file_server.ts";
import { sendFile } from "../tcp/file_client.ts";
import { join } from "node:path";

// What these benches use: loopback sockets, a temporary file, the environment.
// (Net is asked for loopback only: the bench-io set grants no other host.)
const granted = [
  { name: "net", host: "127.0.0.1" } as const,
  { name: "read" } as const,
  { name: "write" } as const,
  { name: "env" } as const,
].every((p) => Deno.permissions.querySync(p).state === "granted");
const ignore = !granted;
if (ignore) {
  console.log(
    "io benches ignored: they need --allow-net=127.0.0.1 and read, write and env access; run `deno task bench-io`",
  );
}
const SPEC = { rate: 44100, channels: 1, block: 1024 };
const samples = new Int16Array(1024).map((_, i) => Math.round(Math.sin(i / 10) * 8000));
void md5;

/**
 * A source as fast as the receiver takes: `blocks` blocks, never more than
 * 16 ahead of what the receiver has counted (so no queue or socket buffer
 * overflows and every block arrives). It starts when `go()` is called.
 */
function burst(blocks: number) {
  let produced = 0;
  let received = 0;
  let credit: (() => void) | undefined;
  const started = Promise.withResolvers<void>();
  const source: AudioSource = {
    spec: SPEC,
    label: "burst",
    overflows: 0,
    async read() {
      await started.promise;
      if (produced >= blocks) return null;
      while (produced - received >= 16) await new Promise<void>((r) => credit = r);
      produced++;
      return { samples, captured: Date.now() };
    },
    close: () => Promise.resolve(),
    [Symbol.asyncDispose]: () => Promise.resolve(),
  };
  return {
    source,
    go: () => started.resolve(),
    got() {
      received++;
      credit?.();
    },
  };
}

Deno.bench("tcp: 200 blocks, server to client on loopback", {
  group: "end to end streaming",
  baseline: true,
  ignore,
}, async (b) => {
  const feed = burst(200);
  await using server = startAudioTcpServer({ port: 0, source: feed.source, log: () => {} });
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
  while (server.listeners === 0) await new Promise((r) => setTimeout(r, 1));
  b.start();
  feed.go();
  let blocks = 0;
  const receiver = new AudioTcpReceiver();
  reading: for await (const bytes of readChunks(conn)) {
    for (const e of receiver.receive(bytes, now())) {
      // Answer the clock sync like a real client; blocks wait for it.
      if (e.type === "send") await writeAll(conn, e.bytes);
      if (e.type !== "block") continue;
      feed.got();
      if (++blocks === 200) break reading;
    }
  }
  b.end();
  conn.close();
});

Deno.bench("udp: 200 blocks, server to client on loopback", {
  group: "end to end streaming",
  ignore,
}, async (b) => {
  const feed = burst(200);
  await using server = startAudioUdpServer({ port: 0, source: feed.source, log: () => {} });
  const sock = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
  await sock.send(encodeSubscribe(null), server.addr);
  const [challenge] = await sock.receive();
  await sock.send(encodeSubscribe(challenge.slice(4, 20)), server.addr);
  const [format] = await sock.receive();
  const fmt = decodeFormat(format) as UdpFormat;
  const r = new Reassembler(fmt, fmt.mtu, 64, undefined, fragmentsOf(fmt, blockBytes(fmt)));
  b.start();
  feed.go();
  let blocks = 0;
  for await (const [d] of sock) {
    if (d[3] !== UdpMsg.DATA) continue;
    // Without a code every DATA datagram ends with its CRC32C (wire version 5).
    const checked = stripCheck(d);
    if (checked === null) continue;
    if (r.push(decodeFragment(checked) as Fragment)) {
      feed.got();
      if (++blocks === 200) break;
    }
  }
  b.end();
  sock.close();
});

const dir = ignore ? "" : await Deno.makeTempDir({ prefix: "bench-" });
const file = join(dir, "payload.bin");
if (!ignore) await Deno.writeFile(file, new Uint8Array(8 * 1024 * 1024).map((_, i) => i * 31));
const fileServer = ignore ? undefined : await startFileServer({
  port: 0,
  dir,
  overwrite: true,
  log: () => {},
});
Deno.bench("file: send 8 MiB over loopback, MD5 per chunk and whole", {
  group: "file transfer",
  ignore,
}, async () => {
  await sendFile({ port: fileServer!.addr.port, path: file });
});

globalThis.addEventListener("unload", () => {
  if (ignore) return;
  void fileServer?.close();
  Deno.removeSync(dir, { recursive: true });
});
