/**
 * SPAKE2 against RFC 9382's published test vectors (Appendix B,
 * SPAKE2-P256-SHA256-HKDF-HMAC): every value of each, from the scalars to
 * both confirmations; then whole exchanges with a right and a wrong code
 * and hostile shares.
 */
import assert from "node:assert/strict";
import {
  confirmationsMatch,
  ORDER,
  scalarFromBytes,
  Spake2,
} from "../../lib/core/crypto/spake2.ts";
import { ProtocolError } from "../../lib/core/errors.ts";
import { toHex } from "../../lib/core/crypto/md5.ts";

/** RFC 9382, Appendix B, as printed. */
const VECTORS = [
  {
    A: "server",
    B: "client",
    w: "2ee57912099d31560b3a44b1184b9b4866e904c49d12ac5042c97dca461b1a5f",
    x: "43dd0fd7215bdcb482879fca3220c6a968e66d70b1356cac18bb26c84a78d729",
    pA:
      "04a56fa807caaa53a4d28dbb9853b9815c61a411118a6fe516a8798434751470f9010153ac33d0d5f2047ffdb1a3e42c9b4e6be662766e1eeb4116988ede5f912c",
    y: "dcb60106f276b02606d8ef0a328c02e4b629f84f89786af5befb0bc75b6e66be",
    pB:
      "0406557e482bd03097ad0cbaa5df82115460d951e3451962f1eaf4367a420676d09857ccbc522686c83d1852abfa8ed6e4a1155cf8f1543ceca528afb591a1e0b7",
    K: "0412af7e89717850671913e6b469ace67bd90a4df8ce45c2af19010175e37eed69f75897996d539356e2fa6a406d528501f907e04d97515fbe83db277b715d3325",
    Ke: "0e0672dc86f8e45565d338b0540abe69",
    Ka: "15bdf72e2b35b5c9e5663168e960a91b",
    KcA: "00c12546835755c86d8c0db7851ae86f",
    KcB: "a9fa3406c3b781b93d804485430ca27a",
    cA: "58ad4aa88e0b60d5061eb6b5dd93e80d9c4f00d127c65b3b35b1b5281fee38f0",
    cB: "d3e2e547f1ae04f2dbdbf0fc4b79f8ecff2dff314b5d32fe9fcef2fb26dc459b",
  },
  {
    A: "",
    B: "client",
    w: "0548d8729f730589e579b0475a582c1608138ddf7054b73b5381c7e883e2efae",
    x: "403abbe3b1b4b9ba17e3032849759d723939a27a27b9d921c500edde18ed654b",
    pA:
      "04a897b769e681c62ac1c2357319a3d363f610839c4477720d24cbe32f5fd85f44fb92ba966578c1b712be6962498834078262caa5b441ecfa9d4a9485720e918a",
    y: "903023b6598908936ea7c929bd761af6039577a9c3f9581064187c3049d87065",
    pB:
      "04e0f816fd1c35e22065d5556215c097e799390d16661c386e0ecc84593974a61b881a8c82327687d0501862970c64565560cb5671f696048050ca66ca5f8cc7fc",
    K: "048f83ec9f6e4f87cc6f9dc740bdc2769725f923364f01c84148c049a39a735ebda82eac03e00112fd6a5710682767cff5361f7e819e53d8d3c3a2922e0d837aa6",
    Ke: "642f05c473c2cd79909f9a841e2f30a7",
    Ka: "0bf89b18180af97353ba198789c2b963",
    KcA: "c6be376fc7cd1301fd0a13adf3e7bffd",
    KcB: "b7243f4ae60440a49b3f8cab3c1fba07",
    cA: "47d29e6666af1b7dd450d571233085d7a9866e4d49d2645e2df975489521232b",
    cB: "3313c5cefc361d27fb16847a91c2a73b766ffa90a4839122a9b70a2f6bd1d6df",
  },
  {
    A: "server",
    B: "",
    w: "626e0cdc7b14c9db3e52a0b1b3a768c98e37852d5db30febe0497b14eae8c254",
    x: "07adb3db6bc623d3399726bfdbfd3d15a58ea776ab8a308b00392621291f9633",
    pA:
      "04f88fb71c99bfffaea370966b7eb99cd4be0ff1a7d335caac4211c4afd855e2e15a873b298503ad8ba1d9cbb9a392d2ba309b48bfd7879aefd0f2cea6009763b0",
    y: "b6a4fc8dbb629d4ba51d6f91ed1532cf87adec98f25dd153a75accafafedec16",
    pB:
      "040c269d6be017dccb15182ac6bfcd9e2a14de019dd587eaf4bdfd353f031101e7cca177f8eb362a6e83e7d5e729c0732e1b528879c086f39ba0f31a9661bd34db",
    K: "0445ee233b8ecb51ebd6e7da3f307e88a1616bae2166121221fdc0dadb986afaf3ec8a988dc9c626fa3b99f58a7ca7c9b844bb3e8dd9554aafc5b53813504c1cbe",
    Ke: "005184ff460da2ce59062c87733c299c",
    Ka: "3521297d736598fc0a1127600efa1afb",
    KcA: "f3da53604f0aeecea5a33be7bddf6edf",
    KcB: "9e3f86848736f159bd92b6e107ec6799",
    cA: "bc9f9bbe99f26d0b2260e6456e05a86196a3307ec6663a18bf6ac825736533b2",
    cB: "c2370e1bf813b086dff0d834e74425a06e6390f48f5411900276dcccc5a297ec",
  },
  {
    A: "",
    B: "",
    w: "7bf46c454b4c1b25799527d896508afd5fc62ef4ec59db1efb49113063d70cca",
    x: "8cef65df64bb2d0f83540c53632de911b5b24b3eab6cc74a97609fd659e95473",
    pA:
      "04a65b367a3f613cf9f0654b1b28a1e3a8a40387956c8ba6063e8658563890f46ca1ef6a676598889fc28de2950ab8120b79a5ef1ea4c9f44bc98f585634b46d66",
    y: "d7a66f64074a84652d8d623a92e20c9675c61cb5b4f6a0063e4648a2fdc02d53",
    pB:
      "04589f13218822710d98d8b2123a079041052d9941b9cf88c6617ddb2fcc0494662eea8ba6b64692dc318250030c6af045cb738bc81ba35b043c3dcb46adf6f58d",
    K: "041a3c03d51b452537ca2a1fea6110353c6d5ed483c4f0f86f4492ca3f378d40a994b4477f93c64d928edbbcd3e85a7c709b7ea73ee97986ce3d1438e135543772",
    Ke: "fc6374762ba5cf11f4b2caa08b2cd1b9",
    Ka: "907ae0e26e8d6234318d91583cd74c86",
    KcA: "5dbd2f477166b7fb6d61febbd77a5563",
    KcB: "7689b4654407a5faeffdc8f18359d8a3",
    cA: "dfb4db8d48ae5a675963ea5e6c19d98d4ea028d8e898dad96ea19a80ade95dca",
    cB: "d0f0609d1613138d354f7e95f19fb556bf52d751947241e8c7118df5ef0ae175",
  },
];

