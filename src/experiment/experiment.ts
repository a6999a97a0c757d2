/**
 * The experiment, run the way the OPD literature makes the comparison (docs/RESULTS.md):
 *   stage 1  the student is trained by SFT on teacher samples until validation accuracy gains less
 *            than 2 points per doubling of SFT compute (or a cap); the checkpoint is saved once and
 *            its cost is reported apart, charged to no arm;
 *   stage 2  every arm trains from that checkpoint to the same FLOP budget: each arm at every rate of
 *            a small grid (seed 1), the rate chosen on validation accuracy, then the other seeds at
 *            that rate; test accuracy against FLOPs and wall time.
 * For each regime, a same-tokenizer control student goes through the same two stages, so the report
 * reads the mapping tax. Every run is a job whose result is cached by its inputs (the files' bytes
 * included), so an interrupted experiment resumes where it stopped and a re-run recomputes nothing.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ErrorCode, XopdError } from '../core/errors.js';
import { writeFileAtomic } from '../core/files.js';
import { Model } from '../model/model.js';
import { generateProblems, promptIds, responseIds } from '../tasks/arithmetic.js';
import { headline, mappingTax, meanCurve, sftFit, type ArmRun } from '../report/curves.js';
import { writeReport, type ExperimentReport, type RegimeReport, type RoleReport } from '../report/html.js';
import { ARM_LABELS, ARMS, DEFAULT_PROJECTION, OPD_ARMS, SPAN_ARMS, type Arm, type Projection } from './arms.js';
import { opdSampleFlops, type FlopShape, type SampleLengths } from './flops.js';
import { REGIMES, quickRegime, type Regime } from './regimes.js';
import type { Stage1Job, Stage1Result, Stage2Job, Stage2Result } from './runs.js';
import { runJob, type Job, type JobResult } from './jobs.js';
import type { DiagnosisJob } from './diagnose.js';
import type { DiagnosisResult } from '../report/html.js';
import { runPool } from './pool.js';
import { recipeCommand, type BuildJob, type BuildResult } from './build.js';

export interface ExperimentOptions {
  /** regime names (REGIMES) or regimes themselves */
  regimes: Array<string | Regime>;
  /** the CI smoke version (quickRegime) */
  quick?: boolean;
  /** replaces every regime's seeds */
  seeds?: number[];
  /** replaces every regime's arm list (the control keeps those of its list that remain) */
  arms?: Arm[];
  /** replaces every regime's control arm list ([]: no control, stage 1 included) */
  controlArms?: Arm[];
  /** replaces every regime's learning-rate grid */
  lrGrid?: number[];
  projection?: Projection;
  /** worker processes (1: in this process) */
  jobs: number;
  cacheDir: string;
  outDir: string;
  command: string;
  log?: (line: string) => void;
}

export interface ExperimentResult {
  report: ExperimentReport;
  reportFile: string;
}

function machine(): string {
  const cpus = os.cpus();
  return `${cpus[0]?.model ?? 'cpu'} × ${cpus.length} (${os.totalmem() / 2 ** 30 | 0} GiB), ${process.platform}-${process.arch}, Node ${process.version}`;
}

const fileHashes = new Map<string, string>();
/** The bytes a model folder's behaviour depends on (weights and config), hashed once per process. */
function modelHash(dir: string): string {
  let h = fileHashes.get(dir);
  if (!h) {
    const d = createHash('sha256');
    for (const f of ['config.json', 'model.safetensors']) d.update(readFileSync(path.join(dir, f)));
    fileHashes.set(dir, h = d.digest('hex').slice(0, 16));
  }
  return h;
}

/** The fields of a job (any depth) that name a model folder: keyed by the folder's bytes, not its path. */
const MODEL_FIELDS = new Set(['student', 'teacher', 'init']);

/**
 * A job's cache key: its settings, with every model folder it reads replaced by the hash of its
 * bytes and the folder it writes left out. No path enters the key, so a cache moved with (or
 * without) its checkout keeps its runs.
 */
export function jobKey(job: Job): string {
  const { out: _out, ...rest } = job as Stage1Job;
  const settings = JSON.stringify(rest, (k, v: unknown) => (MODEL_FIELDS.has(k) && typeof v === 'string' ? modelHash(v) : v));
  return createHash('sha256').update(settings).digest('hex').slice(0, 20);
}

