/**
 * The shared code's cores driven without sockets: code phrases, the AEAD
 * channel, the coded stream's handshake at every split, a wrong code,
 * tampering, replay, a plain client, and the guess limiter with time
 * passed in.
 */
import assert from "node:assert/strict";
import { CODE_BITS, codeScalar, generateCode, normalizeCode } from "../../lib/core/crypto/code.ts";
import { Opener, Sealer } from "../../lib/core/crypto/channel.ts";
import {
  CodeMismatch,
  CodeRequired,
  SecureMsg,
  SecureStream,
  Tampered,
} from "../../lib/core/crypto/secure_stream.ts";
import {
  GLOBAL_PER_SECOND,
  GuessLimiter,
  HOST_BURST,
} from "../../lib/core/crypto/guess_limiter.ts";
import { encodeFrame } from "../../lib/core/wire/frame.ts";

const rnd = (n: number) => crypto.getRandomValues(new Uint8Array(n));

Deno.test("codes: three pronounceable words, about 50 bits, compared after normalizing", () => {
  const code = generateCode(rnd(12));
  assert.match(
    code,
    /^([bdfghjklmnprstvz][aeiou]){2}[bdfghjklmnprstvz](-([bdfghjklmnprstvz][aeiou]){2}[bdfghjklmnprstvz]){2}$/,
  );
  assert.ok(CODE_BITS > 49.8 && CODE_BITS < 50, `${CODE_BITS}`);
  assert.notEqual(generateCode(rnd(12)), code);
  assert.equal(normalizeCode("  Bamol Tisek__RUVAN "), "bamol-tisek-ruvan");
  assert.equal(
    codeScalar("Bamol tisek ruvan", "file-tcp"),
    codeScalar("bamol-tisek-ruvan", "file-tcp"),
  );
  assert.notEqual(
    codeScalar("bamol-tisek-ruvan", "file-tcp"),
    codeScalar("bamol-tisek-ruvan", "audio-tcp"),
  );
});

Deno.test("channel: sealed messages open in order only; a flipped bit, a replay or another key fail", () => {
  const key = rnd(32);
  const s = new Sealer(key);
  const o = new Opener(key);
  const aad = new Uint8Array([1, 2, 3]);
  const m1 = s.seal(new TextEncoder().encode("first"), aad);
  const m2 = s.seal(new TextEncoder().encode("second"), aad);
  assert.equal(new TextDecoder().decode(o.open(m1, aad)!), "first");
  assert.equal(o.open(m1, aad), null, "a replay");
  const flipped = m2.slice();
  flipped[2] ^= 1;
  assert.equal(o.open(flipped, aad), null, "a flipped bit");
  assert.equal(o.open(m2, new Uint8Array([9])), null, "other associated data");
  assert.equal(new TextDecoder().decode(o.open(m2, aad)!), "second");
  assert.equal(new Opener(rnd(32)).open(s.seal(new Uint8Array(4), aad), aad), null, "another key");
  const reordered = new Opener(key);
  assert.equal(reordered.open(m2, aad), null, "out of order");
});

/** Runs a handshake between two streams, cutting every byte stream at `split`. */
function handshake(client: SecureStream, server: SecureStream, split = 1 << 20) {
  const pieces = (b: Uint8Array) => {
    const out = [];
    for (let i = 0; i < b.length; i += split) out.push(b.subarray(i, i + split));
    return out;
  };
  let toServer = [client.start()];
  const events = { client: [] as string[], server: [] as string[] };
  while (toServer.length > 0) {
    const toClient: Uint8Array[] = [];
    for (const b of toServer) {
      for (const p of pieces(b)) {
        for (const e of server.receive(p)) {
          events.server.push(e.type);
          if (e.type === "send") toClient.push(e.bytes);
        }
      }
    }
    toServer = [];
    for (const b of toClient) {
      for (const p of pieces(b)) {
        for (const e of client.receive(p)) {
          events.client.push(e.type);
          if (e.type === "send") toServer.push(e.bytes);
        }
      }
    }
  }
  return events;
}

const stream = (role: "server" | "client", code: string) =>
  new SecureStream(role, { code, context: "file-tcp", random: rnd(48), maxInner: 1 << 16 });

