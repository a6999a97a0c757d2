// The fused bucketed divergences (DESIGN 6) against the float64 reference, against finite
// differences, against a direct JS evaluation of the definitions, and their invariants.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { sparseDivergence, crossEntropy, type Divergence } from '../src/loss/sparse-divergence.js';
import { CPU_PATHS, lossOnPath } from '../dev/loss-kernels.js';
import { sparseDivergenceReference } from '../dev/loss-reference.js';
import { fromBf16, toBf16 } from '../src/loss/logits.js';
import { concatTargets, type SparseTargets } from '../src/project/targets.js';
import { addon } from '../src/core/native.js';
import { fuzzParams } from './helpers/fuzz.js';
import { errCode, finiteDiff, maxAbs, randomLogits, randomTargets, softmax } from './helpers/loss.js';
import { TOL, expectAllClose, expectClose } from './helpers/tolerances.js';

const DIVS: Divergence[] = ['forward-kl', 'reverse-kl', 'jsd'];

/** The bucketed divergence of one row straight from DESIGN 6, in JS float64. */
function directRowLoss(z: ArrayLike<number>, ids: number[], q: number[], tail: number, div: Divergence, beta: number, T: number, eps: number): number {
  const p = softmax(z, T);
  const inS = new Set(ids);
  let pOther = 0;
  for (let v = 0; v < p.length; v++) if (!inS.has(v)) pOther += p[v]!;
  const P = [...ids.map((id) => p[id]!), pOther];
  let Q = [...q, tail];
  const fwd = div === 'forward-kl' || (div === 'jsd' && beta === 0);
  const rev = div === 'reverse-kl' || (div === 'jsd' && beta === 1);
  if (!fwd) {
    Q = Q.map((x) => Math.max(x, eps));
    const s = Q.reduce((a, b) => a + b, 0);
    Q = Q.map((x) => x / s);
  }
  const kl = (a: number[], b: number[]) => a.reduce((acc, ai, i) => acc + (ai > 0 ? ai * Math.log(ai / b[i]!) : 0), 0);
  if (fwd) return kl(Q, P);
  if (rev) return kl(P, Q);
  const M = P.map((pi, i) => beta * Q[i]! + (1 - beta) * pi);
  return beta * kl(Q, M) + (1 - beta) * kl(P, M);
}

function rowsOf(t: SparseTargets, j: number): { ids: number[]; q: number[] } {
  const ids: number[] = [], q: number[] = [];
  for (let k = t.rowPtr[j]!; k < t.rowPtr[j + 1]!; k++) {
    ids.push(t.ids[k]!);
    q.push(t.probs[k]!);
  }
  return { ids, q };
}

