import assert from "node:assert/strict";
import { receivedName, safeBaseName } from "../../lib/core/file/names.ts";
import { ProtocolError } from "../../lib/core/errors.ts";

Deno.test("safe base names strip every path and control character", () => {
  assert.equal(safeBaseName("chamber.mp4"), "chamber.mp4");
  assert.equal(safeBaseName("../../etc/passwd"), "passwd");
  assert.equal(safeBaseName("..\\..\\windows\\win.ini"), "win.ini");
  assert.equal(safeBaseName("/abs/path/x.bin"), "x.bin");
  assert.equal(safeBaseName("C:\\x\\y.txt"), "y.txt");
  assert.equal(safeBaseName("a\u0000b\nc.txt"), "a_b_c.txt");
  assert.equal(safeBaseName("x".repeat(500) + ".mp4").length, 120);
  assert.ok(safeBaseName("x".repeat(500) + ".mp4").endsWith(".mp4"));
});

Deno.test("names with nothing usable are refused", () => {
  for (const bad of ["", ".", "..", "a/..", "a/", "dir\\", "   "]) {
    assert.throws(() => safeBaseName(bad), ProtocolError, bad);
  }
});

Deno.test("received names keep the original convention and number copies", () => {
  assert.equal(receivedName("chamber.mp4"), "received-chamber.mp4");
  assert.equal(receivedName("chamber.mp4", 2), "received-chamber-2.mp4");
  assert.equal(receivedName("README", 1), "received-README-1");
  assert.equal(receivedName(".env", 1), "received-.env-1");
});
