/**
 * Task variant 'arith-v2-styles': the arith-v2 problems, splits, prompts and grading, with a
 * reference working that is not one deterministic string. Each training example writes its working
 * in one of several equally valid ways, drawn at random:
 * - an addition is restated "a + b:" or "b + a:";
 * - each addition column writes its two digits in either order ("1 + 7 = 8" or "7 + 1 = 8"; a carry
 *   stays last, "+ 1");
 * - each subtraction column is written as the difference or as its check by addition
 *   ("11 - 7 = 4" or "4 + 7 = 11").
 * A model trained on these answers has real entropy at every column (about one bit each), so its
 * samples differ from one another while every one of them is right: the teacher of the experiment's
 * second regime (docs/RESULTS.md says why). The texts use exactly arith-v2's tokens, so a model's id
 * list (taskVocabIds) is the same for both variants and arith-v2 itself is untouched: its problems,
 * splits, references and grading are those of arithmetic.ts.
 */
import { rng } from '../core/random.js';
import * as check from '../core/check.js';
import { TASK_NAME, type Problem, type ProblemKind } from './arithmetic.js';

export const STYLES_TASK_NAME = 'arith-v2-styles';

/** The task variants a model can be trained on (`xopd pretrain --task`). */
export const TASK_VARIANTS = [TASK_NAME, STYLES_TASK_NAME] as const;
export type TaskVariant = (typeof TASK_VARIANTS)[number];

function digitsOnesFirst(n: number): number[] {
  return Array.from(String(n), Number).reverse();
}

/** One column working of a op b, its written form drawn from `r` (see the file comment). */
function styledWorking(a: number, op: '+' | '-', b: number, r: () => number): string {
  const da = digitsOnesFirst(a), db = digitsOnesFirst(b);
  const steps: string[] = [];
  let carry = 0;
  for (let k = 0; k < Math.max(da.length, db.length); k++) {
    const x = da[k] ?? 0, y = db[k] ?? 0;
    if (op === '+') {
      const sum = x + y + carry;
      const [p, q] = r() < 0.5 ? [x, y] : [y, x];
      steps.push(`${p} + ${q}${carry ? ' + 1' : ''} = ${sum}`);
      carry = sum >= 10 ? 1 : 0;
    } else {
      const lowered = x - carry;
      carry = lowered < y ? 1 : 0;
      const top = lowered + 10 * carry;
      steps.push(r() < 0.5 ? `${top} - ${y} = ${top - y}` : `${top - y} + ${y} = ${top}`);
    }
  }
  const [first, second] = op === '+' && r() < 0.5 ? [b, a] : [a, b];
  return `${first} ${op} ${second}: ${steps.join(', ')}.`;
}

/** A reference response of arith-v2-styles: a valid working drawn from `r`, then "The answer is N." */
export function styledResponseText(kind: ProblemKind, operands: number[], r: () => number): string {
  const [a, b, c] = operands as [number, number, number?];
  if (kind === 'add') return `${styledWorking(a, '+', b, r)} The answer is ${a + b}.`;
  if (kind === 'sub') return `${styledWorking(a, '-', b, r)} The answer is ${a - b}.`;
  const t = a + b;
  return `${styledWorking(a, '+', b, r)} ${styledWorking(t, '-', c!, r)} The answer is ${t - c!}.`;
}

/**
 * The reference writer of a variant: problem -> response text. arith-v2 returns the problem's own
 * response; arith-v2-styles draws a working from its own generator (seeded apart from the problem
 * stream, so the problems themselves are arith-v2's whatever the variant).
 */
export function referenceWriter(variant: TaskVariant, seed: number): (p: Problem) => string {
  check.oneOf(variant, 'task', TASK_VARIANTS);
  if (variant === TASK_NAME) return (p) => p.response;
  const r = rng((seed ^ 0x2f6b3c1d) >>> 0);
  return (p) => styledResponseText(p.kind, p.operands, r);
}