describe('sparseDivergence matches the float64 reference', () => {
  for (const path of CPU_PATHS) {
    for (const vocab of [37, 5003]) {
      it(`${path} CPU path, vocab ${vocab}: all divergences, temperatures, masks`, () => {
        const { sparseDivergence } = lossOnPath(path);
        const rows = 9;
        const logits = randomLogits(rows, vocab, vocab);
        const targets = randomTargets(rows, vocab, vocab + 1);
        const mask = Uint8Array.from({ length: rows }, (_, i) => (i % 4 === 2 ? 0 : 1));
        for (const divergence of DIVS) {
          for (const temperature of [1, 0.7, 2.5]) {
            for (const m of [undefined, mask]) {
              const opts = { divergence, beta: 0.3, temperature, mask: m, device: 'cpu' as const };
              const got = sparseDivergence(logits, { rows, vocab }, targets, opts);
              const ref = sparseDivergenceReference(logits, { rows, vocab }, targets, opts);
              expectClose(got.loss, ref.loss, TOL.divergenceLoss, 'loss');
              expectAllClose(got.grad, ref.grad, TOL.lossGrad, 'grad');
              expect(got.rows).toBe(m ? rows - 2 : rows);
            }
          }
        }
      });
    }
  }

  it('a row as wide as a real vocabulary (151936), streamed stores on unaligned rows', () => {
    // 57 rows * 151939 * 4 bytes > 32 MiB switches pass 2 to streaming stores; an odd vocab misaligns rows.
    const rows = 57, vocab = 151939;
    const logits = randomLogits(rows, vocab, 3, 8);
    const targets = randomTargets(rows, vocab, 4, 40);
    for (const divergence of DIVS) {
      const got = sparseDivergence(logits, { rows, vocab }, targets, { divergence, temperature: 0.9, device: 'cpu' });
      const ref = sparseDivergenceReference(logits, { rows, vocab }, targets, { divergence, temperature: 0.9 });
      expectClose(got.loss, ref.loss, TOL.divergenceLossWide, 'loss');
      expectAllClose(got.grad, ref.grad, TOL.lossGrad, 'grad');
    }
  });

  it('kept exps: a max that rises block after block, support ids at and below the block maxima', () => {
    // Pass 1 keeps each 2048-token block's exps relative to the running max of that moment and
    // pass 2 rescales them per block; support ids that are a block's max take the copy path, the
    // others are zeroed in the kept exps. Rows rise by ~6 logits per block, so every block rescales.
    const rows = 6, vocab = 2048 * 7 + 5;
    const logits = randomLogits(rows, vocab, 41, 2);
    const rowPtr = new Int32Array(rows + 1), ids: number[] = [], probs: number[] = [];
    for (let j = 0; j < rows; j++) {
      for (let u = 0; u < vocab; u++) logits[j * vocab + u] = logits[j * vocab + u]! + (u / 2048) * 6 * (j % 2 ? 1 : -1);
      const support = new Set<number>();
      for (let b = 0; b < 7; b++) {
        let top = b * 2048;
        for (let u = b * 2048; u < (b + 1) * 2048; u++) if (logits[j * vocab + u]! > logits[j * vocab + top]!) top = u;
        if ((b + j) % 2 === 0) support.add(top); // a block max in the support: copy path
        support.add(b * 2048 + ((j * 977 + b * 131) % 2048)); // below the block max: zeroed in place
      }
      support.add(vocab - 1);
      for (const id of support) { ids.push(id); probs.push(0.7 / support.size); }
      rowPtr[j + 1] = ids.length;
    }
    const targets = { rowPtr, ids: Int32Array.from(ids), probs: Float32Array.from(probs), tail: new Float32Array(rows).fill(0.3) };
    for (const path of CPU_PATHS) {
      const { sparseDivergence } = lossOnPath(path);
      for (const divergence of DIVS) {
        for (const temperature of [1, 0.6]) {
          const got = sparseDivergence(logits, { rows, vocab }, targets, { divergence, temperature, device: 'cpu' });
          const ref = sparseDivergenceReference(logits, { rows, vocab }, targets, { divergence, temperature });
          expectClose(got.loss, ref.loss, TOL.divergenceLoss, 'loss');
          expectAllClose(got.grad, ref.grad, TOL.lossGrad, 'grad');
        }
      }
    }
  });

  it('the reference equals the definitions evaluated directly in JS', () => {
    const rows = 5, vocab = 23;
    const logits = randomLogits(rows, vocab, 11);
    const targets = randomTargets(rows, vocab, 12, 6);
    for (const divergence of DIVS) {
      for (const beta of [0, 0.25, 1]) {
        const T = 1.7;
        const ref = sparseDivergenceReference(logits, { rows, vocab }, targets, { divergence, beta, temperature: T });
        for (let j = 0; j < rows; j++) {
          const { ids, q } = rowsOf(targets, j);
          const want = directRowLoss(logits.subarray(j * vocab, (j + 1) * vocab), ids, q, targets.tail[j]!, divergence, beta, T, 1e-8);
          expectClose(ref.rowLoss[j]!, want, TOL.directVsReference, `row ${j}`);
        }
      }
    }
  });
});

