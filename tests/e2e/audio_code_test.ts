/**
 * Audio-TCP with a shared code, through the real server and client: the
 * recording equals its source and the wire shows none of it; a wrong code
 * plays nothing; a plain client is told the server needs a code.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openSource } from "../../lib/io/audio_io.ts";
import { startAudioTcpServer } from "../../tcp/audio_server.ts";
import { runAudioTcpClient } from "../../tcp/audio_client.ts";
import {
  alignBlocks,
  compareBlocks,
  contains,
  readWav,
  tap,
  tempDir,
  writeNoiseWav,
} from "../support/helpers.ts";

const CODE = "bamol-tisek-ruvan";
const BLOCK = 512;
const quiet = { log: () => {}, status: false, latencyMs: 5000 };

async function server(path: string, code?: string) {
  const source = await openSource(path, { rate: 44100, channels: 1, block: BLOCK });
  return startAudioTcpServer({ port: 0, source, log: () => {}, code });
}

Deno.test("audio code: the right code records the source sample for sample; the wire shows none of it", async () => {
  await using dir = await tempDir();
  const src = join(dir.path, "src.wav");
  const rec = join(dir.path, "rec.wav");
  const source = await writeNoiseWav(src, 3);
  await using srv = await server(src, CODE);
  const wire = tap(srv.addr.port);
  const r = await runAudioTcpClient({
    port: wire.port,
    output: rec,
    duration: 1.5,
    code: "Bamol Tisek Ruvan",
    ...quiet,
  });
  await wire.close();
  const { samples } = await readWav(rec);
  const start = alignBlocks(source, samples, BLOCK);
  assert.ok(start >= 0, "the recording starts on a source block");
  assert.deepEqual(compareBlocks(source, samples, BLOCK, start).different, []);
  assert.ok(r.blocks_received > 60, `${r.blocks_received} blocks`);
  // Any played block's bytes, looked for on the wire: never in clear.
  const played = samples.subarray(10 * BLOCK, 11 * BLOCK);
  const bytes = new Uint8Array(played.buffer, played.byteOffset, 64);
  assert.equal(contains(wire.toClient(), bytes), false, "no sample crossed in clear");
  // Without a code the same tap does see them: the check can fail.
  await using plain = await server(src);
  const clear = tap(plain.addr.port);
  const p = await runAudioTcpClient({ port: clear.port, output: rec, duration: 1.5, ...quiet });
  await clear.close();
  const again = (await readWav(rec)).samples.subarray(10 * BLOCK, 11 * BLOCK);
  assert.ok(p.blocks_received > 60);
  assert.ok(contains(clear.toClient(), new Uint8Array(again.buffer, again.byteOffset, 64)));
});

Deno.test("audio code: a wrong code plays nothing; a plain client hears it needs one", async () => {
  await using dir = await tempDir();
  const src = join(dir.path, "src.wav");
  await writeNoiseWav(src, 3);
  await using srv = await server(src, CODE);
  await assert.rejects(
    runAudioTcpClient({
      port: srv.addr.port,
      output: "null",
      duration: 1,
      code: "wrong-code",
      ...quiet,
    }),
    /The code does not match/,
  );
  await assert.rejects(
    runAudioTcpClient({ port: srv.addr.port, output: "null", duration: 1, ...quiet }),
    /This server needs a code/,
  );
  assert.equal(srv.stats.listenersServed, 0, "no listener was ever served");
  // A coded client at a plain server is told so.
  await using plain = await server(src);
  await assert.rejects(
    runAudioTcpClient({ port: plain.addr.port, output: "null", duration: 1, code: CODE, ...quiet }),
    /Server does not use a code/,
  );
});
