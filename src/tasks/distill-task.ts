/** Tasks a Distiller can train on: prompts from a seed, and exact grading of the student. */
import { Model } from '../model/model.js';
import { MAX_RESPONSE_TOKENS, generateProblems, grade, type Problem } from './arithmetic.js';
import { evaluateProblems } from './eval.js';
import type { ChatMessage } from '../tokenizer/chat-template.js';
import type { StudentPolicy } from '../model/roles.js';

/** Where prompts come from and how the student is graded. */
export interface DistillTask {
  readonly name: string;
  /** Chat messages of `n` training prompts: a pure function of (n, seed). */
  trainPrompts(n: number, seed: number): ChatMessage[][];
  /** Accuracy of `student` on `n` test problems (greedy answers, exact grading). */
  evaluate(student: StudentPolicy, n: number, seed: number): Promise<{ accuracy: number; n: number; correct: number }>;
}

/** Greedy answers of any StudentPolicy to the problems, graded exactly. */
async function accuracyOf(student: StudentPolicy, problems: Problem[], maxTokens: number): Promise<{ accuracy: number; n: number; correct: number }> {
  if (student instanceof Model) {
    const r = evaluateProblems(student, problems, { maxTokens, batch: 100, examples: 0, split: 'test', seed: 0 });
    return { accuracy: r.accuracy, n: r.n, correct: r.correct };
  }
  const tok = student.tokenizer;
  const prompts = problems.map((p) => tok.encode(tok.applyChatTemplate([{ role: 'user', content: p.question }], { addGenerationPrompt: true }), { addSpecialTokens: false }));
  const rollouts = await student.generate(prompts, { maxTokens, temperature: 0, seed: 0 });
  let correct = 0;
  rollouts.forEach((r, i) => { if (grade(problems[i]!, tok.decode(r.ids, { skipSpecialTokens: true })).correct) correct++; });
  return { accuracy: problems.length ? correct / problems.length : 0, n: problems.length, correct };
}

/** The arithmetic word problems of src/tasks (train split for prompts, test split for accuracy). */
export function arithmeticDistillTask(): DistillTask {
  return {
    name: 'arithmetic',
    trainPrompts(n, seed) {
      return generateProblems({ split: 'train', count: n, seed }).map((p) => [{ role: 'user', content: p.question }]);
    },
    async evaluate(student, n, seed) {
      return accuracyOf(student, generateProblems({ split: 'test', count: n, seed }), MAX_RESPONSE_TOKENS);
    },
  };
}
