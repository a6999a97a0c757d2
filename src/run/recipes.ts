/**
 * The settings `npm start` runs on the shipped models: the paper's chunk credit and span projection
 * with reverse KL (teacher top-8), weighted 1:1, 400 steps of 32 prompts at lr 1e-4 (about 3 minutes
 * on 2 cores). Tuned on the shipped Llama 3 student (35% before, 49% after; span-kl alone 44-47%,
 * chunk-pg alone about 45%). Forward KL made this student cut numbers into shorter tokens than it
 * was trained on and fell to 0%; lr 3e-4 fell to 8% (README, "Distillation").
 */
import { lossName, type DistillOptions } from '../train/options.js';
import { DEFAULT_DISTILL_LR } from './job.js';
import { MAX_RESPONSE_TOKENS } from '../tasks/arithmetic.js';

export interface Recipe {
  options: DistillOptions;
  learningRate?: number;
  checkpointEvery: number;
  /** the same settings as `xopd distill` options, so `xopd distill --resume` can rebuild the job */
  cli: Record<string, unknown>;
}

const startOptions: DistillOptions = {
  loss: { chunkPg: 1, spanKl: 1 }, divergence: 'reverse-kl', topK: 8, steps: 400, batchSize: 32, evalSize: 200, seed: 1, maxTokens: MAX_RESPONSE_TOKENS, temperature: 1,
};

export const START_RECIPE: Recipe = {
  options: startOptions,
  learningRate: DEFAULT_DISTILL_LR,
  checkpointEvery: 100,
  cli: {
    loss: lossName(startOptions.loss!), divergence: startOptions.divergence, 'top-k': startOptions.topK, steps: startOptions.steps,
    'batch-size': startOptions.batchSize, 'eval-size': startOptions.evalSize, seed: startOptions.seed, 'max-tokens': startOptions.maxTokens,
    temperature: startOptions.temperature, 'learning-rate': DEFAULT_DISTILL_LR, 'checkpoint-every': 100,
  },
};
