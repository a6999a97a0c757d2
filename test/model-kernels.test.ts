// The model's kernels against plain references: packed GEMM (every transpose/accumulate mode and
// ragged shape; the kernel and its reference through the dev addon), cross-entropy, and
// logprob/top-k rows (the shipped modelKernels). Tolerances: test/helpers/tolerances.ts.
import { describe, expect, it } from 'vitest';
import { rng } from '../dev/corpus.js';
import { modelDev } from '../dev/model-kernels.js';
import { modelNative } from '../src/model/native.js';
import { TOL, expectAllClose, expectClose } from './helpers/tolerances.js';

const K = () => modelNative().modelKernels;

function randn(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => (r() - 0.5) * 2 * scale);
}

describe('packed GEMM', () => {
  it('matches the float64 reference for every mode and ragged shape', () => {
    const shapes: Array<[number, number, number]> = [[1, 1, 1], [1, 17, 3], [5, 16, 7], [6, 16, 32], [7, 33, 5], [13, 47, 129], [50, 100, 64], [97, 31, 200], [3, 300, 2]];
    let seed = 1;
    for (const [M, N, Kd] of shapes)
      for (const aT of [false, true])
        for (const bT of [false, true])
          for (const acc of [false, true]) {
            const a = randn(M * Kd, seed++), b = randn(Kd * N, seed++), c0 = randn(M * N, seed++);
            const got = c0.slice(), want = c0.slice();
            modelDev().gemm(M, N, Kd, a, aT, b, bT, got, acc, false);
            modelDev().gemm(M, N, Kd, a, aT, b, bT, want, acc, true);
            const tol = { ...TOL.gemmPerK, abs: TOL.gemmPerK.abs * Kd + 1e-6 };
            expectAllClose(got, want, tol, `M${M} N${N} K${Kd} aT${aT} bT${bT} acc${acc}`);
          }
  });
  it('computes a row alone exactly as inside a batch (the KV-cache guarantee)', () => {
    const M = 29, N = 70, Kd = 45;
    const a = randn(M * Kd, 7), b = randn(Kd * N, 8);
    const all = new Float32Array(M * N);
    modelDev().gemm(M, N, Kd, a, false, b, true, all, false, false);
    for (const m of [0, 5, 6, 28]) {
      const one = new Float32Array(N);
      modelDev().gemm(1, N, Kd, a.subarray(m * Kd, (m + 1) * Kd), false, b, true, one, false, false);
      expect(Array.from(one)).toEqual(Array.from(all.subarray(m * N, (m + 1) * N)));
    }
  });
  it('rejects bad shapes with an error code', () => {
    expect(() => modelDev().gemm(2, 2, 2, new Float32Array(3), false, new Float32Array(4), false, new Float32Array(4), false, false))
      .toThrow(expect.objectContaining({ code: 'E_ARG_SHAPE' }));
  });
});

function logSoftmax(z: ArrayLike<number>): number[] {
  let mx = -Infinity;
  for (let i = 0; i < z.length; i++) mx = Math.max(mx, z[i]!);
  let s = 0;
  for (let i = 0; i < z.length; i++) s += Math.exp(z[i]! - mx);
  const lse = mx + Math.log(s);
  return Array.from(z, (v) => v - lse);
}

describe('softmax rows', () => {
  it('cross-entropy and its gradient match a float64 reference; ignored rows give 0', () => {
    const R = 9, V = 37;
    const z = randn(R * V, 3, 6);
    const t = Int32Array.from({ length: R }, (_, r) => (r === 4 ? -1 : (r * 11) % V));
    const { loss, grad } = K().crossEntropy(z, t, V);
    let want = 0;
    const count = R - 1;
    for (let r = 0; r < R; r++) {
      const ls = logSoftmax(z.subarray(r * V, (r + 1) * V));
      for (let v = 0; v < V; v++) {
        const g = t[r]! < 0 ? 0 : (Math.exp(ls[v]!) - (v === t[r] ? 1 : 0)) / count;
        expectClose(grad[r * V + v]!, g, TOL.crossEntropy, `grad ${r}, ${v}`);
      }
      if (t[r]! >= 0) want -= ls[t[r]!]!;
    }
    expectClose(loss, want / count, TOL.crossEntropy, 'loss');
  });
  it('logprobsTopK gives realised logprobs (floor for -1) and the k best, ties to the lower index', () => {
    const V = 20, R = 3;
    const z = randn(R * V, 9, 4);
    z[5] = z[6] = 10; // a tie in row 0
    const t = Int32Array.from([2, -1, 19]);
    const r = K().logprobsTopK(z, t, V, 4, -30);
    const ls0 = logSoftmax(z.subarray(0, V));
    expectClose(r.logprobs[0]!, ls0[2]!, TOL.logprob, 'realised logprob');
    expect(r.logprobs[1]).toBe(-30);
    expect(Array.from(r.topIdx.subarray(0, 2))).toEqual([5, 6]);
    for (let row = 0; row < R; row++) {
      const ls = logSoftmax(z.subarray(row * V, (row + 1) * V));
      const order = ls.map((v, i) => [v, i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, 4);
      expect(Array.from(r.topIdx.subarray(row * 4, row * 4 + 4))).toEqual(order.map((o) => o[1]));
      order.forEach((o, j) => expectClose(r.topLogprobs[row * 4 + j]!, o[0], TOL.logprob, `top ${j} of row ${row}`));
    }
  });
});
