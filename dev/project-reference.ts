/** The float64 reference of the span projection (native/project/span_projection_reference.cc), for tests. */
import { callNative } from '../src/core/errors.js';
import type { Alignment } from '../src/align/types.js';
import { studentEndOfTurn, type SpanTeacher, type TokenizerPair } from '../src/project/span-projection.js';
import { devAddon, devTokenTable } from './addon.js';

interface ReferenceNative {
  spanProjectionReference(a: Record<string, unknown>): { rowPtr: Int32Array; ids: Int32Array; probs: Float64Array; tail: Float64Array; mask: Uint8Array };
}

export function spanProjectionReference(pair: TokenizerPair, alignment: Alignment, studentIds: Int32Array, teacher: SpanTeacher,
  opts: { studentVocab?: Int32Array; includeFlags?: number } = {}) {
  const eot = studentEndOfTurn(pair);
  return callNative(() => devAddon<ReferenceNative>().spanProjectionReference({
    studentTable: devTokenTable(pair.student), teacherTable: devTokenTable(pair.teacher), studentVocab: opts.studentVocab,
    teacherEos: pair.teacher.eosIds, studentEndOfTurn: eot, studentIds, teacherIds: teacher.ids,
    studentStart: alignment.studentStart, studentEnd: alignment.studentEnd, teacherStart: alignment.teacherStart,
    teacherEnd: alignment.teacherEnd, flags: alignment.flags, logprobs: teacher.logprobs, topkIds: teacher.topkIds,
    topkLogprobs: teacher.topkLogprobs, k: teacher.k, includeFlags: opts.includeFlags ?? 0,
  }));
}
