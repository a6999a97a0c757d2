// `xopd experiment`: FLOP counting, every arm on the shipped models (contexts cut to fit), and the CI
// smoke of the whole protocol — both regimes through stage 1 and stage 2 (grid, choice, seeds), the
// control, the headline and the report — run as a process on two workers, then again from its cache.
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_STUDENT, DEFAULT_TEACHER } from '../src/run/job.js';
import { ARMS, DEFAULT_PROJECTION, OPD_ARMS, makeArm } from '../src/experiment/arms.js';
import { MeteredModel } from '../src/experiment/metered.js';
import { Model } from '../src/model/model.js';
import { arithmeticDistillTask } from '../src/tasks/distill-task.js';
import { forwardFlops, generateFlops, opdSampleFlops, trainFlops } from '../src/experiment/flops.js';
import { REGIMES, quickRegime, type Regime } from '../src/experiment/regimes.js';
import { jobKey, runExperiment } from '../src/experiment/experiment.js';
import { recipeCommand } from '../src/experiment/build.js';
import type { Stage1Job } from '../src/experiment/runs.js';
import { DEFAULT_SHAPE } from '../src/model/config.js';
import type { ExperimentReport } from '../src/report/html.js';
import { CLI, ensureBuilt } from './helpers/built.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'xopd-exp-'));
beforeAll(() => ensureBuilt(), 180_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('flops', () => {
  const s = { ...DEFAULT_SHAPE, hiddenSize: 4, numLayers: 1, intermediateSize: 8, mlp: 'swiglu' as const, vocab: 10 };
  it('counts weights, causal attention and logits', () => {
    // per token: 4·16 + 3·4·8 = 160 MACs; 3 tokens -> 480; keys 1+2+3 = 6 -> 2·4·6 = 48; logits 10·4·2 = 80
    expect(forwardFlops(s, 0, 3, 2)).toBe(2 * (480 + 48 + 80));
    expect(trainFlops(s, 1, 2)).toBe(3 * forwardFlops(s, 0, 3, 2));
    // generation with a KV cache equals one forward over the whole sequence with logits per new token
    expect(generateFlops(s, 5, 4)).toBe(forwardFlops(s, 0, 8, 4));
    // one OPD sample: student sampling, teacher scoring, student update
    const l = { studentPrompt: 5, studentResponse: 4, teacherPrompt: 6, teacherResponse: 5 };
    expect(opdSampleFlops(s, s, l)).toBe(generateFlops(s, 5, 4) + forwardFlops(s, 0, 11, 5) + trainFlops(s, 5, 4));
  });
});

describe('arms', () => {
  // A teacher whose context is shorter than the prompt plus the retokenized answer (Qwen 3 writes
  // ~1.3x the tokens of Llama 3 here): every arm cuts to fit, as the Distiller does, instead of an
  // E_TOO_LONG from the teacher.
  it('every arm fits a teacher with a short context', async () => {
    const student = new MeteredModel(Model.load(DEFAULT_STUDENT));
    const shipped = Model.load(DEFAULT_TEACHER);
    const teacher = new MeteredModel(Model.create({ ...shipped.config, maxSeqLen: 72 }, { seed: 1, tokenizer: shipped.tokenizer }));
    expect(teacher.maxSequenceLength).toBe(72);
    for (const arm of ARMS) {
      const before = student.flops + teacher.flops;
      const stepper = makeArm(arm, student, teacher, arithmeticDistillTask(), { batchSize: 3, maxTokens: 140, topK: 4, seed: 5, projection: DEFAULT_PROJECTION });
      const r = await stepper.step(1);
      expect(r.studentTokens).toBeGreaterThan(0);
      expect(student.flops + teacher.flops).toBeGreaterThan(before); // every arm is charged
      if (OPD_ARMS.includes(arm)) {
        expect(r.teacherTokens).toBeLessThan(3 * 72);
        expect(r.chunks).toBeGreaterThan(0);
      } else expect(r.chunks).toBe(0); // SFT and ULD train on teacher answers: nothing to align
    }
  }, 120_000);

  it('an unknown projection is refused, naming the revisions there are', () => {
    const m = new MeteredModel(Model.load(DEFAULT_STUDENT));
    const settings = { batchSize: 1, maxTokens: 8, topK: 1, seed: 1, projection: 'nonsense' as 'first' };
    expect(() => makeArm('span-rkl', m, m, arithmeticDistillTask(), settings)).toThrow(/projection 'nonsense' is not one of first, prefix/);
  });
});

function xopd(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, XOPD_THREADS: '2' } });
    let out = '', err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    child.on('close', (code) => resolve({ code, out, err }));
  });
}

