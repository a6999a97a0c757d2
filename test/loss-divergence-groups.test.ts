// The fused bucketed divergences (DESIGN 6) on prefix-group buckets (the bucket format of
// src/project/targets.ts): against the float64 reference (fed every bucket's ids explicitly), against
// finite differences, the one-coefficient-per-bucket property, the first-claim rule read from the
// ranges, and what the kernel refuses. Real groups from real tokenizers: test/project-span.test.ts.
import { describe, expect, it } from 'vitest';
import { sparseDivergence, type Divergence } from '../src/loss/sparse-divergence.js';
import { CPU_PATHS, lossOnPath } from '../dev/loss-kernels.js';
import { sparseDivergenceReference } from '../dev/loss-reference.js';
import { fromBf16, toBf16 } from '../src/loss/logits.js';
import { concatTargets, targetRow, type SparseTargets } from '../src/project/targets.js';
import { addon, info } from '../src/core/native.js';
import { errCode, finiteDiff, maxAbs, randomGroupedTargets, randomLogits, randomTargets, softmax } from './helpers/loss.js';
import { TOL, expectAllClose, expectClose } from './helpers/tolerances.js';

const DIVS: Divergence[] = ['forward-kl', 'reverse-kl', 'jsd'];

/** The bucket of every id of row j, read from the definition id by id: -1 for "other". */
function bucketOfEachId(t: SparseTargets, j: number, vocab: number): Int32Array {
  const of = new Int32Array(vocab).fill(-1);
  const rankOf = new Map<number, number>();
  t.groups?.byteOrder.forEach((id, r) => rankOf.set(id, r));
  for (let id = 0; id < vocab; id++) {
    let best = -1;
    for (let b = t.rowPtr[j]!; b < t.rowPtr[j + 1]!; b++) {
      if (t.ids[b] === id) { best = b; break; }  // a single id names it
      const r = rankOf.get(id);
      if (t.ids[b] === -1 && r !== undefined && t.groups!.lo[b]! <= r && r < t.groups!.hi[b]! &&
          (best < 0 || t.groups!.hi[b]! - t.groups!.lo[b]! < t.groups!.hi[best]! - t.groups!.lo[best]!)) best = b;  // the innermost range
    }
    of[id] = best;
  }
  return of;
}

describe('the first-claim rule read from the ranges', () => {
  it('targetRow lists, per bucket, exactly the ids the definition gives it (id by id)', () => {
    const vocab = 301, rows = 40;
    const t = randomGroupedTargets(rows, vocab, 7, { maxSingles: 6, maxGroups: 6 });
    let groups = 0, nested = 0;
    for (let j = 0; j < rows; j++) {
      const of = bucketOfEachId(t, j, vocab);
      const row = targetRow(t, j);
      row.buckets.forEach((b, k) => {
        const want = [...of.keys()].filter((id) => of[id] === t.rowPtr[j]! + k);
        expect([...b.ids]).toEqual(want);
        expect(b.ids.length).toBeGreaterThan(0);
        expect(b.q).toBe(t.probs[t.rowPtr[j]! + k]);
      });
      for (let b = t.rowPtr[j]!; b < t.rowPtr[j + 1]!; b++) {
        if (t.ids[b] !== -1) continue;
        groups++;
        for (let c = t.rowPtr[j]!; c < t.rowPtr[j + 1]!; c++)
          if (c !== b && t.ids[c] === -1 && t.groups!.lo[b]! <= t.groups!.lo[c]! && t.groups!.hi[c]! <= t.groups!.hi[b]!) nested++;
      }
    }
    expect(groups).toBeGreaterThan(40);
    expect(nested).toBeGreaterThan(5);  // nested ranges are exercised
  });
});

