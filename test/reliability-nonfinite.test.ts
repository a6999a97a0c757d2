// NaN and infinite values (docs/RELIABILITY.md, "Non-finite values"): the policy is
//   - in a row that is read (unmasked): an XopdError E_ARG_VALUE naming the array and index, nothing
//     computed, nothing written to `out`;
//   - in a row that is masked: never read, so never an error (padding may hold anything);
//   - a teacher logprob of -inf is probability 0: allowed where a probability is wanted (span
//     projection candidates), refused where a log is needed (chunkAdvantages: log q - log p).
// The loss-* and project-* suites cover the first cases (NaN/±inf logits, NaN probabilities, NaN
// realised teacher logprobs); these are the rest, one case per array and value.
import { afterAll, describe, expect, it } from 'vitest';
import { Tokenizer, TokenizerBridge, XopdError } from '../src/index.js';
import { sparseDivergence, crossEntropy } from '../src/loss/sparse-divergence.js';
import { policyGradientLoss } from '../src/loss/policy-gradient.js';
import { chunkAdvantages } from '../src/loss/chunk-advantages.js';
import { toBf16 } from '../src/loss/logits.js';
import { spanProjection } from '../src/project/span-projection.js';
import { randomLogits, randomTargets } from './helpers/loss.js';
import { Siblings, teacherScores } from './helpers/project.js';

const BAD = [NaN, Infinity, -Infinity];
const rows = 4, vocab = 17;
const shape = { rows, vocab };
const logits = randomLogits(rows, vocab, 5);
const targets = randomTargets(rows, vocab, 6, 4);

function expectValueError(fn: () => unknown, mentions: RegExp): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(XopdError);
  expect((err as XopdError).code).toBe('E_ARG_VALUE');
  expect((err as XopdError).message).toMatch(mentions);
}

let nonfiniteCases = 0;
afterAll(() => console.log(`reliability-nonfinite: ${nonfiniteCases} cases passed`));

describe('non-finite logits', () => {
  it('bf16 logits holding NaN or ±inf: E_ARG_VALUE naming the row', () => {
    for (const v of BAD) {
      const l = Float32Array.from(logits);
      l[2 * vocab + 5] = v;
      const bf = toBf16(l);
      const out = new Uint16Array(bf.length).fill(0x1234);
      expectValueError(() => sparseDivergence(bf, shape, targets, { divergence: 'jsd', out, device: 'cpu' }), /row 2/);
      expectValueError(() => policyGradientLoss(bf, shape, new Int32Array(rows), new Float32Array(rows).fill(1), new Uint8Array(rows).fill(1), { device: 'cpu' }), /row 2/);
      // `out` is unspecified after an error: rows before the bad one may already hold their gradient.
      nonfiniteCases += 2;
    }
  });

  it('crossEntropy and policyGradientLoss on NaN / +inf fp32 logits; masked rows may hold anything', () => {
    for (const v of BAD) {
      const l = Float32Array.from(logits);
      l[vocab + 1] = v;
      expectValueError(() => crossEntropy(l, shape, Int32Array.from([0, 1, 2, 3]), { device: 'cpu' }), /row 1/);
      expectValueError(() => policyGradientLoss(l, shape, new Int32Array(rows), new Float32Array(rows).fill(1), new Uint8Array(rows).fill(1), { device: 'cpu' }), /row 1/);
      const mask = Uint8Array.from([1, 0, 1, 1]);
      const ce = crossEntropy(l, shape, Int32Array.from([0, 1, 2, 3]), { mask, device: 'cpu' });
      const pg = policyGradientLoss(l, shape, new Int32Array(rows), new Float32Array(rows).fill(1), mask, { device: 'cpu' });
      expect(Number.isFinite(ce.loss) && Number.isFinite(pg.loss)).toBe(true);
      expect(ce.rows).toBe(3);
      expect(pg.stats.rows).toBe(3);
      nonfiniteCases += 4;
    }
  });

  it('a temperature that makes finite logits overflow is caught per row, not turned into NaN', () => {
    const l = Float32Array.from(logits);
    l[3] = 3e38;
    expectValueError(() => sparseDivergence(l, shape, targets, { divergence: 'reverse-kl', temperature: 0.25, device: 'cpu' }), /row 0/);
    nonfiniteCases++;
  });
});