describe('xopd experiment --quick (the CI smoke)', () => {
  const cache = path.join(tmp, 'cache'), out = path.join(tmp, 'report');
  let first: { code: number | null; out: string; err: string };
  let report: ExperimentReport;
  beforeAll(async () => {
    first = await xopd(['experiment', '--quick', '--jobs', '2', '--cache', cache, '--out', out, '--json']);
    report = JSON.parse(readFileSync(path.join(out, 'data.json'), 'utf8'));
  }, 180_000);

  it('runs both regimes through both stages for the student and the control', () => {
    expect(first.code, first.err).toBe(0);
    // stage 0: every model of both regimes ships, so nothing is built (the build has its own test below)
    expect(first.err).toMatch(/stage 0 \(models the regimes build\): 0 runs/);
    expect(report.notes.filter((n) => n.startsWith('Stage 0:'))).toEqual([]);
    expect(report.regimes.map((r) => r.name)).toEqual(Object.keys(REGIMES));
    for (const r of report.regimes) {
      const q = quickRegime(REGIMES[r.name]!);
      for (const role of [r.cross, r.same]) {
        // stage 1: the doubling checks until the cap
        expect(role.stage1.curve.map((c) => c.step)).toEqual([0, 1, 2, 4]); // the rule needs two doublings: none before the cap
        expect(role.stage1.flops).toBeGreaterThan(0);
        const arms = role.role === 'cross' ? q.stage2.arms : q.stage2.controlArms;
        // the grid: every arm at every rate; the chosen rate has the best validation accuracy
        expect(role.grid.length).toBe(arms.length * q.stage2.lrGrid.length);
        for (const arm of arms) {
          const cells = role.grid.filter((g) => g.arm === arm);
          expect(cells.map((g) => g.lr)).toEqual(q.stage2.lrGrid);
          const best = Math.max(...cells.map((g) => g.validation));
          expect(cells.find((g) => g.lr === role.chosen[arm])!.validation).toBe(best);
        }
        // stage 2: every run starts at the checkpoint and spends the whole budget
        expect(role.runs.map((x) => x.arm)).toEqual(arms);
        for (const run of role.runs) {
          expect(run.points[0]!.flops).toBe(0);
          expect(run.points[0]!.accuracy).toBe(role.stage1.test);
          expect(run.points[run.points.length - 1]!.flops).toBeGreaterThanOrEqual(r.budget);
          expect(run.points.length).toBe(1 + q.stage2.evalAt.length);
        }
      }
      expect(r.headline.map((h) => h.arm)).toEqual(q.stage2.arms.filter((a) => a !== 'sft'));
      expect(r.tax.map((t) => t.arm)).toEqual(q.stage2.controlArms.filter((a) => OPD_ARMS.includes(a)));
      // the control runs continued SFT too, so its OPD arms are set against it
      expect(q.stage2.controlArms).toContain('sft');
      expect(r.sameHeadline!.map((h) => h.arm)).toEqual(q.stage2.controlArms.filter((a) => a !== 'sft'));
      // OPD arms align (cross-tokenizer: not all chunks 1:1); SFT and ULD do not
      expect(r.cross.alignment.map((a) => a.arm)).toEqual(OPD_ARMS);
      // a trained Llama 3 student's rollouts have multi-digit tokens, so not every chunk is 1:1
      for (const a of r.cross.alignment) expect(a.oneToOneShare > 0.3 && a.oneToOneShare < 1, `${r.name} ${a.arm} ${a.oneToOneShare}`).toBe(true);
    }
    const summary = JSON.parse(first.out);
    expect(summary.summary.map((s: { regime: string }) => s.regime)).toEqual(Object.keys(REGIMES));
  });

  it('the page carries every arm of both regimes, the control and stage 1', () => {
    const html = readFileSync(path.join(out, 'index.html'), 'utf8');
    expect(html.match(/Same-tokenizer control: its OPD arms against its own continued SFT/g)?.length).toBe(Object.keys(REGIMES).length);
    const data = JSON.parse(/<script id="xopd-data" type="application\/json">([\s\S]*?)<\/script>/.exec(html)![1]!);
    const ids = data.charts.map((c: { id: string }) => c.id);
    for (const r of Object.keys(REGIMES)) expect(ids).toEqual(expect.arrayContaining([`${r}-acc-vs-flops`, `${r}-acc-vs-seconds`, `${r}-control`, `${r}-stage1`]));
    for (const c of data.charts.filter((x: { id: string }) => x.id.endsWith('-acc-vs-seconds')))
      expect(c.series.map((s: { label: string }) => s.label)).toEqual([...ARMS]);
  });

  it('a second run reuses every cached run and reports the same numbers', async () => {
    const again = await xopd(['experiment', '--quick', '--jobs', '2', '--cache', cache, '--out', out, '--json']);
    expect(again.code, again.err).toBe(0);
    const runs = [...again.err.matchAll(/(\d+) runs, (\d+) cached, (\d+) to run/g)];
    expect(runs.length).toBe(4); // stage 0, stage 1, the grid, the seeds
    for (const m of runs) expect([m[1], m[3]]).toEqual([m[2], '0']);
    const second: ExperimentReport = JSON.parse(readFileSync(path.join(out, 'data.json'), 'utf8'));
    expect(second.regimes).toEqual(report.regimes);
  }, 120_000);
});

