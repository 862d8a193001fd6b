/**
 * `deno bench`: the cores' hot paths and whole sessions driven in memory,
 * grouped, each against the others in its group. The cores do no I/O, so
 * these need no permission at all: plain `deno bench` runs them. The
 * socket and PortAudio benches are in `io_bench.ts` and
 * `portaudio_bench.ts` (`deno task bench-io`).
 *
 * @module
 */
import { md5 } from "../lib/core/crypto/md5.ts";
import { encodeFrame, FrameDecoder } from "../lib/core/wire/frame.ts";
import { AUDIO_CLIENT_LIMITS, decodeBlock, encodeBlock } from "../lib/core/audio/tcp/frames.ts";
import { decodeFragment, type Fragment, fragmentBlock } from "../lib/core/audio/udp/datagrams.ts";
import { Reassembler } from "../lib/core/audio/stages/reassembly.ts";
import { addCheck, stripCheck } from "../lib/core/audio/stages/datagram_check.ts";
import {
  decodeRepair,
  DEFAULT_FEC,
  FecDecoder,
  FecEncoder,
  planFec,
  type RepairFragment,
} from "../lib/core/audio/stages/fec.ts";
import { JitterBuffer } from "../lib/core/audio/stages/jitter_buffer.ts";
import { Broadcaster } from "../lib/core/audio/stages/broadcaster.ts";
import { ListenerSession } from "../lib/core/audio/tcp/server.ts";
import { DATA_OFFSET, FileSender } from "../lib/core/file/sender.ts";
import { FileReceiver } from "../lib/core/file/receiver.ts";
import { TransferState } from "../lib/core/file/transfer_state.ts";
import { encodeHello } from "../lib/core/audio/tcp/frames.ts";
import { encodeFormat } from "../lib/core/audio/udp/datagrams.ts";
import { UdpSubscriber } from "../lib/core/audio/udp/client.ts";
import { ListenerTable } from "../lib/core/audio/udp/server.ts";
import { ClockSync } from "../lib/core/audio/stages/clock_sync.ts";
import { AudioTcpReceiver } from "../lib/core/audio/tcp/client.ts";
import { joinInMemory } from "../tests/support/helpers.ts";
import { confirmationsMatch, scalarFromBytes, Spake2 } from "../lib/core/crypto/spake2.ts";

const SPEC = { rate: 44100, channels: 1, block: 1024 };
const FORMAT = { ...SPEC, streamId: 7, format: "s16le" as const, protocol: 3 };
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

const broadcaster = new Broadcaster(FORMAT);
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
  decodeBlock(d.next()!.payload, FORMAT);
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
  const r = new Reassembler(FORMAT, 1200);
  for (const f of frags) r.push(decodeFragment(f) as Fragment);
});

// The per-datagram check (issue 24): what the server adds to every DATA and
// REPAIR datagram without a code, once per datagram whatever the listeners.
Deno.bench("udp: CRC32C check of a block's datagrams (added)", {
  group: "udp check",
  baseline: true,
}, () => {
  for (const f of frags) addCheck(f);
});
const checked = frags.map(addCheck);
Deno.bench("udp: CRC32C check of a block's datagrams (verified)", { group: "udp check" }, () => {
  for (const f of checked) stripCheck(f);
});
Deno.bench("udp: MD5 of a block's datagrams (the alternative)", { group: "udp check" }, () => {
  for (const f of frags) md5(f);
});

// FEC as Audio-UDP runs it by default: groups of two 1024-frame blocks in
// four fragments each, 4 repairs per 8 fragments.
const FEC_PLAN = planFec(bytes.length, 1200, DEFAULT_FEC);
const fecBlocks = [0, 1].map((seq) => ({ seq, captured: 1000 + seq * 23.2, digest, bytes }));
const fecDatagrams = fecBlocks.flatMap((b) =>
  fragmentBlock(1, b.seq, b.captured, b.digest, b.bytes, 1200, FEC_PLAN.fragments)
);
Deno.bench("fec: the repairs of a group of two blocks", { group: "fec", baseline: true }, () => {
  const enc = new FecEncoder(1, FEC_PLAN.fec!, FEC_PLAN.fragments, bytes.length);
  enc.push(fecBlocks[0]);
  enc.push(fecBlocks[1]);
});
const groupRepairs = (() => {
  const enc = new FecEncoder(1, FEC_PLAN.fec!, FEC_PLAN.fragments, bytes.length);
  enc.push(fecBlocks[0]);
  return enc.push(fecBlocks[1]).map((d) => decodeRepair(d) as RepairFragment);
})();
Deno.bench("fec: rebuild 4 lost fragments of a group", { group: "fec" }, () => {
  const dec = new FecDecoder(1, FEC_PLAN.fec!, FEC_PLAN.fragments, bytes.length);
  // The first four fragments lost: the other four and the repairs rebuild them.
  for (const d of fecDatagrams.slice(4)) dec.source(decodeFragment(d) as Fragment);
  let rebuilt = 0;
  for (const r of groupRepairs) {
    const out = dec.repair(r, r.symbol.length + 16);
    if (Array.isArray(out)) rebuilt += out.length;
  }
  if (rebuilt !== 4) throw new Error(`rebuilt ${rebuilt}`);
});

