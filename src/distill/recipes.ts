/**
 * The settings `npm start` runs on the shipped models (60 chunk-pg steps, about 12 s on 2 cores).
 * They were not tuned for the shipped student, which is too weak to improve in that budget.
 */
import type { DistillOptions } from './distiller.js';

export interface Recipe {
  options: DistillOptions;
  learningRate?: number;
  checkpointEvery: number;
  /** the same settings as `xopd distill` options, so `xopd distill --resume` can rebuild the job */
  cli: Record<string, unknown>;
}

const startOptions: DistillOptions = { loss: 'chunk-pg', steps: 60, batchSize: 16, evalSize: 200, seed: 1, maxTokens: 48, temperature: 1 };

export const START_RECIPE: Recipe = {
  options: startOptions,
  learningRate: undefined,
  checkpointEvery: 20,
  cli: {
    loss: startOptions.loss, steps: startOptions.steps, 'batch-size': startOptions.batchSize, 'eval-size': startOptions.evalSize,
    seed: startOptions.seed, 'max-tokens': startOptions.maxTokens, temperature: startOptions.temperature, 'checkpoint-every': 20,
  },
};
