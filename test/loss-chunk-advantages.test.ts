// Chunk credit assignment (DESIGN 4): the paper's estimator on hand-made and real alignments.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { chunkAdvantages } from '../src/loss/chunk-advantages.js';
import { policyGradientLoss } from '../src/loss/policy-gradient.js';
import { ChunkFlags, type Alignment } from '../src/align/types.js';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { rng } from '../dev/corpus.js';
import { fuzzParams } from './helpers/fuzz.js';
import { errCode, randomLogits, softmax } from './helpers/loss.js';
import { TokenizerBridge } from '../src/align/bridge.js';

/** An alignment from chunk sizes: [[student tokens, teacher tokens, flags], ...]. */
function chunks(spec: Array<[number, number, number?]>): Alignment {
  let s = 0, t = 0;
  const a: Alignment = {
    chunkCount: spec.length, studentStart: new Int32Array(spec.length), studentEnd: new Int32Array(spec.length),
    teacherStart: new Int32Array(spec.length), teacherEnd: new Int32Array(spec.length), flags: new Uint8Array(spec.length),
    studentChunk: new Int32Array(spec.reduce((n, c) => n + c[0], 0)),
  };
  spec.forEach(([ns, nt, f], c) => {
    a.studentStart[c] = s;
    a.teacherStart[c] = t;
    for (let i = s; i < s + ns; i++) a.studentChunk[i] = c;
    s += ns;
    t += nt;
    a.studentEnd[c] = s;
    a.teacherEnd[c] = t;
    a.flags[c] = f ?? 0;
  });
  return a;
}
const f32 = (...x: number[]) => Float32Array.from(x);