/** Mean reference lengths of 200 training problems on each side: what the FLOP budget is priced at. */
function referenceLengths(student: Model, teacher: Model): SampleLengths {
  const ps = generateProblems({ split: 'train', count: 200, seed: 1 });
  const mean = (f: (p: (typeof ps)[number]) => number) => ps.reduce((a, p) => a + f(p), 0) / ps.length;
  return {
    studentPrompt: mean((p) => promptIds(student.tokenizer, p).length), studentResponse: mean((p) => responseIds(student.tokenizer, p).length),
    teacherPrompt: mean((p) => promptIds(teacher.tokenizer, p).length), teacherResponse: mean((p) => responseIds(teacher.tokenizer, p).length),
  };
}

const shapeOf = (m: Model): FlopShape => ({ ...m.config, vocab: m.vocabIds.length });

/** Budget of a regime: FLOPs of budgetSteps OPD steps of batchSize prompts at reference lengths (the cross student's). */
export function regimeBudget(r: Regime): number {
  const student = Model.load(r.student), teacher = Model.load(r.teacher);
  return r.stage2.budgetSteps * r.stage2.batchSize * opdSampleFlops(shapeOf(student), shapeOf(teacher), referenceLengths(student, teacher));
}

type Role = 'cross' | 'same';

/** The learning rate is chosen on the mean validation accuracy of a run's last this many evaluations. */
const VALIDATION_LAST = 2;