describe('sparseDivergence on groups matches the float64 reference', () => {
  for (const path of CPU_PATHS) {
    for (const vocab of [37, 5003]) {
      it(`${path} CPU path, vocab ${vocab}: all divergences, temperatures, masks`, () => {
        const { sparseDivergence } = lossOnPath(path);
        const rows = 9;
        const logits = randomLogits(rows, vocab, vocab + 5);
        const targets = randomGroupedTargets(rows, vocab, vocab + 6);
        const mask = Uint8Array.from({ length: rows }, (_, i) => (i % 4 === 2 ? 0 : 1));
        for (const divergence of DIVS) {
          for (const temperature of [1, 0.7, 2.5]) {
            for (const m of [undefined, mask]) {
              const opts = { divergence, beta: 0.3, temperature, mask: m, device: 'cpu' as const };
              const got = sparseDivergence(logits, { rows, vocab }, targets, opts);
              const ref = sparseDivergenceReference(logits, { rows, vocab }, targets, opts);
              expectClose(got.loss, ref.loss, TOL.divergenceLoss, 'loss');
              expectAllClose(got.grad, ref.grad, TOL.lossGrad, 'grad');
            }
          }
        }
      });
    }
  }

  it('groups of up to 60,000 ids in rows as wide as a real vocabulary (151939), streamed stores', () => {
    const rows = 57, vocab = 151939;
    const logits = randomLogits(rows, vocab, 13, 8);
    const targets = randomGroupedTargets(rows, vocab, 14, { maxSingles: 30, maxGroups: 5, maxWidth: 60000 });
    let widest = 0;
    for (let k = 0; k < targets.ids.length; k++) if (targets.ids[k] === -1) widest = Math.max(widest, targets.groups!.hi[k]! - targets.groups!.lo[k]!);
    expect(widest).toBeGreaterThan(30000);
    for (const divergence of DIVS) {
      const got = sparseDivergence(logits, { rows, vocab }, targets, { divergence, temperature: 0.9, device: 'cpu' });
      const ref = sparseDivergenceReference(logits, { rows, vocab }, targets, { divergence, temperature: 0.9 });
      expectClose(got.loss, ref.loss, TOL.divergenceLossWide, 'loss');
      expectAllClose(got.grad, ref.grad, TOL.lossGrad, 'grad');
    }
  });

  it('bf16 logits: the gradient (bf16) matches the reference on the same bf16 values', () => {
    const v = 3001, n = 6;
    const l16 = toBf16(randomLogits(n, v, 15));
    const targets = randomGroupedTargets(n, v, 16, { maxSingles: 8 });
    for (const path of CPU_PATHS) {
      const { sparseDivergence } = lossOnPath(path);
      for (const divergence of DIVS) {
        const got = sparseDivergence(l16, { rows: n, vocab: v }, targets, { divergence, temperature: 1.3, device: 'cpu' });
        expect(got.grad).toBeInstanceOf(Uint16Array);
        const ref = sparseDivergenceReference(fromBf16(l16), { rows: n, vocab: v }, targets, { divergence, temperature: 1.3 });
        expectClose(got.loss, ref.loss, TOL.bf16Loss, 'bf16 loss');
        expectAllClose(fromBf16(got.grad), ref.grad, TOL.bf16Grad, 'bf16 grad');
      }
    }
  });

  it('a group far above the rest (float32 exps of "other" underflow) and a tiny "other" are summed exactly', () => {
    // Row 0: a group's members sit 150 logits above every other column. Row 1: the buckets hold
    // all but ~1e-9 of the mass, and the tail asks for exactly that: p_other is summed directly.
    const vocab = 2000;
    const byteOrder = Int32Array.from({ length: vocab }, (_, i) => (i * 7) % vocab);
    const logits = new Float32Array(2 * vocab).fill(-150);
    for (let r = 100; r < 140; r++) logits[byteOrder[r]!] = (r % 5) * 0.3;
    for (let r = 0; r < 1990; r++) logits[vocab + byteOrder[r]!] = 0;
    for (let r = 1990; r < vocab; r++) logits[vocab + byteOrder[r]!] = -24;
    const p1 = softmax(logits.subarray(vocab));
    let other = 0;
    for (let r = 1990; r < vocab; r++) other += p1[byteOrder[r]!]!;
    // row 0: [100, 140) holds the ranks 120..139 once the nested [100, 120) has claimed its own
    const t: SparseTargets = {
      rowPtr: Int32Array.from([0, 2, 3]), ids: Int32Array.from([-1, -1, -1]), probs: Float32Array.from([0.5, 0.4, 1 - other]),
      tail: Float32Array.from([0.1, other]), groups: { lo: Int32Array.from([100, 100, 0]), hi: Int32Array.from([140, 120, 1990]), byteOrder },
    };
    for (const divergence of DIVS) {
      const got = sparseDivergence(logits, { rows: 2, vocab }, t, { divergence, device: 'cpu' });
      const ref = sparseDivergenceReference(logits, { rows: 2, vocab }, t, { divergence });
      expectClose(got.loss, ref.loss, TOL.divergenceLoss, `${divergence} loss`);
      expectAllClose(got.grad, ref.grad, TOL.lossGrad, `${divergence} grad`);
    }
    expect(sparseDivergenceReference(logits, { rows: 2, vocab }, t, { divergence: 'forward-kl' }).rowLoss[0]).toBeGreaterThan(10);
  });
});

