// Shared helpers for the loss tests: seeded random logits and targets, finite differences.
import { rng } from '../../dev/corpus.js';
import type { SparseTargets } from '../../src/project/targets.js';

export function randomLogits(rows: number, vocab: number, seed: number, scale = 4): Float32Array {
  const r = rng(seed);
  const x = new Float32Array(rows * vocab);
  // A few peaked entries per row, like a language model's logits.
  for (let i = 0; i < x.length; i++) x[i] = (r() - 0.5) * scale + (r() < 0.01 ? 8 * r() : 0);
  return x;
}

/** Random CSR targets: support sizes in [0, maxSupport], probabilities + tail summing to 1. */
export function randomTargets(rows: number, vocab: number, seed: number, maxSupport = 8, zeroTailShare = 0.2): SparseTargets {
  const r = rng(seed);
  const rowPtr = new Int32Array(rows + 1);
  const ids: number[] = [];
  const probs: number[] = [];
  const tail = new Float32Array(rows);
  for (let j = 0; j < rows; j++) {
    const n = Math.min(vocab, Math.floor(r() * (maxSupport + 1)));
    const chosen = new Set<number>();
    while (chosen.size < n) chosen.add(Math.floor(r() * vocab));
    const w = [...chosen].map(() => r() + 0.05);
    const t = n === 0 || r() >= zeroTailShare ? r() * 0.5 + (n === 0 ? 1 : 0) : 0;
    const total = w.reduce((a, b) => a + b, 0) + t;
    for (const [i, id] of [...chosen].entries()) {
      ids.push(id);
      probs.push(w[i]! / total);
    }
    tail[j] = n === 0 ? 1 : t / total;
    rowPtr[j + 1] = ids.length;
  }
  return { rowPtr, ids: Int32Array.from(ids), probs: Float32Array.from(probs), tail };
}

/** Central differences of f at x (float64) for the listed coordinates. */
export function finiteDiff(f: (x: Float64Array) => number, x: Float64Array, coords: number[], h: number): number[] {
  return coords.map((i) => {
    const xp = Float64Array.from(x), xm = Float64Array.from(x);
    xp[i]! += h;
    xm[i]! -= h;
    return (f(xp) - f(xm)) / (2 * h);
  });
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

/** Softmax of one row at temperature T, in float64. */
export function softmax(z: ArrayLike<number>, T = 1): Float64Array {
  let mx = -Infinity;
  for (let i = 0; i < z.length; i++) mx = Math.max(mx, z[i]! / T);
  const p = new Float64Array(z.length);
  let s = 0;
  for (let i = 0; i < z.length; i++) s += p[i] = Math.exp(z[i]! / T - mx);
  for (let i = 0; i < z.length; i++) p[i]! /= s;
  return p;
}

export const errCode = (c: string) => ({ name: 'XopdError', code: c });

/**
 * Elementwise closeness: |got - want| <= rel * |want| + absOfMax * max|want|. Returns the worst
 * ratio of the error to its bound (<= 1 passes), so a failure names how far off it is.
 */
export function worstError(got: ArrayLike<number>, want: ArrayLike<number>, rel: number, absOfMax: number): number {
  const floor = absOfMax * maxAbs(want);
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    const bound = rel * Math.abs(want[i]!) + floor;
    const err = Math.abs(got[i]! - want[i]!);
    worst = Math.max(worst, bound === 0 ? (err === 0 ? 0 : Infinity) : err / bound);
  }
  return worst;
}
