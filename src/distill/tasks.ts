/** Tasks a Distiller can train on: prompts from a seed, and exact grading of the student. */
import { Model } from '../model/model.js';
import { MAX_RESPONSE_TOKENS, generateProblems, grade, type Problem } from '../tasks/arithmetic.js';
import { evaluateProblems } from '../tasks/eval.js';
import type { DistillTask } from './distiller.js';
import type { StudentPolicy } from './roles.js';

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
