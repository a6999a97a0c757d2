// Each layer op of the embedded decoder (native/model/ops.h) on its own: the float32 forward and
// backward against the float64 references of dev/model-ops-reference.ts, and those references'
// backwards against central differences of their forwards. AdamW, its learning-rate schedule and
// the gradient norm against the same formulas in float64. Tolerances: test/helpers/tolerances.ts.
import { describe, expect, it } from 'vitest';
import { devAddon } from '../dev/addon.js';
import { rng } from '../dev/corpus.js';
import { modelDev, type OptimArgs } from '../dev/model-kernels.js';
import * as ref from '../dev/model-ops-reference.js';
import { modelNative } from '../src/model/native.js';
import { finiteDiff } from './helpers/loss.js';
import { TOL, expectAllClose, expectClose } from './helpers/tolerances.js';

const dev = () => modelDev();

/** n uniform values in [-scale, scale) from a seed, as float32 (the kernels' inputs). */
function rand(n: number, seed: number, scale = 1, offset = 0): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => offset + (r() * 2 - 1) * scale);
}

/** sum c_i f(x)_i: the scalar whose gradient a backward with upstream c computes. */
const dot = (c: ArrayLike<number>, y: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < c.length; i++) s += c[i]! * y[i]!;
  return s;
};

/** The reference backward against central differences of the reference forward, on every coordinate. */
function expectFdMatches(f: (x: Float64Array) => number, x: ArrayLike<number>, grad: ArrayLike<number>, what: string): void {
  const tol = TOL.float64VsFdRel;
  const coords = Array.from({ length: x.length }, (_, i) => i);
  const fd = finiteDiff(f, Float64Array.from(x), coords, tol.h);
  expectAllClose(grad, fd, tol, `${what}: reference backward vs central differences`);
}

describe('RMSNorm', () => {
  const N = 5, d = 24, eps = 1e-5;
  const x = rand(N * d, 1, 2), w = rand(d, 2, 0.5, 1), dy = rand(N * d, 3);
  it('forward and rstd match the float64 reference', () => {
    const got = dev().rmsNormForward(x, w, N, d, eps);
    const want = ref.rmsNorm(x, w, N, d, eps);
    expectAllClose(got.y, want.y, TOL.rowOp, 'y');
    expectAllClose(got.rstd, want.rstd, TOL.rowOp, 'rstd');
  });
  it('backward (dx, dw) matches the reference, and the reference matches finite differences', () => {
    const { rstd } = dev().rmsNormForward(x, w, N, d, eps);
    const got = dev().rmsNormBackward(dy, x, w, rstd, N, d);
    const want = ref.rmsNormBackward(dy, x, w, N, d, eps);
    expectAllClose(got.dx, want.dx, TOL.rowOpGrad, 'dx');
    expectAllClose(got.dw, want.dw, TOL.rowOpGrad, 'dw');
    expectFdMatches((xx) => dot(dy, ref.rmsNorm(xx, w, N, d, eps).y), x, want.dx, 'dx');
    expectFdMatches((ww) => dot(dy, ref.rmsNorm(x, ww, N, d, eps).y), w, want.dw, 'dw');
  });
});

describe('rotary positions', () => {
  const N = 6, d = 16, heads = 2, theta = 10000;
  const positions = Int32Array.from([0, 1, 5, 17, 100, 191]);
  const qkv = rand(N * 3 * d, 4, 2), dout = rand(N * 3 * d, 5);
  it('forward matches the reference and leaves v untouched', () => {
    const got = dev().ropeForward(qkv, N, d, heads, positions, theta);
    expectAllClose(got, ref.rope(qkv, N, d, heads, positions, theta), TOL.rowOp, 'rope');
    for (let t = 0; t < N; t++)
      expect(Array.from(got.subarray(t * 3 * d + 2 * d, (t + 1) * 3 * d))).toEqual(Array.from(qkv.subarray(t * 3 * d + 2 * d, (t + 1) * 3 * d)));
    // position 0 is the identity
    expect(Array.from(got.subarray(0, 3 * d))).toEqual(Array.from(qkv.subarray(0, 3 * d)));
  });
  it('backward is the inverse rotation: matches the reference, finite differences, and undoes the forward', () => {
    const got = dev().ropeBackward(dout, N, d, heads, positions, theta);
    const want = ref.ropeBackward(dout, N, d, heads, positions, theta);
    expectAllClose(got, want, TOL.rowOpGrad, 'drope');
    expectFdMatches((x) => dot(dout, ref.rope(x, N, d, heads, positions, theta)), qkv, want, 'drope');
    const back = dev().ropeBackward(dev().ropeForward(qkv, N, d, heads, positions, theta), N, d, heads, positions, theta);
    expectAllClose(back, qkv, TOL.rowOp, 'rope then its inverse');
  });
});