describe('gradients against finite differences (groups)', () => {
  const rows = 4, vocab = 19;
  const logits = randomLogits(rows, vocab, 21);
  const targets = randomGroupedTargets(rows, vocab, 23, { maxSingles: 3, maxGroups: 3 });
  const mask = Uint8Array.from([1, 0, 1, 1]);
  const coords = Array.from({ length: rows * vocab }, (_, i) => i).filter((i) => i % 3 === 0);

  it('the targets have groups in kept rows', () => {
    const grouped = [0, 2, 3].filter((j) => targets.ids.subarray(targets.rowPtr[j]!, targets.rowPtr[j + 1]!).includes(-1));
    expect(grouped.length).toBeGreaterThanOrEqual(2);
  });
  for (const divergence of DIVS) {
    for (const temperature of [1, 0.6]) {
      it(`${divergence}, temperature ${temperature}: reference (float64) and fused fp32 kernel`, () => {
        const opts = { divergence, beta: 0.35, temperature, mask };
        const f = (x: Float64Array) => sparseDivergenceReference(x, { rows, vocab }, targets, opts).loss;
        const x = Float64Array.from(logits);
        const g = sparseDivergenceReference(x, { rows, vocab }, targets, opts).grad;
        expectAllClose(coords.map((c) => g[c]!), finiteDiff(f, x, coords, TOL.float64VsFd.h), TOL.float64VsFd, 'reference vs finite differences');
        const fused = sparseDivergence(logits, { rows, vocab }, targets, { ...opts, device: 'cpu' }).grad;
        const fk = (y: Float64Array) => sparseDivergence(Float32Array.from(y), { rows, vocab }, targets, { ...opts, device: 'cpu' }).loss;
        expectAllClose(coords.map((c) => fused[c]!), finiteDiff(fk, x, coords, TOL.float32KernelVsFd.h), TOL.float32KernelVsFd, 'fused vs finite differences');
      });
    }
  }
});

