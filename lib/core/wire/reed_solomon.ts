/**
 * Reed-Solomon erasure coding over GF(2^8), with no I/O: `k` source symbols
 * (byte strings of one length) give `m` repair symbols, and any `k` of the
 * `k + m` rebuild the sources.
 *
 * The field is GF(2^8) with the polynomial x^8 + x^4 + x^3 + x^2 + 1
 * (0x11d) and generator 2, the one most Reed-Solomon codes use. The code is
 * systematic with a Cauchy matrix: repair `j` is the sum over the sources
 * of `1 / (x_j + y_i)` times source `i`, with `x_j = j` and `y_i = m + i`.
 * Every square submatrix of a Cauchy matrix is invertible, so any `k`
 * received symbols solve for the missing sources (Gauss-Jordan over the
 * field). This is the construction of Blömer et al. (1995) that Jerasure
 * and roc-toolkit's OpenFEC use; `k + m` is at most 256.
 *
 * @module
 */

/** The field's reduction polynomial. */
export const GF_POLY = 0x11d;

const EXP = new Uint8Array(512);
const LOG = new Uint8Array(256);
{
  let x = 1;
  for (let i = 0; i < 255; i++) {
    EXP[i] = x;
    LOG[x] = i;
    x <<= 1;
    if (x & 0x100) x ^= GF_POLY;
  }
  for (let i = 255; i < 512; i++) EXP[i] = EXP[i - 255];
}

/** Product of two field elements. */
export function gfMul(a: number, b: number): number {
  return a === 0 || b === 0 ? 0 : EXP[LOG[a] + LOG[b]];
}

/** Inverse of a non-zero field element. */
export function gfInv(a: number): number {
  if (a === 0) throw new RangeError("Zero has no inverse in GF(256)");
  return EXP[255 - LOG[a]];
}

/** `2^n` in the field. */
export function gfExp(n: number): number {
  return EXP[((n % 255) + 255) % 255];
}

/** Rows of the multiplication table, made when first needed (256 bytes each). */
const MUL_ROWS: (Uint8Array | undefined)[] = [];
function mulRow(c: number): Uint8Array {
  let row = MUL_ROWS[c];
  if (!row) {
    row = new Uint8Array(256);
    for (let v = 0; v < 256; v++) row[v] = gfMul(c, v);
    MUL_ROWS[c] = row;
  }
  return row;
}

/** `out ^= c · src`, byte by byte (`src` may be shorter than `out`). */
function addScaled(out: Uint8Array, src: Uint8Array, c: number): void {
  if (c === 0) return;
  if (c === 1) {
    for (let b = 0; b < src.length; b++) out[b] ^= src[b];
    return;
  }
  const row = mulRow(c);
  for (let b = 0; b < src.length; b++) out[b] ^= row[src[b]];
}

/** A systematic Reed-Solomon erasure code with `k` sources and `m` repairs. */
export class ReedSolomon {
  /** Source symbols per group. */
  readonly k: number;
  /** Repair symbols per group. */
  readonly m: number;
  #cauchy: Uint8Array[];

  /** A code for `k` sources and `m` repairs (`k, m ≥ 1`, `k + m ≤ 256`). */
  constructor(k: number, m: number) {
    if (!Number.isInteger(k) || !Number.isInteger(m) || k < 1 || m < 1 || k + m > 256) {
      throw new RangeError(
        `Reed-Solomon over GF(256) needs 1 ≤ k, m and k + m ≤ 256, not ${k}+${m}`,
      );
    }
    this.k = k;
    this.m = m;
    this.#cauchy = [];
    for (let j = 0; j < m; j++) {
      const row = new Uint8Array(k);
      for (let i = 0; i < k; i++) row[i] = gfInv(j ^ (m + i));
      this.#cauchy.push(row);
    }
  }

  /** The coefficients of repair `j` (a copy). */
  repairRow(j: number): Uint8Array {
    return this.#cauchy[j].slice();
  }

  /**
   * Repair symbol `j` of `sources` (`k` symbols; a shorter one counts as
   * padded with zeros), `size` bytes long.
   */
  repair(sources: Uint8Array[], j: number, size: number): Uint8Array {
    if (sources.length !== this.k) throw new RangeError(`Expected ${this.k} sources`);
    const out = new Uint8Array(size);
    const row = this.#cauchy[j];
    for (let i = 0; i < this.k; i++) addScaled(out, sources[i], row[i]);
    return out;
  }

  /** All `m` repair symbols of `sources`. */
  encode(sources: Uint8Array[], size: number): Uint8Array[] {
    return this.#cauchy.map((_, j) => this.repair(sources, j, size));
  }

  /**
   * Rebuilds the missing sources. `symbols` has `k + m` entries, sources
   * first, then repairs, null where not received; all received ones are
   * `size` bytes. Returns the missing sources by index, or null when fewer
   * than `k` symbols were received (the loss is beyond this code).
   */
  decode(symbols: (Uint8Array | null)[], size: number): Map<number, Uint8Array> | null {
    const { k, m } = this;
    if (symbols.length !== k + m) throw new RangeError(`Expected ${k + m} symbols`);
    const missing: number[] = [];
    for (let i = 0; i < k; i++) if (!symbols[i]) missing.push(i);
    const out = new Map<number, Uint8Array>();
    if (missing.length === 0) return out;
    // The k received rows used: every source received, then repairs.
    const rows: number[] = [];
    for (let i = 0; i < k + m && rows.length < k; i++) if (symbols[i]) rows.push(i);
    if (rows.length < k) return null;
    // The k×k matrix A with A · sources = received; invert it (Gauss-Jordan).
    const a = rows.map((r) => {
      if (r < k) {
        const e = new Uint8Array(k);
        e[r] = 1;
        return e;
      }
      return this.#cauchy[r - k].slice();
    });
    const inv = a.map((_, i) => {
      const e = new Uint8Array(k);
      e[i] = 1;
      return e;
    });
    for (let col = 0; col < k; col++) {
      let pivot = col;
      while (pivot < k && a[pivot][col] === 0) pivot++;
      if (pivot === k) throw new Error("Cauchy submatrix is singular (cannot happen)");
      [a[col], a[pivot]] = [a[pivot], a[col]];
      [inv[col], inv[pivot]] = [inv[pivot], inv[col]];
      const scale = gfInv(a[col][col]);
      scaleRow(a[col], scale);
      scaleRow(inv[col], scale);
      for (let r = 0; r < k; r++) {
        const f = a[r][col];
        if (r === col || f === 0) continue;
        addScaled(a[r], a[col], f);
        addScaled(inv[r], inv[col], f);
      }
    }
    for (const i of missing) {
      const s = new Uint8Array(size);
      for (let c = 0; c < k; c++) addScaled(s, symbols[rows[c]]!, inv[i][c]);
      out.set(i, s);
    }
    return out;
  }
}

function scaleRow(row: Uint8Array, c: number): void {
  const t = mulRow(c);
  for (let i = 0; i < row.length; i++) row[i] = t[row[i]];
}