const text = (s: string) => new TextEncoder().encode(s);
const hex = (s: string) => Uint8Array.from(s.match(/../g)!.map((b) => parseInt(b, 16)));

Deno.test("spake2: RFC 9382 Appendix B, every value of each vector, both sides", () => {
  for (const v of VECTORS) {
    const what = `A='${v.A}', B='${v.B}'`;
    const ids = { a: text(v.A), b: text(v.B) };
    const w = BigInt("0x" + v.w);
    const a = new Spake2("A", w, BigInt("0x" + v.x), ids);
    const b = new Spake2("B", w, BigInt("0x" + v.y), ids);
    assert.equal(toHex(a.share), v.pA, `${what}: pA`);
    assert.equal(toHex(b.share), v.pB, `${what}: pB`);
    const ka = a.finish(b.share);
    const kb = b.finish(a.share);
    // TT ends with K and w; K sits before w's 8 + 32 bytes.
    assert.equal(toHex(ka.transcript.slice(-40 - 65, -40)), v.K, `${what}: K`);
    assert.deepEqual(ka.transcript, kb.transcript, `${what}: TT`);
    for (const keys of [ka, kb]) {
      assert.equal(toHex(keys.ke), v.Ke, `${what}: Ke`);
      assert.equal(toHex(keys.ka), v.Ka, `${what}: Ka`);
      assert.equal(toHex(keys.kcA), v.KcA, `${what}: KcA`);
      assert.equal(toHex(keys.kcB), v.KcB, `${what}: KcB`);
    }
    assert.equal(toHex(ka.ownConfirmation), v.cA, `${what}: A's confirmation`);
    assert.equal(toHex(kb.ownConfirmation), v.cB, `${what}: B's confirmation`);
    assert.ok(confirmationsMatch(ka.peerConfirmation, kb.ownConfirmation));
    assert.ok(confirmationsMatch(kb.peerConfirmation, ka.ownConfirmation));
  }
});

