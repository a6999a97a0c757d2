/**
 * A distillation run on disk: evaluation before and after, the step loop with metrics (JSON lines),
 * a progress line with ETA, checkpoints every N steps (atomic, `latest` last), resume from the last
 * complete checkpoint, and a clean stop on an abort signal (SIGINT in the CLI) that saves a
 * checkpoint first.
 *
 *   <runDir>/config.json        the resolved options and where the models came from
 *   <runDir>/metrics.jsonl      one record per step ({kind:'step'}) and per evaluation ({kind:'eval'})
 *   <runDir>/checkpoints/       step-NNNNNNNN/{student/ (+ optimizer.safetensors), state.json, manifest.json}, latest
 *   <runDir>/student/           the final student (written when the run completes)
 *   <runDir>/summary.json       accuracy before and after, steps, time
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { ErrorCode, XopdError } from '../core/errors.js';
import { writeFileAtomic } from '../core/files.js';
import { CheckpointStore, type Checkpoint } from './checkpoint.js';
import type { Distiller, EvalReport, StepReport } from '../train/distiller.js';
import { lossName } from '../train/options.js';
import { MetricsLog } from './metrics.js';
import { Progress } from './progress.js';

export interface RunState {
  step: number;
  accuracyBefore: number | null;
  evals: Array<{ step: number; accuracy: number }>;
  seconds: number;
}

export interface RunOptions {
  runDir: string;
  /** writes the student into a folder; in a checkpoint with its optimizer state too, so --resume continues exactly */
  saveStudent: (dir: string, kind: 'checkpoint' | 'final') => Promise<void> | void;
  /** checkpoint every N steps (0: only when stopped and at the end) */
  checkpointEvery: number;
  /** checkpoints kept (default 3) */
  keepCheckpoints?: number;
  /** the checkpoint the student was loaded from (resume) */
  resumeFrom?: Checkpoint<RunState> | null;
  /** run the evaluation before the first step (default true; skipped on resume) */
  evalBefore?: boolean;
  /** aborting stops after the current step, saves a checkpoint and returns interrupted: true */
  signal?: AbortSignal;
  /** progress line on stderr (default true) */
  progress?: boolean;
  /** human-readable lines (evaluations, checkpoints); default: stderr */
  log?: (line: string) => void;
  onStep?: (r: StepReport) => void;
  onEval?: (r: EvalReport) => void;
  /** config.json content (written once when the run starts fresh) */
  config?: Record<string, unknown>;
}

export interface RunResult {
  runDir: string;
  steps: number;
  accuracyBefore: number | null;
  accuracyAfter: number | null;
  interrupted: boolean;
  studentDir: string | null;
  lastCheckpoint: string | null;
  metricsFile: string;
  seconds: number;
}

