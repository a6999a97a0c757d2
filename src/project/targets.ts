/**
 * Sparse teacher targets over student rows (DESIGN 5 and 6): per row a list of buckets, each a
 * single student id or a prefix group, with its probability, plus the tail r_j = 1 - sum (the
 * teacher mass outside every bucket, compared with the ids in no bucket).
 *
 * The compact form (native/project/span_projection.h documents it for the kernels): bucket k is the
 * single id ids[k], or, when ids[k] = -1, the prefix group covering groups.byteOrder[lo[k], hi[k]).
 * A group's ids are the ones its range holds under the first-claim rule: an id belongs to the
 * single-id bucket naming it when the row has one, else to the innermost group range holding it.
 * `row(j)` lists every bucket's ids explicitly after that rule.
 */
import * as check from '../core/check.js';
import { ErrorCode } from '../core/errors.js';

/** Where a grouped row's ranges point: shared by every target of one projector. */
export interface BucketGroups {
  /** [buckets] a group bucket's range [lo, hi) of byteOrder; 0 for single-id buckets */
  lo: Int32Array;
  /** [buckets] */
  hi: Int32Array;
  /** the student's emittable, non-special ids with at least one byte (logits' index space), sorted by their bytes */
  byteOrder: Int32Array;
}

export interface SparseTargets {
  /** [rows + 1] row j's buckets are rowPtr[j] .. rowPtr[j+1]-1 */
  rowPtr: Int32Array;
  /** [buckets] a single-id bucket's student id (in the logits' index space, distinct within a row); -1 for a group */
  ids: Int32Array;
  /** [buckets] target probabilities */
  probs: Float32Array;
  /** [rows] the teacher mass outside the row's buckets */
  tail: Float32Array;
  /**
   * [rows] optional: 1 where the row carries signal. Span projection sets 0 for rows of masked
   * chunks (DESIGN 3.2); sparseDivergence skips them and leaves them out of the mean.
   */
  mask?: Uint8Array;
  /** prefix groups (span projection revision 2); absent: every bucket is a single id */
  groups?: BucketGroups;
}

/** One row with every bucket's ids listed (after the first-claim rule). */
export interface TargetRow {
  buckets: Array<{ ids: Int32Array; q: number }>;
  tail: number;
}

/** True when some bucket of the targets is a prefix group. */
export function hasGroups(t: SparseTargets): boolean {
  return t.groups !== undefined && t.ids.includes(-1);
}

/**
 * Row j of targets with each bucket's ids listed, in the targets' bucket order: single ids hold
 * themselves; a group holds the ids of its range that no single id of the row names and no
 * narrower group of the row covers.
 */
export function targetRow(t: SparseTargets, j: number): TargetRow {
  const rows = t.tail.length;
  check.int(j, 'row', 0, rows - 1);
  const b0 = t.rowPtr[j]!, b1 = t.rowPtr[j + 1]!;
  const buckets: TargetRow['buckets'] = [];
  const singles = new Set<number>();
  const groups: number[] = [];
  for (let b = b0; b < b1; b++) {
    if (t.ids[b]! >= 0) singles.add(t.ids[b]!);
    else groups.push(b);
  }
  const own = new Map<number, Int32Array>();
  if (groups.length > 0) {
    const g = t.groups;
    if (!g) check.fail(ErrorCode.ARG_VALUE, `targets row ${j} has a group bucket (id -1) but the targets have no groups`);
    // Innermost first: ranges are nested or disjoint, so a narrower range is never an outer one.
    const claimed = new Set<number>(singles);
    for (const b of [...groups].sort((x, y) => (g.hi[x]! - g.lo[x]!) - (g.hi[y]! - g.lo[y]!))) {
      const ids: number[] = [];
      for (let r = g.lo[b]!; r < g.hi[b]!; r++) {
        const id = g.byteOrder[r]!;
        if (!claimed.has(id)) {
          claimed.add(id);
          ids.push(id);
        }
      }
      own.set(b, Int32Array.from(ids).sort());
    }
  }
  for (let b = b0; b < b1; b++) buckets.push({ ids: t.ids[b]! >= 0 ? Int32Array.of(t.ids[b]!) : own.get(b)!, q: t.probs[b]! });
  return { buckets, tail: t.tail[j]! };
}

