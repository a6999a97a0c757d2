/**
 * Stage 0 of a regime whose models are not shipped: each missing model folder is built by
 * supervised pre-training (train/pretrain.ts) with the options the regime names, once, into the
 * cache; the same options are the `xopd pretrain` command README's "Embedded models" lists for it.
 */
import { pretrain, type PretrainOptions } from '../train/pretrain.js';
import type { ModelShape } from '../model/config.js';
import type { TaskVariant } from '../tasks/styles.js';

/** What builds one model: the pre-training options that matter to its weights (all seeded). */
export interface ModelRecipe {
  tokenizer: string;
  /** a model folder to continue from (its shape and tokenizer) */
  init?: string;
  task: TaskVariant;
  shape?: Partial<ModelShape>;
  steps: number;
  /** stop after this many steps of the `steps` schedule (a part-way checkpoint) */
  stopAfter?: number;
  batch: number;
  lr: number;
  minLr: number;
  warmup: number;
  seed: number;
}

export interface BuildJob {
  kind: 'build';
  recipe: ModelRecipe;
  /** the model folder it writes */
  out: string;
}

export interface BuildResult {
  kind: 'build';
  steps: number;
  seconds: number;
  finalLoss: number;
  params: number;
}

export function runBuild(job: BuildJob): BuildResult {
  const { recipe: r } = job;
  const options: PretrainOptions = {
    tokenizer: r.tokenizer, task: r.task, steps: r.steps, batch: r.batch, lr: r.lr, minLr: r.minLr, warmup: r.warmup, seed: r.seed,
    weightDecay: 0.01, clip: 1, trainProblems: 0, ...(r.stopAfter !== undefined ? { stopAfter: r.stopAfter } : {}), ...(r.init !== undefined ? { init: r.init } : {}), ...(r.shape ? { shape: r.shape } : {}),
  };
  const res = pretrain(options);
  res.model.save(job.out, { training: { command: recipeCommand(r), ...r, stepsDone: res.steps, finalLoss: res.finalLoss } });
  return { kind: 'build', steps: res.steps, seconds: res.seconds, finalLoss: res.finalLoss, params: res.model.paramCount };
}

/** The `xopd pretrain` command that builds the same model outside the experiment. */
export function recipeCommand(r: ModelRecipe): string {
  const s = r.shape;
  return ['xopd pretrain', ...(r.init !== undefined ? [`--init ${r.init}`] : []), `--task ${r.task}`, `--tokenizer ${r.tokenizer}`,
    ...(s ? [`--dim ${s.hiddenSize}`, `--layers ${s.numLayers}`, `--heads ${s.numHeads}`, `--hidden ${s.intermediateSize}`, `--mlp ${s.mlp}`, `--max-seq ${s.maxSeqLen}`] : []),
    `--steps ${r.steps}`, ...(r.stopAfter !== undefined ? [`--stop-after ${r.stopAfter}`] : []), `--batch ${r.batch}`, `--lr ${r.lr}`, `--min-lr ${r.minLr}`, `--warmup ${r.warmup}`, '--weight-decay 0.01 --clip 1', `--seed ${r.seed}`, '--train-problems 0'].join(' ');
}
