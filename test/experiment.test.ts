// CI smoke of `xopd experiment`: every arm runs on the shipped models to the same FLOP budget and
// the report's charts carry each arm's series.
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_STUDENT, DEFAULT_TEACHER } from '../src/run/job.js';
import { ARMS, makeArm } from '../src/experiment/arms.js';
import { MeteredModel } from '../src/experiment/metered.js';
import { Model } from '../src/model/model.js';
import { arithmeticDistillTask } from '../src/tasks/distill-task.js';
import { runExperiment } from '../src/experiment/experiment.js';
import { forwardFlops, generateFlops, trainFlops } from '../src/experiment/flops.js';
import { DEFAULT_SHAPE } from '../src/model/config.js';

describe('flops', () => {
  const s = { ...DEFAULT_SHAPE, hiddenSize: 4, numLayers: 1, intermediateSize: 8, mlp: 'swiglu' as const, vocab: 10 };
  it('counts weights, causal attention and logits', () => {
    // per token: 4·16 + 3·4·8 = 160 MACs; 3 tokens -> 480; keys 1+2+3 = 6 -> 2·4·6 = 48; logits 10·4·2 = 80
    expect(forwardFlops(s, 0, 3, 2)).toBe(2 * (480 + 48 + 80));
    expect(trainFlops(s, 1, 2)).toBe(3 * forwardFlops(s, 0, 3, 2));
    // generation with a KV cache equals one forward over the whole sequence with logits per new token
    expect(generateFlops(s, 5, 4)).toBe(forwardFlops(s, 0, 8, 4));
  });
});

describe('xopd experiment (smoke)', () => {
  it('runs every arm to the same budget and reports each series', async () => {
    const out = mkdtempSync(path.join(os.tmpdir(), 'xopd-exp-'));
    const lines: string[] = [];
    const r = await runExperiment({
      studentDir: DEFAULT_STUDENT, teacherDir: DEFAULT_TEACHER, arms: [...ARMS], seeds: [1], budget: 0, steps: 2,
      evalEvery: 2, evalN: 10, batchSize: 2, maxTokens: 40, topK: 4, lr: 1e-3, outDir: out, command: 'test', log: (l) => lines.push(l),
    });
    expect(lines.length).toBe(ARMS.length);
    expect(r.budget).toBeGreaterThan(0);
    for (const run of r.report.runs) {
      const last = run.points[run.points.length - 1]!;
      expect(last.flops).toBeGreaterThanOrEqual(r.budget);
      expect(run.points[0]!.flops).toBe(0);
    }
    const html = readFileSync(r.reportFile, 'utf8');
    const data = JSON.parse(/<script id="xopd-data" type="application\/json">([\s\S]*?)<\/script>/.exec(html)![1]!);
    for (const chart of data.charts) expect(chart.series.map((s: { arm: string }) => s.arm)).toEqual([...ARMS]);
    // OPD arms align; SFT does not
    expect(r.report.alignment.map((a) => a.arm).sort()).toEqual(['chunk-pg', 'span-fkl', 'span-jsd', 'span-rkl', 'uld']);
    for (const a of r.report.alignment) {
      expect(a.oneToOneShare).toBeGreaterThan(0.3);
      expect(a.oneToOneShare).toBeLessThanOrEqual(1);
    }
  }, 180_000);

  // A teacher whose context is shorter than the prompt plus the retokenized answer (Qwen 3 writes
  // ~1.3x the tokens of Llama 3 here): every arm cuts to fit, as the Distiller does, instead of an
  // E_TOO_LONG from the teacher (what a full run hit before).
  it('every arm fits a teacher with a short context', async () => {
    const student = new MeteredModel(Model.load(DEFAULT_STUDENT));
    const shipped = Model.load(DEFAULT_TEACHER);
    const teacher = new MeteredModel(Model.create({ ...shipped.config, maxSeqLen: 72 }, { seed: 1, tokenizer: shipped.tokenizer }));
    expect(teacher.maxSequenceLength).toBe(72);
    for (const arm of ARMS) {
      const stepper = makeArm(arm, student, teacher, arithmeticDistillTask(), { batchSize: 3, maxTokens: 140, topK: 4, seed: 5 });
      const r = await stepper.step(1);
      expect(r.studentTokens).toBeGreaterThan(0);
      if (arm !== 'sft') expect(r.teacherTokens).toBeLessThan(3 * 72);
    }
  }, 120_000);
});
