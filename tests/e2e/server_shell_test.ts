/**
 * The server shell every server shares, on real sockets: the loopback
 * rule, connections beyond the per-address limit turned away through the
 * tool's `refuse` (and the slot freed when a served one ends), and a
 * close that runs once however often it is called.
 */
import assert from "node:assert/strict";
import { type Admitted, startTcpShell } from "../../lib/io/server_shell.ts";
import type { Refusal } from "../../lib/core/crypto/server_admission.ts";
import { UsageError } from "../../lib/core/errors.ts";

Deno.test("server shell: beyond loopback with no code, nothing listens", () => {
  assert.throws(
    () =>
      startTcpShell({
        host: "0.0.0.0",
        port: 0,
        maxTotal: 1,
        maxPerHost: 1,
        refuse: async () => {},
        serve: async () => {},
      }),
    UsageError,
  );
});

Deno.test("server shell: a second connection from one address past the limit is refused, then served once the first ends", async () => {
  const refused: Refusal[] = [];
  const served: Admitted[] = [];
  const ends: (() => void)[] = [];
  const shell = startTcpShell({
    host: "127.0.0.1",
    port: 0,
    maxTotal: 10,
    maxPerHost: 1,
    joinOnAccept: true,
    refuse: (_conn, _peer, why) => {
      refused.push(why);
      return Promise.resolve();
    },
    serve: (a) => {
      served.push(a);
      return new Promise<void>((r) => ends.push(r));
    },
  });
  const connect = () => Deno.connect({ hostname: "127.0.0.1", port: shell.addr.port });
  const settle = () => new Promise((r) => setTimeout(r, 100));
  const a = await connect();
  await settle();
  const b = await connect();
  await settle();
  assert.equal(served.length, 1);
  assert.deepEqual(refused, [{ kind: "host", limit: 1, host: "127.0.0.1" }]);
  // The refused one was closed by the shell.
  assert.equal(await b.read(new Uint8Array(1)).catch(() => null), null);
  ends[0]();
  await settle();
  assert.equal(shell.admission.total, 0);
  const c = await connect();
  await settle();
  assert.equal(served.length, 2);
  const closing = [shell.close(), shell.close()];
  assert.equal(closing[0], closing[1], "close runs once");
  ends[1]();
  await Promise.all(closing);
  assert.ok(shell.stopping);
  for (const x of [a, b, c]) x.close();
});
