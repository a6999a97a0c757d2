// ULD (sorted-probability L1) against a direct evaluation and finite differences.
import { describe, expect, it } from 'vitest';
import { uldLoss } from '../src/loss/uld.js';
import { rng } from '../dev/corpus.js';

function direct(z: number[], q: number[]): number {
  const m = Math.max(...z);
  const e = z.map((x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
  const p = e.map((x) => x / s).sort((a, b) => b - a);
  let l = 0;
  for (let i = 0; i < q.length; i++) l += Math.abs(p[i]! - q[i]!);
  const rest = p.slice(q.length).reduce((a, b) => a + b, 0);
  return l + Math.abs(rest - (1 - q.reduce((a, b) => a + b, 0)));
}

describe('uldLoss', () => {
  const r = rng(7);
  const rows = 5, vocab = 9, k = 3;
  const logits = Float32Array.from({ length: rows * vocab }, () => 3 * (r() - 0.5));
  const teacher = new Float32Array(rows * k);
  for (let i = 0; i < rows; i++) {
    const q = [r(), r(), r()].map((x) => x / 2).sort((a, b) => b - a);
    teacher.set(q.map((x) => x / Math.max(1, q.reduce((a, b) => a + b, 0) * 1.2)), i * k);
  }
  const mask = Uint8Array.from([1, 1, 0, 1, 1]);

  it('equals the direct definition, mean over unmasked rows only', () => {
    const { loss } = uldLoss(logits, { rows, vocab }, teacher, k, mask);
    let want = 0;
    for (let i = 0; i < rows; i++) if (mask[i]) want += direct(Array.from(logits.subarray(i * vocab, (i + 1) * vocab)), Array.from(teacher.subarray(i * k, (i + 1) * k)));
    expect(loss).toBeCloseTo(want / 4, 5);
  });

  it('gradient matches central finite differences (away from kinks), zero on masked rows', () => {
    const { grad } = uldLoss(logits, { rows, vocab }, teacher, k, mask);
    const h = 1e-3;
    for (let idx = 0; idx < rows * vocab; idx++) {
      const up = Float32Array.from(logits), dn = Float32Array.from(logits);
      up[idx]! += h;
      dn[idx]! -= h;
      const fd = (uldLoss(up, { rows, vocab }, teacher, k, mask).loss - uldLoss(dn, { rows, vocab }, teacher, k, mask).loss) / (2 * h);
      expect(Math.abs(fd - grad[idx]!)).toBeLessThan(2e-3);
    }
    for (let v = 0; v < vocab; v++) expect(grad[2 * vocab + v]).toBe(0);
  });

  it('is zero when the sorted distributions agree, whatever the ids', () => {
    const z = Float32Array.from([2, 0, 1, -1]);
    const p = Array.from(z, (x) => Math.exp(x));
    const s = p.reduce((a, b) => a + b, 0);
    const sorted = p.map((x) => x / s).sort((a, b) => b - a);
    expect(uldLoss(z, { rows: 1, vocab: 4 }, Float32Array.from(sorted.slice(0, 2)), 2, Uint8Array.of(1)).loss).toBeLessThan(1e-6);
  });

  it('bad input is an XopdError', () => {
    expect(() => uldLoss(logits, { rows, vocab }, teacher.subarray(1), k, mask)).toThrow(expect.objectContaining({ code: 'E_ARG_SHAPE' }));
    expect(() => uldLoss(logits, { rows, vocab }, Float32Array.from(teacher).fill(2), k, mask)).toThrow(expect.objectContaining({ code: 'E_ARG_VALUE' }));
    const bad = Float32Array.from(logits);
    bad[3] = Number.NaN;
    expect(() => uldLoss(bad, { rows, vocab }, teacher, k, mask)).toThrow(expect.objectContaining({ code: 'E_ARG_VALUE' }));
  });
});