Deno.bench("jitter buffer: push and pop 64 blocks", { group: "jitter buffer" }, () => {
  const j = new JitterBuffer({ targetMs: 70, blockMs: 23.2 });
  for (let s = 0; s < 64; s++) {
    j.push({ seq: s ^ 1, captured: 1000 + (s ^ 1) * 23.2, intact: true, samples });
  }
  for (let s = 0; s < 64; s++) j.pop(1e12);
});

// Whole sessions, both cores in memory: what the protocol costs without the network.
const FILE = new Uint8Array(8 * 1024 * 1024).map((_, i) => i * 31);
Deno.bench("file session: 8 MiB sender to receiver in memory, prefix MD5 per chunk", {
  group: "sessions in memory",
  baseline: true,
}, () => {
  const chunkSize = 64 * 1024;
  const sender = new FileSender({ name: "f", size: FILE.length, chunkSize });
  const receiver = new FileReceiver();
  for (const e of receiver.receive(sender.offerFrame(), 0)) {
    if (e.type === "offer") {
      sender.receive(receiver.accept(new TransferState(e.offer.size, chunkSize), "0".repeat(32)));
    }
  }
  const frame = new Uint8Array(DATA_OFFSET + chunkSize);
  for (let i = 0; i < sender.chunks; i++) {
    const chunk = FILE.subarray(i * chunkSize, (i + 1) * chunkSize);
    frame.set(chunk, DATA_OFFSET);
    receiver.receive(sender.chunkFrame(i, frame, chunk.length), i);
  }
  const end = receiver.receive(sender.endFrame(), 0);
  if (end.at(-1)?.type !== "verified") throw new Error("The file was not verified");
});

Deno.bench("audio-tcp session: 200 blocks broadcaster to receiver in memory", {
  group: "sessions in memory",
}, () => {
  const b = new Broadcaster(FORMAT);
  const l = new ListenerSession({
    hello: encodeHello({ ...FORMAT, protocol: 3 }),
    queueBlocks: 64,
    stuckMs: 5000,
  });
  const r = new AudioTcpReceiver();
  // The hello, and the clock sync request it leads to, answered.
  for (const e of r.receive(l.take(0)!, 0)) if (e.type === "send") l.receive(e.bytes, 0);
  r.receive(l.take(0)!, 0);
  for (let s = 0; s < 200; s++) {
    l.push(encodeBlock(b.next(samples, s * 23.2)), s);
    r.receive(l.take(s)!, s);
  }
});
Deno.bench("audio-udp session: 200 blocks fragmented, reassembled and played in memory", {
  group: "sessions in memory",
}, () => {
  const b = new Broadcaster(FORMAT);
  const table = new ListenerTable<string>({
    secret: new Uint8Array(32),
    format: encodeFormat({ ...FORMAT, mtu: 1200 }),
    maxListeners: 1,
    timeoutMs: 5000,
  });
  const sub = new UdpSubscriber({ latencyMs: 70 });
  // The handshake through a listener table, clock sync included (at 1 ms:
  // a request stamped 0 reads as none, and every block would wait for it).
  joinInMemory(table, sub, "a:1", 1);
  let played = 0;
  for (let s = 0; s < 200; s++) {
    const block = b.next(samples, s * 23.2);
    for (const f of fragmentBlock(7, block.seq, block.captured, block.digest, block.bytes, 1200)) {
      sub.receive(f, true, s * 23.2);
    }
    if (sub.pop(s * 23.2 + 70)?.kind === "play") played++;
  }
  // The work it claims was done: every block but the last few played.
  if (played < 195) throw new Error(`Only ${played} of 200 blocks were played`);
});

Deno.bench("clock sync: 120 exchanges answered, each refitting the estimate", {
  group: "clock sync",
}, () => {
  const sync = new ClockSync();
  for (let i = 0; i < 120; i++) {
    const t1 = sync.stamp(i * 1000);
    sync.answer(t1, t1 + 3_600_000 + 1, t1 + 3_600_000 + 1.05, t1 + 2.05);
  }
});

const IDS = { a: new TextEncoder().encode("server"), b: new TextEncoder().encode("client") };
const scalar = () => scalarFromBytes(crypto.getRandomValues(new Uint8Array(48)));
const CODE_W = scalar();
Deno.bench("spake2: a whole exchange, both sides, shares and confirmations", {
  group: "handshake",
}, () => {
  const a = new Spake2("A", CODE_W, scalar(), IDS);
  const b = new Spake2("B", CODE_W, scalar(), IDS);
  const ka = a.finish(b.share);
  const kb = b.finish(a.share);
  if (!confirmationsMatch(ka.peerConfirmation, kb.ownConfirmation)) {
    throw new Error("The exchange did not confirm");
  }
});
