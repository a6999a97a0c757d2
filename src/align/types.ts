/** The result of aligning a student and a teacher token sequence (DESIGN section 3). */

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
