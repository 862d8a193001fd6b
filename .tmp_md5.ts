import { createCipheriv, createHash, randomBytes } from "node:crypto";
const buf = new Uint8Array(64 * 1024);
crypto.getRandomValues(buf);
const N = 4096; // 256 MiB
let t = performance.now();
const h = createHash("md5");
for (let i = 0; i < N; i++) h.update(buf);
h.digest();
console.log("md5 MB/s", (N * 64 / 1024) / ((performance.now() - t) / 1000) * 1024 / 1024);
t = performance.now();
const h2 = createHash("md5");
for (let i = 0; i < N; i++) {
  h2.update(buf);
  h2.copy().digest();
}
console.log("md5+copy MB/s", (N * 64 / 1024) / ((performance.now() - t) / 1000));
t = performance.now();
const key = randomBytes(32);
for (let i = 0; i < N; i++) {
  const iv = new Uint8Array(12);
  new DataView(iv.buffer).setUint32(8, i);
  const c = createCipheriv("chacha20-poly1305", key, iv, { authTagLength: 16 });
  c.update(buf);
  c.final();
  c.getAuthTag();
}
console.log("chacha MB/s", (N * 64 / 1024) / ((performance.now() - t) / 1000));
t = performance.now();
for (let i = 0; i < N; i++) {
  const iv = new Uint8Array(12);
  new DataView(iv.buffer).setUint32(8, i);
  const c = createCipheriv("aes-256-gcm", key, iv);
  c.update(buf);
  c.final();
  c.getAuthTag();
}
console.log("aesgcm MB/s", (N * 64 / 1024) / ((performance.now() - t) / 1000));