describe('causal attention', () => {
  const T = 7, d = 16, heads = 2;
  const qkv = rand(T * 3 * d, 6, 1.5), dout = rand(T * d, 7);
  it('forward: probabilities (causal, rows summing to 1) and outputs match the reference', () => {
    const got = dev().attentionForward(qkv, T, d, heads);
    const want = ref.attention(qkv, T, d, heads);
    expectAllClose(got.p, want.p, TOL.attention, 'p');
    expectAllClose(got.out, want.out, TOL.attention, 'out');
    for (let h = 0; h < heads; h++)
      for (let t = 0; t < T; t++) {
        let s = 0;
        for (let u = 0; u < T; u++) {
          const p = got.p[(h * T + t) * T + u]!;
          if (u > t) expect(p).toBe(0);
          s += p;
        }
        expectClose(s, 1, TOL.rowOp, `row ${t} of head ${h}`);
      }
  });
  it('backward (dq, dk, dv) matches the reference, and the reference matches finite differences', () => {
    const { p } = dev().attentionForward(qkv, T, d, heads);
    const got = dev().attentionBackward(dout, qkv, p, T, d, heads);
    const want = ref.attentionBackward(dout, qkv, T, d, heads);
    expectAllClose(got, want, TOL.attentionGrad, 'dqkv');
    expectFdMatches((x) => dot(dout, ref.attention(x, T, d, heads).out), qkv, want, 'dqkv');
  });
});

describe('MLP activations', () => {
  const N = 4, h = 12;
  it('SwiGLU: forward and backward match the reference; the reference matches finite differences', () => {
    const gu = rand(N * 2 * h, 8, 4), dact = rand(N * h, 9);
    expectAllClose(dev().swiGluForward(gu, N, h), ref.swiGlu(gu, N, h), TOL.rowOp, 'act');
    const want = ref.swiGluBackward(dact, gu, N, h);
    expectAllClose(dev().swiGluBackward(dact, gu, N, h), want, TOL.rowOpGrad, 'dgu');
    expectFdMatches((x) => dot(dact, ref.swiGlu(x, N, h)), gu, want, 'dgu');
  });
  it('GELU (tanh): forward and backward match the reference; the reference matches finite differences', () => {
    const u = rand(N * h, 10, 4), dact = rand(N * h, 11);
    expectAllClose(dev().geluForward(u, N, h), ref.gelu(u), TOL.rowOp, 'act');
    const want = ref.geluBackward(dact, u);
    expectAllClose(dev().geluBackward(dact, u, N, h), want, TOL.rowOpGrad, 'du');
    expectFdMatches((x) => dot(dact, ref.gelu(x)), u, want, 'du');
  });
});

describe('embedding', () => {
  it('forward gathers rows (index -1: zeros); backward adds the rows of repeated tokens', () => {
    const V = 10, d = 6;
    const table = rand(V * d, 12), tokens = Int32Array.from([3, -1, 7, 3, 0, 9, 3]), dx = rand(tokens.length * d, 13);
    expect(Array.from(dev().embeddingForward(tokens, table, d))).toEqual(Array.from(Float32Array.from(ref.embedding(tokens, table, d))));
    const want = ref.embeddingBackward(dx, tokens, V, d);
    expectAllClose(dev().embeddingBackward(dx, tokens, V, d), want, TOL.rowOpGrad, 'dtable');
    expectFdMatches((t) => dot(dx, ref.embedding(tokens, t, d)), table, want, 'dtable');
  });
});

describe('cross-entropy rows', () => {
  it('loss and gradient match the reference (ignored rows give 0); the reference matches finite differences', () => {
    const R = 6, V = 23;
    const z = rand(R * V, 14, 5), targets = Int32Array.from([4, -1, 22, 0, 4, 17]);
    const got = modelNative().modelKernels.crossEntropy(z, targets, V);
    const want = ref.crossEntropy(z, targets, V);
    expectClose(got.loss, want.loss, TOL.crossEntropy, 'loss');
    expectAllClose(got.grad, want.grad, TOL.crossEntropy, 'grad');
    for (let v = 0; v < V; v++) expect(got.grad[V + v]).toBe(0);
    expectFdMatches((x) => ref.crossEntropy(x, targets, V).loss, z, want.grad, 'dlogits');
  });
});