describe('gradients against finite differences', () => {
  const rows = 4, vocab = 19;
  const logits = randomLogits(rows, vocab, 21);
  const targets = randomTargets(rows, vocab, 22, 5);
  const mask = Uint8Array.from([1, 0, 1, 1]);
  const coords = Array.from({ length: rows * vocab }, (_, i) => i).filter((i) => i % 3 === 0);

  for (const divergence of DIVS) {
    for (const temperature of [1, 0.6]) {
      it(`${divergence}, temperature ${temperature}, masked row: reference (float64)`, () => {
        const opts = { divergence, beta: 0.35, temperature, mask };
        const f = (x: Float64Array) => sparseDivergenceReference(x, { rows, vocab }, targets, opts).loss;
        const x = Float64Array.from(logits);
        const g = sparseDivergenceReference(x, { rows, vocab }, targets, opts).grad;
        const fd = finiteDiff(f, x, coords, TOL.float64VsFd.h);
        expectAllClose(coords.map((c) => g[c]!), fd, TOL.float64VsFd, 'reference vs finite differences');
        // the masked row has no gradient at all
        for (let v = 0; v < vocab; v++) expect(g[vocab + v]).toBe(0);
      });

      it(`${divergence}, temperature ${temperature}, masked row: fused fp32 kernel`, () => {
        const opts = { divergence, beta: 0.35, temperature, mask, device: 'cpu' as const };
        const g = sparseDivergence(logits, { rows, vocab }, targets, opts).grad;
        const f = (x: Float64Array) => sparseDivergence(Float32Array.from(x), { rows, vocab }, targets, opts).loss;
        const fd = finiteDiff(f, Float64Array.from(logits), coords, TOL.float32KernelVsFd.h);
        expectAllClose(coords.map((c) => g[c]!), fd, TOL.float32KernelVsFd, 'fused kernel vs finite differences');
      });
    }
  }
});