describe('invariants (groups)', () => {
  it('every member of a bucket has the same d loss / d z_u / p_u (DESIGN 6: one coefficient per bucket)', () => {
    const rows = 6, vocab = 401, T = 1.4;
    const logits = randomLogits(rows, vocab, 31);
    const targets = randomGroupedTargets(rows, vocab, 32, { maxGroups: 5 });
    for (const divergence of DIVS) {
      const g = sparseDivergence(logits, { rows, vocab }, targets, { divergence, temperature: T, device: 'cpu' }).grad;
      for (let j = 0; j < rows; j++) {
        const p = softmax(logits.subarray(j * vocab, (j + 1) * vocab), T);
        const buckets = targetRow(targets, j).buckets.map((b) => [...b.ids]);
        const inBucket = new Set(buckets.flat());
        buckets.push([...Array(vocab).keys()].filter((id) => !inBucket.has(id)));  // "other"
        for (const ids of buckets) {
          if (ids.length < 2) continue;
          const c = ids.map((id) => g[j * vocab + id]! / p[id]!);
          expectAllClose(c, c.map(() => c[0]!), TOL.bucketCoefficient, `row ${j}, a bucket of ${ids.length}`);
        }
      }
    }
  });

  it('zero (with a zero gradient) when the targets are the student\'s own bucket masses', () => {
    const rows = 5, vocab = 211;
    const logits = randomLogits(rows, vocab, 33);
    const shape = randomGroupedTargets(rows, vocab, 34, { maxGroups: 5, zeroTailShare: 0 });
    const probs = new Float32Array(shape.probs.length), tail = new Float32Array(rows);
    for (let j = 0; j < rows; j++) {
      const p = softmax(logits.subarray(j * vocab, (j + 1) * vocab));
      let rest = 1;
      targetRow(shape, j).buckets.forEach((b, k) => {
        const mass = b.ids.reduce((a, id) => a + p[id]!, 0);
        probs[shape.rowPtr[j]! + k] = mass;
        rest -= mass;
      });
      tail[j] = Math.max(0, rest);
    }
    const same = { ...shape, probs, tail };
    for (const divergence of DIVS) {
      const r = sparseDivergence(logits, { rows, vocab }, same, { divergence, device: 'cpu' });
      expectClose(r.loss, 0, TOL.zeroAtEquality, 'loss at equality');
      expectClose(maxAbs(r.grad), 0, TOL.zeroAtEquality, 'largest gradient at equality');
    }
  });

  it('rows without a group bucket give bit-identical results with or without the groups field', () => {
    const rows = 8, vocab = 3001;
    const logits = randomLogits(rows, vocab, 35);
    const plain = randomTargets(rows, vocab, 36, 20);
    const withField: SparseTargets = { ...plain, groups: { lo: new Int32Array(plain.ids.length), hi: new Int32Array(plain.ids.length), byteOrder: Int32Array.from({ length: vocab }, (_, i) => i) } };
    for (const divergence of DIVS) {
      const a = sparseDivergence(logits, { rows, vocab }, plain, { divergence, device: 'cpu' });
      const b = sparseDivergence(logits, { rows, vocab }, withField, { divergence, device: 'cpu' });
      expect(b.loss).toBe(a.loss);
      expect(Array.from(b.grad)).toEqual(Array.from(a.grad));
    }
  });

  it('the result does not depend on the thread count', () => {
    const rows = 40, vocab = 1500;
    const logits = randomLogits(rows, vocab, 37);
    const targets = randomGroupedTargets(rows, vocab, 38);
    const { setThreads, info: nativeInfo } = addon<{ setThreads(n: number): void; info(): { threads: number } }>();
    const before = nativeInfo().threads;
    setThreads(1);
    const a = sparseDivergence(logits, { rows, vocab }, targets, { divergence: 'jsd', device: 'cpu' });
    setThreads(2);
    const b = sparseDivergence(logits, { rows, vocab }, targets, { divergence: 'jsd', device: 'cpu' });
    setThreads(before);
    expect(a.loss).toBe(b.loss);
    expect(Array.from(a.grad)).toEqual(Array.from(b.grad));
  });

  it('concatenated grouped targets share one byteOrder and weight each row once', () => {
    const vocab = 97;
    const a = randomGroupedTargets(3, vocab, 41);
    const b = { ...randomGroupedTargets(4, vocab, 42, { byteOrder: a.groups!.byteOrder }), mask: Uint8Array.from([1, 0, 1, 1]) };
    const plain = randomTargets(2, vocab, 43);
    const all = concatTargets([a, plain, b]);
    expect(all.groups!.byteOrder).toBe(a.groups!.byteOrder);
    for (let j = 0; j < 3; j++) expect(all.row(j)).toEqual(targetRow(a, j));
    for (let j = 0; j < 4; j++) expect(all.row(5 + j)).toEqual(targetRow(b, j));
    const z = randomLogits(9, vocab, 44);
    const l = sparseDivergence(z, { rows: 9, vocab }, all, { divergence: 'reverse-kl', device: 'cpu' });
    const ref = sparseDivergenceReference(z, { rows: 9, vocab }, all, { divergence: 'reverse-kl' });
    expect(l.rows).toBe(8);
    expectClose(l.loss, ref.loss, TOL.divergenceLoss, 'batched mean');
    const other = randomGroupedTargets(2, vocab, 45);  // its own byteOrder
    expect(() => concatTargets([a, other])).toThrow(expect.objectContaining({ code: 'E_ARG_VALUE', message: expect.stringContaining('byteOrder') }));
  });
});

