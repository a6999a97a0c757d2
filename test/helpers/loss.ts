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

/**
 * Random targets with prefix groups (the bucket format of src/project/targets.ts): byteOrder a
 * random permutation of most columns (the rest play special tokens, in no group); per row up to
 * maxSingles single ids and up to maxGroups group ranges, laminar (nested or disjoint, distinct),
 * each keeping at least one column after the single ids and narrower ranges claim theirs; q and
 * the tail random, summing to 1 (tail 0 in about zeroTailShare of the rows).
 */
export function randomGroupedTargets(rows: number, vocab: number, seed: number,
  opts: { maxSingles?: number; maxGroups?: number; maxWidth?: number; zeroTailShare?: number; byteOrder?: Int32Array } = {}): SparseTargets {
  const r = rng(seed);
  const maxSingles = opts.maxSingles ?? 4, maxGroups = opts.maxGroups ?? 4, zeroTail = opts.zeroTailShare ?? 0.2;
  let byteOrder = opts.byteOrder;
  if (!byteOrder) {
    const cols = Array.from({ length: vocab }, (_, i) => i).filter(() => r() < 0.95);
    for (let i = cols.length - 1; i > 0; i--) {
      const k = Math.floor(r() * (i + 1));
      [cols[i], cols[k]] = [cols[k]!, cols[i]!];
    }
    byteOrder = Int32Array.from(cols);
  }
  const n = byteOrder.length, maxWidth = Math.min(n, opts.maxWidth ?? n);
  const rowPtr = new Int32Array(rows + 1), ids: number[] = [], lo: number[] = [], hi: number[] = [], probs: number[] = [];
  const tail = new Float32Array(rows);
  for (let j = 0; j < rows; j++) {
    const singles = new Set<number>();
    const ns = Math.floor(r() * (maxSingles + 1));
    while (singles.size < Math.min(ns, vocab)) singles.add(Math.floor(r() * vocab));
    let ranges: Array<[number, number]> = [];
    const ng = n === 0 ? 0 : Math.floor(r() * (maxGroups + 1));
    for (let g = 0, tries = 0; g < ng && tries < 50; tries++) {
      let a: number, b: number;
      if (ranges.length && r() < 0.5) {  // inside an existing range
        const [pa, pb] = ranges[Math.floor(r() * ranges.length)]!;
        a = pa + Math.floor(r() * (pb - pa));
        b = a + 1 + Math.floor(r() * (pb - a));
      } else {
        const w = 1 + Math.floor(r() ** 2 * maxWidth);
        a = Math.floor(r() * (n - w + 1));
        b = a + w;
      }
      const ok = ranges.every(([c, d]) => !(c === a && d === b) && (b <= c || d <= a || (c <= a && b <= d) || (a <= c && d <= b)));
      if (ok) { ranges.push([a, b]); g++; }
    }
    // drop ranges that keep no column (innermost range holds a column; single ids hold theirs)
    for (;;) {
      const own = ranges.map(() => 0);
      for (let x = 0; x < n; x++) {
        if (singles.has(byteOrder[x]!)) continue;
        let best = -1;
        ranges.forEach(([c, d], i) => { if (c <= x && x < d && (best < 0 || d - c < ranges[best]![1] - ranges[best]![0])) best = i; });
        if (best >= 0) own[best]!++;
      }
      const kept = ranges.filter((_, i) => own[i]! > 0);
      if (kept.length === ranges.length) break;
      ranges = kept;
    }
    const w = [...singles].map(() => r() + 0.05).concat(ranges.map(() => r() + 0.05));
    const t = w.length === 0 || r() >= zeroTail ? r() * 0.5 + (w.length === 0 ? 1 : 0) : 0;
    const total = w.reduce((a, b) => a + b, 0) + t;
    [...singles].forEach((id, i) => { ids.push(id); lo.push(0); hi.push(0); probs.push(w[i]! / total); });
    ranges.forEach(([a, b], i) => { ids.push(-1); lo.push(a); hi.push(b); probs.push(w[singles.size + i]! / total); });
    tail[j] = w.length === 0 ? 1 : t / total;
    rowPtr[j + 1] = ids.length;
  }
  return { rowPtr, ids: Int32Array.from(ids), probs: Float32Array.from(probs), tail, groups: { lo: Int32Array.from(lo), hi: Int32Array.from(hi), byteOrder } };
}
