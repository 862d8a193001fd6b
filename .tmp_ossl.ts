import { ChaCha20Poly1305, Md5Context } from "./native/mod.ts";
import { createCipheriv, createHash } from "node:crypto";
const key = crypto.getRandomValues(new Uint8Array(32));
const nonce = crypto.getRandomValues(new Uint8Array(12));
const pt = crypto.getRandomValues(new Uint8Array(1000));
const aad = crypto.getRandomValues(new Uint8Array(13));
const a = new ChaCha20Poly1305(key);
const out = new Uint8Array(1016);
a.sealInto(out, 0, nonce, pt, aad);
const c = createCipheriv("chacha20-poly1305", key, nonce, { authTagLength: 16 });
c.setAAD(aad, { plaintextLength: pt.length });
const ref = new Uint8Array([...c.update(pt), ...c.final(), ...c.getAuthTag()]);
console.log("seal equal", ref.every((x, i) => x === out[i]));
console.log("open ok", a.open(nonce, out, aad)?.every((x, i) => x === pt[i]));
out[5] ^= 1;
console.log("tampered", a.open(nonce, out, aad));
const m = new Md5Context();
m.update(pt);
const cp = m.copy();
console.log(Buffer.from(cp.digest()).toString("hex"), createHash("md5").update(pt).digest("hex"));
const buf = crypto.getRandomValues(new Uint8Array(65536));
const o = new Uint8Array(65536 + 16);
let t = performance.now();
for (let i = 0; i < 16384; i++) {
  const n = new Uint8Array(12);
  n[11] = i;
  a.sealInto(o, 0, n, buf, aad);
}
console.log("ossl chacha MB/s", 1024 / ((performance.now() - t) / 1000));
t = performance.now();
const h = new Md5Context();
for (let i = 0; i < 16384; i++) {
  h.update(buf);
  h.copy().digest();
}
console.log("ossl md5+copy MB/s", 1024 / ((performance.now() - t) / 1000));
t = performance.now();
for (let i = 0; i < 16384; i++) {
  const n = new Uint8Array(12);
  n[11] = i;
  a.open(n, o, aad);
}
console.log("ossl open(fail) MB/s", 1024 / ((performance.now() - t) / 1000));
