import type { Command } from '../command.js';
import { ErrorCode, XopdError } from '../../core/errors.js';
import { probeWritable } from '../../core/files.js';
import { ARMS, DEFAULT_PROJECTION, PROJECTIONS, type Arm, type Projection } from '../../experiment/arms.js';
import { runExperiment } from '../../experiment/experiment.js';
import { REGIMES } from '../../experiment/regimes.js';
import { ratioText } from '../../report/html.js';
import { meanCurve } from '../../report/curves.js';

export const experimentCommand: Command = {
  spec: {
    name: 'experiment',
    summary: 'Continued SFT against cross-tokenizer OPD from an SFT checkpoint at equal FLOPs (tuned rates, seeds, two regimes, a same-tokenizer control); writes report/index.html.',
    usage: 'xopd experiment [options]',
    options: {
      regimes: { type: 'string', help: `comma-separated regimes (${Object.keys(REGIMES).join(', ')})`, default: Object.keys(REGIMES).join(',') },
      arms: { type: 'string', help: `comma-separated arms (${ARMS.join(', ')}); sft always runs, it is the baseline`, default: ARMS.join(',') },
      'control-arms': { type: 'string', help: "comma-separated arms of the same-tokenizer control (default: each regime's, sft,chunk-pg,span-rkl: the tax is read for its OPD arms, which are also set against its own continued SFT); 'none' runs no control", valueName: 'list' },
      lrs: { type: 'string', help: "comma-separated learning rates replacing each regime's grid (3e-5,1e-4,3e-4)", valueName: 'list' },
      seeds: { type: 'string', help: "comma-separated seeds (default: each regime's, 1,2,3); the first runs the learning-rate grid", valueName: 'list' },
      projection: { type: 'string', help: 'span projection revision of the span arms', default: DEFAULT_PROJECTION, choices: [...PROJECTIONS] },
      jobs: { type: 'int', help: 'runs in parallel, one worker process each (one CPU thread each by default)', default: 2, min: 1, max: 256 },
      cache: { type: 'string', help: 'folder of finished runs and SFT checkpoints: a re-run reuses them, an interrupted one resumes', default: 'runs/experiment', valueName: 'dir' },
      out: { type: 'string', help: 'report folder', default: 'report', valueName: 'dir' },
      quick: { type: 'boolean', help: 'CI smoke: every stage and arm of both regimes, a few steps each, 10 problems per evaluation, one seed, two rates' },
      json: { type: 'boolean', help: 'print the summary as JSON' },
    },
    examples: ['xopd experiment', 'xopd experiment --quick --out /tmp/report --cache /tmp/cache', 'xopd experiment --regimes styles --arms sft,chunk-pg --seeds 1', 'xopd experiment --regimes shipped --arms sft,chunk-pg,mix --lrs 1e-4 --seeds 1 --control-arms none'],
  },
  async run(args) {
    const list = (s: unknown) => String(s).split(',').map((x) => x.trim()).filter(Boolean);
    const arms = list(args.arms) as Arm[];
    for (const a of arms) if (!ARMS.includes(a)) throw new XopdError(ErrorCode.CLI_USAGE, `--arms: unknown arm '${a}'; arms: ${ARMS.join(', ')}`);
    const regimes = list(args.regimes);
    for (const r of regimes) if (!REGIMES[r]) throw new XopdError(ErrorCode.CLI_USAGE, `--regimes: unknown regime '${r}'; regimes: ${Object.keys(REGIMES).join(', ')}`);
    const seeds = args.seeds === undefined ? undefined : list(args.seeds).map((x) => {
      const n = Number(x);
      if (!Number.isInteger(n) || n < 0) throw new XopdError(ErrorCode.CLI_USAGE, `--seeds: '${x}' is not a non-negative integer`);
      return n;
    });
    const controlArms = args['control-arms'] === undefined ? undefined : String(args['control-arms']) === 'none' ? [] : list(args['control-arms']) as Arm[];
    for (const a of controlArms ?? []) if (!ARMS.includes(a)) throw new XopdError(ErrorCode.CLI_USAGE, `--control-arms: unknown arm '${a}'; arms: ${ARMS.join(', ')}`);
    const lrGrid = args.lrs === undefined ? undefined : list(args.lrs).map((x) => {
      const n = Number(x);
      if (!(n > 0 && n < 1)) throw new XopdError(ErrorCode.CLI_USAGE, `--lrs: '${x}' is not a learning rate in (0, 1)`);
      return n;
    });
    const out = String(args.out);
    probeWritable('the report folder', `${out}/index.html`);
    const command = ['xopd experiment', ...process.argv.slice(3)].join(' ');
    const r = await runExperiment({
      regimes, arms, seeds, ...(controlArms ? { controlArms } : {}), ...(lrGrid ? { lrGrid } : {}), projection: String(args.projection) as Projection, quick: args.quick === true, jobs: Number(args.jobs),
      cacheDir: String(args.cache), outDir: out, command,
    });
    const summary = r.report.regimes.map((g) => ({
      regime: g.name,
      stage1: { student: g.cross.stage1.test, control: g.same?.stage1.test ?? null, flops: g.cross.stage1.flops, controlFlops: g.same?.stage1.flops ?? null },
      arms: Object.keys(g.cross.chosen).map((arm) => {
        const c = meanCurve(g.cross.runs.filter((x) => x.arm === arm));
        const h = g.headline.find((x) => x.arm === arm);
        return { arm, lr: g.cross.chosen[arm], start: c.mean[0], final: c.mean[c.mean.length - 1], ratio: h?.ratio ?? null, how: h?.how ?? 'baseline' };
      }),
      tax: g.tax.map((t) => ({ arm: t.arm, tax: t.tax, gain: t.gain })),
      control: (g.sameHeadline ?? []).map((h) => ({ arm: h.arm, final: h.target, ratio: h.ratio, how: h.how })),
    }));
    if (args.json) console.log(JSON.stringify({ report: r.reportFile, summary }));
    else {
      const pct = (x: number | undefined) => `${(100 * (x ?? NaN)).toFixed(1)}%`;
      for (const g of r.report.regimes) {
        console.log(`${g.name}: SFT checkpoint ${pct(g.cross.stage1.test)} (${g.cross.student}), control ${g.same ? `${pct(g.same.stage1.test)} (${g.same.student})` : 'none'}`);
        for (const s of summary.find((x) => x.regime === g.name)!.arms) {
          const h = g.headline.find((x) => x.arm === s.arm);
          console.log(`  ${s.arm.padEnd(9)} lr ${s.lr}  ${pct(s.start)} -> ${pct(s.final)}${h ? `  compute ratio vs continued SFT ${ratioText(h)} (${h.how})` : '  (baseline)'}`);
        }
        for (const h of g.sameHeadline ?? []) console.log(`  control ${h.arm.padEnd(9)} ${pct(h.target)}  compute ratio vs the control's continued SFT ${ratioText(h)} (${h.how})`);
        for (const t of g.tax) console.log(`  mapping tax ${t.arm}: ${t.tax === null ? '–' : t.tax.toFixed(2)} (gain ${(100 * t.gain).toFixed(1)} points)`);
      }
      console.log(`report: ${r.reportFile}`);
    }
    return 0;
  },
};
