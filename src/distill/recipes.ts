/**
 * Tuned settings for the shipped models (what `npm start` runs). Measured on a 2-core machine; see
 * the README for the numbers and the commands that reproduce them.
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