describe('invariants', () => {
  const rows = 6, vocab = 41;
  const logits = randomLogits(rows, vocab, 31);

  /** Targets equal to the student's own bucketed distribution at temperature T. */
  function selfTargets(T: number, support: number): SparseTargets {
    const rowPtr = new Int32Array(rows + 1), ids: number[] = [], probs: number[] = [], tail = new Float32Array(rows);
    for (let j = 0; j < rows; j++) {
      const p = softmax(logits.subarray(j * vocab, (j + 1) * vocab), T);
      let rest = 1;
      for (let s = 0; s < support; s++) {
        const id = (j * 7 + s * 5) % vocab;
        ids.push(id);
        probs.push(p[id]!);
      }
      const inS = new Set(ids.slice(j * support));
      rest = 0;
      for (let v = 0; v < vocab; v++) if (!inS.has(v)) rest += p[v]!;
      tail[j] = rest;
      rowPtr[j + 1] = ids.length;
    }
    return { rowPtr, ids: Int32Array.from(ids), probs: Float32Array.from(probs), tail };
  }

  it('each divergence is zero (with a zero gradient) iff the bucketed distributions are equal', () => {
    for (const T of [1, 1.6]) {
      const same = selfTargets(T, 6);
      for (const divergence of DIVS) {
        const r = sparseDivergence(logits, { rows, vocab }, same, { divergence, temperature: T, device: 'cpu' });
        expectClose(r.loss, 0, TOL.zeroAtEquality, 'loss at equality');
        expectClose(maxAbs(r.grad), 0, TOL.zeroAtEquality, 'largest gradient at equality');
        // move a little mass between two buckets of one row: strictly positive
        const moved = { ...same, probs: Float32Array.from(same.probs), tail: Float32Array.from(same.tail) };
        const d = Math.min(moved.probs[0]!, 0.01);
        moved.probs[0]! -= d;
        moved.tail[0]! += d;
        expect(sparseDivergence(logits, { rows, vocab }, moved, { divergence, temperature: T, device: 'cpu' }).loss).toBeGreaterThan(TOL.zeroAtEquality.abs);
      }
    }
  });

  it('KL and JSD are non-negative, and zero only at equality (property)', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 1e6 }), fc.integer({ min: 0, max: 6 }), fc.double({ min: 0.01, max: 0.99, noNaN: true }),
      (seed, support, beta) => {
        const v = 13;
        const z = randomLogits(1, v, seed, 6);
        const t = randomTargets(1, v, seed + 1, support);
        for (const divergence of DIVS) {
          const ref = sparseDivergenceReference(z, { rows: 1, vocab: v }, t, { divergence, beta });
          expect(ref.loss).toBeGreaterThanOrEqual(-TOL.directVsReference.abs);
        }
      }), fuzzParams(60, 10));
  });

  it('JSD at beta 0 and 1 is exactly forward and reverse KL, and approaches them as beta -> 0 and 1', () => {
    const targets = randomTargets(rows, vocab, 32, 6, 0);
    const run = (divergence: Divergence, beta = 0.5) => sparseDivergence(logits, { rows, vocab }, targets, { divergence, beta, device: 'cpu' });
    const fwd = run('forward-kl'), rev = run('reverse-kl');
    expect(run('jsd', 0).loss).toBe(fwd.loss);
    expect(Array.from(run('jsd', 0).grad)).toEqual(Array.from(fwd.grad));
    expect(run('jsd', 1).loss).toBe(rev.loss);
    expect(Array.from(run('jsd', 1).grad)).toEqual(Array.from(rev.grad));
    // JSD_beta / beta -> KL(q||p) and JSD_beta / (1 - beta) -> KL(p||q): the first-order terms vanish.
    const refJsd = (beta: number) => sparseDivergenceReference(logits, { rows, vocab }, targets, { divergence: 'jsd', beta }).loss;
    const refFwd = sparseDivergenceReference(logits, { rows, vocab }, targets, { divergence: 'forward-kl' }).loss;
    const refRev = sparseDivergenceReference(logits, { rows, vocab }, targets, { divergence: 'reverse-kl' }).loss;
    for (const b of [1e-3, 1e-4, 1e-5]) {
      expect(Math.abs(refJsd(b) / b - refFwd)).toBeLessThan(refFwd * 20 * b + 1e-7);
      expect(Math.abs(refJsd(1 - b) / b - refRev)).toBeLessThan(refRev * 20 * b + 1e-7);
    }
  });

  it('p_other is summed directly: exact when the support holds nearly all the mass', () => {
    // One row, the support has ~1 - 1e-9 of the mass; q_other = 1e-9 exactly like p_other.
    const v = 1000;
    const z = new Float32Array(v).fill(-20);
    z[7] = 0;
    const p = softmax(z);
    let other = 0;
    for (let i = 0; i < v; i++) if (i !== 7) other += p[i]!;
    const t: SparseTargets = { rowPtr: Int32Array.from([0, 1]), ids: Int32Array.from([7]), probs: Float32Array.from([p[7]!]), tail: Float32Array.from([other]) };
    const r = sparseDivergence(z, { rows: 1, vocab: v }, t, { divergence: 'forward-kl', device: 'cpu' });
    // 1 - p_7 in float32 would be off by ~6e-8 / 2e-6 = 3%; the direct sum is within float rounding.
    const ref = sparseDivergenceReference(z, { rows: 1, vocab: v }, t, { divergence: 'forward-kl' });
    expectClose(r.loss, ref.loss, TOL.tinyOtherLoss, 'loss');
    expectAllClose(r.grad, ref.grad, TOL.tinyOtherGrad, 'grad');
  });

  for (const path of CPU_PATHS) {
    it(`${path} CPU path: support tokens 90 to 300 logits above the rest (float32 exp underflows there) still meet the reference`, () => {
      // A confident student: its top tokens (in the support) sit far above every other token, so
      // exp(z - max of the row) underflows for all of "other". The kernel sums "other" relative to
      // its own max and rescales in float64; before that, at a gap of 150, forward KL read 8.30
      // for a reference 14.91 and each other token's gradient -0.033 for -0.1.
      const { sparseDivergence } = lossOnPath(path);
      const vocab = 3000, rows = 4;
      const gaps = [90, 150, 300, 150];
      const logits = new Float32Array(rows * vocab);
      for (let j = 0; j < rows; j++)
        for (let v = 0; v < vocab; v++) logits[j * vocab + v] = -gaps[j]! + ((v * 7919 + j) % 13) * 0.1;
      const ids: number[] = [], probs: number[] = [], rowPtr = [0], tail: number[] = [];
      for (let j = 0; j < rows; j++) {
        const support = [5 + j, 2100 + j];
        logits[j * vocab + support[0]!] = 0;
        logits[j * vocab + support[1]!] = -1.5;
        ids.push(...support);
        probs.push(0.6, 0.3);
        tail.push(0.1);
        rowPtr.push(ids.length);
      }
      const t: SparseTargets = { rowPtr: Int32Array.from(rowPtr), ids: Int32Array.from(ids), probs: Float32Array.from(probs), tail: Float32Array.from(tail) };
      for (const divergence of DIVS) {
        for (const temperature of [1, 2]) {
          const opts = { divergence, beta: 0.5, temperature, device: 'cpu' as const };
          const got = sparseDivergence(logits, { rows, vocab }, t, opts);
          const ref = sparseDivergenceReference(logits, { rows, vocab }, t, opts);
          expectClose(got.loss, ref.loss, TOL.divergenceLoss, 'loss');
          expectAllClose(got.grad, ref.grad, TOL.lossGrad, 'grad');
        }
      }
      // The case the fix is for: forward KL puts weight 0.1 on p_other ~ e^-150, so the loss is large.
      const fwd = sparseDivergenceReference(logits, { rows, vocab }, t, { divergence: 'forward-kl' });
      expect(fwd.loss).toBeGreaterThan(10);
    });
  }

  it('masked rows are in no denominator and are not even read', () => {
    const targets = randomTargets(rows, vocab, 33);
    const mask = Uint8Array.from([1, 1, 0, 1, 0, 1]);
    const poisoned = Float32Array.from(logits);
    poisoned[2 * vocab + 3] = NaN;
    poisoned[4 * vocab] = Infinity;
    for (const divergence of DIVS) {
      const r = sparseDivergence(poisoned, { rows, vocab }, targets, { divergence, mask, device: 'cpu' });
      const ref = sparseDivergenceReference(logits, { rows, vocab }, targets, { divergence });
      const keep = [0, 1, 3, 5];
      const mean = keep.reduce((a, j) => a + ref.rowLoss[j]!, 0) / keep.length;
      expectClose(r.loss, mean, TOL.divergenceLoss, 'mean of kept rows');
      expect(r.rows).toBe(4);
      for (let v = 0; v < vocab; v++) expect(r.grad[2 * vocab + v]).toBe(0);
      // targets.mask is combined with opts.mask
      const viaTargets = sparseDivergence(poisoned, { rows, vocab }, { ...targets, mask }, { divergence, device: 'cpu' });
      expect(viaTargets.loss).toBe(r.loss);
    }
  });

  it('cross-entropy is the one-hot case: -mean log p(label), gradient (p - onehot) / N', () => {
    const labels = Int32Array.from({ length: rows }, (_, j) => (j * 11) % vocab);
    const r = crossEntropy(logits, { rows, vocab }, labels, { device: 'cpu' });
    let want = 0;
    for (let j = 0; j < rows; j++) {
      const p = softmax(logits.subarray(j * vocab, (j + 1) * vocab));
      want -= Math.log(p[labels[j]!]!) / rows;
      for (let v = 0; v < vocab; v++) expectClose(r.grad[j * vocab + v]!, (p[v]! - (v === labels[j] ? 1 : 0)) / rows, TOL.lossGrad, `grad ${j}, ${v}`);
    }
    expectClose(r.loss, want, TOL.divergenceLoss, 'loss');
  });

  it('bf16 logits: the gradient (bf16) matches the reference on the same bf16 values', () => {
    const v = 3001, n = 5;
    const l16 = toBf16(randomLogits(n, v, 41));
    const targets = randomTargets(n, v, 42, 12);
    for (const divergence of DIVS) {
      const got = sparseDivergence(l16, { rows: n, vocab: v }, targets, { divergence, temperature: 1.3, device: 'cpu' });
      expect(got.grad).toBeInstanceOf(Uint16Array);
      const ref = sparseDivergenceReference(fromBf16(l16), { rows: n, vocab: v }, targets, { divergence, temperature: 1.3 });
      expectClose(got.loss, ref.loss, TOL.bf16Loss, 'bf16 loss');
      expectAllClose(fromBf16(got.grad), ref.grad, TOL.bf16Grad, 'bf16 grad');
    }
  });

  it('bf16 logits as wide as a real vocabulary: streamed bf16 stores on unaligned rows', () => {
    // 111 rows * 151939 * 2 bytes > 32 MiB switches the gradient to streaming stores; the odd
    // vocab starts every other row off the 16-byte boundary the bf16 stores need.
    const n = 111, v = 151939;
    const l16 = toBf16(randomLogits(n, v, 43, 8));
    const targets = randomTargets(n, v, 44, 40);
    const got = sparseDivergence(l16, { rows: n, vocab: v }, targets, { divergence: 'jsd', device: 'cpu' });
    const ref = sparseDivergenceReference(fromBf16(l16), { rows: n, vocab: v }, targets, { divergence: 'jsd' });
    expectClose(got.loss, ref.loss, TOL.bf16Loss, 'bf16 loss');
    expectAllClose(fromBf16(got.grad as Uint16Array), ref.grad, TOL.bf16Grad, 'bf16 grad');
  });

  it('concatenated targets (a batch of responses) weight each row once in the mean', () => {
    const vocab = 29, a = randomTargets(3, vocab, 61), b = { ...randomTargets(4, vocab, 62), mask: Uint8Array.from([1, 0, 1, 1]) };
    const all = concatTargets([a, b]);
    expect(all.rowPtr.length).toBe(8);
    expect(Array.from(all.mask!)).toEqual([1, 1, 1, 1, 0, 1, 1]);
    const z = randomLogits(7, vocab, 63);
    const la = sparseDivergence(z.subarray(0, 3 * vocab), { rows: 3, vocab }, a, { divergence: 'jsd', device: 'cpu' });
    const lb = sparseDivergence(z.subarray(3 * vocab), { rows: 4, vocab }, b, { divergence: 'jsd', device: 'cpu' });
    const l = sparseDivergence(z, { rows: 7, vocab }, all, { divergence: 'jsd', device: 'cpu' });
    expect(l.rows).toBe(6);
    expectClose(l.loss, (3 * la.loss + 3 * lb.loss) / 6, TOL.divergenceLoss, 'batched mean');
    expectClose(l.grad[0]! * 6, la.grad[0]! * 3, TOL.float32Rounding, 'a gradient entry, reweighted');
  });

  it('in place: out = logits gives the same gradient', () => {
    const targets = randomTargets(rows, vocab, 34);
    const want = sparseDivergence(logits, { rows, vocab }, targets, { divergence: 'jsd', device: 'cpu' });
    const buf = Float32Array.from(logits);
    const got = sparseDivergence(buf, { rows, vocab }, targets, { divergence: 'jsd', device: 'cpu', out: buf });
    expect(got.grad).toBe(buf);
    expect(got.loss).toBe(want.loss);
    expect(Array.from(buf)).toEqual(Array.from(want.grad));
  });

  it('the result does not depend on the thread count (rows summed in order)', () => {
    const targets = randomTargets(rows, vocab, 35);
    const { setThreads, info } = addon<{ setThreads(n: number): void; info(): { threads: number } }>();
    const before = info().threads;
    setThreads(1);
    const a = sparseDivergence(logits, { rows, vocab }, targets, { divergence: 'reverse-kl', device: 'cpu' });
    setThreads(2);
    const b = sparseDivergence(logits, { rows, vocab }, targets, { divergence: 'reverse-kl', device: 'cpu' });
    setThreads(before);
    expect(a.loss).toBe(b.loss);
    expect(Array.from(a.grad)).toEqual(Array.from(b.grad));
  });
});

