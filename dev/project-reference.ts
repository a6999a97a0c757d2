/** The float64 reference of the span projection (native/project/span_projection_reference.cc), for tests. */
import { callNative } from '../src/core/errors.js';
import type { Alignment } from '../src/align/types.js';
import { studentEndOfTurn, type Projection, type SpanTeacher, type TokenizerPair } from '../src/project/span-projection.js';
import { devAddon, devTokenTable } from './addon.js';

interface ReferenceNative {
  spanProjectionReference(a: Record<string, unknown>): ReferenceTargets;
}

/**
 * The reference's targets: row j's buckets are rowPtr[j] .. rowPtr[j+1]-1, bucket b holds the ids
 * members[bucketPtr[b] .. bucketPtr[b+1]) (sorted) with probability probs[b].
 */
export interface ReferenceTargets {
  rowPtr: Int32Array;
  bucketPtr: Int32Array;
  members: Int32Array;
  probs: Float64Array;
  tail: Float64Array;
  mask: Uint8Array;
}

/** Row j of reference targets as { buckets: [{ ids, q }], tail } (the shape of Targets.row). */
export function referenceRow(r: ReferenceTargets, j: number): { buckets: Array<{ ids: Int32Array; q: number }>; tail: number } {
  const buckets = [];
  for (let b = r.rowPtr[j]!; b < r.rowPtr[j + 1]!; b++) buckets.push({ ids: r.members.subarray(r.bucketPtr[b]!, r.bucketPtr[b + 1]!), q: r.probs[b]! });
  return { buckets, tail: r.tail[j]! };
}

export function spanProjectionReference(pair: TokenizerPair, alignment: Alignment, studentIds: Int32Array, teacher: SpanTeacher,
  opts: { studentVocab?: Int32Array; includeFlags?: number; projection?: Projection } = {}): ReferenceTargets {
  const eot = studentEndOfTurn(pair);
  return callNative(() => devAddon<ReferenceNative>().spanProjectionReference({
    studentTable: devTokenTable(pair.student), teacherTable: devTokenTable(pair.teacher), studentVocab: opts.studentVocab,
    teacherEos: pair.teacher.eosIds, studentEndOfTurn: eot, studentIds, teacherIds: teacher.ids,
    studentStart: alignment.studentStart, studentEnd: alignment.studentEnd, teacherStart: alignment.teacherStart,
    teacherEnd: alignment.teacherEnd, flags: alignment.flags, logprobs: teacher.logprobs, topkIds: teacher.topkIds,
    topkLogprobs: teacher.topkLogprobs, k: teacher.k, includeFlags: opts.includeFlags ?? 0, projection: opts.projection ?? 'prefix',
  }));
}
