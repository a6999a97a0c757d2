// Every numeric tolerance of the kernel tests (loss, project, model), each with the reason it is as
// large as it is. A test names an entry here instead of writing a number; widening one is a change
// to this table, seen in review.
//
// An error passes when |got - want| <= rel * |want| + abs + absOfMax * max|want| (absOfMax: a floor
// relative to the largest entry, for entries whose terms cancel). Finite-difference entries also
// give the step h the tolerance was derived for.
import { expect } from 'vitest';

export interface Tolerance {
  rel?: number;
  abs?: number;
  absOfMax?: number;
  /** central-difference step, for entries that compare against finite differences */
  h?: number;
  why: string;
}

export const TOL = {
  // ---- outputs that are exact in float64 but returned in float32 ----
  float32Rounding: { abs: 5e-7, why: 'a value in [0, 1] computed in float64 and returned as float32: rounding only (2^-24 relative)' },

  // ---- loss kernels (fused, float32 in and out, float64 row accumulators) vs the float64 references ----
  divergenceLoss: { rel: 2e-6, abs: 2e-6, why: 'mean of row losses summed in float64 from float32 exps accurate to 4 ulp (2.4e-7 relative)' },
  divergenceLossWide: { rel: 1e-5, abs: 1e-5, why: 'as divergenceLoss over 151939-token rows: float32 block sums of 2048 exps before float64' },
  policyGradientLoss: { rel: 1e-5, abs: 1e-5, why: '-A log pi(a) with log pi from a float32 max and an exp polynomial; |A| up to 2 scales the ~2e-6 error of log pi' },
  lossGrad: { rel: 2e-5, absOfMax: 2e-6, why: 'float32 exp (<= 4 ulp) times a float64 coefficient, stored in float32; support entries whose two terms cancel need the floor' },
  bf16Loss: { rel: 1e-5, abs: 1e-5, why: 'bf16 logits are exact in float32; the loss itself is accumulated as for float32' },
  bf16Grad: { rel: 2 ** -8, absOfMax: 2e-6, why: 'bf16 stores 8 significant bits: half an ulp is 2^-9 relative, doubled for the float32 error before rounding' },
  ppoRatio: { rel: 2.5e-5, abs: 5e-6, why: 'a loss of -ratio * A with ratio = exp(log pi - old) and old rounded to float32: 2^-24 of |old| in the exponent' },
  cudaLoss: { rel: 1e-5, abs: 1e-5, why: 'CUDA expf (2 ulp) in per-thread float64 sums merged across a block, vs float64' },
  cudaVsCpuLoss: { rel: 1e-5, abs: 1e-5, why: 'CUDA expf and the CPU polynomial differ by a few ulp; row sums run in a different order' },
  cudaVsCpuGrad: { rel: 3e-5, absOfMax: 3e-6, why: 'two float32 paths, each within lossGrad of float64' },
  directVsReference: { rel: 1e-12, abs: 1e-12, why: 'two float64 evaluations of the same formula in a different order' },
  bucketCoefficient: { rel: 1e-5, abs: 1e-12, why: 'd loss / d z_u / p_u of one bucket: a shared float64 coefficient times a float32 exp (4 ulp), over a float64 softmax' },
  zeroAtEquality: { abs: 2e-7, why: 'targets equal to the student\'s own probabilities rounded to float32: the divergence is second order in that rounding' },
  tinyOtherLoss: { abs: 1e-9, why: 'p_other ~ 1e-9 summed directly: the loss is a float64 sum of terms no larger than 1e-8' },
  tinyOtherGrad: { abs: 1e-12, why: 'gradient entries of ~1e-9 from float32 exps: 2e-5 relative of them' },

  // ---- finite differences ----
  float64VsFd: { h: 1e-6, abs: 1e-8, why: 'central differences of a float64 loss: truncation h^2 f\'\'\'/6 ~ 1e-12, rounding 1e-16 |f|/h ~ 1e-9; no PPO clip kink lies within h' },
  float64VsFdRel: { h: 1e-5, rel: 1e-6, abs: 1e-8, why: 'as float64VsFd, for ops whose derivatives reach 10-100 (attention, products of activations)' },
  float32KernelVsFd: { h: 1e-2, abs: 3e-4, why: 'differences of the fused loss: its 2.4e-7 relative rounding / h ~ 1e-5, truncation h^2 f\'\'\'/6 ~ 1e-4 at logit scale 4' },
  modelVsFd: { h: 1e-5, rel: 2e-3, abs: 2e-5, why: 'float32 backward of the whole decoder (a few GEMMs deep, K up to 256) vs float64 differences: ~1e-4 relative, ten-fold margin' },

  // ---- span projection (float64 walk, float32 CSR) vs its float64 reference ----
  projectionProbs: { rel: 1e-6, abs: 1e-9, why: 'each entry is a float64 product of a few teacher probabilities, stored as float32' },
  projectionTail: { abs: 1e-6, why: '1 - sum of up to (K + 1) * span float64 terms, stored as float32' },
  projectionRowSum: { abs: 1e-5, why: 'probs + tail summed in float64 from float32 entries: up to a few hundred roundings of 6e-8' },
  projectionRowMass: { abs: 1e-6, why: 'a row\'s float32 probs (renormalised to at most 1 in float64) summed again: rounding only' },
  projectionLogRatio: { rel: 2e-6, abs: 2e-6, why: 'log of a float32 projected mass against the teacher\'s float32 logprob' },

  // ---- the model's kernels (float32) vs float64 references ----
  gemmPerK: { abs: 2e-6, why: 'float32 accumulation of K products of magnitude <= 1: the bound grows with K (multiply abs by K, plus 1e-6)' },
  modelForward: { rel: 1e-5, abs: 1e-5, why: 'float32 forward of the whole decoder (GEMMs, norms, softmax) vs float64: 1e-6 per layer, a few layers' },
  crossEntropy: { abs: 5e-7, why: 'log-sum-exp in float64 over float32 logits; gradient entries in [0, 1] stored as float32' },
  logprob: { abs: 5e-6, why: 'a float32 logit minus a float64 log-sum-exp, stored as float32 (logprobs down to -20)' },
  rowOp: { rel: 2e-6, abs: 1e-6, why: 'row-local float32 op (RMSNorm, rotary, SwiGLU, GELU, embedding): a few float32 roundings per output, sums in float64' },
  rowOpGrad: { rel: 1e-5, absOfMax: 1e-6, why: 'its float32 backward: products of a few rounded terms; the floor covers entries whose terms cancel' },
  attention: { rel: 1e-5, absOfMax: 2e-6, why: 'two float32 GEMMs (K = head dim, then T) around a softmax with a float64 sum' },
  attentionGrad: { rel: 5e-5, absOfMax: 5e-6, why: 'four float32 GEMMs and the softmax backward, whose row dot product cancels' },
  adamw: { rel: 2e-6, absOfMax: 1e-6, why: 'float32 moments and update from the same formula: a few roundings each; the floor covers moments whose two terms cancel' },
  learningRate: { rel: 1e-12, why: 'the schedule is computed in float64 on both sides' },
  gradNorm: { rel: 1e-12, why: 'float64 sum of squares of float32 values, in a different order' },
} as const satisfies Record<string, Tolerance>;