describe('chunkAdvantages', () => {
  it('a 1:1 chunk gives log q - log p; proportional credit splits a chunk by surprisal', () => {
    // chunk 0: 1:1; chunk 1: two student tokens, three teacher tokens
    const a = chunks([[1, 1], [2, 3]]);
    const lt = f32(-0.5, -0.2, -0.3, -0.1), ls = f32(-1.5, -0.4, -1.2);
    const r = chunkAdvantages(a, { teacherLogprobs: lt, studentLogprobs: ls });
    expect(r.advantages[0]).toBeCloseTo(-0.5 - -1.5, 6);
    const LT = -0.6, LS = -1.6;
    expect(r.advantages[1]).toBeCloseTo((LT / LS - 1) * -0.4, 6);
    expect(r.advantages[2]).toBeCloseTo((LT / LS - 1) * -1.2, 6);
    expect(Array.from(r.mask)).toEqual([1, 1, 1]);
    const u = chunkAdvantages(a, { teacherLogprobs: lt, studentLogprobs: ls }, { credit: 'uniform' });
    expect(u.advantages[1]).toBeCloseTo(LT / 2 - -0.4, 6);
    expect(u.advantages[2]).toBeCloseTo(LT / 2 - -1.2, 6);
  });

  it('|L_S| < 1e-8 falls back to uniform credit; advantages are clamped', () => {
    const a = chunks([[2, 1], [1, 1]]);
    const r = chunkAdvantages(a, { teacherLogprobs: f32(-3, -40), studentLogprobs: f32(0, -0, -0.01) });
    expect(r.advantages[0]).toBeCloseTo(-1.5, 6);
    expect(r.advantages[1]).toBeCloseTo(-1.5, 6);
    expect(r.advantages[2]).toBe(-10);  // -40 + 0.01 clamped to -10
    const c = chunkAdvantages(a, { teacherLogprobs: f32(-3, -40), studentLogprobs: f32(0, -0, -0.01) }, { clamp: 2.5 });
    expect(c.advantages[2]).toBe(-2.5);
  });

  it('flagged chunks are masked (advantage 0) unless includeFlags lets them through', () => {
    const a = chunks([[1, 1], [2, 2, ChunkFlags.OVERSIZE], [1, 1, ChunkFlags.APPROX], [2, 0, ChunkFlags.TAIL]]);
    const sig = { teacherLogprobs: f32(-1, -1, -1, -1), studentLogprobs: f32(-2, -2, -2, -2, -2, -2) };
    expect(Array.from(chunkAdvantages(a, sig).mask)).toEqual([1, 0, 0, 0, 0, 0]);
    expect(Array.from(chunkAdvantages(a, sig).advantages.slice(1))).toEqual([0, 0, 0, 0, 0]);
    expect(Array.from(chunkAdvantages(a, sig, { includeFlags: ChunkFlags.OVERSIZE }).mask)).toEqual([1, 1, 1, 0, 0, 0]);
    const all = chunkAdvantages(a, sig, { includeFlags: 7 });
    expect(Array.from(all.mask)).toEqual([1, 1, 1, 1, 1, 1]);
    // a TAIL chunk has no teacher tokens: L_T = 0, so A_i = -log p_i
    expect(all.advantages[4]).toBeCloseTo(2, 6);
  });

  it('on a real pair, each chunk\'s advantages sum to L_T - L_S (both credits, property)', () => {
    // Qwen 3 splits digits, Llama 3 groups them by three: chunks of several student tokens.
    const student = Tokenizer.load('qwen3'), teacher = Tokenizer.load('llama3');
    const text = 'In 1969, roughly 600 million people watched; 数学题：３４５＋６７８＝１０２３。 def fib(n): return n';
    const s = student.encode(text, { addSpecialTokens: false }), t = teacher.encode(text, { addSpecialTokens: false });
    const a = new TokenizerBridge(student, teacher, { maxChunkTokens: 1000 }).align(s, t);
    expect(a.chunkCount).toBeLessThan(s.length);  // some chunks hold several tokens
    fc.assert(fc.property(fc.integer(), fc.constantFrom('proportional' as const, 'uniform' as const), (seed, credit) => {
      const r = rng(seed);
      const lt = Float32Array.from(t, () => -3 * r()), ls = Float32Array.from(s, () => -3 * r() - 1e-3);
      const res = chunkAdvantages(a, { teacherLogprobs: lt, studentLogprobs: ls }, { credit, clamp: 1e6 });
      for (let c = 0; c < a.chunkCount; c++) {
        let LT = 0, LS = 0, sum = 0;
        for (let i = a.teacherStart[c]!; i < a.teacherEnd[c]!; i++) LT += lt[i]!;
        for (let i = a.studentStart[c]!; i < a.studentEnd[c]!; i++) {
          LS += ls[i]!;
          sum += res.advantages[i]!;
        }
        expect(sum).toBeCloseTo(LT - LS, 3);
      }
    }), fuzzParams(40, 5));
  });

  it('drives the policy-gradient loss: masked chunks are in no denominator', () => {
    const a = chunks([[1, 1], [2, 2, ChunkFlags.APPROX], [1, 1]]);
    const adv = chunkAdvantages(a, { teacherLogprobs: f32(-1, -1, -1, -2), studentLogprobs: f32(-2, -1, -1, -0.5) });
    const V = 7, logits = randomLogits(4, V, 3);
    const actions = Int32Array.from([1, 2, 3, 4]);
    const r = policyGradientLoss(logits, { rows: 4, vocab: V }, actions, adv.advantages, adv.mask, { device: 'cpu' });
    const lp = (j: number) => Math.log(softmax(logits.subarray(j * V, (j + 1) * V))[actions[j]!]!);
    expect(r.stats.rows).toBe(2);
    expect(r.loss).toBeCloseTo(-(adv.advantages[0]! * lp(0) + adv.advantages[3]! * lp(3)) / 2, 6);
  });

  it('bad input', () => {
    const a = chunks([[1, 1], [2, 1]]);
    const ok = { teacherLogprobs: f32(-1, -1), studentLogprobs: f32(-1, -1, -1) };
    const c = (x: string) => expect.objectContaining(errCode(x));
    expect(() => chunkAdvantages(a, { ...ok, studentLogprobs: f32(-1, -1) })).toThrow(c('E_ARG_SHAPE'));
    expect(() => chunkAdvantages(a, { ...ok, teacherLogprobs: f32(-1, -1, -1) })).toThrow(c('E_ARG_SHAPE'));
    expect(() => chunkAdvantages(a, { ...ok, teacherLogprobs: f32(-1, 0.5) })).toThrow(c('E_ARG_VALUE'));
    expect(() => chunkAdvantages(a, { ...ok, studentLogprobs: f32(-1, NaN, -1) })).toThrow(c('E_ARG_VALUE'));
    expect(() => chunkAdvantages(a, { ...ok, studentLogprobs: [-1, -1, -1] as unknown as Float32Array })).toThrow(c('E_ARG_TYPE'));
    expect(() => chunkAdvantages(a, ok, { credit: 'mean' as never })).toThrow(c('E_ARG_VALUE'));
    expect(() => chunkAdvantages(a, ok, { clamp: -1 })).toThrow(c('E_ARG_RANGE'));
    const gap = { ...a, studentStart: Int32Array.from([0, 2]) };
    expect(() => chunkAdvantages(gap, ok)).toThrow(c('E_ARG_VALUE'));
    expect(() => chunkAdvantages({ ...a, studentChunk: Int32Array.from([0, 0, 1]) }, ok)).toThrow(c('E_ARG_VALUE'));
    expect(() => chunkAdvantages(null as never, ok)).toThrow(c('E_ARG_TYPE'));
    expect(() => chunkAdvantages(chunks([]), { teacherLogprobs: f32(), studentLogprobs: f32() })).toThrow(c('E_ARG_SHAPE'));
  });
});
