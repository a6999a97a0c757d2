// The Teacher role of the embedded model: realised logprobs and top-k in tokenizer ids, consistent
// with forward() and generate(); ids outside the list score a floor instead of failing.
import { describe, expect, it } from 'vitest';
import { rng } from '../dev/corpus.js';
import { Model } from '../src/model/model.js';
import { UNLISTED_LOGPROB } from '../src/model/scoring.js';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { taskVocabIds, generateProblems, promptIds, responseIds } from '../src/tasks/arithmetic.js';

const tok = Tokenizer.load('qwen3');
const vocabIds = taskVocabIds(tok);
const model = Model.create({ tokenizer: 'qwen3', vocabIds, hiddenSize: 32, numLayers: 2, numHeads: 2, intermediateSize: 48, maxSeqLen: 192 }, { seed: 12, tokenizer: tok });
{
  const r = rng(3);
  model.setParams(Float32Array.from(model.getParams(), (p) => p * 8 + (r() - 0.5) * 0.02));
}
/** float32 results against float64 sums: relative 1e-6 */
const close = (a: number, b: number) => expect(Math.abs(a - b)).toBeLessThanOrEqual(1e-6 * (1 + Math.abs(b)));
const problems = generateProblems({ split: 'test', count: 4, seed: 6 });
const reqs = problems.map((p) => {
  const prompt = promptIds(tok, p), resp = responseIds(tok, p);
  return { ids: Int32Array.from([...prompt, ...resp]), start: prompt.length };
});

describe('Model.score (Teacher)', () => {
  it('gives log-softmax of forward at the realised ids, and the top-k in tokenizer ids', async () => {
    const scores = await model.score(reqs, { topK: 5 });
    const f = model.forwardSync(reqs.map((r) => ({ prompt: r.ids.subarray(0, r.start), response: r.ids.subarray(r.start) })));
    let row = 0;
    scores.forEach((s, i) => {
      const n = reqs[i]!.ids.length - reqs[i]!.start;
      expect(s.k).toBe(5);
      expect(s.logprobs.length).toBe(n);
      expect(s.topkIds.length).toBe(n * 5);
      for (let j = 0; j < n; j++, row++) {
        const z = Array.from(f.logits.subarray(row * f.vocab, (row + 1) * f.vocab));
        const mx = Math.max(...z);
        const lse = mx + Math.log(z.reduce((a, v) => a + Math.exp(v - mx), 0));
        const realised = model.indexOf(reqs[i]!.ids[reqs[i]!.start + j]!);
        close(s.logprobs[j]!, z[realised]! - lse);
        const best = z.map((v, c) => [v, c] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, 5);
        expect(Array.from(s.topkIds.subarray(j * 5, j * 5 + 5))).toEqual(best.map(([, c]) => vocabIds[c]));
        best.forEach(([v], q) => close(s.topkLogprobs[j * 5 + q]!, v - lse));
      }
    });
    // every request was scored and every forward row compared
    expect(scores.length).toBe(reqs.length);
    expect(row).toBe(f.rows);
    expect(row).toBeGreaterThan(100);
  });

  it("agrees with generate()'s logprobs on the model's own samples", () => {
    const prompts = reqs.map((r) => r.ids.subarray(0, r.start));
    const rolls = model.generateSync(prompts, { maxTokens: 20, seed: 3 });
    const scores = model.scoreSync(prompts.map((p, i) => ({ ids: Int32Array.from([...p, ...rolls[i]!.ids]), start: p.length })), { topK: 1 });
    let compared = 0;
    scores.forEach((s, i) => {
      expect(s.logprobs.length).toBe(rolls[i]!.ids.length);
      s.logprobs.forEach((lp, j) => { close(lp, rolls[i]!.logprobs[j]!); compared++; });
    });
    expect(compared).toBe(rolls.reduce((n, r) => n + r.ids.length, 0));
    expect(compared).toBeGreaterThan(20);
  });

  it('clamps k to the id list and scores response ids outside the list with the floor', () => {
    const outside = tok.encode(' photosynthesis', { addSpecialTokens: false });
    const r = reqs[0]!;
    const ids = Int32Array.from([...r.ids.subarray(0, r.start + 3), ...outside, ...r.ids.subarray(r.start + 3)]);
    const [s] = model.scoreSync([{ ids, start: r.start }], { topK: 10_000 });
    expect(s!.k).toBe(vocabIds.length);
    for (let j = 0; j < outside.length; j++) expect(s!.logprobs[3 + j]).toBe(UNLISTED_LOGPROB);
    for (const lp of s!.logprobs) expect(Number.isFinite(lp)).toBe(true);
    expect(s!.logprobs.length).toBe(ids.length - r.start);
  });

  it('handles empty responses and many requests (batched by tokens)', () => {
    const many = Array.from({ length: 300 }, (_, i) => reqs[i % reqs.length]!);
    const out = model.scoreSync([{ ids: reqs[0]!.ids.subarray(0, reqs[0]!.start), start: reqs[0]!.start }, ...many], { topK: 2 });
    expect(out[0]!.logprobs.length).toBe(0);
    expect(Array.from(out[1 + 4]!.logprobs)).toEqual(Array.from(out[1]!.logprobs));
  });

  it('generate() and score() between forward() and backward() do not disturb the gradient', () => {
    const pairs = reqs.map((r) => ({ prompt: r.ids.subarray(0, r.start), response: r.ids.subarray(r.start) }));
    const a = Model.create({ tokenizer: 'qwen3', vocabIds, hiddenSize: 16, numLayers: 1, numHeads: 2, intermediateSize: 24 }, { seed: 4, tokenizer: tok });
    const f1 = a.forwardSync(pairs);
    const g = Float32Array.from(f1.logits, (_, i) => Math.cos(i) * 0.01);
    a.backwardSync(g);
    const clean = a.getGrads();
    a.zeroGrads();
    a.forwardSync(pairs);
    a.generateSync(pairs.map((p) => p.prompt), { maxTokens: 8, seed: 1 });
    a.scoreSync(reqs, { topK: 3 });
    a.backwardSync(g);
    expect(Buffer.from(a.getGrads().buffer).equals(Buffer.from(clean.buffer))).toBe(true);
  });
});
