/**
 * Audio-UDP with a shared code, through the real server and client: the
 * recording equals its source while no sample crosses in clear; a wrong
 * code, none, and a coded client at a plain server are each one line;
 * a datagram changed on the way is counted as tampering, never played.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openSource } from "../../lib/io/audio_io.ts";
import { startAudioUdpServer } from "../../udp/audio_server.ts";
import { runAudioUdpClient } from "../../udp/audio_client.ts";
import { startUdpRelay } from "../../udp/relay.ts";
import {
  contains,
  readWav,
  sourceOrConcealed,
  tempDir,
  writeNoiseWav,
} from "../support/helpers.ts";

const CODE = "bamol-tisek-ruvan";
const BLOCK = 1024;
const quiet = { log: () => {}, status: false, latencyMs: 300 };

async function server(path: string, code?: string) {
  const source = await openSource(path, { rate: 44100, channels: 1, block: BLOCK });
  return startAudioUdpServer({ port: 0, source, log: () => {}, code });
}

/** A UDP tap for one client: forwards both ways, keeps what the server sent. */
function udpTap(target: Deno.NetAddr) {
  const front = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
  const back = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
  const seen: Uint8Array[] = [];
  let client: Deno.Addr | undefined;
  const up = (async () => {
    for await (const [d, a] of front) {
      client = a;
      await back.send(d, target);
    }
  })().catch(() => {});
  const down = (async () => {
    for await (const [d] of back) {
      seen.push(d.slice());
      if (client) await front.send(d, client);
    }
  })().catch(() => {});
  return {
    port: (front.addr as Deno.NetAddr).port,
    fromServer: () => seen,
    close: async () => {
      front.close();
      back.close();
      await Promise.allSettled([up, down]);
    },
  };
}

Deno.test("udp code: the right code records the source; no sample crosses in clear", async () => {
  await using dir = await tempDir();
  const src = join(dir.path, "src.wav");
  const rec = join(dir.path, "rec.wav");
  const source = await writeNoiseWav(src, 4);
  await using srv = await server(src, CODE);
  const tapped = udpTap(srv.addr);
  const r = await runAudioUdpClient({
    port: tapped.port,
    output: rec,
    duration: 2,
    code: "Bamol Tisek RUVAN",
    ...quiet,
  });
  await tapped.close();
  const { samples } = await readWav(rec);
  const check = sourceOrConcealed(source, samples, BLOCK);
  assert.deepEqual(check.wrong, []);
  assert.equal(check.concealed, 0);
  assert.ok(check.same > 60, `${check.same} blocks`);
  // A played block's first 64 bytes, looked for in every datagram the server sent.
  const block = samples.subarray(20 * BLOCK, 21 * BLOCK);
  const needle = new Uint8Array(block.buffer, block.byteOffset, 64);
  assert.ok(tapped.fromServer().length > 100);
  assert.equal(tapped.fromServer().some((d) => contains(d, needle)), false);
  assert.equal(r.datagrams_tampered, 0);
});

Deno.test("udp code: wrong code, no code and a coded client at a plain server are each one line", async () => {
  await using dir = await tempDir();
  const src = join(dir.path, "src.wav");
  await writeNoiseWav(src, 4);
  await using srv = await server(src, CODE);
  const run = (port: number, code?: string) =>
    runAudioUdpClient({ port, output: "null", duration: 1, code, ...quiet });
  await assert.rejects(run(srv.addr.port, "wrong-code"), /The code does not match$/);
  await assert.rejects(run(srv.addr.port), /This server needs a code/);
  assert.equal(srv.stats.listenersJoined, 0, "nobody joined");
  await using plain = await server(src);
  await assert.rejects(run(plain.addr.port, CODE), /Server does not use a code/);
});

Deno.test("udp code: a datagram changed on the way is counted as tampering and never played", async () => {
  await using dir = await tempDir();
  const src = join(dir.path, "src.wav");
  const rec = join(dir.path, "rec.wav");
  const source = await writeNoiseWav(src, 4);
  await using srv = await server(src, CODE);
  await using relay = startUdpRelay({
    port: 0,
    target: srv.addr,
    // Seeded: the handshake's few datagrams pass (a damaged confirmation
    // could not be told from a wrong code); later ones are hit.
    impair: { corrupt: 0.05 },
    seed: 3,
  });
  const r = await runAudioUdpClient({
    port: relay.addr.port,
    output: rec,
    duration: 2,
    code: CODE,
    ...quiet,
  });
  // Caught by its tag, before any MD5: none is counted corrupted.
  assert.ok((r.datagrams_tampered as number) >= 2, JSON.stringify(r));
  assert.equal(r.blocks_corrupted, 0);
  const check = sourceOrConcealed(source, (await readWav(rec)).samples, BLOCK);
  assert.deepEqual(check.wrong, []);
  // A dropped datagram's fragment is rebuilt from the repairs or its block concealed.
  assert.ok(check.same > 40, JSON.stringify(check));
  assert.ok(check.concealed + (r.blocks_recovered as number) > 0, JSON.stringify(r));
  assert.equal(check.concealed, r.blocks_concealed);
});
