/** The result of aligning a student and a teacher token sequence (DESIGN section 3). */
import * as check from '../core/check.js';
import { ErrorCode } from '../core/errors.js';

/** Bits of Alignment.flags; a chunk with any flag set is masked unless the caller opts in. */
export const ChunkFlags = {
  /** either side has more than maxChunkTokens tokens */
  OVERSIZE: 1,
  /** the bytes of the two sides differ (normalization, a prepended space, a BOS) */
  APPROX: 2,
  /** student tokens past the end of the (truncated) teacher tokens */
  TAIL: 4,
} as const;
export type ChunkFlag = (typeof ChunkFlags)[keyof typeof ChunkFlags];

export interface Alignment {
  chunkCount: number;
  /** per chunk: student token index range [start, end) */
  studentStart: Int32Array;
  studentEnd: Int32Array;
  /** per chunk: teacher token index range [start, end) */
  teacherStart: Int32Array;
  teacherEnd: Int32Array;
  /** per chunk: ChunkFlags bits */
  flags: Uint8Array;
  /** per student token: the index of its chunk */
  studentChunk: Int32Array;
}

/** Checks an Alignment's arrays against each other and the token counts; returns the teacher token count it covers. */
export function checkAlignment(alignment: unknown, studentTokens: number, teacherTokens: number): Alignment {
  if (!alignment || typeof alignment !== 'object') check.fail(ErrorCode.ARG_TYPE, 'alignment must be an Alignment (from TokenizerBridge.align)');
  const a = alignment as Alignment;
  const n = check.int(a.chunkCount, 'alignment.chunkCount', 0);
  check.typed(a.studentStart, Int32Array, 'alignment.studentStart', n);
  check.typed(a.studentEnd, Int32Array, 'alignment.studentEnd', n);
  check.typed(a.teacherStart, Int32Array, 'alignment.teacherStart', n);
  check.typed(a.teacherEnd, Int32Array, 'alignment.teacherEnd', n);
  check.typed(a.flags, Uint8Array, 'alignment.flags', n);
  check.typed(a.studentChunk, Int32Array, 'alignment.studentChunk', studentTokens);
  let s = 0, t = 0;
  for (let c = 0; c < n; c++) {
    const s0 = a.studentStart[c]!, s1 = a.studentEnd[c]!, t0 = a.teacherStart[c]!, t1 = a.teacherEnd[c]!;
    if (s0 !== s || s1 < s0 || t0 !== t || t1 < t0)
      check.fail(ErrorCode.ARG_VALUE, `alignment chunk ${c} ([${s0}, ${s1}) student, [${t0}, ${t1}) teacher) does not continue the previous chunk`);
    for (let i = s0; i < s1; i++)
      if (i >= studentTokens || a.studentChunk[i] !== c) check.fail(ErrorCode.ARG_VALUE, `alignment.studentChunk[${i}] does not name chunk ${c}`);
    s = s1;
    t = t1;
  }
  if (s !== studentTokens)
    check.fail(ErrorCode.ARG_SHAPE, `the alignment covers ${s} student tokens, but ${studentTokens} were given`);
  if (t !== teacherTokens)
    check.fail(ErrorCode.ARG_SHAPE, `the alignment covers ${t} teacher tokens, but ${teacherTokens} were given`);
  return a;
}
