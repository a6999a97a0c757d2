/**
 * Universal Logit Distillation (ULD, as used by GOLD): an L1 distance between the SORTED probability
 * vectors of student and teacher at aligned positions, which needs no shared vocabulary. A baseline
 * for the experiment, not part of DESIGN; plain float64 code (the vocabularies it runs on are small).
 *
 * With the teacher's top-k q_1 ≥ … ≥ q_k and tail r = 1 − Σ q, and the student's probabilities sorted
 * p_(1) ≥ p_(2) ≥ …, one row's loss is
 *   Σ_{i≤k} |p_(i) − q_i| + |Σ_{i>k} p_(i) − r|
 * (the unseen teacher tail is compared as one bucket). The batch loss is the mean over unmasked rows.
 */
import * as check from '../core/check.js';
import { ErrorCode, XopdError } from '../core/errors.js';

export interface UldResult {
  loss: number;
  /** d loss / d logits, [rows * vocab] */
  grad: Float32Array;
}

// logits [rows, vocab], teacherSorted [rows, k] (probabilities, descending), mask [rows] -> loss, grad
export function uldLoss(logits: Float32Array, shape: { rows: number; vocab: number }, teacherSorted: Float32Array, k: number, mask: Uint8Array): UldResult {
  const rows = check.int(shape?.rows, 'shape.rows', 0);
  const vocab = check.int(shape?.vocab, 'shape.vocab', 1);
  check.int(k, 'k', 1, vocab);
  check.typed(logits, Float32Array, 'logits', rows * vocab);
  check.typed(teacherSorted, Float32Array, 'teacherSorted', rows * k);
  check.typed(mask, Uint8Array, 'mask', rows);
  const grad = new Float32Array(rows * vocab);
  let active = 0;
  for (let r = 0; r < rows; r++) if (mask[r]) active++;
  if (active === 0) return { loss: 0, grad };
  const p = new Float64Array(vocab);
  const g = new Float64Array(vocab);
  const order = new Int32Array(vocab);
  let total = 0;
  for (let r = 0; r < rows; r++) {
    if (!mask[r]) continue;
    const z = logits.subarray(r * vocab, (r + 1) * vocab);
    let max = -Infinity;
    for (let v = 0; v < vocab; v++) {
      if (!Number.isFinite(z[v]!)) throw new XopdError(ErrorCode.ARG_VALUE, `logits[${r}, ${v}] is ${z[v]}: values must be finite`);
      if (z[v]! > max) max = z[v]!;
    }
    let sum = 0;
    for (let v = 0; v < vocab; v++) sum += p[v] = Math.exp(z[v]! - max);
    for (let v = 0; v < vocab; v++) {
      p[v]! /= sum;
      order[v] = v;
    }
    order.sort((a, b) => p[b]! - p[a]!);
    let qSum = 0, rest = 0;
    for (let i = 0; i < k; i++) {
      const q = teacherSorted[r * k + i]!;
      if (!(q >= 0 && q <= 1)) throw new XopdError(ErrorCode.ARG_VALUE, `teacherSorted[${r}, ${i}] = ${q} is not a probability`);
      if (i > 0 && q > teacherSorted[r * k + i - 1]! + 1e-6) throw new XopdError(ErrorCode.ARG_VALUE, `teacherSorted row ${r} is not in descending order`);
      qSum += q;
      const d = p[order[i]!]! - q;
      total += Math.abs(d);
      g[order[i]!] = Math.sign(d);
    }
    for (let i = k; i < vocab; i++) rest += p[order[i]!]!;
    const tail = Math.max(0, 1 - qSum);
    const dTail = rest - tail;
    total += Math.abs(dTail);
    for (let i = k; i < vocab; i++) g[order[i]!] = Math.sign(dTail);
    // Through the softmax: dz_v = p_v (g_v − Σ_u p_u g_u), scaled by 1 / active rows.
    let pg = 0;
    for (let v = 0; v < vocab; v++) pg += p[v]! * g[v]!;
    for (let v = 0; v < vocab; v++) grad[r * vocab + v] = (p[v]! * (g[v]! - pg)) / active;
  }
  return { loss: total / active, grad };
}
