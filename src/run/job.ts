/**
 * A distillation job as the CLI (and `npm start`) runs it: load the student and the teacher
 * (embedded model folder, or served over vLLM's protocol), the task, resume from the last complete
 * checkpoint when asked, run, and turn SIGINT into "save a checkpoint, then stop".
 */
import path from 'node:path';
import { ErrorCode, XopdError } from '../core/errors.js';
import { packageRoot, setThreads } from '../core/native.js';
import { Tokenizer } from '../tokenizer/tokenizer.js';
import { Model } from '../model/model.js';
import type { OptimizerOptions } from '../model/optimizer.js';
import { CheckpointStore } from './checkpoint.js';
import { Distiller } from '../train/distiller.js';
import { lossName, type DistillOptions } from '../train/options.js';
import type { OptionsOf } from '../core/options.js';
import type { DistillTask } from '../tasks/distill-task.js';
import type { Teacher } from '../model/roles.js';
import { runDistillation, type RunResult, type RunState } from './run.js';
import { arithmeticDistillTask } from '../tasks/distill-task.js';
import { VllmTeacher } from '../serve/vllm-teacher.js';

export const DEFAULT_STUDENT = path.join(packageRoot, 'models', 'student-llama3');
export const DEFAULT_TEACHER = path.join(packageRoot, 'models', 'teacher-qwen3');

/** Tasks by name (the CLI's --task choices). */
export const TASKS: Record<string, () => DistillTask> = {
  arithmetic: arithmeticDistillTask,
};

export interface ServedTeacherSpec {
  urls: string[];
  tokenizer: string;
  model?: string;
  timeoutMs?: number;
  retries?: number;
  concurrency?: number;
}

/** Linear warm-up steps of the student's optimizer at the start of a run. */
export const DISTILL_WARMUP = 20;

/** The options of a job beside the distillation options (core/options.ts: `xopd distill` builds flags from it). */
export const JOB_OPTIONS = {
  // tuned on the shipped student: 3e-4 knocked it off the task (README, "Distillation")
  learningRate: { kind: 'number', min: 0, max: 10, default: 1e-4, help: `the student's AdamW learning rate (after a ${DISTILL_WARMUP}-step linear warm-up, constant)` },
  checkpointEvery: { kind: 'int', min: 0, max: 1e9, default: 10, help: 'write a checkpoint every N steps (0: only at the end and on Ctrl-C)' },
  keepCheckpoints: { kind: 'int', min: 1, max: 1e6, default: 3, help: 'checkpoints kept' },
} as const;

export type JobOptions = OptionsOf<typeof JOB_OPTIONS>;

/** The student's AdamW learning rate when the job names none. */
export const DEFAULT_DISTILL_LR = JOB_OPTIONS.learningRate.default;

/** The student's optimizer in a distillation run: linear warm-up over DISTILL_WARMUP steps, then constant. */
export function distillOptimizer(lr: number): OptimizerOptions {
  return { lr, minLr: lr, warmup: DISTILL_WARMUP, totalSteps: 0 };
}

export interface DistillJob {
  student: string;
  teacher: { dir: string } | ServedTeacherSpec;
  task: string;
  options: DistillOptions;
  learningRate?: number;
  runDir: string;
  checkpointEvery: number;
  keepCheckpoints: number;
  threads?: number;
  /** the command-line options, saved in config.json so --resume can rebuild the job */
  cli?: Record<string, unknown>;
}

export interface DistillHooks {
  resume?: boolean;
  progress?: boolean;
  /** SIGINT stops after the current step and saves a checkpoint (a second SIGINT exits at once) */
  handleSigint?: boolean;
  log?: (line: string) => void;
  signal?: AbortSignal;
}

export function loadTeacher(spec: DistillJob['teacher']): Teacher {
  if ('dir' in spec) return Model.load(spec.dir);
  return new VllmTeacher({
    baseUrls: spec.urls, tokenizer: Tokenizer.load(spec.tokenizer), model: spec.model,
    timeoutMs: spec.timeoutMs, retries: spec.retries, concurrency: spec.concurrency,
  });
}

export async function distill(job: DistillJob, hooks: DistillHooks = {}): Promise<RunResult> {
  if (job.threads !== undefined) setThreads(job.threads);
  const makeTask = TASKS[job.task];
  if (!makeTask) throw new XopdError(ErrorCode.ARG_VALUE, `unknown task '${job.task}'; known: ${Object.keys(TASKS).join(', ')}`);
  const task = makeTask();
  const log = hooks.log ?? ((l: string) => process.stderr.write(l + '\n'));

  let resumeFrom = null;
  let studentDir = job.student;
  if (hooks.resume) {
    const store = new CheckpointStore(path.join(job.runDir, 'checkpoints'));
    resumeFrom = store.latest<RunState>((w) => log(`warning: ${w}`));
    if (!resumeFrom) throw new XopdError(ErrorCode.CHECKPOINT, `${job.runDir} has no complete checkpoint to resume from`);
    studentDir = path.join(resumeFrom.dir, 'student');
  }
  const student = Model.load(studentDir);
  // A fresh AdamW: its first steps move every weight by ~lr whatever the gradient's size, which
  // knocks a trained student off its task before the signal accumulates. Warm up, then hold.
  student.setOptimizer(distillOptimizer(job.learningRate ?? DEFAULT_DISTILL_LR));
  // A resumed run continues the saved optimizer (moments and schedule position). Checkpoints
  // written before xopd kept it have none: those restart AdamW, warm-up included.
  if (resumeFrom && !student.loadOptimizerState(studentDir))
    log(`warning: checkpoint ${resumeFrom.dir} holds no optimizer state: AdamW restarts (with its warm-up)`);
  const teacher = loadTeacher(job.teacher);
  // A served teacher: learn its model name and context from /v1/models before the first step.
  if (teacher instanceof VllmTeacher) await teacher.modelName();
  const distiller = new Distiller({ student, teacher, task }, job.options);

  const controller = new AbortController();
  hooks.signal?.addEventListener('abort', () => controller.abort(), { once: true });
  let sigints = 0;
  const onSigint = () => {
    sigints++;
    if (sigints === 1) {
      log('\nSIGINT: finishing this step, then saving a checkpoint (Ctrl-C again to quit without saving)');
      controller.abort();
    } else process.exit(130);
  };
  if (hooks.handleSigint) process.on('SIGINT', onSigint);
  try {
    const o = distiller.options;
    log(`distill: ${lossName(o.loss)} | student ${studentDir} (${student.tokenizer.name}) | teacher ${'dir' in job.teacher ? job.teacher.dir : job.teacher.urls.join(', ')} (${teacher.tokenizer.name})${distiller.fastPath ? ' | same tokenizer: fast path' : ''} | ${o.steps} steps x ${o.batchSize} prompts | run folder ${job.runDir}`);
    return await runDistillation(distiller, {
      runDir: job.runDir,
      saveStudent: (dir, kind) => student.save(dir, { optimizer: kind === 'checkpoint' }),
      checkpointEvery: job.checkpointEvery,
      keepCheckpoints: job.keepCheckpoints,
      resumeFrom,
      signal: controller.signal,
      progress: hooks.progress,
      log,
      config: {
        cli: job.cli,
        student: job.student, teacher: job.teacher, task: job.task, options: o, learningRate: job.learningRate ?? null,
        checkpointEvery: job.checkpointEvery, fastPath: distiller.fastPath, created: new Date().toISOString(),
      },
    });
  } finally {
    if (hooks.handleSigint) process.off('SIGINT', onSigint);
    await teacher.close?.();
  }
}
