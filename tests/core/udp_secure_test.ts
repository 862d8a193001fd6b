/**
 * Audio-UDP's coded handshake and sealed stream, driven in memory: a
 * listener table with a code against subscribers with the right code, a
 * wrong one and none; replayed and forged sealed datagrams; the stream
 * sealed once for every listener.
 */
import assert from "node:assert/strict";
import { joinInMemory, TEST_FORMAT } from "../support/helpers.ts";
import { ListenerTable } from "../../lib/core/audio/udp/server.ts";
import { UdpSubscriber } from "../../lib/core/audio/udp/client.ts";
import { encodeFormat, fragmentBlock, UdpMsg } from "../../lib/core/audio/udp/datagrams.ts";
import { openData, sealData, SecureUdpMsg } from "../../lib/core/audio/udp/secure.ts";
import { Broadcaster } from "../../lib/core/audio/stages/broadcaster.ts";

const CODE = "bamol-tisek-ruvan";
const rnd = (n: number) => crypto.getRandomValues(new Uint8Array(n));

function coded(streamKey = rnd(32)) {
  return new ListenerTable<string>({
    secret: new Uint8Array(32).fill(5),
    // Announced 16 bytes under the MTU: sealed fragments carry a tag.
    format: encodeFormat({ ...TEST_FORMAT, mtu: 144 }),
    maxListeners: 8,
    timeoutMs: 5000,
    secure: { code: CODE, streamKey, random: () => rnd(48) },
  });
}

Deno.test("udp code: the handshake, the sealed key and format, then the sealed stream plays", () => {
  const streamKey = rnd(32);
  const table = coded(streamKey);
  const sub = new UdpSubscriber({
    latencyMs: 40,
    code: { code: "Bamol Tisek Ruvan", random: rnd(48) },
  });
  const { events, replies } = joinInMemory(table, sub, "a:1");
  assert.deepEqual(replies.slice(0, 3), [
    UdpMsg.CHALLENGE,
    SecureUdpMsg.PAKE_REPLY,
    SecureUdpMsg.KEY,
  ]);
  assert.ok(events.includes("stream"), events.join());
  assert.equal(table.stats.listenersJoined, 1);
  const b = new Broadcaster(TEST_FORMAT);
  let played = 0;
  for (let s = 0; s < 20; s++) {
    const x = b.next(new Int16Array(64).fill(s + 1), 10 + s * 8);
    for (const f of fragmentBlock(42, x.seq, x.captured, x.digest, x.bytes, 144)) {
      sub.receive(sealData(streamKey, f), true, 11 + s * 8);
    }
    for (let d = sub.pop(10 + s * 8); d; d = sub.pop(10 + s * 8)) if (d.kind === "play") played++;
  }
  assert.ok(played >= 15, `${played} played`);
  // A plain DATA datagram (no tag) or one under another key is tampering.
  const x = b.next(new Int16Array(64), 500);
  const [plainFrag] = fragmentBlock(42, x.seq, x.captured, x.digest, x.bytes, 144);
  sub.receive(plainFrag, true, 501);
  sub.receive(sealData(rnd(32), plainFrag), true, 501);
  assert.equal(sub.tampered, 2);
  assert.equal(openData(streamKey, sealData(rnd(32), plainFrag)), null);
});

