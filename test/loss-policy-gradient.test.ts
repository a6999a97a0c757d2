// The fused policy-gradient loss (DESIGN 4) against the float64 reference, finite differences and
// the PPO clipping rules, with and without clipping.
import { describe, expect, it } from 'vitest';
import { addon } from '../src/core/native.js';
import { policyGradientLoss } from '../src/loss/policy-gradient.js';
import { CPU_PATHS, lossOnPath } from '../dev/loss-kernels.js';
import { policyGradientLossReference } from '../dev/loss-reference.js';
import { fromBf16, toBf16 } from '../src/loss/logits.js';
import { rng } from '../dev/corpus.js';
import { errCode, finiteDiff, randomLogits, softmax } from './helpers/loss.js';
import { TOL, expectAllClose, expectClose } from './helpers/tolerances.js';


function batch(rows: number, vocab: number, seed: number) {
  const r = rng(seed);
  const logits = randomLogits(rows, vocab, seed);
  const actions = Int32Array.from({ length: rows }, () => Math.floor(r() * vocab));
  const advantages = Float32Array.from({ length: rows }, () => (r() - 0.5) * 4);
  const mask = Uint8Array.from({ length: rows }, (_, i) => (i % 5 === 3 ? 0 : 1));
  // old logprobs near the current ones, so ratios fall on both sides of the clip range
  const oldLogprobs = Float32Array.from({ length: rows }, (_, j) => {
    const p = softmax(logits.subarray(j * vocab, (j + 1) * vocab));
    return Math.log(p[actions[j]!]!) + (r() - 0.5) * 1.2;
  });
  return { logits, actions, advantages, mask, oldLogprobs };
}

describe('policyGradientLoss matches the float64 reference', () => {
  for (const path of CPU_PATHS) {
    for (const vocab of [29, 4099]) {
      it(`${path} CPU path, vocab ${vocab}, with and without clipping`, () => {
        const { policyGradientLoss } = lossOnPath(path);
        const rows = 23;
        const b = batch(rows, vocab, vocab);
        for (const clipped of [false, true]) {
          const opts = clipped ? { oldLogprobs: b.oldLogprobs, clip: { low: 0.2, high: 0.28, dual: 3 } } : {};
          const got = policyGradientLoss(b.logits, { rows, vocab }, b.actions, b.advantages, b.mask, { ...opts, device: 'cpu' });
          const ref = policyGradientLossReference(b.logits, { rows, vocab }, b.actions, b.advantages, b.mask, opts);
          expectClose(got.loss, ref.loss, TOL.policyGradientLoss, 'loss');
          expectAllClose(got.grad, ref.grad, TOL.lossGrad, 'grad');
          expect(got.stats.clippedFraction).toBe(ref.clippedFraction);
          expect(got.stats.rows).toBe(rows - 4);
          if (clipped) expect(got.stats.clippedFraction).toBeGreaterThan(0.1);
        }
      });
    }
  }

  it('bf16 logits give a bf16 gradient close to the reference', () => {
    const rows = 7, vocab = 2053;
    const b = batch(rows, vocab, 3);
    const l16 = toBf16(b.logits);
    const got = policyGradientLoss(l16, { rows, vocab }, b.actions, b.advantages, b.mask, { device: 'cpu' });
    expect(got.grad).toBeInstanceOf(Uint16Array);
    const ref = policyGradientLossReference(fromBf16(l16), { rows, vocab }, b.actions, b.advantages, b.mask);
    expectClose(got.loss, ref.loss, TOL.bf16Loss, 'loss');
    expectAllClose(fromBf16(got.grad), ref.grad, TOL.bf16Grad, 'bf16 grad');
  });
});

