/**
 * The File-TCP client's cores driven with no sockets, no files and no
 * clock: the sender's phase table, and the client link (many transfers on
 * one connection) against every order of answers a server could send.
 */
import assert from "node:assert/strict";
import { FileSender, TRANSITIONS } from "../../lib/core/file/sender.ts";
import { encodeJson, MsgType } from "../../lib/core/file/messages.ts";
import { encodeFrame } from "../../lib/core/wire/frame.ts";
import { ProtocolError, UserError } from "../../lib/core/errors.ts";

const TOKEN = "0123456789abcdef0123456789abcdef";
const CHUNK = 1024;

Deno.test("sender phases: after the server's error every input is refused with it", () => {
  const s = new FileSender({ name: "a", size: 3 * CHUNK, chunkSize: CHUNK });
  s.offerFrame();
  const refusal = encodeFrame(MsgType.ERROR, new TextEncoder().encode("full"));
  assert.throws(() => s.receive(refusal), UserError);
  assert.equal(s.phase, "failed");
  // An accept after the refusal does not revive the session.
  const accept = encodeJson(MsgType.ACCEPT, { token: TOKEN, held: [] });
  assert.throws(() => s.receive(accept), (e: Error) => e === s.failure);
  assert.equal(s.next, null);
  assert.equal(s.canEnd, false);
  assert.throws(() => s.chunkFrame(0, new Uint8Array(2 * CHUNK), CHUNK), (e) => e === s.failure);
  assert.throws(() => s.endFrame(), (e) => e === s.failure);
  assert.throws(() => s.offerFrame(), (e) => e === s.failure);
  assert.equal(s.token, undefined);
});

Deno.test("sender phases: a malformed answer fails the session for good", () => {
  const s = new FileSender({ name: "a", size: 3 * CHUNK, chunkSize: CHUNK });
  s.offerFrame();
  assert.throws(() => s.receive(encodeJson(MsgType.DONE, {})), ProtocolError);
  assert.equal(s.phase, "failed");
  const accept = encodeJson(MsgType.ACCEPT, { token: TOKEN, held: [] });
  assert.throws(() => s.receive(accept), ProtocolError);
  assert.equal(s.phase, "failed");
});

Deno.test("sender phases: the table ends in done and failed, and every phase may fail", () => {
  assert.deepEqual(TRANSITIONS.failed, []);
  for (const [from, to] of Object.entries(TRANSITIONS)) {
    if (from !== "failed") assert.ok(to.includes("failed"), `${from} may fail`);
  }
  // Every phase is reached from idle.
  const seen = new Set(["idle"]);
  for (let grew = true; grew;) {
    grew = false;
    for (const from of [...seen]) {
      for (const to of TRANSITIONS[from as keyof typeof TRANSITIONS]) {
        if (!seen.has(to)) grew = seen.add(to) !== undefined;
      }
    }
  }
  assert.deepEqual([...seen].sort(), Object.keys(TRANSITIONS).sort());
});