describe('AdamW and its schedule', () => {
  const base: OptimArgs = { lr: 3e-3, minLr: 3e-4, warmup: 5, totalSteps: 40, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 };

  it('learning rate: linear warm-up to lr, cosine to minLr at totalSteps, constant after; as the float64 formula', () => {
    const configs: OptimArgs[] = [base, { ...base, warmup: 0 }, { ...base, totalSteps: 0 }, { ...base, warmup: 40 }, { ...base, warmup: 1, totalSteps: 2 }];
    for (const o of configs) {
      const lrs = Array.from({ length: o.totalSteps + 6 }, (_, s) => dev().learningRate(o, s));
      lrs.forEach((lr, s) => expectClose(lr, ref.learningRate(o, s), TOL.learningRate, `step ${s} of ${JSON.stringify(o)}`));
      // the schedule's shape, independent of the formula above
      for (let s = 0; s < o.warmup; s++) expectClose(lrs[s]!, (o.lr * (s + 1)) / o.warmup, TOL.learningRate, `warm-up step ${s}`);
      if (o.totalSteps > o.warmup) {
        expectClose(lrs[o.warmup]!, o.lr, TOL.learningRate, 'end of warm-up');
        expectClose(lrs[o.totalSteps]!, o.minLr, TOL.learningRate, 'end of the cosine');
        expectClose(lrs[o.totalSteps + 5]!, o.minLr, TOL.learningRate, 'after the cosine');
        for (let s = o.warmup + 1; s < lrs.length; s++) expect(lrs[s]!).toBeLessThanOrEqual(lrs[s - 1]!);
      } else {
        for (let s = o.warmup; s < lrs.length; s++) expectClose(lrs[s]!, o.lr, TOL.learningRate, `constant step ${s}`);
      }
    }
  });

  it('update: parameters and both moments match the float64 formula over several steps, decay only where the mask says', () => {
    const n = 1000;
    const decay = Uint8Array.from({ length: n }, (_, i) => (i % 3 === 0 ? 0 : 1));
    let p = rand(n, 15), m = new Float32Array(n), v = new Float32Array(n);
    for (let step = 1; step <= 12; step++) {
      const g = rand(n, 100 + step, step === 7 ? 50 : 1); // one step with large gradients
      const gscale = step === 7 ? 0.02 : 1; // as gradient clipping would scale them
      const lr = ref.learningRate(base, step - 1);
      const got = dev().adamwUpdate(p, g, m, v, decay, base, lr, step, gscale);
      // the reference continues from the kernel's float32 state, so each step is compared alone
      const want = ref.adamw(p, g, m, v, decay, base, lr, step, gscale);
      expectAllClose(got.m, want.m, TOL.adamw, `m after step ${step}`);
      expectAllClose(got.v, want.v, TOL.adamw, `v after step ${step}`);
      expectAllClose(got.p, want.p, TOL.adamw, `p after step ${step}`);
      ({ p, m, v } = got);
    }
    // with a zero gradient only the decay moves a parameter, by exactly lr * weightDecay of it
    const zero = new Float32Array(n), lr = 1e-2;
    const moved = dev().adamwUpdate(p, zero, new Float32Array(n), new Float32Array(n), decay, base, lr, 1, 1);
    for (const i of [0, 1, 2, 3]) expectClose(moved.p[i]!, decay[i] ? p[i]! * (1 - lr * base.weightDecay) : p[i]!, TOL.adamw, `decay of ${i}`);
  });

  it('gradient norm: the float64 L2 norm, bit for bit the same on 1 and 2 threads', () => {
    const g = rand(100_003, 16, 3);
    const norm = dev().gradNorm(g);
    expectClose(norm, ref.gradNorm(g), TOL.gradNorm, 'norm');
    const threads = devAddon().info().threads;
    for (const t of [1, 2]) {
      devAddon().setThreads(t);
      expect(dev().gradNorm(g)).toBe(norm);
    }
    devAddon().setThreads(threads);
  });
});
