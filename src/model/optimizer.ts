/** The embedded model's optimizer settings: AdamW with linear warm-up, cosine decay and global-norm clipping. */
import * as check from '../core/check.js';
import type { NativeOptimizer } from './native.js';

export interface OptimizerOptions {
  /** peak learning rate (default 1e-3) */
  lr?: number;
  /** final learning rate of the cosine decay (default lr / 10) */
  minLr?: number;
  /** linear warm-up steps (default 0) */
  warmup?: number;
  /** steps of the cosine decay, counted from step 0 (default 0: constant lr after warm-up) */
  totalSteps?: number;
  beta1?: number; // default 0.9
  beta2?: number; // default 0.95
  eps?: number; // default 1e-8
  /** decoupled weight decay on matrices (default 0) */
  weightDecay?: number;
  /** global gradient-norm clip (default 1; 0 turns it off) */
  clip?: number;
}

export interface StepInfo {
  /** the learning rate this step used */
  lr: number;
  /** the global gradient norm before clipping */
  gradNorm: number;
  /** steps taken so far */
  step: number;
}

/** Checks the options and fills the defaults. */
export function resolveOptimizer(o: OptimizerOptions): NativeOptimizer {
  const lr = check.num(o.lr ?? 1e-3, 'lr', 0, 10);
  return {
    lr,
    minLr: check.num(o.minLr ?? lr / 10, 'minLr', 0, 10),
    warmup: check.int(o.warmup ?? 0, 'warmup', 0, 1e9),
    totalSteps: check.int(o.totalSteps ?? 0, 'totalSteps', 0, 1e9),
    beta1: check.num(o.beta1 ?? 0.9, 'beta1', 0, 0.999999),
    beta2: check.num(o.beta2 ?? 0.95, 'beta2', 0, 0.999999999),
    eps: check.num(o.eps ?? 1e-8, 'eps', 0, 1),
    weightDecay: check.num(o.weightDecay ?? 0, 'weightDecay', 0, 10),
    clip: check.num(o.clip ?? 1, 'clip', 0, 1e9),
  };
}