describe('devices', () => {
  it("grouped targets on device 'cuda' are E_CUDA_UNAVAILABLE; 'auto' runs them on the CPU", () => {
    const rows = 3, vocab = 50;
    const logits = randomLogits(rows, vocab, 51);
    const t = randomGroupedTargets(rows, vocab, 52, { maxGroups: 3 });
    expect(() => sparseDivergence(logits, { rows, vocab }, t, { divergence: 'jsd', device: 'cuda' })).toThrow(expect.objectContaining(errCode('E_CUDA_UNAVAILABLE')));
    if (info().cuda.devices > 0)
      expect(() => sparseDivergence(logits, { rows, vocab }, t, { divergence: 'jsd', device: 'cuda' })).toThrow(/grouped buckets run on the CPU in this build/);
    const auto = sparseDivergence(logits, { rows, vocab }, t, { divergence: 'jsd', device: 'auto' });
    const cpu = sparseDivergence(logits, { rows, vocab }, t, { divergence: 'jsd', device: 'cpu' });
    expect(auto.loss).toBe(cpu.loss);
    // the native entry point refuses too
    const n = addon<{ sparseDivergence(a: unknown): unknown }>();
    if (info().cuda.compiled)
      expect(() => n.sparseDivergence({ logits, rows, vocab, rowPtr: t.rowPtr, ids: t.ids, probs: t.probs, tail: t.tail, groupLo: t.groups!.lo,
        groupHi: t.groups!.hi, byteOrder: t.groups!.byteOrder, device: 'cuda' })).toThrow(expect.objectContaining({ code: expect.stringMatching(/^E_CUDA/) }));
  });
});