Deno.test("udp code: a wrong code and no code are refused; nobody joins; the KEY is not replayed", () => {
  const table = coded();
  const wrong = new UdpSubscriber({ code: { code: "not-the-code", random: rnd(48) } });
  assert.ok(joinInMemory(table, wrong, "b:1").events.includes("refused: The code does not match"));
  const plain = new UdpSubscriber();
  assert.ok(
    joinInMemory(table, plain, "c:1").events.some((e) => /This server needs a code/.test(e)),
  );
  assert.equal(table.stats.listenersJoined, 0);
  // A KEY seen once is refused when replayed.
  const right = new UdpSubscriber({ code: { code: CODE, random: rnd(48) } });
  let key: Uint8Array | undefined;
  let toServer = [right.start(1)];
  while (toServer.length > 0) {
    const got = toServer.flatMap((d) => table.receive(d, "d:1", "d:1", 1));
    toServer = [];
    for (const d of got) {
      if (d[3] === SecureUdpMsg.KEY) key = d;
      for (const e of right.receive(d, true, 1)) if (e.type === "send") toServer.push(e.datagram);
    }
  }
  assert.ok(key);
  const before = right.tampered;
  right.receive(key!, true, 2);
  assert.equal(right.tampered, before + 1, "a replayed KEY is refused");
  // A coded client at a plain server is told so.
  const plainTable = new ListenerTable<string>({
    secret: new Uint8Array(32).fill(5),
    format: encodeFormat({ ...TEST_FORMAT, mtu: 128 }),
    maxListeners: 8,
    timeoutMs: 5000,
  });
  const lost = new UdpSubscriber({ code: { code: CODE, random: rnd(48) } });
  assert.ok(
    joinInMemory(plainTable, lost, "e:1").events.some((e) => /does not use a code/.test(e)),
  );
});

Deno.test("udp code: guesses from one host are throttled; a right code gives its guess back", () => {
  const table = coded();
  for (let i = 0; i < 3; i++) {
    const s = new UdpSubscriber({ code: { code: `wrong-${i}-guess`, random: rnd(48) } });
    assert.ok(joinInMemory(table, s, `10.0.0.1:${i}`).events.some((e) => /does not match/.test(e)));
  }
  // A fourth while those three are still unconfirmed gets no answer (it
  // might be a listener of the same host joining); once they are stale,
  // the throttle says so.
  const early = new UdpSubscriber({ code: { code: "wrong-3-guess", random: rnd(48) } });
  assert.ok(
    !joinInMemory(table, early, "10.0.0.1:8").events.some((e) => /Too many|stream/.test(e)),
  );
  const s = new UdpSubscriber({ code: { code: "wrong-3-guess", random: rnd(48) } });
  assert.ok(
    joinInMemory(table, s, "10.0.0.1:9", 2500).events.some((e) => /Too many wrong codes/.test(e)),
  );
  // Many right codes from one host are never throttled.
  const other = coded();
  for (let i = 0; i < 6; i++) {
    const ok = new UdpSubscriber({ code: { code: CODE, random: rnd(48) } });
    assert.ok(joinInMemory(other, ok, `10.0.0.2:${i}`).events.includes("stream"), `listener ${i}`);
  }
});

Deno.test("udp code: eight listeners joining at the same instant from one address all get in", () => {
  const table = coded();
  const subs = Array.from(
    { length: 8 },
    () => new UdpSubscriber({ code: { code: CODE, random: rnd(48) } }),
  );
  const keys = subs.map((_, i) => `10.0.0.3:${i}`);
  const streaming = new Set<number>();
  const refused: string[] = [];
  let toServer = subs.map((s) => [s.start(0)]);
  // Lockstep: every listener's datagrams reach the server, every answer
  // comes back, 100 ms a round; unanswered handshakes are sent again.
  for (let now = 0; now < 5000 && streaming.size < subs.length; now += 100) {
    const next: Uint8Array[][] = subs.map(() => []);
    subs.forEach((sub, i) => {
      const got = toServer[i].flatMap((d) => table.receive(d, keys[i], keys[i], now));
      for (const d of got) {
        for (const e of sub.receive(d, true, now)) {
          if (e.type === "send") next[i].push(e.datagram);
          if (e.type === "stream") streaming.add(i);
          if (e.type === "refused") refused.push(e.message);
        }
      }
      for (const e of sub.tick(now + 100)) if (e.type === "send") next[i].push(e.datagram);
    });
    toServer = next;
  }
  assert.deepEqual(refused, []);
  assert.equal(streaming.size, 8);
  assert.equal(table.stats.listenersJoined, 8);
});