Deno.test("spake2: a wrong code gives different keys and confirmations that do not match", () => {
  const ids = { a: text("server"), b: text("client") };
  const rnd = () => scalarFromBytes(crypto.getRandomValues(new Uint8Array(48)));
  const right = rnd();
  const a = new Spake2("A", right, rnd(), ids);
  const b = new Spake2("B", right, rnd(), ids);
  const wrong = new Spake2("B", right + 1n, rnd(), ids);
  const good = [a.finish(b.share), b.finish(a.share)];
  assert.deepEqual(good[0].ke, good[1].ke);
  assert.ok(confirmationsMatch(good[0].peerConfirmation, good[1].ownConfirmation));
  const a2 = new Spake2("A", right, rnd(), ids);
  const bad = [a2.finish(wrong.share), wrong.finish(a2.share)];
  assert.notDeepEqual(bad[0].ke, bad[1].ke);
  assert.equal(confirmationsMatch(bad[0].peerConfirmation, bad[1].ownConfirmation), false);
  assert.equal(confirmationsMatch(bad[1].peerConfirmation, bad[0].ownConfirmation), false);
  // Associated data is bound into the confirmation keys: the same code in
  // another context does not confirm.
  const c = new Spake2("A", right, rnd(), ids, text("file-tcp"));
  const d = new Spake2("B", right, rnd(), ids, text("audio-udp"));
  const cd = [c.finish(d.share), d.finish(c.share)];
  assert.deepEqual(cd[0].ke, cd[1].ke);
  assert.equal(confirmationsMatch(cd[0].peerConfirmation, cd[1].ownConfirmation), false);
});

Deno.test("spake2: hostile shares are refused, scalars stay in range", () => {
  const ids = { a: new Uint8Array(0), b: new Uint8Array(0) };
  const a = new Spake2("A", 5n, 7n, ids);
  const notOnCurve = hex(VECTORS[0].pB);
  notOnCurve[40] ^= 1;
  for (
    const share of [
      new Uint8Array(65),
      new Uint8Array(64),
      notOnCurve,
      hex(VECTORS[0].pB).subarray(0, 33),
    ]
  ) {
    assert.throws(() => a.finish(share), ProtocolError);
  }
  for (const bad of [0n, ORDER, -1n]) {
    assert.throws(() => new Spake2("A", bad, 7n, ids), RangeError);
    assert.throws(() => new Spake2("A", 5n, bad, ids), RangeError);
  }
  const ones = scalarFromBytes(new Uint8Array(48).fill(255));
  assert.ok(ones > 0n && ones < ORDER);
  assert.ok(scalarFromBytes(new Uint8Array(48)) === 1n);
});