Deno.test("secure stream: the right code at every split, then sealed frames both ways", () => {
  for (const split of [1, 7, 64, 1 << 20]) {
    const c = stream("client", "bamol-tisek-ruvan");
    const s = stream("server", "Bamol Tisek Ruvan");
    const ev = handshake(c, s, split);
    assert.ok(c.ready && s.ready, `split ${split}`);
    assert.deepEqual(ev.client.filter((t) => t === "ready"), ["ready"]);
    const inner = encodeFrame(1, new TextEncoder().encode('{"name":"x"}'));
    const got = s.receive(c.seal(inner));
    assert.deepEqual(got, [{ type: "data", bytes: inner }]);
    const back = c.receive(s.seal(encodeFrame(2, new Uint8Array(3))));
    assert.equal(back[0].type, "data");
  }
});

Deno.test("secure stream: a wrong code is refused on both sides before anything moves", () => {
  const c = stream("client", "bamol-tisek-ruvan");
  const s = stream("server", "bamol-tisek-ruvaz");
  assert.throws(() => handshake(c, s), CodeMismatch);
  assert.equal(c.ready || s.ready, false);
  // The server learns it from the client's refusal.
  assert.throws(
    () => s.receive(SecureStream.refusal("The code does not match")),
    CodeMismatch,
  );
  assert.throws(() => c.seal(new Uint8Array(1)), /handshake is not done/);
});

Deno.test("secure stream: tampering, replay and frames out of place are caught", () => {
  const c = stream("client", "bamol-tisek-ruvan");
  const s = stream("server", "bamol-tisek-ruvan");
  handshake(c, s);
  const sealed = c.seal(encodeFrame(3, new Uint8Array(100)));
  const flipped = sealed.slice();
  flipped[50] ^= 0x20;
  assert.throws(() => s.receive(flipped), Tampered);
  const c2 = stream("client", "k-k-k-k-k-k");
  const s2 = stream("server", "k-k-k-k-k-k");
  handshake(c2, s2);
  const one = c2.seal(encodeFrame(3, new Uint8Array(10)));
  s2.receive(one);
  assert.throws(() => s2.receive(one), Tampered, "a replayed frame");
  // A plain client's first frame to a coded server.
  assert.throws(
    () => stream("server", "x-y-z-w").receive(encodeFrame(1, new Uint8Array(5))),
    CodeRequired,
  );
  // A server refusing for its own reasons.
  assert.throws(
    () => stream("client", "a-b-c-d").receive(SecureStream.refusal("Too many wrong codes")),
    /Too many wrong codes/,
  );
  // After the handshake, only sealed frames.
  assert.throws(() => s.receive(encodeFrame(SecureMsg.PAKE, new Uint8Array(65))));
});

Deno.test("guess limiter: three wrong codes from a host, then one each 10 s; 100 a second in all", () => {
  const g = new GuessLimiter();
  for (let i = 0; i < HOST_BURST; i++) {
    assert.equal(g.check("10.0.0.1", 0), null);
    g.failed("10.0.0.1", 0);
  }
  assert.match(g.check("10.0.0.1", 0)!, /try again in 10 s/);
  assert.equal(g.check("10.0.0.2", 0), null, "another host is not held up");
  assert.equal(g.check("10.0.0.1", 10_000), null, "one more after 10 s");
  g.failed("10.0.0.1", 10_000);
  assert.notEqual(g.check("10.0.0.1", 15_000), null);
  // Many networks at once: after each one's first guess, at most
  // GLOBAL_PER_SECOND guesses a second from all that guessed wrong.
  const h = new GuessLimiter();
  for (let i = 0; i < GLOBAL_PER_SECOND; i++) h.failed(`10.1.${i}.1`, 500);
  let allowed = 0;
  for (let i = 0; i < 1000; i++) {
    const host = `10.1.${i % GLOBAL_PER_SECOND}.${2 + (i >> 8)}`;
    if (h.check(host, 500) === null) {
      allowed++;
      h.failed(host, 500);
    }
  }
  assert.equal(allowed, 0);
  assert.equal(h.check("10.9.9.9", 1600), null, "a second later, guesses are allowed again");
});
