/**
 * Fused policy-gradient loss (DESIGN 4): -mean over unmasked rows of A_r * log pi(a_r), or with
 * oldLogprobs the PPO ratio objective with clipping (low 0.2, high 0.28, dual-clip c = 10).
 * One native call returns the loss and d loss / d logits; softmax is never materialised.
 */
import * as check from '../core/check.js';
import { ErrorCode, callNative } from '../core/errors.js';
import { addon, runOnDevice, type Device } from '../core/native.js';
import { checkLogits, checkMask, checkOut, type GradOf, type Logits, type LogitsShape } from './logits.js';

/** This module's slice of the addon (native/loss/binding.cc). */
export interface PolicyGradientNative {
  policyGradient(args: Record<string, unknown>): { loss: number; grad: Logits; clippedFraction: number; kept: number };
}

export interface ClipOptions {
  /** ratio lower bound 1 - low (default 0.2) */
  low: number;
  /** ratio upper bound 1 + high (default 0.28) */
  high: number;
  /** dual clip: for negative advantages the objective is at least dual * A (default 10; 0 turns it off) */
  dual?: number;
}

export interface PolicyGradientOptions<L extends Logits = Logits> {
  /** the rollout's logprobs of the actions: turns on the PPO ratio objective with clipping */
  oldLogprobs?: Float32Array;
  /** clipping bounds (needs oldLogprobs) */
  clip?: ClipOptions;
  device?: Device;
  /** a buffer to write the gradient into (same type and length as logits; may be logits itself) */
  out?: GradOf<L>;
}

export interface PolicyGradientResult<L extends Logits = Float32Array> {
  loss: number;
  grad: GradOf<L>;
  stats: {
    /** share of unmasked rows whose clipped branch is active (no gradient) */
    clippedFraction: number;
    /** unmasked rows: the denominator of the mean */
    rows: number;
  };
}

export const DEFAULT_CLIP: Readonly<Required<ClipOptions>> = { low: 0.2, high: 0.28, dual: 10 };

/**
 * logits [rows, vocab]; actions, advantages, mask [rows]. Masked rows get a zero gradient and do not
 * count in the mean. Actions are column indices of the logits (the student's vocabulary index space).
 */
export function policyGradientLoss<L extends Logits>(logits: L, shape: LogitsShape, actions: Int32Array, advantages: Float32Array,
  mask: Uint8Array, opts: PolicyGradientOptions<L> = {}): PolicyGradientResult<L> {
  return policyGradientLossOn(addon<PolicyGradientNative>(), logits, shape, actions, advantages, mask, opts);
}

/**
 * policyGradientLoss on a given build of the addon. Not exported by the package: dev/ runs the same
 * checks and call on the dev addon, whose CPU path can be forced to scalar for the tests.
 */
export function policyGradientLossOn<L extends Logits>(native: PolicyGradientNative, logits: L, shape: LogitsShape,
  actions: Int32Array, advantages: Float32Array, mask: Uint8Array, opts: PolicyGradientOptions<L> = {}): PolicyGradientResult<L> {
  const { rows, vocab } = checkLogits(logits, shape);
  check.typed(actions, Int32Array, 'actions', rows);
  check.typed(advantages, Float32Array, 'advantages', rows);
  const m = checkMask(mask, rows)!;
  if (!m) check.fail(ErrorCode.ARG_TYPE, 'mask must be a Uint8Array with one entry per row');
  if (!opts || typeof opts !== 'object') check.fail(ErrorCode.ARG_TYPE, 'opts must be an object');
  let old: Float32Array | undefined;
  if (opts.oldLogprobs !== undefined) old = check.typed(opts.oldLogprobs, Float32Array, 'oldLogprobs', rows);
  for (let r = 0; r < rows; r++) {
    if (!m[r]) continue;
    const a = actions[r]!;
    if (a < 0 || a >= vocab) check.fail(ErrorCode.TOKEN_ID, `actions[${r}] = ${a} is outside the vocabulary [0, ${vocab})`);
    if (!Number.isFinite(advantages[r]!)) check.fail(ErrorCode.ARG_VALUE, `advantages[${r}] is ${advantages[r]}: must be finite`);
    if (old) {
      const o = old[r]!;
      if (!Number.isFinite(o) || o > 1e-4)
        check.fail(ErrorCode.ARG_VALUE, `oldLogprobs[${r}] = ${o} is not a log-probability (finite, <= 0)`);
    }
  }
  let clip = DEFAULT_CLIP;
  if (opts.clip !== undefined) {
    if (!old) check.fail(ErrorCode.ARG_VALUE, 'clip needs oldLogprobs (the ratio is taken against them)');
    if (!opts.clip || typeof opts.clip !== 'object') check.fail(ErrorCode.ARG_TYPE, 'clip must be { low, high, dual? }');
    clip = {
      low: check.num(opts.clip.low, 'clip.low', 0, 0.999999),
      high: check.num(opts.clip.high, 'clip.high', 0, 1e6),
      dual: opts.clip.dual === undefined ? DEFAULT_CLIP.dual : check.num(opts.clip.dual, 'clip.dual', 0, 1e9),
    };
    if (clip.dual !== 0 && clip.dual <= 1) check.fail(ErrorCode.ARG_RANGE, `clip.dual must be 0 (off) or > 1, got ${clip.dual}`);
  }
  const out = checkOut(opts.out, logits);
  // (in place: a CUDA fault may have overwritten the logits, so the CPU cannot redo the call)
  const r = runOnDevice(opts.device ?? 'auto', (device) => callNative(() => native.policyGradient({
    logits, rows, vocab, actions, advantages, mask: m, oldLogprobs: old, low: clip.low, high: clip.high, dual: clip.dual, device, out,
  })), { retryOnCpu: out !== logits });
  return { loss: r.loss, grad: r.grad as GradOf<L>, stats: { clippedFraction: r.clippedFraction, rows: r.kept } };
}
