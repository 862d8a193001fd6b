const buf = new Uint8Array(64 * 1024);
crypto.getRandomValues(buf);
const N = 4096;
const key = await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, [
  "encrypt",
  "decrypt",
]);
let t = performance.now();
for (let i = 0; i < N; i++) {
  const iv = new Uint8Array(12);
  new DataView(iv.buffer).setUint32(8, i);
  await crypto.subtle.encrypt({ name: "AES-GCM", iv }, key, buf);
}
console.log("webcrypto aes-gcm seq MB/s", (N * 64 / 1024) / ((performance.now() - t) / 1000));
t = performance.now();
const ps = [];
for (let i = 0; i < N; i++) {
  const iv = new Uint8Array(12);
  new DataView(iv.buffer).setUint32(8, i);
  ps.push(crypto.subtle.encrypt({ name: "AES-GCM", iv }, key, buf));
  if (ps.length >= 8) await ps.shift();
}
await Promise.all(ps);
console.log("webcrypto aes-gcm 8-deep MB/s", (N * 64 / 1024) / ((performance.now() - t) / 1000));
const { chacha20poly1305 } = await import("@noble/ciphers/chacha.js");
const k = new Uint8Array(32);
t = performance.now();
for (let i = 0; i < N / 4; i++) {
  const iv = new Uint8Array(12);
  new DataView(iv.buffer).setUint32(8, i);
  chacha20poly1305(k, iv).encrypt(buf);
}
console.log("noble chacha MB/s", (N / 4 * 64 / 1024) / ((performance.now() - t) / 1000));