describe('policy-gradient gradients against finite differences', () => {
  const rows = 6, vocab = 17;
  const b = batch(rows, vocab, 9);
  const coords = Array.from({ length: rows * vocab }, (_, i) => i);
  for (const clipped of [false, true]) {
    it(`${clipped ? 'PPO-clipped' : 'plain'}: reference (float64) and fused fp32`, () => {
      const opts = clipped ? { oldLogprobs: b.oldLogprobs } : {};
      const f = (x: Float64Array) => policyGradientLossReference(x, { rows, vocab }, b.actions, b.advantages, b.mask, opts).loss;
      const x = Float64Array.from(b.logits);
      const ref = policyGradientLossReference(x, { rows, vocab }, b.actions, b.advantages, b.mask, opts);
      const fd = finiteDiff(f, x, coords, TOL.float64VsFd.h);
      expectAllClose(coords.map((c) => ref.grad[c]!), fd, TOL.float64VsFd, 'reference vs finite differences');
      const got = policyGradientLoss(b.logits, { rows, vocab }, b.actions, b.advantages, b.mask, { ...opts, device: 'cpu' });
      const ffd = finiteDiff((y) => policyGradientLoss(Float32Array.from(y), { rows, vocab }, b.actions, b.advantages, b.mask, { ...opts, device: 'cpu' }).loss,
        x, coords, TOL.float32KernelVsFd.h);
      expectAllClose(coords.map((c) => got.grad[c]!), ffd, TOL.float32KernelVsFd, 'fused kernel vs finite differences');
      // masked rows: zero gradient
      for (let v = 0; v < vocab; v++) expect(got.grad[3 * vocab + v]).toBe(0);
    });
  }
});

describe('PPO clipping rules (one row, vocab 4)', () => {
  const z = Float32Array.from([1, 0.5, -0.3, 2]);
  const logp = Math.log(softmax(z)[0]!);
  const run = (A: number, ratio: number, clip?: { low: number; high: number; dual?: number }) =>
    policyGradientLoss(z, { rows: 1, vocab: 4 }, Int32Array.from([0]), Float32Array.from([A]), Uint8Array.from([1]),
      { oldLogprobs: Float32Array.from([logp - Math.log(ratio)]), clip, device: 'cpu' });

  it('inside the range the gradient is ratio * A * dlogpi; loss -ratio * A', () => {
    const r = run(1.5, 1.1);
    expectClose(r.loss, -1.1 * 1.5, TOL.ppoRatio, 'loss');
    expect(r.stats.clippedFraction).toBe(0);
    const p = softmax(z);
    expectClose(r.grad[0]!, -1.1 * 1.5 * (1 - p[0]!), TOL.ppoRatio, 'grad of the action');
  });
  it('A > 0 above 1 + high, and A < 0 below 1 - low: clipped, no gradient', () => {
    for (const [A, ratio, bound] of [[2, 1.5, 1.28], [-2, 0.5, 0.8]] as const) {
      const r = run(A, ratio);
      expect(r.stats.clippedFraction).toBe(1);
      expectClose(r.loss, -bound * A, TOL.ppoRatio, 'clipped loss');
      expect(Array.from(r.grad)).toEqual([0, 0, 0, 0]);
    }
  });
  it('A > 0 below 1 - low, and A < 0 above 1 + high: the gradient still flows (pessimistic bound)', () => {
    for (const [A, ratio] of [[2, 0.5], [-2, 1.6]] as const) {
      const r = run(A, ratio);
      expect(r.stats.clippedFraction).toBe(0);
      expectClose(r.loss, -ratio * A, TOL.ppoRatio, 'unclipped loss');
      expect(Math.abs(r.grad[0]!)).toBeGreaterThan(0.1);
    }
  });
  it('dual clip: A < 0 and ratio above c bounds the loss at -c * A, no gradient', () => {
    const r = run(-1, 20);
    expect(r.stats.clippedFraction).toBe(1);
    expectClose(r.loss, 10, TOL.ppoRatio, 'dual-clipped loss');
    expect(Array.from(r.grad)).toEqual([0, 0, 0, 0]);
    const off = run(-1, 20, { low: 0.2, high: 0.28, dual: 0 });
    expectClose(off.loss, 20, TOL.ppoRatio, 'loss without the dual clip');
    expect(off.stats.clippedFraction).toBe(0);
  });
});

