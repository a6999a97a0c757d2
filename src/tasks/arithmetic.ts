/**
 * Arithmetic word problems with exact grading: the task the embedded models are trained and
 * distilled on. Numbers are where tokenizer families differ most (Qwen 3 writes one digit per
 * token, Llama 3 up to three), so every answer carries multi-digit numbers.
 *
 * Distribution (task 'arith-v1'):
 * - operands have 3 or 4 digits (100..9999, digit count uniform, then uniform within);
 * - 60% sums "a + b", 25% differences "a - b" with a >= b, 15% two-step "a + b - c" (result >= 0);
 * - each problem is one of a few English templates with a name, an item and a place.
 * Responses show column working, right to left, then the answer, e.g.
 *   "4821 + 377: 1 + 7 = 8, 2 + 7 = 9, 8 + 3 = 11, 4 + 0 + 1 = 5. The answer is 5198."
 *   "4821 - 377: 11 - 7 = 4, 11 - 7 = 4, 7 - 3 = 4, 4 - 0 = 4. The answer is 4444."
 * and, two-step, the sum's working, then "5198 - 1250: ..." and the answer. A carry shows as "+ 1"; a
 * borrow as the top digit lowered by one and, where it falls short, raised by ten.
 *
 * Why the working (arith-v2; arith-v1 wrote "4821 + 377 = 5198." straight away): Llama 3 writes numbers
 * in 3-digit tokens grouped from the left, so its first answer token needs every carry of the sum in
 * one forward pass; no student of this size learned that (README). With the working, every token
 * is a one-digit step or a copy, in every tokenizer family, and the answer's 3-digit tokens are
 * assembled from digits already written.
 *
 * Splits: a problem's arithmetic (kind and operands) hashes to the test split (1 in 10) or the
 * train split, so the splits are disjoint whatever the seeds and counts.
 */
import { rng } from '../core/random.js';
import * as check from '../core/check.js';
import { ErrorCode, XopdError } from '../core/errors.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';

export const TASK_NAME = 'arith-v2';

/**
 * Response tokens to allow when sampling: the longest reference response is 132 tokens (Qwen 3 and
 * Gemma 3, a two-step problem; Llama 3: 113), the longest prompt 46, within the models' 192.
 */
export const MAX_RESPONSE_TOKENS = 140;

export type ProblemKind = 'add' | 'sub' | 'add-sub';
export type Split = 'train' | 'test';

export interface Problem {
  kind: ProblemKind;
  /** operands: [a, b] or, two-step, [a, b, c] */
  operands: number[];
  /** the exact final answer */
  answer: number;
  /** the word problem (the user message) */
  question: string;
  /** the reference response (the assistant message, without end-of-turn) */
  response: string;
}

const NAMES = ['Mia', 'Leo', 'Ava', 'Sam', 'Nora', 'Omar', 'Lily', 'Ben', 'Zoe', 'Ivan'];
const ITEMS = ['apples', 'coins', 'stamps', 'books', 'marbles', 'shells', 'cards', 'pens', 'tickets', 'beads'];
const PLACES = ['shop', 'library', 'farm', 'school', 'museum', 'bakery'];

type Slots = { name: string; item: string; place: string; a: number; b: number; c: number };
type Template = (s: Slots) => string;

const TEMPLATES: Record<ProblemKind, Template[]> = {
  add: [
    (s) => `${s.name} has ${s.a} ${s.item}. ${s.name} gets ${s.b} more. How many ${s.item} does ${s.name} have now?`,
    (s) => `A ${s.place} had ${s.a} ${s.item} and received ${s.b} more. How many ${s.item} does the ${s.place} have now?`,
    (s) => `${s.name} collected ${s.a} ${s.item} last year and ${s.b} this year. How many ${s.item} is that in total?`,
  ],
  sub: [
    (s) => `${s.name} has ${s.a} ${s.item} and gives away ${s.b}. How many ${s.item} does ${s.name} have left?`,
    (s) => `A ${s.place} had ${s.a} ${s.item} and sold ${s.b} of them. How many ${s.item} are left?`,
    (s) => `${s.name} needs ${s.a} ${s.item} and already has ${s.b}. How many more ${s.item} does ${s.name} need?`,
  ],
  'add-sub': [
    (s) => `${s.name} has ${s.a} ${s.item}, gets ${s.b} more and then gives away ${s.c}. How many ${s.item} does ${s.name} have now?`,
    (s) => `A ${s.place} had ${s.a} ${s.item}. It received ${s.b} more and then sold ${s.c}. How many ${s.item} does the ${s.place} have now?`,
  ],
};

