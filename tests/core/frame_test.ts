import assert from "node:assert/strict";
import {
  concatBytes,
  encodeFrame,
  FrameDecoder,
  type FrameLimits,
  HEADER_LENGTH,
} from "../../lib/core/wire/frame.ts";
import { ProtocolError } from "../../lib/core/errors.ts";

const LIMITS: FrameLimits = { maxPayload: { 1: 100, 2: 10_000, 3: 0 } };

function frames(): Uint8Array[] {
  const big = new Uint8Array(5000).map((_, i) => i * 7);
  return [
    encodeFrame(1, new TextEncoder().encode("hello")),
    encodeFrame(3, new Uint8Array(0)),
    encodeFrame(2, big),
    encodeFrame(1, new Uint8Array([1, 2, 3])),
  ];
}

function drain(dec: FrameDecoder): { type: number; payload: number[] }[] {
  const out = [];
  for (let f = dec.next(); f; f = dec.next()) out.push({ type: f.type, payload: [...f.payload] });
  return out;
}

const expected = frames().map((f) => ({
  type: f[3],
  payload: [...f.subarray(HEADER_LENGTH)],
}));

Deno.test("decoder returns the same frames at every split point", () => {
  const stream = concatBytes(frames());
  for (let cut = 0; cut <= stream.length; cut++) {
    const dec = new FrameDecoder(LIMITS);
    dec.push(stream.subarray(0, cut));
    const got = drain(dec);
    dec.push(stream.subarray(cut));
    got.push(...drain(dec));
    dec.finish();
    assert.deepEqual(got, expected, `split at ${cut}`);
  }
});

Deno.test("decoder handles one byte at a time", () => {
  const stream = concatBytes(frames());
  const dec = new FrameDecoder(LIMITS);
  const got = [];
  for (const b of stream) {
    dec.push(new Uint8Array([b]));
    got.push(...drain(dec));
  }
  assert.deepEqual(got, expected);
  assert.equal(dec.buffered, 0);
});

Deno.test("decoder rejects a bad magic from the first byte", () => {
  const dec = new FrameDecoder(LIMITS);
  dec.push(new Uint8Array([0x47]));
  assert.throws(() => dec.next(), /bad magic/);
});

Deno.test("decoder rejects HTTP and other foreign protocols", () => {
  const dec = new FrameDecoder(LIMITS);
  assert.throws(() => {
    dec.push(new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n"));
    dec.next();
  }, ProtocolError);
});

Deno.test("decoder rejects wrong version and unknown type", () => {
  const v = encodeFrame(1, new Uint8Array(1));
  v[2] = 9;
  const d1 = new FrameDecoder(LIMITS);
  d1.push(v);
  assert.throws(() => d1.next(), /version 9/);
  const t = encodeFrame(1, new Uint8Array(1));
  t[3] = 77;
  const d2 = new FrameDecoder(LIMITS);
  d2.push(t);
  assert.throws(() => d2.next(), /Unknown frame type 77/);
});

Deno.test("decoder rejects a huge length before buffering the payload", () => {
  const head = encodeFrame(1, new Uint8Array(0));
  new DataView(head.buffer).setUint32(4, 0xffffffff);
  const dec = new FrameDecoder(LIMITS);
  dec.push(head);
  assert.throws(() => dec.next(), /claims 4294967295 bytes, over the limit of 100/);
  // Pushing more after a bad header also throws instead of buffering.
  assert.throws(() => dec.push(new Uint8Array(1 << 20)), ProtocolError);
});

Deno.test("decoder reports a stream cut mid-frame", () => {
  const f = encodeFrame(2, new Uint8Array(50));
  const dec = new FrameDecoder(LIMITS);
  dec.push(f.subarray(0, 20));
  assert.equal(dec.next(), null);
  assert.throws(() => dec.finish(), /ended in the middle of a frame/);
});

Deno.test("decoder survives random bytes: only protocol errors, bounded memory", () => {
  let x = 12345;
  const rnd = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
  for (let run = 0; run < 500; run++) {
    const dec = new FrameDecoder(LIMITS);
    const junk = new Uint8Array(1 + Math.floor(rnd() * 300)).map(() => Math.floor(rnd() * 256));
    // Half the runs start with a valid magic and version to reach deeper checks.
    if (run % 2 === 0 && junk.length > 3) {
      junk[0] = 0x53;
      junk[1] = 0x4b;
      junk[2] = 1;
    }
    try {
      dec.push(junk);
      while (dec.next());
    } catch (err) {
      assert.ok(err instanceof ProtocolError, String(err));
    }
  }
});

Deno.test("decoder memory stops at the largest frame allowed: a valid header claiming more is refused", () => {
  // A type-2 frame may carry 10,000 bytes: one claiming exactly that is
  // buffered up to its end, 64 KiB pushed in 1 KiB pieces.
  const head = encodeFrame(2, new Uint8Array(0));
  new DataView(head.buffer).setUint32(4, 10_000);
  const dec = new FrameDecoder(LIMITS);
  dec.push(head);
  let peak = 0;
  let got = 0;
  for (let i = 0; i < 64; i++) {
    try {
      dec.push(new Uint8Array(1024));
      while (dec.next()) got++;
    } catch (err) {
      // The bytes after the frame are not a frame: refused, not buffered.
      assert.ok(err instanceof ProtocolError, String(err));
      break;
    }
    peak = Math.max(peak, dec.buffered);
  }
  assert.equal(got, 1, "the 10,000-byte frame arrived");
  assert.ok(peak <= HEADER_LENGTH + 10_000, `buffered ${peak} bytes`);
  // One byte more than allowed: refused at the header, nothing buffered.
  const over = encodeFrame(2, new Uint8Array(0));
  new DataView(over.buffer).setUint32(4, 10_001);
  const d2 = new FrameDecoder(LIMITS);
  d2.push(over);
  assert.throws(() => d2.next(), /over the limit of 10000/);
});