/** Targets with `row(j)`: what spanProjection, oneHotTargets and concatTargets return. */
export class Targets implements SparseTargets {
  rowPtr: Int32Array;
  ids: Int32Array;
  probs: Float32Array;
  tail: Float32Array;
  mask?: Uint8Array;
  groups?: BucketGroups;
  constructor(t: SparseTargets) {
    this.rowPtr = t.rowPtr;
    this.ids = t.ids;
    this.probs = t.probs;
    this.tail = t.tail;
    if (t.mask !== undefined) this.mask = t.mask;
    if (t.groups !== undefined) this.groups = t.groups;
  }
  get rows(): number {
    return this.tail.length;
  }
  /** Row j with every bucket's ids listed after the first-claim rule. */
  row(j: number): TargetRow {
    return targetRow(this, j);
  }
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
  let groups: BucketGroups | undefined;
  if (t.groups !== undefined) {
    const g = check.object<Record<string, unknown>>(t.groups, `${name}.groups`, '{ lo, hi, byteOrder }');
    const byteOrder = check.typed(g.byteOrder, Int32Array, `${name}.groups.byteOrder`);
    groups = { lo: check.typed(g.lo, Int32Array, `${name}.groups.lo`, nnz), hi: check.typed(g.hi, Int32Array, `${name}.groups.hi`, nnz), byteOrder };
  }
  for (let k = 0; k < nnz; k++) {
    const id = ids[k]!, p = probs[k]!;
    if (id === -1 && groups) {
      const lo = groups.lo[k]!, hi = groups.hi[k]!;
      if (!(lo >= 0 && lo < hi && hi <= groups.byteOrder.length))
        check.fail(ErrorCode.ARG_VALUE, `${name}.groups: bucket ${k} covers [${lo}, ${hi}), which is empty or outside byteOrder (${groups.byteOrder.length} ids)`);
    } else if (id < 0 || id >= vocab) {
      check.fail(ErrorCode.TOKEN_ID, `${name}.ids[${k}] = ${id} is outside the vocabulary [0, ${vocab})${id === -1 ? ' (-1 marks a prefix group, which needs targets.groups)' : ''}`);
    }
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
  return { rowPtr, ids, probs, tail, mask, groups };
}

/** One-hot targets (cross-entropy / SFT): row r puts probability 1 on labels[r], tail 0. */
export function oneHotTargets(labels: Int32Array, mask?: Uint8Array): Targets {
  check.typed(labels, Int32Array, 'labels');
  if (mask !== undefined) check.typed(mask, Uint8Array, 'mask', labels.length);
  const rows = labels.length;
  const rowPtr = new Int32Array(rows + 1);
  for (let r = 0; r <= rows; r++) rowPtr[r] = r;
  return new Targets({ rowPtr, ids: labels, probs: new Float32Array(rows).fill(1), tail: new Float32Array(rows), mask });
}

function sameOrder(a: Int32Array, b: Int32Array): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Concatenates the rows of several targets (e.g. the responses of a batch, in order). Parts with
 * prefix groups must share one byteOrder (targets of the same projector do).
 */
export function concatTargets(parts: SparseTargets[]): Targets {
  if (!Array.isArray(parts)) check.fail(ErrorCode.ARG_TYPE, `parts must be an array of targets, got ${check.describe(parts)}`);
  // Each part must be well-formed (its own rows); ids are checked against the vocabulary by the loss.
  parts.forEach((p, i) => {
    const rows = p && typeof p === 'object' && p.tail instanceof Float32Array ? p.tail.length : -1;
    if (rows < 0) check.fail(ErrorCode.ARG_TYPE, `parts[${i}] must be { rowPtr, ids, probs, tail }, got ${check.describe(p)}`);
    checkTargets(p, rows, 2 ** 31 - 1, `parts[${i}]`);
  });
  let rows = 0, nnz = 0;
  const anyMask = parts.some((p) => p.mask !== undefined);
  let byteOrder: Int32Array | undefined;
  parts.forEach((p, i) => {
    rows += p.tail.length;
    nnz += p.ids.length;
    if (!p.groups) return;
    if (byteOrder && !sameOrder(byteOrder, p.groups.byteOrder))
      check.fail(ErrorCode.ARG_VALUE, `parts[${i}].groups.byteOrder differs from an earlier part's: targets with prefix groups concatenate only when one projector (one studentVocab) made them`);
    byteOrder ??= p.groups.byteOrder;
  });
  const out: SparseTargets = {
    rowPtr: new Int32Array(rows + 1), ids: new Int32Array(nnz), probs: new Float32Array(nnz), tail: new Float32Array(rows),
    mask: anyMask ? new Uint8Array(rows) : undefined,
    groups: byteOrder ? { lo: new Int32Array(nnz), hi: new Int32Array(nnz), byteOrder } : undefined,
  };
  let r0 = 0, k0 = 0;
  for (const p of parts) {
    const n = p.tail.length;
    for (let r = 0; r < n; r++) out.rowPtr[r0 + r + 1] = k0 + p.rowPtr[r + 1]!;
    out.ids.set(p.ids, k0);
    out.probs.set(p.probs, k0);
    out.tail.set(p.tail, r0);
    if (out.groups && p.groups) {
      out.groups.lo.set(p.groups.lo, k0);
      out.groups.hi.set(p.groups.hi, k0);
    }
    if (out.mask) {
      if (p.mask) out.mask.set(p.mask, r0);
      else out.mask.fill(1, r0, r0 + n);
    }
    r0 += n;
    k0 += p.ids.length;
  }
  return new Targets(out);
}