/** Column working of a op b (a >= b for '-'), ones column first: "a op b: x op y = z, ...". */
function columnWorking(a: number, op: '+' | '-', b: number): string {
  const da = Array.from(String(a), Number).reverse(), db = Array.from(String(b), Number).reverse();
  const steps: string[] = [];
  let carry = 0; // the carry (sum) or borrow (difference) into this column
  for (let k = 0; k < Math.max(da.length, db.length); k++) {
    const x = da[k] ?? 0, y = db[k] ?? 0;
    if (op === '+') {
      const sum = x + y + carry;
      steps.push(`${x} + ${y}${carry ? ' + 1' : ''} = ${sum}`);
      carry = sum >= 10 ? 1 : 0;
    } else {
      const lowered = x - carry;
      carry = lowered < y ? 1 : 0;
      const top = lowered + 10 * carry;
      steps.push(`${top} - ${y} = ${top - y}`);
    }
  }
  return `${a} ${op} ${b}: ${steps.join(', ')}.`;
}

/** The reference response of a problem: the column working, then "The answer is N." */
export function responseText(kind: ProblemKind, operands: number[]): { text: string; answer: number } {
  const [a, b, c] = operands as [number, number, number?];
  if (kind === 'add') return { text: `${columnWorking(a, '+', b)} The answer is ${a + b}.`, answer: a + b };
  if (kind === 'sub') return { text: `${columnWorking(a, '-', b)} The answer is ${a - b}.`, answer: a - b };
  const t = a + b, r = t - c!;
  return { text: `${columnWorking(a, '+', b)} ${columnWorking(t, '-', c!)} The answer is ${r}.`, answer: r };
}

/** FNV-1a over the problem's arithmetic: 1 in 10 keys are test problems. */
export function splitOf(kind: ProblemKind, operands: number[]): Split {
  const key = `${kind}:${operands.join(':')}`;
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % 10 === 0 ? 'test' : 'train';
}

function operand(r: () => number, digits?: readonly number[]): number {
  if (digits === undefined) return r() < 0.5 ? 100 + Math.floor(r() * 900) : 1000 + Math.floor(r() * 9000);
  const n = digits[Math.floor(r() * digits.length)]!;
  return 10 ** (n - 1) + Math.floor(r() * 9 * 10 ** (n - 1));
}

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)]!;
}

/** The task's mix of kinds: shares of add, sub, add-sub. */
export const TASK_MIX: readonly [number, number, number] = [0.6, 0.25, 0.15];

function sample(r: () => number, mix?: readonly [number, number, number], digits?: readonly number[]): Problem {
  const u = r();
  const kind: ProblemKind = mix === undefined
    ? (u < 0.6 ? 'add' : u < 0.85 ? 'sub' : 'add-sub')
    : (u < mix[0] ? 'add' : u < mix[0] + mix[1] ? 'sub' : 'add-sub');
  let a = operand(r, digits), b = operand(r, digits);
  let operands: number[];
  if (kind === 'sub') {
    if (a < b) [a, b] = [b, a];
    operands = [a, b];
  } else if (kind === 'add-sub') {
    let c = operand(r, digits);
    while (c > a + b) c = operand(r, digits);
    operands = [a, b, c];
  } else operands = [a, b];
  const slots: Slots = { name: pick(r, NAMES), item: pick(r, ITEMS), place: pick(r, PLACES), a: operands[0]!, b: operands[1]!, c: operands[2] ?? 0 };
  const question = pick(r, TEMPLATES[kind])(slots);
  const { text, answer } = responseText(kind, operands);
  return { kind, operands, answer, question, response: text };
}

export interface StreamOptions {
  /** shares of add, sub, add-sub (normalised); default the task's TASK_MIX */
  mix?: readonly number[];
  /** operand digit counts to draw from (subset of 3, 4); default the task's (3 or 4, uniform) */
  digits?: readonly number[];
}

/**
 * An endless stream of one split's problems, deterministic in `seed`. The options narrow or
 * re-weight the training distribution (a curriculum); the task itself, and every evaluation, is
 * the default.
 */
export function* problemStream(split: Split, seed: number, opts: StreamOptions = {}): Generator<Problem, never> {
  const { mix, digits } = opts;
  if (digits !== undefined && (!Array.isArray(digits) || digits.length === 0 || digits.some((n) => n !== 3 && n !== 4)))
    throw new XopdError(ErrorCode.ARG_VALUE, `digits must list operand digit counts among 3 and 4, got ${check.describe(digits)}`);
  check.oneOf(split, 'split', ['train', 'test'] as const);
  check.int(seed, 'seed', 0, 2 ** 32 - 1);
  let m: [number, number, number] | undefined;
  if (mix !== undefined) {
    if (!Array.isArray(mix) || mix.length !== 3 || mix.some((x) => typeof x !== 'number' || !(x >= 0)) || !(mix[0]! + mix[1]! + mix[2]! > 0))
      throw new XopdError(ErrorCode.ARG_VALUE, `mix must be three non-negative shares (add, sub, add-sub) with a positive sum, got ${check.describe(mix)}`);
    const t = mix[0]! + mix[1]! + mix[2]!;
    m = [mix[0]! / t, mix[1]! / t, mix[2]! / t];
  }
  // Different streams per split, so the test problems of a seed are not the train rejects.
  const r = rng((seed * 2 + (split === 'test' ? 1 : 0)) >>> 0);
  for (;;) {
    const p = sample(r, m, digits);
    if (splitOf(p.kind, p.operands) === split) yield p;
  }
}