describe('bad grouped targets are an XopdError', () => {
  const vocab = 10, rows = 1;
  const logits = randomLogits(rows, vocab, 61);
  const byteOrder = Int32Array.from([3, 1, 4, 0, 5, 9, 2, 6]);  // 7 and 8 play special tokens
  /** one row: buckets given as [id, lo, hi, q], the tail what is left */
  const row = (buckets: Array<[number, number, number, number]>, order = byteOrder): SparseTargets => ({
    rowPtr: Int32Array.from([0, buckets.length]), ids: Int32Array.from(buckets.map((b) => b[0])), probs: Float32Array.from(buckets.map((b) => b[3])),
    tail: Float32Array.from([1 - buckets.reduce((a, b) => a + b[3], 0)]),
    groups: { lo: Int32Array.from(buckets.map((b) => b[1])), hi: Int32Array.from(buckets.map((b) => b[2])), byteOrder: order },
  });
  const run = (t: SparseTargets) => () => sparseDivergence(logits, { rows, vocab }, t, { divergence: 'forward-kl', device: 'cpu' });
  const c = (code: string, text?: string) => expect.objectContaining({ code, ...(text ? { message: expect.stringContaining(text) } : {}) });

  it('well-formed: nested ranges, a single id inside a range, every id in a bucket with tail 0', () => {
    expect(run(row([[-1, 0, 6, 0.3], [-1, 1, 3, 0.2], [4, 0, 0, 0.1]]))).not.toThrow();
    const all = row([[-1, 0, 8, 0.5], [7, 0, 0, 0.25], [8, 0, 0, 0.25]]);
    expect(run(all)).not.toThrow();
    expect(targetRow(all, 0).buckets[0]!.ids.length).toBe(8);
  });
  it('ranges that overlap without nesting, the same range twice, empty or outside byteOrder', () => {
    expect(run(row([[-1, 0, 4, 0.3], [-1, 2, 6, 0.2]]))).toThrow(c('E_ARG_VALUE', 'overlap'));
    expect(run(row([[-1, 1, 4, 0.3], [-1, 1, 4, 0.2]]))).toThrow(c('E_ARG_VALUE', 'twice'));
    expect(run(row([[-1, 3, 3, 0.3]]))).toThrow(c('E_ARG_VALUE'));
    expect(run(row([[-1, 5, 9, 0.3]]))).toThrow(c('E_ARG_VALUE'));
    expect(run(row([[-1, -1, 2, 0.3]]))).toThrow(c('E_ARG_VALUE'));
  });
  it('a group that holds no id after the first claims', () => {
    // [2, 4) holds ranks 2 and 3 = ids 4 and 0; both are single ids of the row
    expect(run(row([[-1, 2, 4, 0.3], [4, 0, 0, 0.1], [0, 0, 0, 0.1]]))).toThrow(c('E_ARG_VALUE', 'holds no id'));
    // [0, 3) is taken by the narrower [0, 2) and the single id 4 (rank 2)
    expect(run(row([[-1, 0, 3, 0.3], [-1, 0, 2, 0.1], [4, 0, 0, 0.1]]))).toThrow(c('E_ARG_VALUE', 'holds no id'));
  });
  it('buckets holding every id with a tail > 0', () => {
    expect(run(row([[-1, 0, 8, 0.5], [7, 0, 0, 0.2], [8, 0, 0, 0.2]]))).toThrow(c('E_ARG_VALUE', 'every id'));
  });
  it('-1 without groups, byteOrder out of range or repeated, lo/hi of the wrong length', () => {
    const t = row([[-1, 0, 3, 0.3]]);
    expect(run({ ...t, groups: undefined })).toThrow(c('E_TOKEN_ID', 'prefix group'));
    expect(run(row([[-1, 0, 3, 0.3]], Int32Array.from([3, 1, 40])))).toThrow(c('E_TOKEN_ID'));
    expect(run(row([[-1, 0, 3, 0.3]], Int32Array.from([3, 1, 3])))).toThrow(c('E_ARG_VALUE', 'twice'));
    expect(run({ ...t, groups: { ...t.groups!, lo: new Int32Array(2) } })).toThrow(c('E_ARG_SHAPE'));
    expect(run({ ...t, groups: { ...t.groups!, byteOrder: [1, 2] as unknown as Int32Array } })).toThrow(c('E_ARG_TYPE'));
  });
  it('native checks hold without the facade', () => {
    const n = addon<{ sparseDivergence(a: unknown): unknown }>();
    const t = row([[-1, 0, 4, 0.3], [-1, 2, 6, 0.2]]);
    const args = { logits, rows, vocab, rowPtr: t.rowPtr, ids: t.ids, probs: t.probs, tail: t.tail, groupLo: t.groups!.lo, groupHi: t.groups!.hi, byteOrder: t.groups!.byteOrder };
    expect(() => n.sparseDivergence(args)).toThrow(expect.objectContaining({ code: 'E_ARG_VALUE' }));
    expect(() => n.sparseDivergence({ ...args, groupHi: undefined })).toThrow(expect.objectContaining({ code: 'E_ARG_TYPE' }));
    expect(() => n.sparseDivergence({ ...args, groupLo: new Int32Array(1) })).toThrow(expect.objectContaining({ code: 'E_ARG_SHAPE' }));
    expect(() => n.sparseDivergence({ ...args, ids: Int32Array.from([-1, -2]) })).toThrow(expect.objectContaining({ code: 'E_TOKEN_ID' }));
  });
});
