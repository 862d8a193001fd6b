import assert from "node:assert/strict";
import { encodeWavHeader, parseWavHeader } from "../../lib/core/audio/format/wav.ts";
import { estimateFrequency, rmsLevel, ToneGenerator } from "../../lib/core/audio/format/tone.ts";
import { parseEndpoint, selectDevice } from "../../lib/core/audio/format/endpoint.ts";
import { specFromFlags } from "../../lib/cli/audio_shell.ts";
import { UserError } from "../../lib/core/errors.ts";

Deno.test("WAV headers round-trip and foreign files are refused", () => {
  const h = encodeWavHeader(48000, 2, 4000);
  assert.deepEqual(parseWavHeader(h), {
    rate: 48000,
    channels: 2,
    bitsPerSample: 16,
    dataOffset: 44,
    dataLength: 4000,
  });
  assert.throws(() => parseWavHeader(new TextEncoder().encode("not a wav at all")), /not a WAV/);
  const float = h.slice();
  new DataView(float.buffer).setUint16(20, 3, true); // IEEE float
  new DataView(float.buffer).setUint16(34, 32, true);
  assert.throws(() => parseWavHeader(float, "f.wav"), /f\.wav is not 16-bit PCM/);
});

Deno.test("the tone generator makes the frequency and level asked for, phase-continuous", () => {
  const gen = new ToneGenerator(1000, 44100, 1, 0.5);
  const a = gen.next(22050);
  const b = gen.next(22050);
  const both = new Int16Array(44100);
  both.set(a);
  both.set(b, 22050);
  assert.ok(Math.abs(estimateFrequency(both, 44100) - 1000) < 1);
  assert.ok(Math.abs(rmsLevel(both) - 0.5 / Math.SQRT2) < 0.01);
  // No jump at the block boundary.
  assert.ok(Math.abs(b[0] - a[a.length - 1]) < 0.5 * 32767 * 2 * Math.PI * 1000 / 44100 + 2);
});

Deno.test("endpoint specs parse the one way every tool names audio", () => {
  assert.deepEqual(parseEndpoint("default", "input"), { kind: "device", selector: "default" });
  assert.deepEqual(parseEndpoint("3", "output"), { kind: "device", selector: 3 });
  assert.deepEqual(parseEndpoint("USB Mic", "input"), { kind: "device", selector: "USB Mic" });
  assert.deepEqual(parseEndpoint("tone", "input"), { kind: "tone", hz: 440 });
  assert.deepEqual(parseEndpoint("tone:880", "input"), { kind: "tone", hz: 880 });
  assert.deepEqual(parseEndpoint("rec/x.WAV", "output"), { kind: "wav", path: "rec/x.WAV" });
  assert.deepEqual(parseEndpoint("null", "output"), { kind: "null" });
  assert.throws(() => parseEndpoint("null", "input"), UserError);
  assert.throws(() => parseEndpoint("tone", "output"), UserError);
  assert.throws(() => parseEndpoint("tone:0", "input"), /outside/);
});

Deno.test("devices are chosen by default, index or part of a name, with clear refusals", () => {
  const devs = [
    { index: 0, name: "pulse", maxInputChannels: 32, maxOutputChannels: 32 },
    { index: 1, name: "default", maxInputChannels: 32, maxOutputChannels: 32 },
    { index: 2, name: "HDMI 0", maxInputChannels: 0, maxOutputChannels: 8 },
    { index: 3, name: "HDMI 1", maxInputChannels: 0, maxOutputChannels: 8 },
  ];
  assert.equal(selectDevice("default", "input", devs, 1), 1);
  assert.equal(selectDevice(2, "output", devs, 1), 2);
  assert.equal(selectDevice("puls", "input", devs, 1), 0);
  assert.equal(selectDevice("hdmi 1", "output", devs, 1), 3);
  assert.throws(() => selectDevice(9, "input", devs, 1), /There is no audio device 9/);
  assert.throws(() => selectDevice(2, "input", devs, 1), /HDMI 0\) has no inputs/);
  assert.throws(() => selectDevice("usb", "input", devs, 1), /No input device matches "usb"/);
  assert.throws(() => selectDevice("hdmi", "output", devs, 1), /matches several output devices/);
  assert.throws(() => selectDevice("default", "input", devs, -1), /no default input device/);
});

Deno.test("audio flags are validated with the flag named", () => {
  assert.deepEqual(specFromFlags({ rate: "48000", channels: "2", block: "1024" }), {
    rate: 48000,
    channels: 2,
    block: 1024,
  });
  assert.throws(
    () => specFromFlags({ rate: "fast", channels: "1", block: "512" }),
    /--rate "fast"/,
  );
  assert.throws(
    () => specFromFlags({ rate: "1000", channels: "1", block: "512" }),
    /Sample rate 1000/,
  );
  assert.throws(
    () => specFromFlags({ rate: "44100", channels: "0", block: "512" }),
    /Channel count 0/,
  );
});
