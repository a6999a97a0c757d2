import type { Command } from '../command.js';
import { ErrorCode, XopdError } from '../../core/errors.js';
import { DEFAULT_DISTILL_LR, DEFAULT_STUDENT, DEFAULT_TEACHER } from '../../run/job.js';
import { ARMS, type Arm } from '../../experiment/arms.js';
import { runExperiment } from '../../experiment/experiment.js';
import { MAX_RESPONSE_TOKENS } from '../../tasks/arithmetic.js';
import { summarize, computeRatio } from '../../report/curves.js';

export const experimentCommand: Command = {
  spec: {
    name: 'experiment',
    summary: 'SFT vs cross-tokenizer OPD (chunk-pg, span-kl, ULD) at equal FLOPs over seeds; writes report/index.html.',
    usage: 'xopd experiment [options]',
    options: {
      student: { type: 'string', help: 'student model folder', default: DEFAULT_STUDENT, valueName: 'dir' },
      teacher: { type: 'string', help: 'teacher model folder', default: DEFAULT_TEACHER, valueName: 'dir' },
      arms: { type: 'string', help: `comma-separated arms (${ARMS.join(', ')})`, default: ARMS.join(',') },
      seeds: { type: 'string', help: 'comma-separated seeds', default: '1,2,3' },
      budget: { type: 'number', help: 'FLOPs per run (0: those of --steps chunk-pg steps, seed one)', default: 0, min: 0 },
      steps: { type: 'int', help: 'steps of chunk-pg that set the budget when --budget is 0', default: 400, min: 1 },
      'eval-every': { type: 'int', help: 'evaluate every N steps', default: 50, min: 1 },
      'eval-n': { type: 'int', help: 'test problems per evaluation', default: 200, min: 1 },
      batch: { type: 'int', help: 'prompts per step', default: 16, min: 1 },
      'max-tokens': { type: 'int', help: 'longest response in tokens', default: MAX_RESPONSE_TOKENS, min: 1 },
      'top-k': { type: 'int', help: 'teacher top-k for span-kl and ULD', default: 8, min: 1, max: 64 },
      lr: { type: 'number', help: 'student learning rate (20-step warm-up, then constant)', default: DEFAULT_DISTILL_LR, min: 0 },
      out: { type: 'string', help: 'report folder', default: 'report', valueName: 'dir' },
      quick: { type: 'boolean', help: 'CI smoke: one seed, 3 steps, 20 test problems, batch 4' },
      json: { type: 'boolean', help: 'print the summary as JSON' },
    },
    examples: ['xopd experiment', 'xopd experiment --quick --out /tmp/report', 'xopd experiment --arms sft,span-fkl --seeds 1'],
  },
  async run(args) {
    const list = (s: unknown) => String(s).split(',').map((x) => x.trim()).filter(Boolean);
    const arms = list(args.arms) as Arm[];
    for (const a of arms) if (!ARMS.includes(a)) throw new XopdError(ErrorCode.CLI_USAGE, `--arms: unknown arm '${a}'; arms: ${ARMS.join(', ')}`);
    const seeds = list(args.seeds).map((x) => {
      const n = Number(x);
      if (!Number.isInteger(n) || n < 0) throw new XopdError(ErrorCode.CLI_USAGE, `--seeds: '${x}' is not a non-negative integer`);
      return n;
    });
    const quick = args.quick === true;
    const command = ['xopd experiment', ...process.argv.slice(3)].join(' ');
    const r = await runExperiment({
      studentDir: String(args.student), teacherDir: String(args.teacher), arms, seeds: quick ? seeds.slice(0, 1) : seeds,
      budget: Number(args.budget), steps: quick ? 3 : Number(args.steps), evalEvery: quick ? 3 : Number(args['eval-every']),
      evalN: quick ? 20 : Number(args['eval-n']), batchSize: quick ? 4 : Number(args.batch), maxTokens: Number(args['max-tokens']),
      topK: Number(args['top-k']), lr: Number(args.lr), outDir: String(args.out), command,
    });
    const summary = summarize(r.report.runs).map((s) => ({ ...s, ratio: s.arm === 'sft' ? null : computeRatio(r.report.runs, 'sft', s.arm)?.ratio ?? null }));
    if (args.json) console.log(JSON.stringify({ report: r.reportFile, budget: r.budget, summary }));
    else {
      for (const s of summary) console.log(`${s.arm.padEnd(9)} accuracy ${(100 * s.initialAccuracy).toFixed(1)}% -> ${(100 * s.finalMean).toFixed(1)}% ± ${(100 * s.finalStd).toFixed(1)} (best ${(100 * s.bestMean).toFixed(1)}%)${s.ratio ? (s.ratio >= 1 ? `, reaches SFT's best with ${s.ratio.toFixed(2)}x less compute` : `, needs ${(1 / s.ratio).toFixed(2)}x SFT's compute to reach SFT's best`) : ''}`);
      console.log(`report: ${r.reportFile}`);
    }
    return 0;
  },
};
