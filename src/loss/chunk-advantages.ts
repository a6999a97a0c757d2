/**
 * Chunk credit assignment (DESIGN 4, the paper's estimator). For chunk c with
 * L_T = sum of the teacher logprobs over its teacher tokens and L_S = sum of the student logprobs
 * over its student tokens, student token i of c gets
 *   A_i = (L_T / L_S - 1) * log p_i      proportional: the token's share of the chunk's surprisal
 *   A_i = L_T / n_c - log p_i            when |L_S| < 1e-8, or with credit 'uniform'
 * clamped to +-clamp. A 1:1 chunk gives log q - log p. Tokens of flagged chunks are masked
 * (advantage 0, mask 0) unless includeFlags lets those flags through. Float64 throughout.
 */
import * as check from '../core/check.js';
import { ErrorCode } from '../core/errors.js';
import { checkAlignment, type Alignment } from '../align/types.js';

export interface ChunkAdvantageOptions {
  /** 'proportional' (default) or 'uniform' */
  credit?: 'proportional' | 'uniform';
  /** |A_i| bound (default 10) */
  clamp?: number;
  /** ChunkFlags bits that do NOT mask a chunk (default 0: any flag masks) */
  includeFlags?: number;
}

export interface ChunkSignal {
  /** [teacher tokens] logprob of each realised teacher token */
  teacherLogprobs: Float32Array;
  /** [student tokens] logprob of each sampled student token (the rollout's) */
  studentLogprobs: Float32Array;
}

const SMALL_LS = 1e-8;

function checkLogprobs(x: Float32Array, name: string): void {
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    if (!Number.isFinite(v)) check.fail(ErrorCode.ARG_VALUE, `${name}[${i}] is ${v}: logprobs must be finite`);
    if (v > 1e-4) check.fail(ErrorCode.ARG_VALUE, `${name}[${i}] = ${v} is not a log-probability (a probability above 1)`);
  }
}

export function chunkAdvantages(alignment: Alignment, signal: ChunkSignal, opts: ChunkAdvantageOptions = {}):
  { advantages: Float32Array; mask: Uint8Array } {
  if (!signal || typeof signal !== 'object') check.fail(ErrorCode.ARG_TYPE, 'signal must be { teacherLogprobs, studentLogprobs }');
  const lt = check.typed(signal.teacherLogprobs, Float32Array, 'signal.teacherLogprobs');
  const ls = check.typed(signal.studentLogprobs, Float32Array, 'signal.studentLogprobs');
  if (ls.length === 0) check.fail(ErrorCode.ARG_SHAPE, 'signal.studentLogprobs is empty: the response has no tokens');
  const a = checkAlignment(alignment, ls.length, lt.length);
  checkLogprobs(lt, 'signal.teacherLogprobs');
  checkLogprobs(ls, 'signal.studentLogprobs');
  const credit = opts.credit === undefined ? 'proportional' : check.oneOf(opts.credit, 'credit', ['proportional', 'uniform'] as const);
  const clamp = opts.clamp === undefined ? 10 : check.num(opts.clamp, 'clamp', 0);
  const include = opts.includeFlags === undefined ? 0 : check.int(opts.includeFlags, 'includeFlags', 0, 255);

  const advantages = new Float32Array(ls.length);
  const mask = new Uint8Array(ls.length);
  for (let c = 0; c < a.chunkCount; c++) {
    if ((a.flags[c]! & ~include) !== 0) continue;  // masked chunk: no signal, not in the denominator
    const s0 = a.studentStart[c]!, s1 = a.studentEnd[c]!;
    const nc = s1 - s0;
    if (nc === 0) continue;
    let LT = 0, LS = 0;
    for (let t = a.teacherStart[c]!; t < a.teacherEnd[c]!; t++) LT += lt[t]!;
    for (let i = s0; i < s1; i++) LS += ls[i]!;
    const uniform = credit === 'uniform' || Math.abs(LS) < SMALL_LS;
    for (let i = s0; i < s1; i++) {
      const logp = ls[i]!;
      const A = uniform ? LT / nc - logp : (LT / LS - 1) * logp;
      advantages[i] = Math.min(clamp, Math.max(-clamp, A));
      mask[i] = 1;
    }
  }
  return { advantages, mask };
}