describe('the run cache and stage 0', () => {
  it('keys a job by its settings and the bytes of the models it reads, not their paths', () => {
    const [a, b, c] = ['a', path.join('b', 'deeper'), 'c'].map((d) => path.join(tmp, 'models', d));
    for (const d of [a, b, c]) cpSync(REGIMES.styles!.control, d!, { recursive: true });
    const job = (student: string): Stage1Job => ({
      kind: 'stage1', student, teacher: DEFAULT_TEACHER, lr: 1e-3, batchSize: 4, firstSteps: 1, maxSteps: 4, minGainPerDoubling: 0.02,
      valN: 10, testN: 10, seed: 1, maxTokens: 40, out: path.join(tmp, 'out-a'),
    });
    expect(jobKey(job(a!))).toBe(jobKey(job(b!))); // a moved folder keeps its runs
    expect(jobKey({ ...job(a!), out: path.join(tmp, 'out-b') })).toBe(jobKey(job(a!)));
    expect(jobKey({ ...job(a!), lr: 2e-3 })).not.toBe(jobKey(job(a!)));
    // one byte of the model's config is another model
    writeFileSync(path.join(c!, 'config.json'), readFileSync(path.join(c!, 'config.json'), 'utf8') + ' ');
    expect(jobKey(job(c!))).not.toBe(jobKey(job(a!)));
  });

  it('builds a model a regime names but nobody shipped, by its recipe, once', async () => {
    const q = quickRegime(REGIMES.styles!);
    const regime: Regime = { ...q, name: 'unshipped', student: path.join(tmp, 'no-such-student'), stage2: { ...q.stage2, arms: ['sft'], controlArms: [] } };
    const cacheDir = path.join(tmp, 'cache-build'), outDir = path.join(tmp, 'report-build');
    const lines: string[] = [];
    const run = () => runExperiment({ regimes: [regime], jobs: 1, cacheDir, outDir, command: 'test', log: (l) => lines.push(l) });
    const { report } = await run();
    expect(lines.join('\n')).toMatch(/stage 0 \(models the regimes build\): 1 runs, 0 cached, 1 to run/);
    const recipe = regime.build!.student!;
    const note = report.notes.find((n) => n.startsWith("Stage 0: the unshipped regime's student"));
    expect(note).toContain(recipeCommand(recipe));
    const built = readdirSync(cacheDir).filter((f) => f.startsWith('model-') && !f.endsWith('.json'));
    expect(built.length).toBe(1);
    const config = JSON.parse(readFileSync(path.join(cacheDir, built[0]!, 'config.json'), 'utf8'));
    expect(config.training.command).toBe(recipeCommand(recipe));
    expect(config.training.stepsDone).toBe(recipe.steps);
    expect(report.regimes[0]!.cross.stage1.curve.length).toBeGreaterThan(1); // the built student went on through stage 1
    lines.length = 0;
    await run();
    expect(lines.join('\n')).toMatch(/stage 0 \(models the regimes build\): 1 runs, 1 cached, 0 to run/);
  }, 120_000);
});