describe('non-finite teacher values', () => {
  it('target probabilities and tails: NaN / ±inf are E_ARG_VALUE', () => {
    for (const v of BAD) {
      const p = { ...targets, probs: Float32Array.from(targets.probs) };
      p.probs[0] = v;
      expectValueError(() => sparseDivergence(logits, shape, p, { divergence: 'forward-kl' }), /probs\[0\]/);
      const t = { ...targets, tail: Float32Array.from(targets.tail) };
      t.tail[1] = v;
      expectValueError(() => sparseDivergence(logits, shape, t, { divergence: 'forward-kl' }), /tail\[1\]/);
      nonfiniteCases += 2;
    }
  });

  it('PPO old logprobs and advantages: NaN / ±inf are E_ARG_VALUE', () => {
    for (const v of BAD) {
      const old = new Float32Array(rows).fill(-1);
      old[3] = v;
      expectValueError(() => policyGradientLoss(logits, shape, new Int32Array(rows), new Float32Array(rows).fill(1), new Uint8Array(rows).fill(1), { oldLogprobs: old, device: 'cpu' }), /oldLogprobs\[3\]/);
      const adv = new Float32Array(rows).fill(1);
      adv[2] = v;
      expectValueError(() => policyGradientLoss(logits, shape, new Int32Array(rows), adv, new Uint8Array(rows).fill(1), { device: 'cpu' }), /advantages\[2\]/);
      nonfiniteCases += 2;
    }
  });

  it('chunkAdvantages: teacher or student logprob NaN, +inf or -inf is E_ARG_VALUE (log q - log p needs finite logs)', () => {
    const a = {
      chunkCount: 2, studentStart: Int32Array.from([0, 1]), studentEnd: Int32Array.from([1, 3]),
      teacherStart: Int32Array.from([0, 1]), teacherEnd: Int32Array.from([1, 2]), flags: new Uint8Array(2), studentChunk: Int32Array.from([0, 1, 1]),
    };
    for (const v of BAD) {
      expectValueError(() => chunkAdvantages(a, { teacherLogprobs: Float32Array.from([-1, v]), studentLogprobs: Float32Array.from([-1, -1, -1]) }), /teacherLogprobs\[1\]/);
      expectValueError(() => chunkAdvantages(a, { teacherLogprobs: Float32Array.from([-1, -1]), studentLogprobs: Float32Array.from([-1, -1, v]) }), /studentLogprobs\[2\]/);
      nonfiniteCases += 2;
    }
  });

  it('spanProjection: NaN / +inf teacher logprobs (realised or top-k) are E_ARG_VALUE; -inf is probability 0', () => {
    const student = Tokenizer.load('llama3'), teacher = Tokenizer.load('qwen3');
    const bridge = new TokenizerBridge(student, teacher);
    const s = student.encode('Sure: 48213 + 9377 = 57590, café.', { addSpecialTokens: false });
    const t = bridge.retokenize(s);
    const a = bridge.align(s, t);
    const sc = teacherScores(t, 3, 9, new Siblings(teacher));
    for (const v of [NaN, Infinity]) {
      expectValueError(() => spanProjection(bridge, a, s, { ...sc, logprobs: sc.logprobs.map((x, i) => (i === 1 ? v : x)) }), /logprob/i);
      expectValueError(() => spanProjection(bridge, a, s, { ...sc, topkLogprobs: sc.topkLogprobs.map((x, i) => (i === 4 ? v : x)) }), /logprob/i);
      nonfiniteCases += 2;
    }
    // A realised token the teacher gives probability 0: its chunk's targets carry no mass from it,
    // and every row stays a finite sub-distribution.
    const zero = spanProjection(bridge, a, s, { ...sc, logprobs: sc.logprobs.map((x, i) => (i === 1 ? -Infinity : x)) });
    for (let i = 0; i < zero.probs.length; i++) expect(Number.isFinite(zero.probs[i]!) && zero.probs[i]! >= 0).toBe(true);
    for (let j = 0; j < s.length; j++) expect(Number.isFinite(zero.tail[j]!)).toBe(true);
    nonfiniteCases++;
  });
});
