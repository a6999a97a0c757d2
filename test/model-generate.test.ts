// Sampling with the KV cache: seeded and reproducible, logprobs equal to forward's, greedy equal to
// argmax, stop ids, nucleus, and refusals of bad prompts.
import { describe, expect, it } from 'vitest';
import { rng } from '../dev/corpus.js';
import { Model } from '../src/model/model.js';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { taskVocabIds, generateProblems, promptIds } from '../src/tasks/arithmetic.js';

const tok = Tokenizer.load('qwen3');
const vocabIds = taskVocabIds(tok);
const model = Model.create({ tokenizer: 'qwen3', vocabIds, hiddenSize: 32, numLayers: 2, numHeads: 4, intermediateSize: 64, maxSeqLen: 96 }, { seed: 2, tokenizer: tok });
{
  // Spread the logits so samples depend on the seed and greedy is not trivially one token.
  const r = rng(7);
  model.setParams(Float32Array.from(model.getParams(), (p) => p * 25 + (r() - 0.5) * 0.05));
}
const prompts = generateProblems({ split: 'test', count: 6, seed: 3 }).map((p) => promptIds(tok, p));
const noStop = new Int32Array(0);

function logSoftmaxAt(z: Float32Array, row: number, V: number, id: number): number {
  let mx = -Infinity;
  for (let v = 0; v < V; v++) mx = Math.max(mx, z[row * V + v]!);
  let s = 0;
  for (let v = 0; v < V; v++) s += Math.exp(z[row * V + v]! - mx);
  return z[row * V + id]! - mx - Math.log(s);
}

describe('Model.generate', () => {
  it('the same seed gives the same samples; another seed gives others', async () => {
    const a = await model.generate(prompts, { maxTokens: 20, seed: 42, stopIds: noStop });
    const b = await model.generate(prompts, { maxTokens: 20, seed: 42, stopIds: noStop });
    const c = await model.generate(prompts, { maxTokens: 20, seed: 43, stopIds: noStop });
    expect(a.map((r) => Array.from(r.ids))).toEqual(b.map((r) => Array.from(r.ids)));
    expect(a.map((r) => Array.from(r.logprobs))).toEqual(b.map((r) => Array.from(r.logprobs)));
    expect(a.map((r) => Array.from(r.ids))).not.toEqual(c.map((r) => Array.from(r.ids)));
    for (const r of a) expect(r.ids.length).toBe(20);
  });

  it("a prompt's samples do not depend on the other prompts of the batch", () => {
    const a = model.generateSync([prompts[0]!, prompts[1]!], { maxTokens: 15, seed: 5 });
    const b = model.generateSync([prompts[0]!, prompts[2]!, prompts[3]!], { maxTokens: 15, seed: 5 });
    expect(Array.from(a[0]!.ids)).toEqual(Array.from(b[0]!.ids));
  });

  it("returns the model's own logprobs: those forward() gives for the same pairs", async () => {
    const rolls = await model.generate(prompts, { maxTokens: 24, temperature: 1.3, topP: 0.9, seed: 8 });
    const f = await model.forward(prompts.map((p, i) => ({ prompt: p, response: rolls[i]!.ids })));
    let row = 0, worst = 0;
    rolls.forEach((r) => r.ids.forEach((id, j) => {
      worst = Math.max(worst, Math.abs(logSoftmaxAt(f.logits, row++, f.vocab, model.indexOf(id)) - r.logprobs[j]!));
    }));
    expect(row).toBe(f.rows);
    expect(worst).toBeLessThan(1e-5);
  });

  it('temperature 0 is greedy (argmax of the forward logits), and a tiny top-p is too', () => {
    const greedy = model.generateSync(prompts, { maxTokens: 12, temperature: 0, stopIds: noStop });
    const nucleus = model.generateSync(prompts, { maxTokens: 12, temperature: 1, topP: 1e-6, seed: 99, stopIds: noStop });
    expect(nucleus.map((r) => Array.from(r.ids))).toEqual(greedy.map((r) => Array.from(r.ids)));
    const f = model.forwardSync(prompts.map((p, i) => ({ prompt: p, response: greedy[i]!.ids })));
    let row = 0;
    for (const r of greedy)
      for (const id of r.ids) {
        const z = f.logits.subarray(row * f.vocab, (row + 1) * f.vocab);
        expect(model.indexOf(id)).toBe(z.indexOf(Math.max(...z)));
        row++;
      }
  });

  it('stops after a stop id (kept) and never exceeds maxTokens', () => {
    const free = model.generateSync(prompts, { maxTokens: 30, seed: 1, stopIds: noStop });
    // Stop on the token each prompt drew 5th: those sequences must end at or before it.
    const stopIds = Int32Array.from(new Set(free.map((r) => r.ids[4]!)));
    const stopped = model.generateSync(prompts, { maxTokens: 30, seed: 1, stopIds });
    stopped.forEach((r, i) => {
      const first = Array.from(free[i]!.ids).findIndex((id) => stopIds.includes(id));
      expect(r.ids.length).toBe(first + 1);
      expect(Array.from(r.ids)).toEqual(Array.from(free[i]!.ids.subarray(0, first + 1)));
    });
    expect(model.generateSync(prompts, { maxTokens: 0 }).every((r) => r.ids.length === 0)).toBe(true);
  });

  it('refuses bad prompts and options with XopdError codes', () => {
    const code = (f: () => unknown, c: string) => expect(f).toThrow(expect.objectContaining({ name: 'XopdError', code: c }));
    const outside = tok.encode(' photosynthesis', { addSpecialTokens: false });
    code(() => model.generateSync([outside], { maxTokens: 4 }), 'E_TOKEN_ID');
    code(() => model.generateSync([new Int32Array(0)], { maxTokens: 4 }), 'E_ARG_SHAPE');
    code(() => model.generateSync([Int32Array.from({ length: 90 }, () => vocabIds[3]!)], { maxTokens: 10 }), 'E_TOO_LONG');
    code(() => model.generateSync([[1, 2] as unknown as Int32Array], { maxTokens: 4 }), 'E_ARG_TYPE');
    code(() => model.generateSync(prompts, { maxTokens: -1 }), 'E_ARG_RANGE');
    code(() => model.generateSync(prompts, { maxTokens: 4, topP: 0 }), 'E_ARG_RANGE');
    code(() => model.generateSync(prompts, { maxTokens: 4, temperature: Number.NaN }), 'E_ARG_TYPE');
  });
});
