// The second regime's task variant, arith-v2-styles: arith-v2's problems, splits, grading and ids,
// with a working drawn from several valid ways of writing it (so a teacher trained on it has entropy).
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { TASK_NAME, generateProblems, grade, taskVocabIds } from '../src/tasks/arithmetic.js';
import { STYLES_TASK_NAME, referenceWriter, styledResponseText } from '../src/tasks/styles.js';
import { rng } from '../src/core/random.js';
import { pretrain } from '../src/train/pretrain.js';
import { sampleStats } from '../src/tasks/eval.js';
import { Model } from '../src/model/model.js';
import { packageRoot } from '../src/core/native.js';

/** Re-derives a styled working from its text alone: every step holds, carries and borrows chain, the digits spell the result. */
function checkWorking(working: string): { value: number; want: number } {
  const m = /^(\d+) ([+-]) (\d+): (.*)$/.exec(working)!;
  expect(m).not.toBeNull();
  const [x0, op, y0] = [Number(m[1]), m[2], Number(m[3])];
  const steps = m[4]!.split(', ');
  // an addition may be restated either way round; a difference never
  const [a, b] = op === '+' ? [Math.max(x0, y0), Math.min(x0, y0)] : [x0, y0];
  const da = Array.from(String(a), Number).reverse(), db = Array.from(String(b), Number).reverse();
  expect(steps.length).toBe(da.length);
  let carry = 0, digits = '';
  steps.forEach((st, k) => {
    const t = /^(\d+) ([+-]) (\d+)( \+ 1)? = (\d+)$/.exec(st)!;
    expect(t, st).not.toBeNull();
    const [p, q, z] = [Number(t[1]), Number(t[3]), Number(t[5])];
    if (op === '+') {
      expect([p, q].sort()).toEqual([da[k] ?? 0, db[k] ?? 0].sort()); // the two digits, in either order
      expect(t[2]).toBe('+');
      expect(t[4] !== undefined).toBe(carry === 1);
      expect(z).toBe(p + q + carry);
      carry = z >= 10 ? 1 : 0;
      digits = (k === steps.length - 1 ? String(z) : String(z % 10)) + digits;
    } else {
      expect(t[4]).toBeUndefined();
      // "top - y = r" or its check "r + y = top"
      const [top, y, r] = t[2] === '-' ? [p, q, z] : [z, q, p];
      expect(y).toBe(db[k] ?? 0);
      expect(top === da[k]! - carry || top === da[k]! - carry + 10).toBe(true);
      carry = top > da[k]! - carry ? 1 : 0;
      expect(r).toBe(top - y);
      expect(r >= 0 && r <= 9).toBe(true);
      digits = String(r) + digits;
    }
  });
  return { value: Number(digits), want: op === '+' ? a + b : a - b };
}