/** The error bound of one entry. */
function bound(want: number, tol: Tolerance, maxWant: number): number {
  return (tol.rel ?? 0) * Math.abs(want) + (tol.abs ?? 0) + (tol.absOfMax ?? 0) * maxWant;
}

/**
 * The worst ratio of error to bound over all entries (<= 1 passes), so a failure says how far off
 * it is; got and want must have the same length.
 */
export function worstRatio(got: ArrayLike<number>, want: ArrayLike<number>, tol: Tolerance): number {
  if (got.length !== want.length) throw new Error(`length ${got.length} vs ${want.length}`);
  let maxWant = 0;
  for (let i = 0; i < want.length; i++) maxWant = Math.max(maxWant, Math.abs(want[i]!));
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    const b = bound(want[i]!, tol, maxWant), err = Math.abs(got[i]! - want[i]!);
    worst = Math.max(worst, b === 0 ? (err === 0 ? 0 : Infinity) : err / b);
  }
  return worst;
}

/** Every entry of got within tol of want. */
export function expectAllClose(got: ArrayLike<number>, want: ArrayLike<number>, tol: Tolerance, what = ''): void {
  expect(got.length, what).toBe(want.length);
  expect(worstRatio(got, want, tol), `${what} (${tol.why})`).toBeLessThanOrEqual(1);
}

/** One number within tol of want. */
export function expectClose(got: number, want: number, tol: Tolerance, what = ''): void {
  expect(Math.abs(got - want), `${what}: got ${got}, want ${want} (${tol.why})`).toBeLessThanOrEqual(bound(want, tol, Math.abs(want)));
}

/**
 * The same table as C++ (gpu/tolerances.h) for the standalone GPU check, which runs where there is
 * no Node; test/cuda-emulation.test.ts fails when the checked-in header differs from this text.
 */
export function tolerancesHeader(): string {
  const lines = [
    '// Generated from test/helpers/tolerances.ts (tolerancesHeader): do not edit; test/cuda-emulation.test.ts',
    '// checks it matches (XOPD_WRITE_TOLERANCES=1 npx vitest run test/cuda-emulation.test.ts rewrites it).',
    '#pragma once',
    '',
    'namespace xopd {',
    'namespace gpu_check {',
    '',
    'struct Tolerance {',
    '  double rel, abs, absOfMax;',
    '  const char* why;',
    '};',
    '',
  ];
  for (const [name, t] of Object.entries(TOL) as Array<[string, Tolerance]>) {
    lines.push(`constexpr Tolerance ${name}{${t.rel ?? 0}, ${t.abs ?? 0}, ${t.absOfMax ?? 0}, ${JSON.stringify(t.why)}};`);
  }
  lines.push('', '}  // namespace gpu_check', '}  // namespace xopd', '');
  return lines.join('\n');
}
