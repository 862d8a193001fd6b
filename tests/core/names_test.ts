import assert from "node:assert/strict";
import { MAX_BASE_BYTES, receivedName, safeBaseName } from "../../lib/core/file/names.ts";
import { ProtocolError } from "../../lib/core/errors.ts";

Deno.test("safe base names strip every path and control character", () => {
  assert.equal(safeBaseName("chamber.mp4"), "chamber.mp4");
  assert.equal(safeBaseName("../../etc/passwd"), "passwd");
  assert.equal(safeBaseName("..\\..\\windows\\win.ini"), "win.ini");
  assert.equal(safeBaseName("/abs/path/x.bin"), "x.bin");
  assert.equal(safeBaseName("C:\\x\\y.txt"), "y.txt");
  assert.equal(safeBaseName("a\u0000b\nc.txt"), "a_b_c.txt");
  assert.ok(safeBaseName("x".repeat(500) + ".mp4").endsWith(".mp4"));
});

const bytes = (s: string) => new TextEncoder().encode(s).length;

Deno.test("names are measured in bytes: received-NAME-N.EXT always fits 255", () => {
  // 200 "中" are 200 UTF-16 units but 600 bytes: the file system's limit is bytes.
  for (
    const name of [
      "中".repeat(200),
      "中".repeat(200) + ".mp4",
      "x".repeat(500) + ".mp4",
      "é".repeat(300),
    ]
  ) {
    const base = safeBaseName(name);
    assert.ok(bytes(receivedName(base, 9999)) <= 255, `${bytes(receivedName(base, 9999))} bytes`);
    assert.ok(bytes(base) > MAX_BASE_BYTES - 4, "cut at a whole character, no shorter");
    assert.ok(!base.includes("\ufffd"), "no broken character");
  }
  assert.ok(safeBaseName("中".repeat(200) + ".mp4").endsWith(".mp4"));
});

Deno.test("bidirectional and C1 control characters never reach a name", () => {
  // U+202E makes "invoice\u202Efdp.exe" display as "invoiceexe.pdf".
  assert.equal(safeBaseName("invoice\u202Efdp.exe"), "invoice_fdp.exe");
  assert.equal(safeBaseName("a\u2066b\u200fc\u0085d"), "a_b_c_d");
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
