// The arithmetic task: seeded generation, disjoint splits, exact grading, chat-template rendering
// and the id lists each tokenizer needs.
import { describe, expect, it } from 'vitest';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import {
  responseEndId, extractAnswer, generateProblems, grade, problemStream, promptIds, responseIds, responseText, splitOf, taskVocabIds, type Problem,
} from '../src/tasks/arithmetic.js';

const qwen = Tokenizer.load('qwen3');
const llama = Tokenizer.load('llama3');
const key = (p: Problem) => `${p.kind}:${p.operands.join(':')}`;

describe('problems', () => {
  it('are deterministic in the seed and differ across seeds', () => {
    const a = generateProblems({ split: 'train', count: 50, seed: 4 });
    expect(generateProblems({ split: 'train', count: 50, seed: 4 })).toEqual(a);
    expect(generateProblems({ split: 'train', count: 50, seed: 5 }).map(key)).not.toEqual(a.map(key));
    expect(generateProblems({ split: 'train', count: 20, seed: 4 })).toEqual(a.slice(0, 20));
  });

  it('have the documented distribution and correct answers', () => {
    const ps = generateProblems({ split: 'train', count: 4000, seed: 1 });
    const share = (k: string) => ps.filter((p) => p.kind === k).length / ps.length;
    expect(share('add')).toBeGreaterThan(0.55);
    expect(share('add')).toBeLessThan(0.65);
    expect(share('sub')).toBeGreaterThan(0.21);
    expect(share('add-sub')).toBeGreaterThan(0.12);
    for (const p of ps) {
      for (const x of p.operands) expect(x >= 100 && x <= 9999).toBe(true);
      const [a, b, c] = p.operands as [number, number, number];
      const want = p.kind === 'add' ? a + b : p.kind === 'sub' ? a - b : a + b - c;
      expect(p.answer).toBe(want);
      expect(p.answer).toBeGreaterThanOrEqual(0);
      expect(p.response.endsWith(`The answer is ${want}.`)).toBe(true);
      for (const x of p.operands) expect(p.question).toContain(String(x));
    }
    expect(ps.filter((p) => p.operands[0]! < 1000).length / ps.length).toBeGreaterThan(0.3); // 3-digit operands are common
  });

  it('show column working whose every step is right and whose digits spell the result', () => {
    const e = responseText('add', [4821, 377]).text;
    expect(e).toBe('4821 + 377: 1 + 7 = 8, 2 + 7 = 9, 8 + 3 = 11, 4 + 0 + 1 = 5. The answer is 5198.');
    expect(responseText('sub', [4821, 377]).text).toBe('4821 - 377: 11 - 7 = 4, 11 - 7 = 4, 7 - 3 = 4, 4 - 0 = 4. The answer is 4444.');
    // Re-derive each working from its text alone: every step's arithmetic holds, the carries and
    // borrows chain, and the column digits (ones first) read as the stated result.
    const check = (working: string) => {
      const m = /^(\d+) ([+-]) (\d+): (.*)$/.exec(working)!;
      const [a, op, b] = [Number(m[1]), m[2], Number(m[3])];
      const da = Array.from(m[1]!, Number).reverse(), db = Array.from(m[3]!, Number).reverse();
      const steps = m[4]!.split(', ');
      expect(steps.length).toBe(Math.max(da.length, db.length));
      let carry = 0, digits = '';
      steps.forEach((st, k) => {
        const t = /^(\d+) ([+-]) (\d+)( \+ 1)? = (\d+)$/.exec(st)!;
        const [x, y, z] = [Number(t[1]), Number(t[3]), Number(t[5])];
        expect(y).toBe(db[k] ?? 0);
        if (op === '+') {
          expect(x).toBe(da[k] ?? 0);
          expect(t[4] !== undefined).toBe(carry === 1);
          expect(z).toBe(x + y + carry);
          carry = z >= 10 ? 1 : 0;
          digits = (k === steps.length - 1 ? String(z) : String(z % 10)) + digits;
        } else {
          expect(t[4]).toBeUndefined();
          expect(x === da[k]! - carry || x === da[k]! - carry + 10).toBe(true);
          carry = x > da[k]! - carry ? 1 : 0;
          expect(z).toBe(x - y);
          expect(z >= 0 && z <= 9).toBe(true);
          digits = String(z) + digits;
        }
      });
      if (op === '-') expect(carry).toBe(0);
      return { value: Number(digits), want: op === '+' ? a + b : a - b };
    };
    for (const p of generateProblems({ split: 'train', count: 3000, seed: 9 })) {
      const workings = p.response.replace(/ The answer is \d+\.$/, '').split(/\.(?: |$)/).filter(Boolean);
      expect(workings.length).toBe(p.kind === 'add-sub' ? 2 : 1);
      let last = NaN;
      for (const w of workings) {
        const { value, want } = check(w);
        expect(value).toBe(want);
        last = value;
      }
      expect(last).toBe(p.answer);
      if (p.kind === 'add-sub') expect(workings[1]!.startsWith(`${p.operands[0]! + p.operands[1]!} - ${p.operands[2]}:`)).toBe(true);
    }
  });

  it('a training mix over-samples kinds without leaving the split', () => {
    const stream = problemStream('train', 3, { mix: [0, 1, 1] });
    const ps = Array.from({ length: 600 }, () => stream.next().value);
    expect(ps.some((p) => p.kind === 'add')).toBe(false);
    expect(ps.filter((p) => p.kind === 'sub').length).toBeGreaterThan(240);
    for (const p of ps) expect(splitOf(p.kind, p.operands)).toBe('train');
    const three = problemStream('train', 3, { digits: [3] });
    for (let i = 0; i < 300; i++) for (const x of three.next().value.operands) expect(x >= 100 && x <= 999).toBe(true);
    expect(() => problemStream('train', 3, { mix: [1, -1, 0] }).next()).toThrow(expect.objectContaining({ code: 'E_ARG_VALUE' }));
  });

  it('train and test splits are disjoint, whatever the seeds', () => {
    const test = generateProblems({ split: 'test', count: 2000, seed: 1 });
    const testKeys = new Set(test.map(key));
    for (const p of test) expect(splitOf(p.kind, p.operands)).toBe('test');
    for (const seed of [1, 2, 3]) for (const p of generateProblems({ split: 'train', count: 2000, seed })) expect(testKeys.has(key(p))).toBe(false);
    expect(testKeys.size).toBeGreaterThan(1990); // essentially no repeats
  });
});

