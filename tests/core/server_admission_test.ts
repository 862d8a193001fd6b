/**
 * A server's admission core, with no sockets and time passed in: the
 * loopback rule, connections in all and per address, handshakes per
 * address when there is a code (none without), and guesses at the code
 * that come back with time.
 */
import assert from "node:assert/strict";
import {
  HANDSHAKES_PER_ADDRESS,
  isLoopback,
  requireCodeBeyondLoopback,
} from "../../lib/core/crypto/admission.ts";
import { Admission } from "../../lib/core/crypto/server_admission.ts";
import { HOST_BURST, HOST_EVERY_MS } from "../../lib/core/crypto/guess_limiter.ts";
import { UsageError } from "../../lib/core/errors.ts";

Deno.test("admission: beyond loopback needs a code; loopback does not", () => {
  assert.ok(isLoopback("127.0.0.1") && isLoopback("::1") && isLoopback("localhost"));
  assert.ok(!isLoopback("0.0.0.0") && !isLoopback("192.168.1.2"));
  requireCodeBeyondLoopback("127.0.0.1", undefined);
  requireCodeBeyondLoopback("0.0.0.0", "some code");
  assert.throws(
    () => requireCodeBeyondLoopback("0.0.0.0", undefined),
    (e: Error) => e instanceof UsageError && /beyond loopback, needs a code/.test(e.message),
  );
});

Deno.test("admission: connections are bounded in all and per address, and freed when they leave", () => {
  const a = new Admission({ maxTotal: 3, maxPerHost: 2, coded: false });
  assert.equal(a.full("10.0.0.1"), null);
  a.join("10.0.0.1");
  a.join("10.0.0.1");
  assert.deepEqual(a.full("10.0.0.1"), { kind: "host", limit: 2, host: "10.0.0.1" });
  assert.equal(a.full("10.0.0.2"), null);
  a.join("10.0.0.2");
  assert.deepEqual(a.full("10.0.0.3"), { kind: "total", limit: 3 });
  assert.equal(a.total, 3);
  a.leave("10.0.0.1");
  assert.equal(a.full("10.0.0.1"), null);
  assert.equal(a.from("10.0.0.1"), 1);
});

Deno.test("admission: with a code, handshakes from one address are bounded until they end; without, never", () => {
  const coded = new Admission({ maxTotal: 100, maxPerHost: 100, coded: true });
  for (let i = 0; i < HANDSHAKES_PER_ADDRESS; i++) {
    assert.equal(coded.enterHandshake("10.0.0.1"), null);
  }
  const busy = coded.enterHandshake("10.0.0.1");
  assert.equal(busy?.kind, "handshakes");
  assert.match((busy as { message: string }).message, /Server is busy/);
  coded.leaveHandshake("10.0.0.1");
  assert.equal(coded.enterHandshake("10.0.0.1"), null);
  const plain = new Admission({ maxTotal: 100, maxPerHost: 100, coded: false });
  for (let i = 0; i < 20; i++) assert.equal(plain.enterHandshake("10.0.0.1"), null);
});

Deno.test("admission: wrong guesses from an address are refused, then allowed again as time passes", () => {
  const a = new Admission({ maxTotal: 10, maxPerHost: 10, coded: true });
  const t0 = 1_000_000;
  for (let i = 0; i < HOST_BURST; i++) {
    assert.equal(a.guesses.check("10.0.0.1", t0), null);
    a.guesses.failed("10.0.0.1", t0);
  }
  assert.match(a.guesses.check("10.0.0.1", t0) ?? "", /Too many wrong codes/);
  assert.equal(a.guesses.check("10.0.1.1", t0), null, "another network is not refused");
  assert.equal(a.guesses.check("10.0.0.1", t0 + HOST_EVERY_MS), null);
});
