/**
 * The native aligner (native/align/): chunks of student/teacher token id pairs over two token byte
 * tables (DESIGN section 3). TokenizerBridge is the typed entry point; this module is the thin layer
 * over the addon that it (and tests, benches, tools) use.
 */
import * as check from '../core/check.js';
import { ErrorCode, XopdError, callNative } from '../core/errors.js';
import { addon } from '../core/native.js';
import type { NativeTokenTable } from '../tokenizer/tokenizer.js';
import type { Alignment } from './types.js';

/** How the byte diff of a pair ended (DiffEnd in native/align/align.h). */
export const DiffEnd = { BOTH: 0, TEACHER_ENDED: 1, STUDENT_ENDED: 2, GAVE_UP: 3 } as const;

/** Limits of the bounded byte diff (DESIGN 3.3); the defaults suit real text. */
export interface DiffLimits {
  /** equal bytes in a row that re-anchor the walk after a difference (default 32) */
  anchorBytes?: number;
  /** byte edits one difference region may need before the rest counts as one region (default 1024) */
  maxEdits?: number;
  /** Myers work budget: workBase + workPerByte * (bytes of both streams) (defaults 2^22 and 64) */
  workPerByte?: number;
  workBase?: number;
}

export interface AlignOptions extends DiffLimits {
  maxChunkTokens: number;
  /**
   * Per pair, whether the caller cut the teacher ids short (true), passes the whole response
   * (false), or does not say (undefined: read from the bytes). TAIL marks student tokens past the end
   * of a teacher cut short, so a caller that knows should say (DESIGN 3.2; README).
   */
  teacherTruncated?: ReadonlyArray<boolean | undefined>;
  /** ids that end a student turn / a teacher turn: a final pair of them is one 1:1 chunk */
  studentEos?: Int32Array;
  teacherEos?: Int32Array;
}

/** An Alignment plus what the aligner saw. */
export interface AlignmentDetails extends Alignment {
  /** the two byte streams (without a final end-of-turn pair) were equal */
  bytesEqual: boolean;
  /** byte insertions + deletions of the diff (0 when equal) */
  byteEdits: number;
  /** how the diff ended (DiffEnd) */
  diffEnd: number;
}

/** What the native alignBatch returns: every pair's arrays back to back, pair k at offsets [k, k+1). */
export interface NativeBatch {
  chunkOffsets: Int32Array;
  tokenOffsets: Float64Array;
  studentStart: Int32Array;
  studentEnd: Int32Array;
  teacherStart: Int32Array;
  teacherEnd: Int32Array;
  flags: Uint8Array;
  studentChunk: Int32Array;
  bytesEqual: Uint8Array;
  edits: Float64Array;
  diffEnd: Int32Array;
}

export interface ByteDiffResult {
  /** (x, y, len) triples: student bytes [x, x+len) equal teacher bytes [y, y+len) */
  runs: Int32Array;
  end: number;
  x: number;
  y: number;
  edits: number;
}

/** Per-id facts of a (student, teacher) table pair: lengths, and which ids spell the same bytes. */
export interface NativeAlignTables {
  /** student ids with a byte-identical teacher id */
  readonly sameBytesIds: number;
}

/** Options of byteDiff: limits, and whether b was cut short (a prefix alignment). */
export interface ByteDiffOptions extends DiffLimits {
  /** b (the teacher) was cut short: a's bytes past b's end cost nothing */
  truncated?: boolean;
}

/** TeacherIds of native/align/align.h, one per pair. */
const TEACHER_IDS = { infer: 0, complete: 1, truncated: 2 } as const;

export type NativeAlignOptions = Omit<AlignOptions, 'teacherTruncated'> & { teacherIds?: Uint8Array };

export interface AlignNative {
  AlignTables: new (studentTable: NativeTokenTable, teacherTable: NativeTokenTable) => NativeAlignTables;
  alignBatch(tables: NativeAlignTables, studentIds: Int32Array[], teacherIds: Int32Array[], opts: NativeAlignOptions): NativeBatch;
  byteDiff(a: Uint8Array, b: Uint8Array, opts?: ByteDiffOptions): ByteDiffResult;
}

function checkLimits(o: DiffLimits): void {
  if (o.anchorBytes !== undefined) check.int(o.anchorBytes, 'anchorBytes', 1, 4096);
  if (o.maxEdits !== undefined) check.int(o.maxEdits, 'maxEdits', 0, 4096);
  if (o.workPerByte !== undefined) check.int(o.workPerByte, 'workPerByte', 0, 2 ** 20);
  if (o.workBase !== undefined) check.int(o.workBase, 'workBase', 0, 2 ** 40);
}

