/**
 * Fused bucketed divergence (DESIGN 6) between student logits and sparse teacher targets: forward
 * KL, reverse KL, or generalized JSD(beta), over the row's buckets (single ids and prefix groups,
 * src/project/targets.ts) + {everything else}. One native call returns the mean loss over unmasked
 * rows and d loss / d logits.
 */
import * as check from '../core/check.js';
import { ErrorCode, callNative } from '../core/errors.js';
import { addon, resolveDevice, runOnDevice, type Device } from '../core/native.js';
import { andMasks, checkLogits, checkMask, checkOut, type GradOf, type Logits, type LogitsShape } from './logits.js';
import { checkTargets, hasGroups, oneHotTargets, type SparseTargets } from '../project/targets.js';

/** This module's slice of the addon (native/loss/binding.cc). */
export interface SparseDivergenceNative {
  sparseDivergence(args: Record<string, unknown>): { loss: number; grad: Logits; kept: number };
}

export type Divergence = 'forward-kl' | 'reverse-kl' | 'jsd';
export const DIVERGENCES: readonly Divergence[] = ['forward-kl', 'reverse-kl', 'jsd'];

export interface SparseDivergenceOptions<L extends Logits = Logits> {
  divergence: Divergence;
  /** JSD mixture weight of the teacher, m = beta q + (1 - beta) p (default 0.5); 0 and 1 are forward and reverse KL */
  beta?: number;
  /** divides the student logits (default 1); the targets are used as given */
  temperature?: number;
  /** rows with 0 give no gradient and do not count in the mean (combined with targets.mask) */
  mask?: Uint8Array;
  /** floor of q for reverse KL and JSD before renormalising (default 1e-8) */
  epsilon?: number;
  /** 'auto' (default), 'cpu' or 'cuda'; targets with prefix groups run on the CPU in this build ('auto' picks it) */
  device?: Device;
  /** a buffer to write the gradient into (same type and length as logits; may be logits itself) */
  out?: GradOf<L>;
}

export interface LossResult<L extends Logits = Float32Array> {
  loss: number;
  grad: GradOf<L>;
  /** unmasked rows: the denominator of the mean */
  rows: number;
}

export function sparseDivergence<L extends Logits>(logits: L, shape: LogitsShape, targets: SparseTargets,
  opts: SparseDivergenceOptions<L>): LossResult<L> {
  return sparseDivergenceOn(addon<SparseDivergenceNative>(), logits, shape, targets, opts);
}

/**
 * sparseDivergence on a given build of the addon. Not exported by the package: dev/ runs the same
 * checks and call on the dev addon, whose CPU path can be forced to scalar for the tests.
 */
export function sparseDivergenceOn<L extends Logits>(native: SparseDivergenceNative, logits: L, shape: LogitsShape,
  targets: SparseTargets, opts: SparseDivergenceOptions<L>): LossResult<L> {
  const { rows, vocab } = checkLogits(logits, shape);
  const t = checkTargets(targets, rows, vocab);
  if (!opts || typeof opts !== 'object') check.fail(ErrorCode.ARG_TYPE, "opts must be an object with divergence: 'forward-kl' | 'reverse-kl' | 'jsd'");
  const divergence = check.oneOf(opts.divergence, 'divergence', DIVERGENCES);
  const beta = opts.beta === undefined ? 0.5 : check.num(opts.beta, 'beta', 0, 1);
  const temperature = opts.temperature === undefined ? 1 : check.num(opts.temperature, 'temperature', 1e-6, 1e6);
  const epsilon = opts.epsilon === undefined ? 1e-8 : check.num(opts.epsilon, 'epsilon', 1e-30, 0.009);
  const mask = andMasks(checkMask(opts.mask, rows), t.mask);
  const out = checkOut(opts.out, logits);
  const grouped = hasGroups(t);
  if (grouped && opts.device === 'cuda') {
    resolveDevice('cuda');  // no CUDA at all: that error first
    check.fail(ErrorCode.CUDA_UNAVAILABLE, "grouped buckets run on the CPU in this build: use device 'cpu' or 'auto' for targets with prefix groups");
  }
  if (grouped) resolveDevice(opts.device ?? 'auto');  // checks the name
  const g = grouped ? t.groups : undefined;
  // (in place: a CUDA fault may have overwritten the logits, so the CPU cannot redo the call)
  const r = runOnDevice(grouped ? 'cpu' : opts.device ?? 'auto', (device) => callNative(() => native.sparseDivergence({
    logits, rows, vocab, rowPtr: t.rowPtr, ids: t.ids, probs: t.probs, tail: t.tail, mask,
    groupLo: g?.lo, groupHi: g?.hi, byteOrder: g?.byteOrder,
    divergence, beta, temperature, epsilon, device, out,
  })), { retryOnCpu: out !== logits });
  return { loss: r.loss, grad: r.grad as GradOf<L>, rows: r.kept };
}

/** Cross-entropy (the SFT baseline): the divergence kernel with one-hot targets, -mean log p(label). */
export function crossEntropy<L extends Logits>(logits: L, shape: LogitsShape, labels: Int32Array,
  opts: Omit<SparseDivergenceOptions<L>, 'divergence' | 'beta' | 'epsilon'> = {}): LossResult<L> {
  const { rows } = checkLogits(logits, shape);
  check.typed(labels, Int32Array, 'labels', rows);
  return sparseDivergence(logits, shape, oneHotTargets(labels), { ...opts, divergence: 'forward-kl' });
}