describe('policy gradient: masks and bad input', () => {
  const rows = 5, vocab = 11;
  const b = batch(rows, vocab, 12);
  it('the mean is over unmasked rows only; masked rows are not read', () => {
    const mask = Uint8Array.from([1, 0, 1, 1, 0]);
    const poisoned = Float32Array.from(b.logits);
    poisoned[vocab + 2] = NaN;
    const badActions = Int32Array.from(b.actions);
    badActions[4] = -1;  // padding in a masked row is fine
    const r = policyGradientLoss(poisoned, { rows, vocab }, badActions, b.advantages, mask, { device: 'cpu' });
    let want = 0;
    for (const j of [0, 2, 3]) want -= b.advantages[j]! * Math.log(softmax(b.logits.subarray(j * vocab, (j + 1) * vocab))[b.actions[j]!]!) / 3;
    expectClose(r.loss, want, TOL.policyGradientLoss, 'mean over kept rows');
    expect(r.stats.rows).toBe(3);
    const none = policyGradientLoss(b.logits, { rows, vocab }, b.actions, b.advantages, new Uint8Array(rows), { device: 'cpu' });
    expect(none.loss).toBe(0);
    expect(none.grad.every((g) => g === 0)).toBe(true);
  });
  it('bad input', () => {
    const call = (o: Partial<Record<string, unknown>>) => () => policyGradientLoss(
      (o.logits ?? b.logits) as Float32Array, (o.shape ?? { rows, vocab }) as { rows: number; vocab: number },
      (o.actions ?? b.actions) as Int32Array, (o.adv ?? b.advantages) as Float32Array, (o.mask ?? b.mask) as Uint8Array,
      (o.opts ?? { device: 'cpu' }) as object);
    const c = (x: string) => expect.objectContaining(errCode(x));
    expect(call({ shape: { rows: 0, vocab } })).toThrow(c('E_ARG_SHAPE'));
    expect(call({ shape: { rows, vocab: 12 } })).toThrow(c('E_ARG_SHAPE'));
    expect(call({ actions: new Int32Array(4) })).toThrow(c('E_ARG_SHAPE'));
    expect(call({ actions: Int32Array.from([11, 1, 2, 0, 0]) })).toThrow(c('E_TOKEN_ID'));
    expect(call({ adv: Float32Array.from([0, NaN, 0, 0, 0]) })).toThrow(c('E_ARG_VALUE'));
    expect(call({ mask: [1, 1, 1, 1, 1] })).toThrow(c('E_ARG_TYPE'));
    expect(call({ opts: { oldLogprobs: new Float32Array(5).fill(0.5) } })).toThrow(c('E_ARG_VALUE'));
    expect(call({ opts: { oldLogprobs: new Float32Array(4) } })).toThrow(c('E_ARG_SHAPE'));
    expect(call({ opts: { clip: { low: 0.2, high: 0.2 } } })).toThrow(c('E_ARG_VALUE'));
    expect(call({ opts: { oldLogprobs: b.oldLogprobs, clip: { low: 1.5, high: 0.2 } } })).toThrow(c('E_ARG_RANGE'));
    expect(call({ opts: { oldLogprobs: b.oldLogprobs, clip: { low: 0.2, high: 0.2, dual: 0.5 } } })).toThrow(c('E_ARG_RANGE'));
    const inf = Float32Array.from(b.logits);
    inf[7] = -Infinity;
    expect(call({ logits: inf })).toThrow(c('E_ARG_VALUE'));
    const n = addon<{ policyGradient(a: unknown): unknown }>();
    expect(() => n.policyGradient({ logits: b.logits, rows, vocab, actions: Int32Array.from([0, 0, 0, 0, 99]), advantages: b.advantages })).toThrow(expect.objectContaining({ code: 'E_TOKEN_ID' }));
    expect(() => n.policyGradient({ logits: b.logits, rows, vocab, actions: b.actions, advantages: b.advantages, device: 'gpu' })).toThrow(expect.objectContaining({ code: 'E_ARG_VALUE' }));
  });
});
