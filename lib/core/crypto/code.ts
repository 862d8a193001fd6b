/**
 * The code both sides of a session know: a phrase easy to read aloud,
 * three pronounceable five-letter words such as `bamol-tisek-ruvan`, and
 * the SPAKE2 scalar it stands for. No I/O: the shell draws the random
 * bytes.
 *
 * Each word is consonant, vowel, consonant, vowel, consonant, from 16
 * consonants and 5 vowels: 16·5·16·5·16 = 102,400 words, 16.6 bits, so a
 * generated code carries 49.9 bits. A code a user chooses may be any
 * phrase; it is compared after {@link normalizeCode}.
 *
 * @module
 */
import { hkdf } from "@noble/hashes/hkdf.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { scalarFromBytes, Spake2 } from "./spake2.ts";

const CONSONANTS = "bdfghjklmnprstvz";
const VOWELS = "aeiou";
/** Words in a generated code. */
export const CODE_WORDS = 3;
/** Bits of a generated code: log2(102,400) per word. */
export const CODE_BITS: number = CODE_WORDS * Math.log2(16 * 5 * 16 * 5 * 16);
/** Random bytes {@link generateCode} takes: 4 a word (more than enough, to keep it unbiased). */
export const CODE_RANDOM_BYTES: number = 4 * CODE_WORDS;

/** A code from uniformly random bytes (at least {@link CODE_RANDOM_BYTES}). */
export function generateCode(random: Uint8Array): string {
  if (random.length < CODE_RANDOM_BYTES) throw new RangeError("A code needs 12 random bytes");
  const v = new DataView(random.buffer, random.byteOffset, random.length);
  const words: string[] = [];
  for (let i = 0; i < CODE_WORDS; i++) {
    // 2^32 mod 102,400 = 24,576: the bias is under 1 in 170,000.
    let n = v.getUint32(4 * i) % 102_400;
    const pick = (alphabet: string) => {
      const c = alphabet[n % alphabet.length];
      n = Math.floor(n / alphabet.length);
      return c;
    };
    words.push(
      pick(CONSONANTS) + pick(VOWELS) + pick(CONSONANTS) + pick(VOWELS) + pick(CONSONANTS),
    );
  }
  return words.join("-");
}

/**
 * A code as both sides compare it: lower case, with any run of spaces,
 * dashes or underscores as one dash, trimmed.
 */
export function normalizeCode(code: string): string {
  return code.trim().toLowerCase().replace(/[\s_-]+/g, "-").replace(/^-|-$/g, "");
}

/** Shortest code accepted, in characters after normalizing. */
export const MIN_CODE_LENGTH = 6;

/**
 * The SPAKE2 scalar `w` of a code, for one protocol (`context`, such as
 * `file-tcp`): HKDF-SHA256 of the normalized code to 48 bytes, reduced.
 * No memory-hard function: a PAKE gives an eavesdropper nothing to test
 * guesses against offline, and online guesses are throttled by the server.
 */
export function codeScalar(code: string, context: string): bigint {
  const ikm = new TextEncoder().encode(normalizeCode(code));
  const info = new TextEncoder().encode(`sockets code ${context}`);
  return scalarFromBytes(hkdf(sha256, ikm, undefined, info, 48));
}

/**
 * One side of the SPAKE2 exchange for a code: the server is A, the
 * client B, the identities their roles' names. `random` is 48 random
 * bytes from the shell; `aad` is bound into the confirmations.
 */
export function codeExchange(
  role: "server" | "client",
  code: string,
  context: string,
  random: Uint8Array,
  aad?: Uint8Array,
): Spake2 {
  const ids = { a: new TextEncoder().encode("server"), b: new TextEncoder().encode("client") };
  return new Spake2(
    role === "server" ? "A" : "B",
    codeScalar(code, context),
    scalarFromBytes(random),
    ids,
    aad,
  );
}
