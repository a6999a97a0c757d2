/**
 * Sparse teacher targets over student rows (DESIGN 5 and 6): a CSR matrix of (id, probability)
 * per row plus the tail r_j = 1 - sum, the teacher mass outside the listed ids.
 */
import * as check from '../core/check.js';
import { ErrorCode } from '../core/errors.js';

export interface SparseTargets {
  /** [rows + 1] row j lists entries rowPtr[j] .. rowPtr[j+1]-1 */
  rowPtr: Int32Array;
  /** [nnz] student ids (in the logits' index space), distinct within a row */
  ids: Int32Array;
  /** [nnz] target probabilities */
  probs: Float32Array;
  /** [rows] the teacher mass outside the row's ids */
  tail: Float32Array;
  /**
   * [rows] optional: 1 where the row carries signal. Span projection sets 0 for rows of masked
   * chunks (DESIGN 3.2); sparseDivergence skips them and leaves them out of the mean.
   */
  mask?: Uint8Array;
}

/** Validates the shape and values of targets for `rows` rows over a vocabulary of `vocab`. */
export function checkTargets(targets: unknown, rows: number, vocab: number, name = 'targets'): SparseTargets {
  if (!targets || typeof targets !== 'object') check.fail(ErrorCode.ARG_TYPE, `${name} must be { rowPtr, ids, probs, tail }`);
  const t = targets as Record<string, unknown>;
  const rowPtr = check.typed(t.rowPtr, Int32Array, `${name}.rowPtr`, rows + 1);
  const tail = check.typed(t.tail, Float32Array, `${name}.tail`, rows);
  if (rowPtr[0] !== 0) check.fail(ErrorCode.ARG_VALUE, `${name}.rowPtr[0] must be 0, got ${rowPtr[0]}`);
  for (let r = 0; r < rows; r++)
    if (rowPtr[r + 1]! < rowPtr[r]!) check.fail(ErrorCode.ARG_VALUE, `${name}.rowPtr must be non-decreasing (row ${r})`);
  const nnz = rowPtr[rows]!;
  const ids = check.typed(t.ids, Int32Array, `${name}.ids`, nnz);
  const probs = check.typed(t.probs, Float32Array, `${name}.probs`, nnz);
  for (let k = 0; k < nnz; k++) {
    const id = ids[k]!, p = probs[k]!;
    if (id < 0 || id >= vocab) check.fail(ErrorCode.TOKEN_ID, `${name}.ids[${k}] = ${id} is outside the vocabulary [0, ${vocab})`);
    if (!(p >= 0 && p <= 1)) check.fail(ErrorCode.ARG_VALUE, `${name}.probs[${k}] = ${p} is not a probability in [0, 1]`);
  }
  for (let r = 0; r < rows; r++) {
    const tr = tail[r]!;
    if (!(tr >= 0 && tr <= 1)) check.fail(ErrorCode.ARG_VALUE, `${name}.tail[${r}] = ${tr} is not a probability in [0, 1]`);
    let s = tr;
    for (let k = rowPtr[r]!; k < rowPtr[r + 1]!; k++) s += probs[k]!;
    if (Math.abs(s - 1) > 1e-3) check.fail(ErrorCode.ARG_VALUE, `${name} row ${r}: probs + tail sum to ${s}, expected 1`);
  }
  let mask: Uint8Array | undefined;
  if (t.mask !== undefined) mask = check.typed(t.mask, Uint8Array, `${name}.mask`, rows);
  return { rowPtr, ids, probs, tail, mask };
}

/** One-hot targets (cross-entropy / SFT): row r puts probability 1 on labels[r], tail 0. */
export function oneHotTargets(labels: Int32Array, mask?: Uint8Array): SparseTargets {
  check.typed(labels, Int32Array, 'labels');
  if (mask !== undefined) check.typed(mask, Uint8Array, 'mask', labels.length);
  const rows = labels.length;
  const rowPtr = new Int32Array(rows + 1);
  for (let r = 0; r <= rows; r++) rowPtr[r] = r;
  return { rowPtr, ids: labels, probs: new Float32Array(rows).fill(1), tail: new Float32Array(rows), mask };
}

/** Concatenates the rows of several targets (e.g. the responses of a batch, in order). */
export function concatTargets(parts: SparseTargets[]): SparseTargets {
  if (!Array.isArray(parts)) check.fail(ErrorCode.ARG_TYPE, `parts must be an array of targets, got ${check.describe(parts)}`);
  // Each part must be well-formed CSR (its own rows); ids are checked against the vocabulary by the loss.
  parts.forEach((p, i) => {
    const rows = p && typeof p === 'object' && p.tail instanceof Float32Array ? p.tail.length : -1;
    if (rows < 0) check.fail(ErrorCode.ARG_TYPE, `parts[${i}] must be { rowPtr, ids, probs, tail }, got ${check.describe(p)}`);
    checkTargets(p, rows, 2 ** 31 - 1, `parts[${i}]`);
  });
  let rows = 0, nnz = 0;
  const anyMask = parts.some((p) => p.mask !== undefined);
  for (const p of parts) {
    rows += p.tail.length;
    nnz += p.ids.length;
  }
  const out: SparseTargets = {
    rowPtr: new Int32Array(rows + 1), ids: new Int32Array(nnz), probs: new Float32Array(nnz), tail: new Float32Array(rows),
    mask: anyMask ? new Uint8Array(rows) : undefined,
  };
  let r0 = 0, k0 = 0;
  for (const p of parts) {
    const n = p.tail.length;
    for (let r = 0; r < n; r++) out.rowPtr[r0 + r + 1] = k0 + p.rowPtr[r + 1]!;
    out.ids.set(p.ids, k0);
    out.probs.set(p.probs, k0);
    out.tail.set(p.tail, r0);
    if (out.mask) {
      if (p.mask) out.mask.set(p.mask, r0);
      else out.mask.fill(1, r0, r0 + n);
    }
    r0 += n;
    k0 += p.ids.length;
  }
  return out;
}