const prepared = new WeakMap<NativeTokenTable, WeakMap<NativeTokenTable, NativeAlignTables>>();

/** The native per-id facts of a table pair, built on first use (tens of ms) and kept with the tables. */
export function alignTables(studentTable: NativeTokenTable, teacherTable: NativeTokenTable): NativeAlignTables {
  let inner = prepared.get(studentTable);
  if (!inner) prepared.set(studentTable, (inner = new WeakMap()));
  let t = inner.get(teacherTable);
  if (!t) {
    const { AlignTables } = addon<AlignNative>();
    t = callNative(() => new AlignTables(studentTable, teacherTable));
    inner.set(teacherTable, t);
  }
  return t;
}

/** Aligns every pair (student ids, teacher ids) over the two tables, on all cores. */
export function alignPairs(studentTable: NativeTokenTable, teacherTable: NativeTokenTable,
  pairs: ReadonlyArray<readonly [Int32Array, Int32Array]>, opts: AlignOptions): AlignmentDetails[] {
  return alignPairsWith((s, t, native) => {
    const tables = alignTables(studentTable, teacherTable);
    return callNative(() => addon<AlignNative>().alignBatch(tables, s, t, native));
  }, pairs, opts);
}

/**
 * alignPairs around a given native batch call (which makes its own native errors XopdErrors). Not
 * exported by the package: dev/align-reference.ts runs the same checks on the dev addon's forced
 * general path and plain reference.
 */
export function alignPairsWith(alignBatch: (studentIds: Int32Array[], teacherIds: Int32Array[], opts: NativeAlignOptions) => NativeBatch,
  pairs: ReadonlyArray<readonly [Int32Array, Int32Array]>, opts: AlignOptions): AlignmentDetails[] {
  check.int(opts.maxChunkTokens, 'maxChunkTokens', 1, 2 ** 30);
  checkLimits(opts);
  const s: Int32Array[] = new Array(pairs.length);
  const t: Int32Array[] = new Array(pairs.length);
  for (let k = 0; k < pairs.length; k++) {
    const p = pairs[k];
    if (!Array.isArray(p) || p.length !== 2)
      throw new XopdError(ErrorCode.ARG_TYPE, `pairs[${k}] must be a [studentIds, teacherIds] pair, got ${check.describe(p)}`);
    s[k] = check.ids(p[0], `pairs[${k}][0] (student ids)`);
    t[k] = check.ids(p[1], `pairs[${k}][1] (teacher ids)`);
  }
  const { teacherTruncated, ...rest } = opts;
  const native: NativeAlignOptions = rest;
  if (teacherTruncated !== undefined) {
    if (!Array.isArray(teacherTruncated) || teacherTruncated.length !== pairs.length)
      throw new XopdError(ErrorCode.ARG_TYPE, `teacherTruncated must be an array with one entry (true, false or undefined) per pair (${pairs.length}), got ${check.describe(teacherTruncated)}`);
    native.teacherIds = Uint8Array.from(teacherTruncated, (x, k) => {
      if (x === undefined) return TEACHER_IDS.infer;
      return check.bool(x, `teacherTruncated[${k}]`) ? TEACHER_IDS.truncated : TEACHER_IDS.complete;
    });
  }
  const r = alignBatch(s, t, native);
  const out: AlignmentDetails[] = new Array(pairs.length);
  for (let k = 0; k < pairs.length; k++) {
    const c0 = r.chunkOffsets[k]!, c1 = r.chunkOffsets[k + 1]!;
    const t0 = r.tokenOffsets[k]!, t1 = r.tokenOffsets[k + 1]!;
    out[k] = {
      chunkCount: c1 - c0,
      studentStart: r.studentStart.subarray(c0, c1),
      studentEnd: r.studentEnd.subarray(c0, c1),
      teacherStart: r.teacherStart.subarray(c0, c1),
      teacherEnd: r.teacherEnd.subarray(c0, c1),
      flags: r.flags.subarray(c0, c1),
      studentChunk: r.studentChunk.subarray(t0, t1),
      bytesEqual: r.bytesEqual[k] === 1,
      byteEdits: r.edits[k]!,
      diffEnd: r.diffEnd[k]!,
    };
  }
  return out;
}

/** The byte diff the aligner uses when two streams differ (DESIGN 3.3), for tests and tools. */
export function byteDiff(a: Uint8Array, b: Uint8Array, opts: ByteDiffOptions = {}): ByteDiffResult {
  check.typed(a, Uint8Array, 'a');
  check.typed(b, Uint8Array, 'b');
  checkLimits(opts);
  return callNative(() => addon<AlignNative>().byteDiff(a, b, opts));
}