export function readRunConfig(runDir: string): Record<string, unknown> {
  const f = path.join(runDir, 'config.json');
  if (!existsSync(f)) throw new XopdError(ErrorCode.CONFIG, `${runDir} is not a distillation run (no config.json)`);
  try {
    return JSON.parse(readFileSync(f, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new XopdError(ErrorCode.CONFIG, `${f} is not valid JSON: ${(err as Error).message}`);
  }
}

const fmt = (x: number, d = 3) => (Number.isFinite(x) ? x.toFixed(d) : String(x));

export async function runDistillation(d: Distiller, o: RunOptions): Promise<RunResult> {
  const t0 = performance.now();
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const opts = d.options;
  mkdirSync(o.runDir, { recursive: true });
  const store = new CheckpointStore(path.join(o.runDir, 'checkpoints'), o.keepCheckpoints ?? 3);
  const metrics = new MetricsLog(path.join(o.runDir, 'metrics.jsonl'));
  const resume = o.resumeFrom ?? null;
  const state: RunState = resume
    ? { step: resume.step, accuracyBefore: resume.state.accuracyBefore ?? null, evals: resume.state.evals ?? [], seconds: resume.state.seconds ?? 0 }
    : { step: 0, accuracyBefore: null, evals: [], seconds: 0 };
  if (resume) {
    metrics.truncateAfter(resume.step);
    log(`resuming ${o.runDir} from checkpoint step ${resume.step}`);
  } else {
    if (existsSync(path.join(o.runDir, 'metrics.jsonl'))) rmSync(path.join(o.runDir, 'metrics.jsonl'));
    if (o.config) writeFileAtomic(path.join(o.runDir, 'config.json'), JSON.stringify(o.config, null, 2) + '\n');
  }
  let lastCheckpoint: string | null = resume?.dir ?? null;
  const elapsed = () => state.seconds + (performance.now() - t0) / 1000;

  const evaluate = async (step: number): Promise<EvalReport> => {
    const r = await d.evaluate(step);
    metrics.write({ kind: 'eval', ...r });
    state.evals.push({ step, accuracy: r.accuracy });
    o.onEval?.(r);
    return r;
  };
  const checkpoint = async (step: number) => {
    lastCheckpoint = await store.save(step, (dir) => o.saveStudent(path.join(dir, 'student'), 'checkpoint'), { ...state, step, seconds: elapsed() });
  };

  try {
    if (!resume && (o.evalBefore ?? true) && opts.evalSize > 0) {
      const r = await evaluate(0);
      state.accuracyBefore = r.accuracy;
      log(`step 0: test accuracy ${fmt(r.accuracy * 100, 1)}% (${r.correct}/${r.n}) before distillation [${fmt(r.seconds, 1)} s]`);
    }
    const progress = (o.progress ?? true) ? new Progress(opts.steps, { label: `distill ${lossName(opts.loss)}`, unit: 'step' }, state.step) : undefined;
    const say = (l: string) => (progress ? progress.log(l) : log(l));
    let interrupted = false;
    for (let step = state.step + 1; step <= opts.steps; step++) {
      // The step's work is synchronous native calls behind promises: yield to the event loop so
      // signals (SIGINT) and I/O are handled between steps.
      await new Promise<void>((r) => setImmediate(r));
      if (o.signal?.aborted) {
        interrupted = true;
        break;
      }
      const r = await d.step(step);
      state.step = step;
      metrics.write({ kind: 'step', ...r });
      o.onStep?.(r);
      progress?.update(step, `loss ${fmt(r.loss)} adv ${fmt(r.meanAdvantage)} 1:1 ${fmt(r.oneToOneShare * 100, 0)}% masked ${fmt(r.maskedShare * 100, 1)}% ${fmt(r.tokensPerSecond, 0)} tok/s`);
      if (opts.evalInterval > 0 && step % opts.evalInterval === 0 && step < opts.steps) {
        const e = await evaluate(step);
        say(`step ${step}: test accuracy ${fmt(e.accuracy * 100, 1)}% (${e.correct}/${e.n}) [${fmt(e.seconds, 1)} s]`);
      }
      if (o.checkpointEvery > 0 && step % o.checkpointEvery === 0 && step < opts.steps) await checkpoint(step);
    }
    progress?.finish();
    if (interrupted || o.signal?.aborted) {
      await checkpoint(state.step);
      log(`interrupted after step ${state.step}: checkpoint ${lastCheckpoint}; continue with --resume ${o.runDir}`);
      return { runDir: o.runDir, steps: state.step, accuracyBefore: state.accuracyBefore, accuracyAfter: null, interrupted: true, studentDir: null, lastCheckpoint, metricsFile: metrics.file, seconds: elapsed() };
    }
    let accuracyAfter: number | null = null;
    if (opts.evalSize > 0) {
      const e = await evaluate(state.step);
      accuracyAfter = e.accuracy;
      log(`step ${state.step}: test accuracy ${fmt(e.accuracy * 100, 1)}% (${e.correct}/${e.n}) after distillation [${fmt(e.seconds, 1)} s]`);
    }
    await checkpoint(state.step);
    // The final student: written beside, then renamed into place.
    const studentDir = path.join(o.runDir, 'student');
    const tmp = path.join(o.runDir, `.student.tmp-${process.pid}`);
    rmSync(tmp, { recursive: true, force: true });
    await o.saveStudent(tmp, 'final');
    rmSync(studentDir, { recursive: true, force: true });
    renameSync(tmp, studentDir);
    const result: RunResult = { runDir: o.runDir, steps: state.step, accuracyBefore: state.accuracyBefore, accuracyAfter, interrupted: false, studentDir, lastCheckpoint, metricsFile: metrics.file, seconds: elapsed() };
    writeFileAtomic(path.join(o.runDir, 'summary.json'), JSON.stringify({ ...result, loss: lossName(opts.loss), evals: state.evals }, null, 2) + '\n');
    return result;
  } finally {
    metrics.close();
  }
}