describe('xopd experiment: reduced runs', () => {
  it('--lrs and --control-arms refuse bad values before any run, naming the option', async () => {
    const bad = [
      { args: ['--lrs', '1e-4,2'], want: /--lrs: '2' is not a learning rate in \(0, 1\)/ },
      { args: ['--control-arms', 'chunk-pg,nope'], want: /--control-arms: unknown arm 'nope'/ },
    ];
    for (const b of bad) {
      const r = await xopd(['experiment', ...b.args, '--cache', path.join(tmp, 'unused'), '--out', path.join(tmp, 'unused-report')]);
      expect(r.code).toBe(2);
      expect(r.err).toMatch(b.want);
    }
  }, 60_000);
});

describe('diagnosis', () => {
  it('leaves out answers and rollouts a short-context teacher cannot read whole, instead of failing', async () => {
    const { runDiagnosis } = await import('../src/experiment/diagnose.js');
    const shipped = Model.load(DEFAULT_TEACHER);
    const short = path.join(tmp, 'short-teacher');
    Model.create({ ...shipped.config, maxSeqLen: 72 }, { seed: 1, tokenizer: shipped.tokenizer }).save(short);
    const r = await runDiagnosis({ kind: 'diagnose', student: DEFAULT_STUDENT, teacher: short, n: 12, batchSize: 3, seed: 1, topK: 4, projection: DEFAULT_PROJECTION, maxTokens: 140 });
    expect(r.n).toBe(12);
    expect(r.places['runaway (past the teacher\'s context)'] ?? 0).toBeGreaterThan(0);
    expect(r.gradients.map((g) => g.arm)).toEqual(expect.arrayContaining([...OPD_ARMS])); // every OPD arm's share is measured
  }, 120_000);

  it('places a chunk in the working from the text before it', async () => {
    const { placeOf } = await import('../src/experiment/diagnose.js');
    const w = '4821 + 377: 1 + 7 = 8, 2 + 7 = 9, 8 + 3 = 11, 4 + 0 + 1 = 5. 5198 - 1250: 8 - 0 = 8. The answer is ';
    const at = (text: string) => w.slice(0, w.indexOf(text));
    expect(placeOf('4821 + ', '377')).toBe('restatement');
    expect(placeOf('4821 + 377: 1 + ', '7')).toBe('operand digit');
    expect(placeOf('4821 + 377: 1 + 7 = ', '8')).toBe('column result');
    expect(placeOf(at(' + 1 = 5'), ' +')).toBe('carry'); // writing the carry
    expect(placeOf('4821 + 377: 1 + 7', ' +')).toBe('carry'); // a carry where there is none
    expect(placeOf(at('1 = 5'), '1')).toBe('carry');
    expect(placeOf(at(' = 5'), ' =')).toBe('carry'); // leaving a carry out
    expect(placeOf(at('1250:'), '125')).toBe('restatement'); // the second working's operands
    expect(placeOf(w, '519')).toBe('answer');
    expect(placeOf('4821 + 377: 1 + 7 = 8', ',')).toBe('format');
  });
});
