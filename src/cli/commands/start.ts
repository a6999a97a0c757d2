import path from 'node:path';
import type { Command } from '../command.js';
import { EXIT } from '../command.js';
import { readFileSync } from 'node:fs';
import { distill, DEFAULT_DISTILL_LR, DEFAULT_STUDENT, DEFAULT_TEACHER } from '../../run/job.js';
import { START_RECIPE } from '../../run/recipes.js';
import { lossName } from '../../train/options.js';

/**
 * `npm start`: the main job. Distills the shipped student (Llama 3 tokenizer) from the shipped
 * teacher (Qwen 3 tokenizer) on the arithmetic task, and prints the student's test accuracy
 * before and after and where the run's files are.
 */
/** The tokenizer a model folder names (config.json), for the banner. */
function modelTokenizer(dir: string): string {
  try {
    const name = (JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8')) as { tokenizer?: unknown }).tokenizer;
    return typeof name === 'string' ? `${name} tokenizer` : 'its tokenizer';
  } catch {
    return 'its tokenizer';  // distill() reports a missing or bad folder properly
  }
}

export const startCommand: Command = {
  spec: {
    name: 'start',
    summary: 'The main job (npm start): distill the shipped Llama 3-tokenizer student from the shipped Qwen 3-tokenizer teacher (or the models you name) with the tuned recipe, accuracy before/after.',
    usage: 'xopd start [--student dir] [--teacher dir] [--out dir] [--no-progress]',
    options: {
      student: { type: 'string', valueName: 'dir', help: 'the student model folder', shownDefault: 'the shipped models/student-llama3' },
      teacher: { type: 'string', valueName: 'dir', help: 'the teacher model folder', shownDefault: 'the shipped models/teacher-qwen3' },
      out: { type: 'string', valueName: 'dir', help: 'the run folder (default: runs/start-<time>)' },
      progress: { type: 'boolean', help: 'show the progress line on stderr (default: on; --no-progress turns it off)' },
    },
  },
  async run(args) {
    const runDir = (args.out as string | undefined) ?? path.join('runs', `start-${new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)}`);
    const r = START_RECIPE;
    const studentDir = (args.student as string | undefined) ?? DEFAULT_STUDENT;
    const teacherDir = (args.teacher as string | undefined) ?? DEFAULT_TEACHER;
    console.log(`xopd start: cross-tokenizer on-policy distillation on the arithmetic task`);
    const rel = (dir: string) => path.relative(process.cwd(), dir) || dir;
    console.log(`  student ${rel(studentDir)} (${modelTokenizer(studentDir)})  <-  teacher ${rel(teacherDir)} (${modelTokenizer(teacherDir)})`);
    const loss = lossName(r.options.loss!);
    console.log(`  loss ${loss}${r.options.loss !== 'chunk-pg' ? ` (span-kl: ${r.options.divergence}, teacher top-${r.options.topK})` : ''}, ${r.options.steps} steps x ${r.options.batchSize} prompts, lr ${r.learningRate ?? DEFAULT_DISTILL_LR}; test accuracy on ${r.options.evalSize} problems before and after\n`);
    const result = await distill({
      student: studentDir, teacher: { dir: teacherDir }, task: 'arithmetic',
      options: r.options, learningRate: r.learningRate, runDir, checkpointEvery: r.checkpointEvery, keepCheckpoints: 2,
      cli: { ...r.cli, out: runDir, ...(args.student !== undefined ? { student: studentDir } : {}), ...(args.teacher !== undefined ? { teacher: teacherDir } : {}) },
    }, { progress: args.progress !== false, handleSigint: true, log: (l) => console.log(l) });
    const pct = (x: number | null) => (x === null ? 'n/a' : `${(x * 100).toFixed(1)}%`);
    console.log('');
    if (result.interrupted) {
      console.log(`interrupted after step ${result.steps}; continue with: npx xopd distill --resume ${result.runDir}`);
      return EXIT.INTERRUPTED;
    }
    console.log(`test accuracy (${r.options.evalSize} problems): before ${pct(result.accuracyBefore)}, after ${pct(result.accuracyAfter)}  [${result.seconds.toFixed(0)} s]`);
    console.log(`run files: ${path.resolve(result.runDir)}`);
    console.log(`  student/       the distilled student (xopd eval --model ${path.join(result.runDir, 'student')})`);
    console.log(`  metrics.jsonl  per-step loss, advantage, 1:1 chunk share, masked share, timings; evaluations`);
    console.log(`  checkpoints/   resumable checkpoints;  summary.json, config.json`);
    return EXIT.OK;
  },
};