describe('arith-v2-styles', () => {
  const problems = generateProblems({ split: 'train', count: 2000, seed: 9 });

  it('writes valid workings whose results chain to the same answer, graded as arith-v2 grades it', () => {
    const write = referenceWriter(STYLES_TASK_NAME, 3);
    for (const p of problems) {
      const text = write(p);
      expect(text.endsWith(`The answer is ${p.answer}.`)).toBe(true);
      expect(grade(p, text).correct).toBe(true);
      const workings = text.replace(/ The answer is \d+\.$/, '').split(/\.(?: |$)/).filter(Boolean);
      expect(workings.length).toBe(p.kind === 'add-sub' ? 2 : 1);
      for (const w of workings) {
        const { value, want } = checkWorking(w);
        expect(value).toBe(want);
      }
    }
  });

  it('has entropy: one problem is written many ways, about one bit per column', () => {
    const p = problems.find((x) => x.kind === 'add' && x.operands[0]! > 999 && x.operands[1]! > 999)!;
    const r = rng(5);
    const texts = new Set(Array.from({ length: 400 }, () => styledResponseText(p.kind, p.operands, r)));
    // a restatement order and 4 column orders: 2^5 = 32 ways, a digit pair that is equal writes one way
    expect(texts.size).toBeGreaterThanOrEqual(8);
    expect(texts.size).toBeLessThanOrEqual(32);
    expect(texts.has(p.response)).toBe(true); // arith-v2's own working is one of them
  });

  it('leaves arith-v2 as it was: the same problems whatever the variant, its writer returns the reference', () => {
    const write = referenceWriter(TASK_NAME, 3);
    for (const p of problems.slice(0, 200)) expect(write(p)).toBe(p.response);
    expect(referenceWriter(STYLES_TASK_NAME, 3)(problems[0]!)).toBe(referenceWriter(STYLES_TASK_NAME, 3)(problems[0]!));
    expect(() => referenceWriter('arith-v3' as typeof TASK_NAME, 1)).toThrow(/task must be one of/);
  });

  it.each(['qwen3', 'llama3'])('uses no %s id outside the arith-v2 id list', (name) => {
    const tok = Tokenizer.load(name);
    const ids = new Set(taskVocabIds(tok));
    const write = referenceWriter(STYLES_TASK_NAME, 1);
    const missing: number[] = [];
    for (const p of problems) for (const id of tok.encode(write(p), { addSpecialTokens: false })) if (!ids.has(id)) missing.push(id);
    expect(missing).toEqual([]);
  });

  it('pretrain on it records the variant, from scratch and from an arith-v2 model', () => {
    const fresh = pretrain({ tokenizer: 'qwen3', task: STYLES_TASK_NAME, shape: { hiddenSize: 16, numLayers: 1, numHeads: 2, intermediateSize: 24 }, steps: 2, batch: 2, lr: 1e-3, seed: 1 });
    expect(fresh.model.config.task).toBe(STYLES_TASK_NAME);
    expect(fresh.finalLoss).toBeGreaterThan(0);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'xopd-styles-'));
    const base = pretrain({ tokenizer: 'qwen3', shape: { hiddenSize: 16, numLayers: 1, numHeads: 2, intermediateSize: 24 }, steps: 1, batch: 2, lr: 1e-3, seed: 1 });
    expect(base.model.config.task).toBe(TASK_NAME);
    base.model.save(dir);
    // one step at lr 0 (warm-up from 0): the weights carry over unchanged, the folder names the new variant
    const cont = pretrain({ tokenizer: 'qwen3', init: dir, task: STYLES_TASK_NAME, steps: 1, batch: 2, lr: 0, minLr: 0, seed: 1 });
    expect(cont.model.config.task).toBe(STYLES_TASK_NAME);
    expect(Array.from(cont.model.getParams())).toEqual(Array.from(base.model.getParams()));
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('a part-way checkpoint (pretrain stopAfter, the styles student recipe)', () => {
  const shape = { hiddenSize: 16, numLayers: 1, numHeads: 2, intermediateSize: 24 };
  const base = { tokenizer: 'llama3', task: STYLES_TASK_NAME, shape, steps: 6, batch: 2, lr: 3e-3, minLr: 3e-4, warmup: 1, seed: 4 } as const;

  it('is the prefix of the full schedule: the same weights as the full run stopped at that step', () => {
    const cut = pretrain({ ...base, stopAfter: 3 });
    expect(cut.steps).toBe(3);
    let seen = 0;
    const interrupted = pretrain({ ...base, shouldStop: () => ++seen >= 3 });
    expect(interrupted.steps).toBe(3);
    expect(Array.from(cut.model.getParams())).toEqual(Array.from(interrupted.model.getParams()));
    // and not the weights of a 3-step schedule, whose decay ends earlier
    const short = pretrain({ ...base, steps: 3 });
    expect(Array.from(short.model.getParams())).not.toEqual(Array.from(cut.model.getParams()));
  });

  it('refuses a stop past the schedule, naming the option', () => {
    expect(() => pretrain({ ...base, stopAfter: 7 })).toThrow(/stopAfter/);
  });
});

describe("the styles teacher's entropy (sampleStats, xopd eval --samples)", () => {
  it('the shipped teacher writes one working per problem; the styles teacher many, each sample graded', () => {
    const opts = { n: 12, seed: 77, split: 'train' as const, samples: 6 };
    const shipped = sampleStats(Model.load(path.join(packageRoot, 'models', 'teacher-qwen3')), opts);
    const styles = sampleStats(Model.load(path.join(packageRoot, 'models', 'teacher-qwen3-styles')), opts);
    expect(shipped.distinctPerProblem).toBeLessThan(1.5);
    expect(shipped.accuracy).toBeGreaterThan(0.9);
    expect(styles.distinctPerProblem).toBeGreaterThan(4); // 6 samples: most differ
    expect(styles.nllPerToken).toBeGreaterThan(10 * shipped.nllPerToken + 0.01);
    expect(styles.accuracy).toBeGreaterThan(0.4); // right far more often than chance, not always
    expect(styles.tokensPerAnswer).toBeGreaterThan(30);
    // the same seed draws the same samples
    expect(sampleStats(Model.load(path.join(packageRoot, 'models', 'teacher-qwen3-styles')), opts)).toEqual(styles);
    expect(() => sampleStats(Model.load(path.join(packageRoot, 'models', 'teacher-qwen3')), { ...opts, samples: 0 })).toThrow(/samples/);
  });
});
