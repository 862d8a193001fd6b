/**
 * GStreamer's RTP stack as a peer in `deno task compare`: Debian's
 * `gst-launch-1.0` (1.22, plugins-good) sends the comparison's source as
 * RTP L16 and receives it through `rtpjitterbuffer`, with or without
 * `rtpulpfecenc`/`rtpulpfecdec` (RFC 5109 parity), over the same path and
 * the same loss as our tools.
 *
 * The yardstick is ours: the share of the source's 1024-frame blocks that
 * come out intact. The sender cuts the source into RTP packets of 512
 * frames (two a block, as Audio-UDP's plain stream has two datagrams a
 * block at MTU 1200); the receiver writes what `rtpL16depay` gives to a
 * file, and each packet of the source is looked for in it. The source is
 * noise, so no two packets are alike and a packet found is that packet,
 * bit for bit. Latency is not measured: `gst-launch-1.0` gives no
 * per-packet timing, so the row says so and shows the jitter buffer's
 * configured latency instead, never an estimate.
 *
 * Why `multipacket=false`: `rtpulpfecenc` closes a parity group at each
 * packet with the RTP marker bit, the end of a video frame. L16 audio sets
 * the marker only after silence, so with the default the encoder makes no
 * repair packets at all (it logs "Actual FEC overhead is 0.00%"). With
 * `multipacket=false` each repair protects one packet, `percentage=50`
 * of them: the only form of GStreamer's ULPFEC that repairs L16 audio.
 *
 * @module
 */
import { commandExists } from "../tests/support/tool_process.ts";
import { bytesEqual } from "../lib/core/crypto/md5.ts";

/** Elements the peer rows need. */
const ELEMENTS = [
  "rawaudioparse",
  "rtpL16pay",
  "rtpL16depay",
  "rtpjitterbuffer",
  "rtpulpfecenc",
  "rtpulpfecdec",
  "rtpstorage",
  "udpsrc",
  "udpsink",
];

/** Frames in one RTP packet (two per 1024-frame block). */
export const GST_PACKET_FRAMES = 512;
/** The jitter buffer's latency, ms: `rtpjitterbuffer`'s default. */
export const GST_LATENCY_MS = 200;
const SSRC = 0x5eed;
const FEC_PT = 122;
const RATE = 44100;

/** Why the GStreamer rows cannot run here, or null if they can. */
export async function gstUnavailable(): Promise<string | null> {
  if (!(await commandExists("gst-launch-1.0"))) {
    return "gst-launch-1.0 is not installed (apt-get install gstreamer1.0-tools gstreamer1.0-plugins-good)";
  }
  for (const e of ELEMENTS) {
    const out = await new Deno.Command("gst-inspect-1.0", {
      args: [e],
      stdout: "null",
      stderr: "null",
    })
      .output().catch(() => ({ code: 1 }));
    if (out.code !== 0) return `GStreamer element ${e} is missing (gstreamer1.0-plugins-good)`;
  }
  return null;
}

/** The 16-bit samples as big-endian bytes (RTP L16's order). */
export function toBigEndian(samples: Int16Array): Uint8Array {
  const out = new Uint8Array(samples.length * 2);
  const v = new DataView(out.buffer);
  samples.forEach((s, i) => v.setInt16(i * 2, s));
  return out;
}

/** Options of {@link runGstPeer}. */
export interface GstPeerOptions {
  /** The source, raw big-endian mono samples at 44.1 kHz. */
  source: string;
  /** Where the receiver writes what it gets. */
  output: string;
  /** With `rtpulpfecenc`/`rtpulpfecdec`. */
  fec: boolean;
  /** Where the sender sends (the receiver, or a relay in front of it). */
  to: { hostname: string; port: number };
  /** The receiver's port. */
  listenPort: number;
  /** Namespaces to run the sender and the receiver in, if any. */
  senderNs?: string;
  receiverNs?: string;
}

function gst(ns: string | undefined, pipeline: string[]): Deno.Command {
  const args = ["-q", "-e", ...pipeline];
  return new Deno.Command(ns ? "ip" : "gst-launch-1.0", {
    args: ns ? ["netns", "exec", ns, "gst-launch-1.0", ...args] : args,
    stdout: "null",
    stderr: "piped",
  });
}

