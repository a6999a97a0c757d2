/**
 * The loss kernels on a chosen CPU path. The shipped addon always runs 'auto' (AVX2+FMA where the
 * CPU has it); the dev addon links the same kernel objects and can force its copy to 'scalar' (the
 * portable path other CPUs run), so tests check both paths against the references here.
 */
import { policyGradientLoss, policyGradientLossOn, type PolicyGradientNative } from '../src/loss/policy-gradient.js';
import { sparseDivergence, sparseDivergenceOn, type SparseDivergenceNative } from '../src/loss/sparse-divergence.js';
import { devAddon } from './addon.js';

export type CpuPath = 'auto' | 'scalar';
export const CPU_PATHS: readonly CpuPath[] = ['auto', 'scalar'];

interface SimdNative { lossSimd(name?: string): string }

/** The dev addon with its loss kernels switched to `path` (returns the path now active). */
function devLoss(path: string): PolicyGradientNative & SparseDivergenceNative {
  const dev = devAddon<SimdNative & PolicyGradientNative & SparseDivergenceNative>();
  const active = dev.lossSimd(path);
  if (path !== 'auto' && active !== path) throw new Error(`the dev addon's loss kernels run '${active}', not '${path}'`);
  return dev;
}

/** The loss facade on `path`: 'auto' is the shipped addon itself, 'scalar' the dev addon's portable path. */
export function lossOnPath(path: CpuPath): { sparseDivergence: typeof sparseDivergence; policyGradientLoss: typeof policyGradientLoss } {
  if (path === 'auto') return { sparseDivergence, policyGradientLoss };
  return {
    sparseDivergence: ((logits, shape, targets, opts) => sparseDivergenceOn(devLoss(path), logits, shape, targets, opts)) as typeof sparseDivergence,
    policyGradientLoss: ((logits, shape, actions, advantages, mask, opts) =>
      policyGradientLossOn(devLoss(path), logits, shape, actions, advantages, mask, opts)) as typeof policyGradientLoss,
  };
}