describe('grading', () => {
  const [p] = generateProblems({ split: 'test', count: 1, seed: 9 }) as [Problem];
  it('extracts the final answer', () => {
    expect(extractAnswer('12 + 30 = 42. The answer is 42.')).toBe(42);
    expect(extractAnswer('The answer is 1,234.')).toBe(1234);
    expect(extractAnswer('the answer is 7, no wait, the answer is -8.')).toBe(-8);
    expect(extractAnswer('I think 5 + 6 = 11')).toBe(11);
    expect(extractAnswer('no number here')).toBeNull();
  });
  it('grades the reference as correct and a wrong number as wrong', () => {
    expect(grade(p, p.response)).toEqual({ correct: true, predicted: p.answer });
    expect(grade(p, p.response.replace(/answer is \d+/, `answer is ${p.answer + 1}`)).correct).toBe(false);
    expect(grade(p, '').correct).toBe(false);
  });
});

describe('rendering with each model family', () => {
  const [p] = generateProblems({ split: 'test', count: 1, seed: 2 }) as [Problem];
  it("uses each tokenizer's own chat template and end-of-turn id", () => {
    expect(qwen.decode(promptIds(qwen, p))).toBe(`<|im_start|>user\n${p.question}<|im_end|>\n<|im_start|>assistant\n`);
    expect(llama.decode(promptIds(llama, p))).toBe(`<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n${p.question}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n`);
    expect(responseEndId(qwen)).toBe(qwen.id('<|im_end|>'));
    expect(responseEndId(llama)).toBe(llama.id('<|eot_id|>'));
    const r = responseIds(qwen, p);
    expect(qwen.decode(r)).toBe(`${p.response}<|im_end|>`);
    expect(llama.decode(responseIds(llama, p))).toBe(`${p.response}<|eot_id|>`);
  });
  it('numbers split differently: Qwen 3 one digit per token, Llama 3 up to three', () => {
    const q = qwen.encode('57590', { addSpecialTokens: false });
    const l = llama.encode('57590', { addSpecialTokens: false });
    expect(q.length).toBe(5);
    expect(Array.from(l, (id) => llama.decode([id]))).toEqual(['575', '90']);
  });
  it.each([['qwen3', qwen], ['llama3', llama]] as const)('the %s id list covers every text of both splits', (_, tok) => {
    const ids = new Set(taskVocabIds(tok));
    expect(ids.has(responseEndId(tok))).toBe(true);
    const missing: number[] = [];
    for (const split of ['train', 'test'] as const)
      for (const q of generateProblems({ split, count: 1500, seed: 11 }))
        for (const id of [...promptIds(tok, q), ...responseIds(tok, q)]) if (!ids.has(id)) missing.push(id);
    expect(missing).toEqual([]);
  });
});
