/** Accuracy of a model on the arithmetic task: greedy answers to n problems of a split, graded exactly. */
import * as check from '../core/check.js';
import type { Model } from '../model/model.js';
import { MAX_RESPONSE_TOKENS, responseStopIds, generateProblems, grade, promptIds, type Problem, type ProblemKind, type Split } from './arithmetic.js';

export interface EvalResult {
  accuracy: number;
  n: number;
  correct: number;
  split: Split;
  seed: number;
  /** accuracy per problem kind */
  byKind: Record<ProblemKind, { n: number; correct: number; accuracy: number }>;
  /** the first few problems with the model's answers */
  examples: Array<{ question: string; expected: number; response: string; correct: boolean }>;
  seconds: number;
}

export interface EvalOptions {
  n: number;
  seed: number;
  split?: Split;
  /** most response tokens per problem (default 64) */
  maxTokens?: number;
  /** problems per generate call (default 100) */
  batch?: number;
  examples?: number;
}

export function evaluate(model: Model, opts: EvalOptions): EvalResult {
  const n = check.int(opts.n, 'n', 1, 1_000_000);
  const seed = check.int(opts.seed, 'seed', 0, 2 ** 32 - 1);
  const split = opts.split ?? 'test';
  const maxTokens = check.int(opts.maxTokens ?? MAX_RESPONSE_TOKENS, 'maxTokens', 1, 4096);
  const batch = check.int(opts.batch ?? 100, 'batch', 1, 100_000);
  const problems = generateProblems({ split, count: n, seed });
  return evaluateProblems(model, problems, { maxTokens, batch, examples: opts.examples ?? 5, split, seed });
}

export function evaluateProblems(model: Model, problems: Problem[],
  opts: { maxTokens: number; batch: number; examples: number; split: Split; seed: number }): EvalResult {
  const t0 = performance.now();
  const tok = model.tokenizer;
  const stopIds = responseStopIds(tok);
  const byKind = {
    add: { n: 0, correct: 0, accuracy: 0 }, sub: { n: 0, correct: 0, accuracy: 0 }, 'add-sub': { n: 0, correct: 0, accuracy: 0 },
  };
  const examples: EvalResult['examples'] = [];
  let correct = 0;
  for (let i = 0; i < problems.length; i += opts.batch) {
    const part = problems.slice(i, i + opts.batch);
    const prompts = part.map((p) => promptIds(tok, p));
    const room = Math.min(...prompts.map((p) => model.config.maxSeqLen - p.length));
    const rollouts = model.generateSync(prompts, { maxTokens: Math.max(1, Math.min(opts.maxTokens, room)), temperature: 0, stopIds, seed: 0 });
    part.forEach((p, j) => {
      const text = tok.decode(rollouts[j]!.ids, { skipSpecialTokens: true });
      const g = grade(p, text);
      correct += g.correct ? 1 : 0;
      byKind[p.kind].n++;
      byKind[p.kind].correct += g.correct ? 1 : 0;
      if (examples.length < opts.examples) examples.push({ question: p.question, expected: p.answer, response: text, correct: g.correct });
    });
  }
  for (const k of Object.values(byKind)) k.accuracy = k.n ? k.correct / k.n : 0;
  return {
    accuracy: correct / problems.length, n: problems.length, correct, split: opts.split, seed: opts.seed, byKind, examples,
    seconds: (performance.now() - t0) / 1000,
  };
}

/** How varied and how right a model's samples are (xopd eval --samples): a teacher's entropy, measured. */
export interface SampleStats {
  /** samples drawn per problem */
  samples: number;
  temperature: number;
  /** share of all samples whose final answer is right */
  accuracy: number;
  /** mean number of different answer texts among one problem's samples (1: deterministic) */
  distinctPerProblem: number;
  /** mean negative log-probability of the sampled tokens, in nats (an estimate of the entropy per token at temperature 1) */
  nllPerToken: number;
  tokensPerAnswer: number;
}

export interface SampleStatsOptions {
  n: number;
  seed: number;
  split?: Split;
  samples: number;
  /** default 1 */
  temperature?: number;
  maxTokens?: number;
}

export function sampleStats(model: Model, opts: SampleStatsOptions): SampleStats {
  const n = check.int(opts.n, 'n', 1, 1_000_000);
  const seed = check.int(opts.seed, 'seed', 0, 2 ** 32 - 1);
  const samples = check.int(opts.samples, 'samples', 1, 1024);
  const temperature = check.num(opts.temperature ?? 1, 'temperature', 1e-6, 100);
  const maxTokens = check.int(opts.maxTokens ?? MAX_RESPONSE_TOKENS, 'maxTokens', 1, 4096);
  const tok = model.tokenizer;
  const stopIds = responseStopIds(tok);
  let right = 0, distinct = 0, nll = 0, tokens = 0;
  generateProblems({ split: opts.split ?? 'test', count: n, seed }).forEach((p, i) => {
    const prompt = promptIds(tok, p);
    const room = Math.max(1, Math.min(maxTokens, model.config.maxSeqLen - prompt.length));
    // one seed per problem, so a problem's samples do not depend on how many came before it
    const rollouts = model.generateSync(Array.from({ length: samples }, () => prompt), { maxTokens: room, temperature, stopIds, seed: (seed * 7919 + i) >>> 0 });
    const texts = new Set<string>();
    for (const r of rollouts) {
      const text = tok.decode(r.ids, { skipSpecialTokens: true });
      texts.add(text);
      if (grade(p, text).correct) right++;
      for (const lp of r.logprobs) nll -= lp;
      tokens += r.ids.length;
    }
    distinct += texts.size;
  });
  return { samples, temperature, accuracy: right / (n * samples), distinctPerProblem: distinct / n, nllPerToken: nll / tokens, tokensPerAnswer: tokens / (n * samples) };
}
