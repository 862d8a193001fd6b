/**
 * `deno bench`: the hot paths, grouped, each against the others in its
 * group. Run `deno bench bench/core_bench.ts` (or plain `deno bench` for
 * every bench file, PortAudio included).
 *
 * @module
 */
import { md5 } from "../lib/core/wire/md5.ts";
import { encodeFrame, FrameDecoder } from "../lib/core/wire/frame.ts";
import { AUDIO_CLIENT_LIMITS, decodeBlock, encodeBlock } from "../lib/core/audio/tcp_frames.ts";
import { decodeFragment, type Fragment, fragmentBlock } from "../lib/core/audio/udp_datagrams.ts";
import { Reassembler } from "../lib/core/audio/reassembly.ts";
import { JitterBuffer } from "../lib/core/audio/jitter_buffer.ts";
import { Broadcaster } from "../lib/core/audio/broadcaster.ts";
import type { AudioSource } from "../lib/io/audio_io.ts";
import { startAudioTcpServer } from "../tcp/audio_server.ts";
import { startAudioUdpServer } from "../udp/audio_server.ts";
import { readChunks } from "../lib/io/conn.ts";
import { AudioTcpReceiver } from "../lib/core/audio/tcp_session.ts";
import { encodeSubscribe, UdpMsg } from "../lib/core/audio/udp_datagrams.ts";
import { startFileServer } from "../tcp/file_server.ts";
import { sendFile } from "../tcp/file_client.ts";
import { join } from "node:path";

const SPEC = { rate: 44100, channels: 1, block: 1024 };
const samples = new Int16Array(1024).map((_, i) => Math.round(Math.sin(i / 10) * 8000));
const bytes = new Uint8Array(samples.buffer);
const digest = md5(bytes);

Deno.bench("MD5 of a 2 KiB block", { group: "md5", baseline: true }, () => {
  md5(bytes);
});
Deno.bench("MD5 of a 64 KiB file chunk", { group: "md5" }, () => {
  md5(CHUNK);
});
const CHUNK = new Uint8Array(64 * 1024).fill(3);

const broadcaster = new Broadcaster({ ...SPEC, streamId: 1, format: "s16le" });
const frame = encodeBlock(broadcaster.next(samples, 1000));
Deno.bench(
  "tcp: encode a block frame (with its MD5)",
  { group: "tcp framing", baseline: true },
  () => {
    encodeBlock(broadcaster.next(samples, 1000));
  },
);
Deno.bench("tcp: decode and check a block frame", { group: "tcp framing" }, () => {
  const d = new FrameDecoder(AUDIO_CLIENT_LIMITS);
  d.push(frame);
  decodeBlock(d.next()!.payload, SPEC);
});
Deno.bench("tcp: decode 64 frames fed in 1000-byte pieces", { group: "tcp framing" }, () => {
  const stream = new Uint8Array(frame.length * 64);
  for (let i = 0; i < 64; i++) stream.set(frame, i * frame.length);
  const d = new FrameDecoder(AUDIO_CLIENT_LIMITS);
  for (let o = 0; o < stream.length; o += 1000) {
    d.push(stream.subarray(o, o + 1000));
    while (d.next());
  }
});
Deno.bench("frame: encode a 64 KiB frame", { group: "tcp framing" }, () => {
  encodeFrame(3, CHUNK);
});

const frags = fragmentBlock(1, 7, 1000, digest, bytes, 1200);
Deno.bench("udp: fragment a block", { group: "udp fragmentation", baseline: true }, () => {
  fragmentBlock(1, 7, 1000, digest, bytes, 1200);
});
Deno.bench("udp: reassemble and check a block", { group: "udp fragmentation" }, () => {
  const r = new Reassembler(2048, 1200);
  for (const f of frags) r.push(decodeFragment(f) as Fragment);
});

Deno.bench("jitter buffer: push and pop 64 blocks", { group: "jitter buffer" }, () => {
  const j = new JitterBuffer({ targetMs: 70, blockMs: 23.2 });
  for (let s = 0; s < 64; s++) {
    j.push({ seq: s ^ 1, captured: 1000 + (s ^ 1) * 23.2, intact: true, samples });
  }
  for (let s = 0; s < 64; s++) j.pop(1e12);
});

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
    for (const e of receiver.receive(bytes)) {
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
}, async (b) => {
  const feed = burst(200);
  await using server = startAudioUdpServer({ port: 0, source: feed.source, log: () => {} });
  const sock = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
  await sock.send(encodeSubscribe(null), server.addr);
  const [challenge] = await sock.receive();
  await sock.send(encodeSubscribe(challenge.slice(4, 20)), server.addr);
  await sock.receive(); // FORMAT
  const r = new Reassembler(2048, 1200);
  b.start();
  feed.go();
  let blocks = 0;
  for await (const [d] of sock) {
    if (d[3] !== UdpMsg.DATA) continue;
    if (r.push(decodeFragment(d) as Fragment)) {
      feed.got();
      if (++blocks === 200) break;
    }
  }
  b.end();
  sock.close();
});

const dir = await Deno.makeTempDir({ prefix: "bench-" });
const file = join(dir, "payload.bin");
await Deno.writeFile(file, new Uint8Array(8 * 1024 * 1024).map((_, i) => i * 31));
const fileServer = await startFileServer({
  port: 0,
  dir,
  overwrite: true,
  log: () => {},
});
Deno.bench("file: send 8 MiB over loopback, MD5 per chunk and whole", {
  group: "file transfer",
}, async () => {
  await sendFile({ port: fileServer.addr.port, path: file });
});

globalThis.addEventListener("unload", () => {
  void fileServer.close();
  Deno.removeSync(dir, { recursive: true });
});