/**
 * Runs the receiver, then the sender to the end of the source, then stops
 * the receiver once its jitter buffer has emptied. `track` is given each
 * child so an interrupted bench can stop it.
 */
export async function runGstPeer(
  o: GstPeerOptions,
  track: (c: Deno.ChildProcess) => Deno.ChildProcess = (c) => c,
): Promise<void> {
  const caps = `application/x-rtp,media=audio,clock-rate=${RATE},encoding-name=L16,` +
    `channels=1,payload=96,ssrc=(uint)${SSRC}`;
  const jitter = `rtpjitterbuffer latency=${GST_LATENCY_MS} do-lost=true`;
  const receive = [
    "udpsrc",
    `port=${o.listenPort}`,
    `caps=${caps}`,
    "!",
    ...(o.fec
      ? [
        ...`rtpstorage size-time=${(GST_LATENCY_MS + 50) * 1_000_000} !`.split(" "),
        ...jitter.split(" "),
        ...`! rtpulpfecdec pt=${FEC_PT}`.split(" "),
      ]
      : jitter.split(" ")),
    "!",
    "rtpL16depay",
    "!",
    "filesink",
    `location=${o.output}`,
  ];
  const send = [
    "filesrc",
    `location=${o.source}`,
    "!",
    ...`rawaudioparse format=pcm pcm-format=s16be sample-rate=${RATE} num-channels=1`.split(" "),
    "!",
    ...`rtpL16pay pt=96 ssrc=${SSRC} mtu=${12 + GST_PACKET_FRAMES * 2}`.split(" "),
    "!",
    ...(o.fec ? `rtpulpfecenc pt=${FEC_PT} percentage=50 multipacket=false !`.split(" ") : []),
    "udpsink",
    `host=${o.to.hostname}`,
    `port=${o.to.port}`,
    "sync=true",
  ];
  const receiver = track(gst(o.receiverNs, receive).spawn());
  try {
    await new Promise((r) => setTimeout(r, 500));
    const sender = await track(gst(o.senderNs, send).spawn()).output();
    if (sender.code !== 0) {
      throw new Error(`gst-launch-1.0 sender failed: ${new TextDecoder().decode(sender.stderr)}`);
    }
    await new Promise((r) => setTimeout(r, GST_LATENCY_MS + 500));
  } finally {
    try {
      receiver.kill("SIGINT");
    } catch {
      // Already gone.
    }
  }
  const out = await receiver.output();
  if (out.code !== 0 && out.code !== 130) {
    throw new Error(`gst-launch-1.0 receiver failed: ${new TextDecoder().decode(out.stderr)}`);
  }
}

/**
 * Which of the source's packets (`packetBytes` each) occur intact in
 * `output`, by index. The output is the packets received, back to back;
 * where something else sits, the search moves on a sample at a time.
 */
export function packetsFound(
  source: Uint8Array,
  output: Uint8Array,
  packetBytes: number,
): Set<number> {
  const index = new Map<string, number>();
  const key = (b: Uint8Array) => Array.from(b.subarray(0, 32)).join(",");
  for (let i = 0; (i + 1) * packetBytes <= source.length; i++) {
    index.set(key(source.subarray(i * packetBytes, (i + 1) * packetBytes)), i);
  }
  const found = new Set<number>();
  let p = 0;
  while (p + packetBytes <= output.length) {
    const got = output.subarray(p, p + packetBytes);
    const i = index.get(key(got));
    if (
      i !== undefined && bytesEqual(got, source.subarray(i * packetBytes, (i + 1) * packetBytes))
    ) {
      found.add(i);
      p += packetBytes;
    } else p += 2;
  }
  return found;
}

/**
 * Blocks of `blockFrames` intact in the output: every packet of the block
 * found. Returns how many blocks the source has and how many arrived whole.
 */
export function blocksIntact(
  source: Uint8Array,
  output: Uint8Array,
  blockFrames: number,
): { blocks: number; intact: number } {
  const packetBytes = GST_PACKET_FRAMES * 2;
  const per = blockFrames / GST_PACKET_FRAMES;
  const found = packetsFound(source, output, packetBytes);
  const blocks = Math.floor(source.length / (blockFrames * 2));
  let intact = 0;
  for (let b = 0; b < blocks; b++) {
    let all = true;
    for (let k = 0; k < per && all; k++) all = found.has(b * per + k);
    if (all) intact++;
  }
  return { blocks, intact };
}
