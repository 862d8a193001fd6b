/**
 * `deno task demo`: the toolkit's main jobs on loopback with embedded
 * defaults. Sends `chamber.mp4` to a file server in a temporary directory
 * and prints what arrived and its MD5, then again with a shared code (and
 * once with a wrong one); then streams a tone over Audio-TCP
 * to a WAV file, and over Audio-UDP through a relay that drops 5% of
 * datagrams, printing each client's summary; and ends with a short
 * TCP-versus-UDP comparison at 0% and 5% loss.
 *
 * @module
 */
import { join } from "node:path";
import { runMain } from "./lib/cli/flags.ts";
import { UserError } from "./lib/core/errors.ts";
import { Md5Stream } from "./lib/core/crypto/md5.ts";
import { formatBytes } from "./lib/core/report/format.ts";
import { startFileServer } from "./tcp/file_server.ts";
import { sendFile, summarize } from "./tcp/file_client.ts";
import { startAudioTcpServer } from "./tcp/audio_server.ts";
import { runAudioTcpClient } from "./tcp/audio_client.ts";
import { openSource } from "./lib/io/audio_io.ts";
import { DEFAULT_SPEC } from "./lib/core/audio/format/spec.ts";
import { summaryText } from "./lib/core/report/stream_report.ts";
import { estimateFrequency } from "./lib/core/audio/format/tone.ts";
import { startAudioUdpServer } from "./udp/audio_server.ts";
import { runAudioUdpClient } from "./udp/audio_client.ts";
import { startUdpRelay } from "./udp/relay.ts";
import { newCode } from "./lib/cli/code.ts";

async function fileDemo(): Promise<void> {
  console.log("== File-TCP: chamber.mp4 to a server on loopback, MD5 on every chunk");
  const dir = await Deno.makeTempDir({ prefix: "sockets-demo-" });
  try {
    await using server = await startFileServer({
      port: 0,
      dir,
      log: (line) => console.log(`server: ${line}`),
    });
    console.log(`server: listening on 127.0.0.1:${server.addr.port}, storing in ${dir}`);
    const source = new URL("./chamber.mp4", import.meta.url).pathname;
    const result = await sendFile({ port: server.addr.port, path: source, progress: true });
    console.log(`client: ${summarize(result)}`);
    const stored = await Deno.readFile(join(dir, result.storedAs));
    const md5 = new Md5Stream().update(stored).hex();
    const verdict = md5 === result.md5 ? "matches the source" : "DOES NOT MATCH the source";
    console.log(
      `arrived: ${result.storedAs}, ${stored.length} bytes (${formatBytes(stored.length)}), ` +
        `MD5 ${md5}, ${verdict}`,
    );
    if (md5 !== result.md5) throw new Error("The stored file differs from the source");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function codedFileDemo(): Promise<void> {
  console.log(
    "\n== File-TCP with a shared code: SPAKE2, then every frame sealed (ChaCha20-Poly1305)",
  );
  const dir = await Deno.makeTempDir({ prefix: "sockets-demo-" });
  try {
    const code = newCode();
    await using server = await startFileServer({
      port: 0,
      dir,
      code,
      log: (line) => console.log(`server: ${line}`),
    });
    console.log(`server: listening on 127.0.0.1:${server.addr.port}, code: ${code}`);
    const source = new URL("./chamber.mp4", import.meta.url).pathname;
    const wrong = await sendFile({ port: server.addr.port, path: source, code: "not-the-code" })
      .then(() => "stored (it should not have been)", (err) => (err as Error).message);
    console.log(`client with a wrong code: ${wrong}`);
    const result = await sendFile({ port: server.addr.port, path: source, code });
    console.log(`client with the code: ${summarize(result)}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function audioTcpDemo(): Promise<void> {
  console.log(
    "\n== Audio-TCP: 3 s of a 440 Hz tone streamed on loopback to a WAV sink, MD5 per block",
  );
  const dir = await Deno.makeTempDir({ prefix: "sockets-demo-" });
  try {
    const source = await openSource("tone:440", DEFAULT_SPEC);
    await using server = startAudioTcpServer({ port: 0, source, log: console.log });
    console.log(`server: listening on 127.0.0.1:${server.addr.port}, ${source.label}`);
    const wav = join(dir, "received.wav");
    const report = await runAudioTcpClient({
      port: server.addr.port,
      output: wav,
      duration: 3,
      status: false,
    });
    console.log(summaryText(report));
    const bytes = await Deno.readFile(wav);
    const samples = new Int16Array(bytes.slice(44).buffer);
    console.log(
      `arrived: ${samples.length} samples (${(samples.length / 44100).toFixed(2)} s) at ` +
        `${estimateFrequency(samples, 44100).toFixed(1)} Hz`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function audioUdpDemo(): Promise<void> {
  console.log(
    "\n== Audio-UDP: 3 s of a tone through a relay that drops 5% of datagrams, MD5 per block",
  );
  const dir = await Deno.makeTempDir({ prefix: "sockets-demo-" });
  try {
    const source = await openSource("tone:440", { ...DEFAULT_SPEC, block: 1024 });
    await using server = startAudioUdpServer({ port: 0, source, log: console.log });
    await using relay = startUdpRelay({ port: 0, target: server.addr, impair: { loss: 0.05 } });
    console.log(
      `server: udp ${server.addr.port}; relay: udp ${relay.addr.port}, dropping 5% at random`,
    );
    const report = await runAudioUdpClient({
      port: relay.addr.port,
      output: join(dir, "received.wav"),
      duration: 3,
      status: false,
    });
    console.log(summaryText(report));
    const c = relay.model.counters;
    console.log(`relay: ${c.seen} datagrams, ${c.dropped} dropped`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function compareDemo(): Promise<void> {
  console.log(
    "\n== TCP, UDP, UDP with FEC (and GStreamer's RTP where installed): 2 s of each at 0% and 5% loss",
  );
  const dir = await Deno.makeTempDir({ prefix: "sockets-demo-" });
  try {
    // The comparison is a tool of its own (`deno task compare`); run it as one.
    const script = new URL("./bench/compare.ts", import.meta.url).pathname;
    const child = new Deno.Command(Deno.execPath(), {
      // One run a row: a glance, not a measurement (the task runs three).
      args: [
        "run",
        "--allow-all",
        script,
        ...["--seconds", "2", "--loss", "0,0.05", "--runs", "1", "--out", dir],
      ],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    // Its rows as they come, but not the files it wrote: they are in a
    // temporary folder this demo removes.
    let rest = "";
    for await (const text of child.stdout.pipeThrough(new TextDecoderStream())) {
      const lines = (rest + text).split("\n");
      rest = lines.pop()!;
      for (const line of lines) if (!line.startsWith(`wrote ${dir}`)) console.log(line);
    }
    if (rest && !rest.startsWith(`wrote ${dir}`)) console.log(rest);
    const { code } = await child.status;
    if (code !== 0) throw new UserError(`The comparison failed (exit ${code})`);
    console.log(
      "(deno task compare runs the full comparison, three runs a row, and writes a chart)",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

runMain(async () => {
  await fileDemo();
  await codedFileDemo();
  await audioTcpDemo();
  await audioUdpDemo();
  await compareDemo();
});