/** The first `count` problems of problemStream(split, seed). */
export function generateProblems(opts: { split: Split; count: number; seed: number }): Problem[] {
  const count = check.int(opts.count, 'count', 0, 10_000_000);
  const stream = problemStream(opts.split, opts.seed);
  return Array.from({ length: count }, () => stream.next().value);
}

/**
 * The final answer of a response: the number after the last "The answer is", else the last
 * integer in the text (commas inside numbers allowed), else null.
 */
export function extractAnswer(text: string): number | null {
  check.str(text, 'text');
  const tagged = [...text.matchAll(/answer is\s*(-?\d[\d,]*)/gi)];
  const raw = tagged.length ? tagged[tagged.length - 1]![1]! : [...text.matchAll(/-?\d[\d,]*/g)].pop()?.[0];
  if (raw === undefined) return null;
  const v = Number(raw.replace(/,/g, ''));
  return Number.isSafeInteger(v) ? v : null;
}

export function grade(problem: Problem, responseText: string): { correct: boolean; predicted: number | null } {
  const predicted = extractAnswer(responseText);
  return { correct: predicted === problem.answer, predicted };
}

// ---------------------------------------------------------------------------------------------
// Rendering with a model's own tokenizer and chat template (DESIGN section 3.4)

/** The id every response of the task ends with (Tokenizer.endOfTurnId); a tokenizer without one cannot end a response. */
export function responseEndId(tok: Tokenizer): number {
  const id = tok.endOfTurnId;
  if (id === null) throw new XopdError(ErrorCode.CHAT_TEMPLATE, `tokenizer ${tok.name} has no end-of-turn or EOS id: a response of the task cannot end`);
  return id;
}

/** The ids a sampled response of the task stops at: its end-of-turn id and the tokenizer's EOS ids. */
export function responseStopIds(tok: Tokenizer): Int32Array {
  return Int32Array.from(new Set([responseEndId(tok), ...tok.eosIds]));
}

/** The prompt ids: the question as one user message, rendered with the tokenizer's chat template. */
export function promptIds(tok: Tokenizer, problem: Problem): Int32Array {
  const text = tok.applyChatTemplate([{ role: 'user', content: problem.question }], { addGenerationPrompt: true });
  return tok.encode(text, { addSpecialTokens: false });
}

/** The reference response ids (encoded apart from the prompt), ending with the end-of-turn id. */
export function responseIds(tok: Tokenizer, problem: Problem, eot = responseEndId(tok)): Int32Array {
  const ids = tok.encode(problem.response, { addSpecialTokens: false });
  const out = new Int32Array(ids.length + 1);
  out.set(ids);
  out[ids.length] = eot;
  return out;
}

/**
 * Every tokenizer id the task's texts can use under `tok`, sorted: each template rendered with
 * each name, item and place (prompt and response), every digit string of 1 to 3 digits (all the
 * pieces a number of up to 5 digits is split into), and the end-of-turn id. A model's output
 * layer covers exactly these ids.
 */
export function taskVocabIds(tok: Tokenizer): Int32Array {
  const ids = new Set<number>();
  const add = (xs: Int32Array) => xs.forEach((x) => ids.add(x));
  const base: Slots = { name: NAMES[0]!, item: ITEMS[0]!, place: PLACES[0]!, a: 4821, b: 377, c: 1250 };
  const variants: Slots[] = [base];
  for (const name of NAMES) variants.push({ ...base, name });
  for (const item of ITEMS) variants.push({ ...base, item });
  for (const place of PLACES) variants.push({ ...base, place });
  for (const kind of Object.keys(TEMPLATES) as ProblemKind[]) {
    const operands = kind === 'add-sub' ? [4821, 377, 1250] : [4821, 377];
    const { text, answer } = responseText(kind, operands);
    for (const tpl of TEMPLATES[kind])
      for (const s of variants) {
        const problem: Problem = { kind, operands, answer, question: tpl(s), response: text };
        add(promptIds(tok, problem));
        add(responseIds(tok, problem));
      }
  }
  for (let len = 1; len <= 3; len++)
    for (let v = 0; v < 10 ** len; v++) {
      const digits = String(v).padStart(len, '0');
      add(tok.encode(digits, { addSpecialTokens: false }));
      add(tok.encode(` ${digits}.`, { addSpecialTokens: false }));
    }
  ids.add(responseEndId(tok));
  return Int32Array.from([...ids].sort((a, b) => a - b));
}
