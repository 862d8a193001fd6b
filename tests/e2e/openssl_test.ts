/**
 * The libcrypto binding (native/openssl) against the RFCs' vectors and
 * against node:crypto, and the file tools using it as users run them.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ChaCha20Poly1305, Md5Context } from "../../native/mod.ts";
import { NODE_CRYPTO } from "../../lib/core/crypto/provider.ts";
import { toHex } from "../../lib/core/crypto/md5.ts";
import {
  freePort,
  oneLineError,
  randomFile,
  runTool,
  tempDir,
  waitFor,
} from "../support/helpers.ts";
import { FILE_CLIENT_PERMS, FILE_SERVER_PERMS, startServerTool } from "../support/tool_process.ts";

const hex = (s: string) => new Uint8Array(s.match(/../g)!.map((b) => parseInt(b, 16)));
const range = (from: number, n: number) => new Uint8Array(n).map((_, i) => from + i);

Deno.test("libcrypto ChaCha20-Poly1305 gives RFC 8439's AEAD vector (2.8.2) and opens it", () => {
  const key = range(0x80, 32);
  const nonce = hex("070000004041424344454647");
  const aad = hex("50515253c0c1c2c3c4c5c6c7");
  const plain = new TextEncoder().encode(
    "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.",
  );
  using aead = new ChaCha20Poly1305(key);
  const out = new Uint8Array(plain.length + 16);
  aead.sealInto(out, 0, nonce, plain, aad);
  assert.equal(toHex(out.subarray(0, 16)), "d31a8d34648e60db7b86afbc53ef7ec2");
  assert.equal(toHex(out.subarray(plain.length)), "1ae10b594f09e26a7e902ecbd0600691");
  assert.deepEqual(aead.open(nonce, out, aad), plain);
  // One bit anywhere (data, tag, associated data, nonce) and it does not open.
  for (const at of [0, 50, plain.length + 3]) {
    const bad = out.slice();
    bad[at] ^= 1;
    assert.equal(aead.open(nonce, bad, aad), null, `bit flipped at ${at}`);
  }
  assert.equal(aead.open(nonce, out, hex("50515253c0c1c2c3c4c5c6c6")), null);
  assert.equal(aead.open(hex("070000004041424344454646"), out, aad), null);
  // In place: the plaintext is written over the ciphertext.
  const copy = out.slice();
  const opened = aead.open(nonce, copy, aad, true)!;
  assert.equal(opened.buffer, copy.buffer);
  assert.deepEqual(opened, plain);
});

Deno.test("libcrypto and node:crypto seal and hash to the same bytes", () => {
  for (const size of [0, 1, 63, 64, 65, 1000, 65536]) {
    const key = crypto.getRandomValues(new Uint8Array(32));
    const nonce = crypto.getRandomValues(new Uint8Array(12));
    const plain = crypto.getRandomValues(new Uint8Array(size));
    const aad = crypto.getRandomValues(new Uint8Array(size % 40));
    using ours = new ChaCha20Poly1305(key);
    const a = new Uint8Array(size + 16);
    const b = new Uint8Array(size + 16);
    ours.sealInto(a, 0, nonce, plain, aad);
    NODE_CRYPTO.chacha20poly1305(key).sealInto(b, 0, nonce, plain, aad);
    assert.deepEqual(a, b, `size ${size}`);
    assert.deepEqual(NODE_CRYPTO.chacha20poly1305(key).open(nonce, a, aad), plain);
    const m = new Md5Context();
    m.update(plain);
    const n = NODE_CRYPTO.md5();
    n.update(plain);
    assert.deepEqual(m.digest(), n.digest(), `MD5 of ${size} bytes`);
  }
});

Deno.test("libcrypto MD5 gives RFC 1321's vectors, copies fork the state, closed contexts refuse", () => {
  const md5 = (s: string) => toHex(new Md5Context().update(new TextEncoder().encode(s)).digest());
  assert.equal(md5(""), "d41d8cd98f00b204e9800998ecf8427e");
  assert.equal(md5("abc"), "900150983cd24fb0d6963f7d28e17f72");
  assert.equal(md5("message digest"), "f96b697d7cb7938d525a2f31aaf161d0");
  const m = new Md5Context().update(new TextEncoder().encode("message "));
  const fork = m.copy();
  fork.update(new TextEncoder().encode("digest"));
  m.update(new TextEncoder().encode("xyz"));
  assert.equal(toHex(fork.digest()), "f96b697d7cb7938d525a2f31aaf161d0");
  assert.equal(toHex(m.digest()), md5("message xyz"));
  assert.throws(() => m.update(new Uint8Array(1)), /MD5 context is closed/);
  m.close(); // idempotent
  const aead = new ChaCha20Poly1305(new Uint8Array(32));
  aead.close();
  aead.close();
  assert.throws(
    () =>
      aead.sealInto(
        new Uint8Array(16),
        0,
        new Uint8Array(12),
        new Uint8Array(0),
        new Uint8Array(0),
      ),
    /closed/,
  );
  assert.throws(() => new ChaCha20Poly1305(new Uint8Array(16)), /32-byte key/);
});

Deno.test("the file tools use libcrypto when granted FFI, node:crypto when told, same file either way", async () => {
  await using src = await tempDir();
  await using dst = await tempDir();
  const path = join(src.path, "f.bin");
  const data = await randomFile(path, 3 * 1024 * 1024 + 5, 9);
  for (
    const [env, expected] of [
      [{}, /from OpenSSL libcrypto \(FFI\)/],
      // The server needs FFI anyway (its contained root): node:crypto on purpose.
      [{ SOCKETS_CRYPTO: "node" }, /from node:crypto/],
    ] as const
  ) {
    await using srv = await startServerTool("tcp/file_server.ts", [
      "--dir",
      dst.path,
      "--port",
      String(freePort()),
      "--code",
      "bamol-tisek-ruvan",
    ], { permissions: FILE_SERVER_PERMS, env: { ...env } });
    await waitFor(() => /MD5 and ChaCha20-Poly1305 from/.test(srv.output()));
    assert.match(srv.output(), expected);
    const r = await runTool("tcp/file_client.ts", [
      "--port",
      String(srv.port),
      "--code",
      "bamol-tisek-ruvan",
      path,
    ], { permissions: FILE_CLIENT_PERMS });
    assert.equal(r.code, 0, r.stderr);
    const stored = /stored as (\S+)/.exec(r.stdout)![1];
    assert.deepEqual(await Deno.readFile(join(dst.path, stored)), data);
  }
});

Deno.test("a LIBCRYPTO_PATH that does not load is one line naming the fix", async () => {
  await using src = await tempDir();
  const path = join(src.path, "f.bin");
  await randomFile(path, 10);
  const r = await runTool("tcp/file_client.ts", ["--port", "9", path], {
    permissions: FILE_CLIENT_PERMS,
    env: { LIBCRYPTO_PATH: "/nonexistent/libcrypto.so.3" },
  });
  assert.notEqual(r.code, 0);
  assert.match(
    oneLineError(r),
    /^error: Could not load libcrypto from LIBCRYPTO_PATH=\/nonexistent\/libcrypto\.so\.3 \(.*\); fix the path or unset LIBCRYPTO_PATH$/,
  );
});
