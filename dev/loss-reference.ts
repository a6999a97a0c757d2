/**
 * The float64 reference implementations of the loss kernels (native/loss/*_reference.cc, in the
 * dev addon): full softmax, textbook formulas, no fusion. For tests and benchmarks; not tuned for speed.
 */
import { callNative } from '../src/core/errors.js';
import { fromBf16, type Logits, type LogitsShape } from '../src/loss/logits.js';
import { hasGroups, targetRow, type SparseTargets } from '../src/project/targets.js';
import type { Divergence } from '../src/loss/sparse-divergence.js';
import { DEFAULT_CLIP, type ClipOptions } from '../src/loss/policy-gradient.js';
import { devAddon } from './addon.js';

interface ReferenceNative {
  policyGradientReference(args: Record<string, unknown>): { loss: number; grad: Float64Array; clippedFraction: number };
  sparseDivergenceReference(args: Record<string, unknown>): { loss: number; grad: Float64Array; rowLoss: Float64Array };
}

const f64 = (x: Float32Array | Float64Array | Uint16Array): Float64Array =>
  x instanceof Float64Array ? x : Float64Array.from(x instanceof Uint16Array ? fromBf16(x) : x);

export function policyGradientLossReference(logits: Logits | Float64Array, shape: LogitsShape, actions: Int32Array,
  advantages: Float32Array | Float64Array, mask: Uint8Array,
  opts: { oldLogprobs?: Float32Array | Float64Array; clip?: ClipOptions } = {}): { loss: number; grad: Float64Array; clippedFraction: number } {
  const clip = { ...DEFAULT_CLIP, ...(opts.clip ?? {}) };
  return callNative(() => devAddon<ReferenceNative>().policyGradientReference({
    logits: f64(logits), rows: shape.rows, vocab: shape.vocab, actions, advantages: f64(advantages), mask,
    oldLogprobs: opts.oldLogprobs ? f64(opts.oldLogprobs) : undefined, low: clip.low, high: clip.high, dual: clip.dual,
  }));
}

/** Every bucket's ids listed (the reference reads no compact form): bucketPtr [buckets + 1], members. */
function explicitBuckets(targets: SparseTargets): { bucketPtr: Int32Array; members: Int32Array } {
  const bucketPtr = new Int32Array(targets.ids.length + 1);
  const members: number[] = [];
  for (let j = 0; j < targets.tail.length; j++) {
    targetRow(targets, j).buckets.forEach((b, k) => {
      members.push(...b.ids);
      bucketPtr[targets.rowPtr[j]! + k + 1] = members.length;
    });
  }
  return { bucketPtr, members: Int32Array.from(members) };
}

/**
 * The float64 reference of sparseDivergence. Targets with prefix groups are handed over with every
 * bucket's ids listed (Targets.row: the first-claim rule applied in TypeScript), never as ranges.
 */
export function sparseDivergenceReference(logits: Logits | Float64Array, shape: LogitsShape,
  targets: Omit<SparseTargets, 'probs' | 'tail'> & { probs: Float32Array | Float64Array; tail: Float32Array | Float64Array },
  opts: { divergence: Divergence; beta?: number; temperature?: number; mask?: Uint8Array; epsilon?: number }):
  { loss: number; grad: Float64Array; rowLoss: Float64Array } {
  let mask = opts.mask ?? new Uint8Array(shape.rows).fill(1);
  if (targets.mask) mask = mask.map((m, i) => (m && targets.mask![i] ? 1 : 0));
  const explicit = hasGroups(targets as SparseTargets) ? explicitBuckets(targets as SparseTargets) : {};
  return callNative(() => devAddon<ReferenceNative>().sparseDivergenceReference({
    logits: f64(logits), rows: shape.rows, vocab: shape.vocab, rowPtr: targets.rowPtr, ids: targets.ids, ...explicit,
    probs: f64(targets.probs), tail: f64(targets.tail), mask, divergence: opts.divergence, beta: opts.beta ?? 0.5,
    temperature: opts.temperature ?? 1, epsilon: opts.epsilon ?? 1e-8,
  }));
}