export async function runExperiment(o: ExperimentOptions): Promise<ExperimentResult> {
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const projection = o.projection ?? DEFAULT_PROJECTION;
  if (o.regimes.length === 0) throw new XopdError(ErrorCode.ARG_VALUE, `name at least one regime (${Object.keys(REGIMES).join(', ')})`);
  const regimes = o.regimes.map((name) => {
    const r = typeof name === 'string' ? REGIMES[name] : name;
    if (!r) throw new XopdError(ErrorCode.ARG_VALUE, `unknown regime '${String(name)}'; regimes: ${Object.keys(REGIMES).join(', ')}`);
    let q = o.quick ? quickRegime(r) : r;
    if (o.seeds) q = { ...q, stage2: { ...q.stage2, seeds: o.seeds } };
    if (o.arms) {
      for (const a of o.arms) if (!ARMS.includes(a)) throw new XopdError(ErrorCode.ARG_VALUE, `unknown arm '${a}'; arms: ${ARMS.join(', ')}`);
      const arms = ARMS.filter((a) => o.arms!.includes(a) || a === 'sft'); // continued SFT is the baseline of every headline
      q = { ...q, stage2: { ...q.stage2, arms, controlArms: q.stage2.controlArms.filter((a) => arms.includes(a)) } };
    }
    if (o.controlArms) q = { ...q, stage2: { ...q.stage2, controlArms: q.stage2.arms.filter((a) => o.controlArms!.includes(a)) } };
    if (o.lrGrid) {
      if (o.lrGrid.length === 0 || o.lrGrid.some((x) => !(x > 0 && x < 1))) throw new XopdError(ErrorCode.ARG_VALUE, 'the learning-rate grid needs at least one rate, each in (0, 1)');
      q = { ...q, stage2: { ...q.stage2, lrGrid: o.lrGrid } };
    }
    if (q.stage2.seeds.length === 0) throw new XopdError(ErrorCode.ARG_VALUE, 'give at least one seed');
    return q;
  });
  mkdirSync(o.cacheDir, { recursive: true });

  const cached = async <R extends JobResult>(jobs: Job[], what: string, labels: string[]): Promise<R[]> => {
    const files = jobs.map((j) => path.join(o.cacheDir, `${j.kind}-${jobKey(j)}.json`));
    const todo = jobs.map((j, i) => ({ j, i })).filter(({ j, i }) => !(existsSync(files[i]!) && (!(j.kind === 'stage1' || j.kind === 'build') || existsSync(path.join(j.out, 'model.safetensors')))));
    log(`[experiment] ${what}: ${jobs.length} runs, ${jobs.length - todo.length} cached, ${todo.length} to run on ${Math.min(o.jobs, Math.max(1, todo.length))} worker(s)`);
    await runPool(todo.map((t) => t.j), o.jobs, (k, result) => {
      writeFileAtomic(files[todo[k]!.i]!, JSON.stringify({ job: todo[k]!.j, result }));
      log(`[experiment]   ${labels[todo[k]!.i]}: ${describeResult(result)}`);
    }, runJob);
    return files.map((f) => JSON.parse(readFileSync(f, 'utf8')).result as R);
  };

  // Stage 0: the model folders a regime names but nobody shipped are built by its recipes (cached).
  const missing = regimes.flatMap((r, ri) => (['teacher', 'student', 'control'] as const)
    .filter((role) => !existsSync(path.join(r[role], 'model.safetensors')))
    .map((role) => {
      const recipe = r.build?.[role];
      if (!recipe) throw new XopdError(ErrorCode.ARG_VALUE, `regime ${r.name}: the ${role} model ${r[role]} is missing and the regime has no recipe to build it`);
      const j = { kind: 'build' as const, recipe, out: '' };
      return { ri, role, job: { ...j, out: path.join(o.cacheDir, `model-${jobKey(j)}`) } satisfies BuildJob };
    }));
  const built = await cached<BuildResult>(missing.map((m) => m.job), 'stage 0 (models the regimes build)', missing.map((m) => `stage 0 ${regimes[m.ri]!.name} ${m.role}`));
  for (const m of missing) regimes[m.ri] = { ...regimes[m.ri]!, [m.role]: m.job.out };

  // Stage 1: one checkpoint per student (cross-tokenizer and control) per regime.
  // A regime whose control runs no arm skips the control entirely (stage 1 included).
  const rolesOf = (r: Regime): Role[] => (r.stage2.controlArms.length > 0 ? ['cross', 'same'] : ['cross']);
  const stage1Jobs: Stage1Job[] = regimes.flatMap((r) => rolesOf(r).map((role) => {
    const j: Omit<Stage1Job, 'out'> = {
      kind: 'stage1', student: role === 'cross' ? r.student : r.control, teacher: r.teacher, lr: r.stage1.lr, batchSize: r.stage1.batchSize,
      firstSteps: r.stage1.firstSteps, maxSteps: r.stage1.maxSteps, minGainPerDoubling: r.stage1.minGainPerDoubling, valN: r.stage1.valN,
      testN: r.stage2.testN, seed: 1, maxTokens: r.stage2.maxTokens,
    };
    return { ...j, out: path.join(o.cacheDir, `stage1-${jobKey({ ...j, out: '' })}`) };
  }));
  const stage1 = await cached<Stage1Result>(stage1Jobs, 'stage 1 (SFT checkpoints)', stage1Jobs.map((j) => `stage 1 ${path.basename(j.student)}`));
  const stage1Index = regimes.flatMap((r, ri) => rolesOf(r).map((role) => `${ri}:${role}`));
  const s1 = (ri: number, role: Role) => {
    const i = stage1Index.indexOf(`${ri}:${role}`);
    return { job: stage1Jobs[i]!, result: stage1[i]! };
  };
  const budgets = regimes.map(regimeBudget);

  // Stage 2: the learning-rate grid (seed 1), then the other seeds at the chosen rate.
  const stage2Job = (ri: number, role: Role, arm: Arm, lr: number, seed: number): Stage2Job => {
    const r = regimes[ri]!, s = s1(ri, role);
    return {
      kind: 'stage2', arm, lr, seed, student: s.job.out, teacher: r.teacher, budget: budgets[ri]!, evalAt: r.stage2.evalAt, testN: r.stage2.testN,
      valN: r.stage2.valN, valLast: VALIDATION_LAST, batchSize: r.stage2.batchSize, maxTokens: r.stage2.maxTokens, topK: r.stage2.topK,
      ...(SPAN_ARMS.includes(arm) ? { projection } : {}),
      start: { test: s.result.test, validation: s.result.validation },
    };
  };
  const cells = regimes.flatMap((r, ri) => rolesOf(r).flatMap((role) =>
    (role === 'cross' ? r.stage2.arms : r.stage2.controlArms).map((arm) => ({ ri, role, arm }))));
  const firstSeed = (ri: number) => regimes[ri]!.stage2.seeds[0]!;
  const gridJobs = cells.flatMap((c) => regimes[c.ri]!.stage2.lrGrid.map((lr) => ({ ...c, lr, job: stage2Job(c.ri, c.role, c.arm, lr, firstSeed(c.ri)) })));
  const label = (c: { ri: number; role: Role; arm: Arm; lr: number }, seed: number) => `${regimes[c.ri]!.name} ${c.role === 'cross' ? 'student' : 'control'} ${c.arm} lr ${c.lr} seed ${seed}`;
  // The cross-tokenizer checkpoints are diagnosed beside the grid (where their answers go wrong, each arm's gradient there).
  const diagnosisJobs: DiagnosisJob[] = regimes.map((r, ri) => ({
    kind: 'diagnose', student: s1(ri, 'cross').job.out, teacher: r.teacher, n: r.stage2.valN, batchSize: r.stage2.batchSize, seed: firstSeed(ri),
    topK: r.stage2.topK, projection, maxTokens: r.stage2.maxTokens,
  }));
  const both = await cached<Stage2Result | DiagnosisResult>([...gridJobs.map((g) => g.job), ...diagnosisJobs], 'stage 2, learning-rate grid (and the checkpoints\' diagnosis)',
    [...gridJobs.map((g) => label(g, firstSeed(g.ri))), ...regimes.map((r) => `${r.name} diagnosis of the student's checkpoint`)]);
  const grid = both.slice(0, gridJobs.length) as Stage2Result[];
  const diagnoses = both.slice(gridJobs.length) as DiagnosisResult[];
  // The rate with the best validation accuracy at the end (mean of the last evaluations).
  const endValidation = (res: Stage2Result) => {
    const v = res.points.slice(-VALIDATION_LAST).map((p) => p.validation ?? 0);
    return v.reduce((a, b) => a + b, 0) / v.length;
  };
  const chosen = cells.map((c) => {
    const mine = gridJobs.map((g, i) => ({ g, res: grid[i]! })).filter(({ g }) => g.ri === c.ri && g.role === c.role && g.arm === c.arm);
    const best = mine.reduce((a, b) => (endValidation(b.res) > endValidation(a.res) ? b : a));
    return { ...c, lr: best.g.lr, gridRuns: mine };
  });
  const seedJobs = chosen.flatMap((c) => regimes[c.ri]!.stage2.seeds.slice(1).map((seed) => ({ ...c, seed, job: stage2Job(c.ri, c.role, c.arm, c.lr, seed) })));
  const seeded = await cached<Stage2Result>(seedJobs.map((s) => s.job), 'stage 2, seeds at the chosen rates', seedJobs.map((s) => label(s, s.seed)));

  const regimeReports: RegimeReport[] = regimes.map((r, ri) => {
    const role = (which: Role): RoleReport => {
      const mine = chosen.filter((c) => c.ri === ri && c.role === which);
      const runs: ArmRun[] = [];
      const alignment: RoleReport['alignment'] = [];
      for (const c of mine) {
        const results = [{ seed: firstSeed(ri), res: c.gridRuns.find((g) => g.g.lr === c.lr)!.res },
          ...seedJobs.map((s, i) => ({ s, res: seeded[i]! })).filter(({ s }) => s.ri === ri && s.role === which && s.arm === c.arm).map(({ s, res }) => ({ seed: s.seed, res }))];
        for (const { seed, res } of results) runs.push({ arm: c.arm, seed, lr: c.lr, points: res.points });
        const t = results.reduce((acc, { res }) => {
          for (const k of Object.keys(acc) as Array<keyof typeof acc>) acc[k] += res.alignment[k];
          return acc;
        }, { chunks: 0, oneToOne: 0, studentTokens: 0, teacherTokens: 0, masked: 0 });
        if (t.chunks > 0) alignment.push({ arm: c.arm, chunks: t.chunks, oneToOneShare: t.oneToOne / t.chunks, maskedShare: t.studentTokens ? t.masked / t.studentTokens : 0, meanStudentPerChunk: t.studentTokens / t.chunks, meanTeacherPerChunk: t.teacherTokens / t.chunks });
      }
      const s = s1(ri, which);
      return {
        role: which, student: path.basename(which === 'cross' ? r.student : r.control), stage1: s.result,
        grid: mine.flatMap((c) => c.gridRuns.map(({ g, res }) => ({ arm: c.arm, lr: g.lr, validation: endValidation(res), test: res.points[res.points.length - 1]!.accuracy }))),
        chosen: Object.fromEntries(mine.map((c) => [c.arm, c.lr])), runs, alignment,
      };
    };
    const cross = role('cross'), same = rolesOf(r).includes('same') ? role('same') : undefined;
    const armRuns = (rr: RoleReport, arm: string) => rr.runs.filter((x) => x.arm === arm);
    const sftRuns = armRuns(cross, 'sft');
    const opdArms = r.stage2.arms.filter((a) => a !== 'sft');
    // The control's OPD arms against its own continued SFT: does OPD win where no mapping is needed?
    const sameSft = same ? armRuns(same, 'sft') : [];
    return {
      name: r.name, title: r.title, teacher: path.basename(r.teacher), budget: budgets[ri]!,
      settings: { stage1: r.stage1, stage2: r.stage2, projection },
      cross, same,
      sftFit: sftRuns.length ? sftFit(meanCurve(sftRuns)) : null,
      headline: sftRuns.length ? opdArms.map((a) => headline(a, armRuns(cross, a), sftRuns)) : [],
      sameHeadline: same && sameSft.length ? r.stage2.controlArms.filter((a) => a !== 'sft').map((a) => headline(a, armRuns(same, a), sameSft)) : [],
      tax: same ? r.stage2.controlArms.filter((a) => OPD_ARMS.includes(a)).map((a) => mappingTax(a, armRuns(cross, a), armRuns(same, a))) : [],
      diagnosis: diagnoses[ri],
    };
  });
  // What the whole protocol cost in CPU time (all threads), as recorded by each run (jobs.ts).
  const all = [...built, ...stage1, ...both, ...seeded] as Array<JobResult & { cpuSeconds?: number }>;
  const cost = { runs: all.length, cpuSeconds: all.reduce((a, r) => a + (r.cpuSeconds ?? 0), 0), unrecorded: all.filter((r) => r.cpuSeconds === undefined).length,
    stage1CpuSeconds: (stage1 as Array<Stage1Result & { cpuSeconds?: number }>).reduce((a, r) => a + (r.cpuSeconds ?? 0), 0) };
  const report: ExperimentReport = {
    title: 'xopd: cross-tokenizer OPD against continued SFT from an SFT checkpoint, at equal compute',
    command: o.command, machine: machine(), date: new Date().toISOString(), projection, armLabels: ARM_LABELS, regimes: regimeReports, cost,
    notes: [
      'FLOPs: 2 per multiply-add of weights, causal attention and the logits layer, counted from the model shapes; backward = 2x forward. Continued SFT and ULD are charged for the teacher sampling its answers (ULD also for the teacher scoring them); OPD arms for the student sampling, the teacher scoring and the student update. Evaluation is not charged.',
      'Rollouts (OPD arms) and teacher answers (SFT, ULD, stage 1) are sampled at temperature 1, no top-p, up to the regime\'s response limit; span projection and ULD read the teacher\'s top-k.',
      'Learning rate: linear warm-up over 20 steps, then constant (a fresh AdamW per run). Each arm\'s rate is the grid value with the best validation accuracy at the end of the budget (mean of the last two evaluations), seed 1; the other seeds run at that rate.',
      `chunk-pg passes the rollout logprobs for PPO clipping (low 0.2, high 0.28, dual 10); each rollout batch gets one update, so the ratio is 1 and the clip does not bind. Span projection revision: '${projection}'.`,
      'Headline: the FLOPs an arm needs to first reach its final mean test accuracy, against the FLOPs continued SFT needs for that accuracy — read off SFT\'s mean curve (measured) or its log-linear fit from 1/8 of the budget on (extrapolated).',
      ...missing.map((m, i) => `Stage 0: the ${regimes[m.ri]!.name} regime's ${m.role} is not shipped; the run built it (${built[i]!.steps} steps, ${built[i]!.seconds.toFixed(0)} s, cached, charged to no arm) with ${recipeCommand(m.job.recipe)}.`),
      'Mapping tax: FLOPs cross-tokenizer OPD needs to gain Δ over its own SFT checkpoint over the FLOPs same-tokenizer OPD (a student of the same shape on the teacher\'s Qwen 3 tokenizer, through the same two stages) needs for the same Δ, Δ the smaller of the two final gains.',
    ],
  };
  const reportFile = writeReport(o.outDir, report);
  return { report, reportFile };
}

function describeResult(r: JobResult): string {
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  if (r.kind === 'build') return `${r.steps} steps, ${r.params} parameters, final loss ${r.finalLoss.toFixed(4)}, ${r.seconds.toFixed(0)} s`;
  if (r.kind === 'stage1') return `${r.steps} steps (${r.stopped}), ${r.flops.toExponential(2)} FLOPs, ${r.seconds.toFixed(0)} s, test ${pct(r.initialTest)} -> ${pct(r.test)}, validation ${pct(r.validation)}`;
  if (r.kind === 'diagnose') return `${r.correct}/${r.n} right; first wrong chunks ${JSON.stringify(r.places)}`;
  const a = r.points[0]!, b = r.points[r.points.length - 1]!;
  return `${r.steps} steps, ${b.flops.toExponential(2)} FLOPs, ${b.seconds.toFixed(0)} s, test ${pct(a.accuracy)} -> ${pct(b.accuracy)}, validation ${pct(a.validation ?? 0)} -> ${pct(b.validation ?? 0)}`;
}