describe('bad input is an XopdError', () => {
  const rows = 3, vocab = 10;
  const logits = randomLogits(rows, vocab, 51);
  const t = randomTargets(rows, vocab, 52, 3);
  const run = (over: Partial<{ logits: unknown; shape: unknown; targets: unknown; opts: unknown }>) => () =>
    sparseDivergence((over.logits ?? logits) as Float32Array, (over.shape ?? { rows, vocab }) as { rows: number; vocab: number },
      (over.targets ?? t) as SparseTargets, (over.opts ?? { divergence: 'forward-kl', device: 'cpu' }) as { divergence: Divergence });

  it('shapes', () => {
    expect(run({ logits: logits.subarray(1) })).toThrow(expect.objectContaining(errCode('E_ARG_SHAPE')));
    expect(run({ shape: { rows: 0, vocab } })).toThrow(expect.objectContaining(errCode('E_ARG_SHAPE')));
    expect(run({ shape: { rows, vocab: 11 } })).toThrow(expect.objectContaining(errCode('E_ARG_SHAPE')));
    expect(run({ logits: new Float64Array(rows * vocab) })).toThrow(expect.objectContaining(errCode('E_ARG_TYPE')));
    expect(run({ targets: { ...t, tail: t.tail.subarray(1) } })).toThrow(expect.objectContaining(errCode('E_ARG_SHAPE')));
    expect(run({ targets: { ...t, rowPtr: Int32Array.from([0, 1, 1]) } })).toThrow(expect.objectContaining(errCode('E_ARG_SHAPE')));
    expect(run({ opts: { divergence: 'jsd', mask: new Uint8Array(2) } })).toThrow(expect.objectContaining(errCode('E_ARG_SHAPE')));
    expect(run({ opts: { divergence: 'jsd', out: new Float32Array(5) } })).toThrow(expect.objectContaining(errCode('E_ARG_SHAPE')));
  });
  it('ids out of range, duplicates, probabilities outside [0, 1], rows not summing to 1', () => {
    const bad = (f: (c: SparseTargets) => void, code: string) => {
      const c = { rowPtr: Int32Array.from(t.rowPtr), ids: Int32Array.from(t.ids), probs: Float32Array.from(t.probs), tail: Float32Array.from(t.tail) };
      f(c);
      expect(run({ targets: c })).toThrow(expect.objectContaining(errCode(code)));
    };
    const one: SparseTargets = { rowPtr: Int32Array.from([0, 2, 2, 2]), ids: Int32Array.from([1, 2]), probs: Float32Array.from([0.5, 0.5]), tail: Float32Array.from([0, 1, 1]) };
    expect(run({ targets: one })).not.toThrow();
    expect(run({ targets: { ...one, ids: Int32Array.from([1, 10]) } })).toThrow(expect.objectContaining(errCode('E_TOKEN_ID')));
    expect(run({ targets: { ...one, ids: Int32Array.from([-1, 2]) } })).toThrow(expect.objectContaining(errCode('E_TOKEN_ID')));
    expect(run({ targets: { ...one, probs: Float32Array.from([-0.5, 1.5]) } })).toThrow(expect.objectContaining(errCode('E_ARG_VALUE')));
    expect(run({ targets: { ...one, probs: Float32Array.from([NaN, 0.5]) } })).toThrow(expect.objectContaining(errCode('E_ARG_VALUE')));
    expect(run({ targets: { ...one, probs: Float32Array.from([0.2, 0.5]) } })).toThrow(expect.objectContaining(errCode('E_ARG_VALUE')));
    bad((c) => { c.tail[0] = 2; }, 'E_ARG_VALUE');
    // duplicates only the native check sees (the facade checks shapes and ranges)
    const dup = { ...one, ids: Int32Array.from([2, 2]) };
    expect(run({ targets: dup })).toThrow(expect.objectContaining(errCode('E_ARG_VALUE')));
    // rows are checked in parallel; the error names the first bad row whichever thread found one
    const R = 1500, wide = randomLogits(R, vocab, 53);
    const many: SparseTargets = { rowPtr: Int32Array.from({ length: R + 1 }, (_, j) => 2 * j), ids: Int32Array.from({ length: 2 * R }, (_, k) => k % 2 + 1),
      probs: new Float32Array(2 * R).fill(0.5), tail: new Float32Array(R) };
    many.ids[2 * 1400] = 2; // row 1400 and row 700 list id 2 twice
    many.ids[2 * 700] = 2;
    for (let i = 0; i < 3; i++)
      expect(() => sparseDivergence(wide, { rows: R, vocab }, many, { divergence: 'forward-kl', device: 'cpu' }))
        .toThrow(expect.objectContaining({ code: 'E_ARG_VALUE', message: expect.stringContaining('targets row 700 lists an id twice') }));
    // every id in the support and a tail > 0: mass on no token (forward KL would be +inf)
    const all = Int32Array.from({ length: vocab }, (_, i) => i);
    const full = (tail: number): SparseTargets => ({ rowPtr: Int32Array.from([0, vocab, vocab, vocab]), ids: all,
      probs: Float32Array.from({ length: vocab }, () => (1 - tail) / vocab), tail: Float32Array.from([tail, 1, 1]) });
    expect(run({ targets: full(0) })).not.toThrow();
    expect(run({ targets: full(0.05) })).toThrow(expect.objectContaining({ code: 'E_ARG_VALUE', message: expect.stringContaining('every id') }));
  });
  it('NaN or infinite logits (also when the temperature overflows them)', () => {
    for (const v of [NaN, Infinity, -Infinity]) {
      const l = Float32Array.from(logits);
      l[vocab + 4] = v;
      expect(run({ logits: l })).toThrow(expect.objectContaining(errCode('E_ARG_VALUE')));
    }
    const big = Float32Array.from(logits);
    big[0] = 3e38;
    expect(run({ logits: big, opts: { divergence: 'forward-kl', temperature: 0.5, device: 'cpu' } })).toThrow(expect.objectContaining(errCode('E_ARG_VALUE')));
  });
  it('options', () => {
    expect(run({ opts: { divergence: 'kl' } })).toThrow(expect.objectContaining(errCode('E_ARG_VALUE')));
    expect(run({ opts: { divergence: 'jsd', beta: 1.5 } })).toThrow(expect.objectContaining(errCode('E_ARG_RANGE')));
    expect(run({ opts: { divergence: 'jsd', temperature: 0 } })).toThrow(expect.objectContaining(errCode('E_ARG_RANGE')));
    expect(run({ opts: { divergence: 'jsd', device: 'tpu' } })).toThrow(expect.objectContaining(errCode('E_ARG_VALUE')));
    expect(() => sparseDivergence(logits, { rows, vocab }, t, undefined as unknown as { divergence: Divergence })).toThrow(expect.objectContaining(errCode('E_ARG_TYPE')));
    expect(() => crossEntropy(logits, { rows, vocab }, Int32Array.from([0, 1, 10]), { device: 'cpu' })).toThrow(expect.objectContaining(errCode('E_TOKEN_ID')));
  });
  it('native checks hold without the facade', () => {
    const n = addon<{ sparseDivergence(a: unknown): unknown }>();
    expect(() => n.sparseDivergence({ logits, rows, vocab: 9, rowPtr: t.rowPtr, ids: t.ids, probs: t.probs, tail: t.tail })).toThrow(expect.objectContaining({ code: 'E_ARG_SHAPE' }));
    expect(() => n.sparseDivergence({ logits, rows, vocab, rowPtr: t.rowPtr, ids: t.ids, probs: t.probs, tail: t.tail, beta: 2 })).toThrow(expect.objectContaining({ code: 'E_ARG_RANGE' }));
    expect(() => n.sparseDivergence({ logits, rows, vocab, rowPtr: t.rowPtr, ids: t.ids.map(() => 99), probs: t.probs, tail: t.tail })).toThrow(expect.objectContaining({ code: 'E_TOKEN_ID' }));
    expect(() => n.sparseDivergence(null)).toThrow(expect.objectContaining({ code: 'E_ARG_TYPE' }));
  });
});
