import assert from "node:assert/strict";
import { GuessLimiter, HOST_BURST } from "../../lib/core/crypto/guess_limiter.ts";
import {
  HandshakeGate,
  HANDSHAKES_PER_ADDRESS,
  HANDSHAKES_PER_NETWORK,
  networkOf,
} from "../../lib/core/crypto/admission.ts";
import { ListenerTable } from "../../lib/core/audio/udp/server.ts";
import { encodeFormat, encodeSubscribe, UdpMsg } from "../../lib/core/audio/udp/datagrams.ts";
import { joinInMemory, TEST_FORMAT } from "../support/helpers.ts";
import { SecureUdpMsg } from "../../lib/core/audio/udp/secure.ts";
import { UdpSubscriber } from "../../lib/core/audio/udp/client.ts";

Deno.test("admission: an address's network is its /24 or /64", () => {
  assert.equal(networkOf("192.0.2.77"), "192.0.2.0/24");
  assert.equal(networkOf("::ffff:192.0.2.77"), "192.0.2.0/24");
  assert.equal(networkOf("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
  assert.equal(networkOf("2001:db8::1"), "2001:db8:0:0::/64");
  assert.equal(networkOf("[::1]"), "0:0:0:0::/64");
});

Deno.test("admission: guessers from many networks never lock out a network that guessed nothing", () => {
  const g = new GuessLimiter();
  // Guessers from 500 networks drain the server's global bucket.
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 500; i++) {
      const host = `10.${i >> 8}.${i & 255}.${1 + round}`;
      if (g.check(host, 100) === null) g.failed(host, 100);
    }
  }
  const refused = g.check("10.0.7.200", 100);
  assert.match(refused ?? "", /on this server/, "a guessing network waits for the global bucket");
  assert.doesNotMatch(refused ?? "", /your address/, "and is not told it was its address");
  assert.equal(g.check("192.168.5.5", 100), null, "a network with no wrong guess gets in");
});

Deno.test("admission: a network's addresses share a bucket; a guess counts when its handshake starts", () => {
  const g = new GuessLimiter();
  // Fresh addresses of one /24, each guessing within its own burst.
  let allowed = 0;
  for (let a = 1; a <= 20; a++) {
    for (let i = 0; i < HOST_BURST; i++) {
      if (g.check(`10.2.3.${a}`, 0) === null) {
        allowed++;
        g.failed(`10.2.3.${a}`, 0);
      }
    }
  }
  assert.equal(allowed, 12, "the network's burst, not 60");
  assert.match(g.check("10.2.3.99", 0)!, /your network \(10\.2\.3\.0\/24\)/);
  // Three handshakes begun at once from one address use its three guesses:
  // a fourth is refused before any of them has failed.
  const h = new GuessLimiter();
  for (let i = 0; i < HOST_BURST; i++) {
    assert.equal(h.check("10.5.5.5", 0), null);
    h.failed("10.5.5.5", 0); // counted at the start
  }
  assert.match(h.check("10.5.5.5", 0)!, /your address/);
  h.refund("10.5.5.5", 0); // one proved the code
  assert.equal(h.check("10.5.5.5", 0), null);
});

Deno.test("admission: handshakes under way are bounded per address and per network", () => {
  const gate = new HandshakeGate();
  for (let i = 0; i < HANDSHAKES_PER_ADDRESS; i++) assert.equal(gate.enter("10.0.0.1"), null);
  assert.match(gate.enter("10.0.0.1")!, /busy .*from your address/);
  for (let a = 2; gate.enter(`10.0.0.${a}`) === null; a++) assert.ok(a < 100);
  assert.match(gate.enter("10.0.0.200")!, /busy .*from your network/);
  assert.equal(gate.enter("10.0.1.1"), null, "another network gets in");
  gate.leave("10.0.0.1");
  assert.equal(gate.enter("10.0.0.1"), null, "a slot freed is taken again");
  assert.equal(HANDSHAKES_PER_NETWORK, 8);
});

Deno.test("admission: 64 fake UDP listeners from 8 addresses of one network cannot fill the table", () => {
  const table = new ListenerTable<string>({
    secret: new Uint8Array(32).fill(5),
    format: encodeFormat({ ...TEST_FORMAT, mtu: 128 }),
    maxListeners: 64,
    maxPerHost: 8,
    timeoutMs: 5000,
  });
  const join = (key: string) => {
    const [c] = table.receive(encodeSubscribe(null), key, key, 0);
    return table.receive(encodeSubscribe(c.slice(4, 20)), key, key, 0)[0][3];
  };
  let joined = 0;
  for (let a = 1; a <= 8; a++) {
    for (let port = 1; port <= 8; port++) {
      if (join(`10.0.9.${a}:${port}`) === UdpMsg.FORMAT) joined++;
    }
  }
  assert.equal(joined, 16, "a quarter of the table for one network");
  assert.equal(join("10.0.0.1:5000"), UdpMsg.FORMAT, "a real listener elsewhere joins");
});

Deno.test("admission: a UDP listener whose handshake datagram arrives twice (its answer was slow) still joins", () => {
  const code = "bamol-tisek-ruvan";
  const rnd = (n: number) => crypto.getRandomValues(new Uint8Array(n));
  const table = new ListenerTable<string>({
    secret: new Uint8Array(32).fill(5),
    format: encodeFormat({ ...TEST_FORMAT, mtu: 144 }),
    maxListeners: 8,
    timeoutMs: 5000,
    secure: { code, streamKey: rnd(32), random: () => rnd(48) },
  });
  // The listener sent its INIT again before the first answer came: the
  // server gets both before the listener's confirmation.
  const late = {
    receive(d: Uint8Array, key: string, addr: string, now: number) {
      const out = table.receive(d, key, addr, now);
      if (d[3] === SecureUdpMsg.PAKE_INIT) table.receive(d, key, addr, now);
      return out;
    },
  } as ListenerTable<string>;
  const sub = new UdpSubscriber({ code: { code, random: rnd(48) } });
  const { events } = joinInMemory(late, sub, "10.0.0.1:1");
  assert.ok(events.includes("stream"), events.join(", "));
});
