/**
 * Sparse span projection (DESIGN 5): the teacher's top-k distribution at each teacher position,
 * projected onto the student's tokens. Every teacher path the data can see goes to exactly one
 * bucket of student tokens, so each student row is a set of disjoint events plus the tail
 * r_j = 1 - sum. Revision 2 ('prefix', the default): a path that leaves the sampled text while the
 * teacher is still inside the student's token goes to the prefix group of its known text x (every
 * student token beginning with x); every other path goes to first(x), the longest student token x
 * begins with. Revision 1 ('first') sends every path to first(x).
 *
 * The student byte trie and the byte order of its tokens are built natively once per
 * (student, teacher, studentVocab) and cached.
 */
import * as check from '../core/check.js';
import { ErrorCode, callNative } from '../core/errors.js';
import { addon, resolveDevice, runOnDevice, type Device } from '../core/native.js';
import type { NativeTokenTable, Tokenizer } from '../tokenizer/tokenizer.js';
import { checkAlignment, type Alignment } from '../align/types.js';
import { Targets, type SparseTargets } from './targets.js';

/** What the teacher said about its response (TeacherScores of roles.ts, plus the ids). */
export interface SpanTeacher {
  /** [teacher tokens] the teacher response ids (the sampled path) */
  ids: Int32Array;
  /** [teacher tokens] logprob of each realised teacher token */
  logprobs: Float32Array;
  /** [teacher tokens * k] top-k ids per position */
  topkIds: Int32Array;
  /** [teacher tokens * k] their logprobs */
  topkLogprobs: Float32Array;
  /** candidates per position; 0 = realised tokens only */
  k: number;
}

export interface SpanProjectionOptions {
  /**
   * Tokenizer ids the student can emit (its logits' columns, in order). Targets then use this
   * list's index space, and only these ids are projection targets.
   */
  studentVocab?: Int32Array;
  /** ChunkFlags bits that do not mask a row (default 0); APPROX and TAIL rows never get targets */
  includeFlags?: number;
  /** 'cpu' (default: the rows are small and the data is on the host), 'cuda' or 'auto' ('prefix' runs on the CPU in this build) */
  device?: Device;
  /** 'prefix' (default): DESIGN 5 revision 2, prefix groups; 'first': revision 1, every path to first(x) */
  projection?: Projection;
}

export type Projection = 'first' | 'prefix';
export const PROJECTIONS: readonly Projection[] = ['first', 'prefix'];

/** The two tokenizers of a pair; a TokenizerBridge fits. */
export interface TokenizerPair {
  student: Tokenizer;
  teacher: Tokenizer;
  /** the student's end-of-turn id, when the caller knows it (else Tokenizer.endOfTurnId) */
  studentEndOfTurn?: number | null;
}

interface SpanProjectorNative {
  readonly trieNodes: number;
  readonly trieBytes: number;
  readonly outputSize: number;
  /** the emittable student ids (output indices) sorted by their bytes: one array per projector */
  readonly byteOrder: Int32Array;
  project(args: Record<string, unknown>): Omit<SparseTargets, 'groups'> & { mask: Uint8Array; lo?: Int32Array; hi?: Int32Array };
}
interface ProjectNative {
  SpanProjector: new (student: NativeTokenTable, teacher: NativeTokenTable, studentVocab: Int32Array | null,
    teacherEos: Int32Array, studentEndOfTurn: number) => SpanProjectorNative;
}

/** The student's end-of-turn id for the native projector (-1: none). */
export function studentEndOfTurn(pair: TokenizerPair): number {
  return typeof pair.studentEndOfTurn === 'number' ? pair.studentEndOfTurn : (pair.student.endOfTurnId ?? -1);
}

function vocabKey(v: Int32Array | undefined): string {
  if (!v) return 'all';
  let h = 0x811c9dc5;
  for (let i = 0; i < v.length; i++) h = Math.imul(h ^ v[i]!, 0x01000193) >>> 0;
  return `${v.length}:${h.toString(16)}`;
}

const cache = new WeakMap<Tokenizer, WeakMap<Tokenizer, Map<string, SpanProjectorNative>>>();
const PER_PAIR = 4;

/** The native projector of a pair (built once, then cached per studentVocab). */
export function spanProjector(pair: TokenizerPair, studentVocab?: Int32Array): SpanProjectorNative {
  let byTeacher = cache.get(pair.student);
  if (!byTeacher) cache.set(pair.student, (byTeacher = new WeakMap()));
  let byVocab = byTeacher.get(pair.teacher);
  if (!byVocab) byTeacher.set(pair.teacher, (byVocab = new Map()));
  const key = vocabKey(studentVocab);
  let p = byVocab.get(key);
  if (!p) {
    const eot = studentEndOfTurn(pair);
    const { SpanProjector } = addon<ProjectNative>();
    p = callNative(() => new SpanProjector(pair.student.table, pair.teacher.table, studentVocab ?? null, pair.teacher.eosIds, eot));
    if (byVocab.size >= PER_PAIR) byVocab.delete(byVocab.keys().next().value!);
    byVocab.set(key, p);
  }
  return p;
}

function checkPair(bridge: unknown): TokenizerPair {
  const b = bridge as TokenizerPair;
  if (!b || typeof b !== 'object' || !b.student || !b.teacher || typeof b.student.encode !== 'function' || typeof b.teacher.encode !== 'function')
    check.fail(ErrorCode.ARG_TYPE, 'bridge must hold the student and teacher Tokenizers (a TokenizerBridge, or { student, teacher })');
  return b;
}

/**
 * Targets for every student row of one response. Rows of masked chunks (flags not in includeFlags,
 * and always APPROX / TAIL) get mask 0; sparseDivergence leaves them out of the mean.
 * `targets.row(j)` lists row j's buckets with their ids.
 */
export function spanProjection(bridge: TokenizerPair, alignment: Alignment, studentIds: Int32Array, teacher: SpanTeacher,
  opts: SpanProjectionOptions = {}): Targets & { mask: Uint8Array } {
  const pair = checkPair(bridge);
  const sIds = check.typed(studentIds, Int32Array, 'studentIds');
  if (sIds.length === 0) check.fail(ErrorCode.ARG_SHAPE, 'studentIds is empty: nothing to project');
  if (!teacher || typeof teacher !== 'object') check.fail(ErrorCode.ARG_TYPE, 'teacher must be { ids, logprobs, topkIds, topkLogprobs, k }');
  const tIds = check.typed(teacher.ids, Int32Array, 'teacher.ids');
  const m = tIds.length;
  const k = check.int(teacher.k, 'teacher.k', 0, 4096);
  check.typed(teacher.logprobs, Float32Array, 'teacher.logprobs', m);
  check.typed(teacher.topkIds, Int32Array, 'teacher.topkIds', m * k);
  check.typed(teacher.topkLogprobs, Float32Array, 'teacher.topkLogprobs', m * k);
  const a = checkAlignment(alignment, sIds.length, m);
  if (!opts || typeof opts !== 'object') check.fail(ErrorCode.ARG_TYPE, 'opts must be an object');
  const studentVocab = opts.studentVocab === undefined ? undefined : check.typed(opts.studentVocab, Int32Array, 'studentVocab');
  const includeFlags = opts.includeFlags === undefined ? 0 : check.int(opts.includeFlags, 'includeFlags', 0, 255);
  const projection = opts.projection === undefined ? 'prefix' : check.oneOf(opts.projection, 'projection', PROJECTIONS);
  const projector = spanProjector(pair, studentVocab);
  const r = runOnDevice(projectionDevice(opts.device ?? 'cpu', projection), (device) => callNative(() => projector.project({
    studentIds: sIds, teacherIds: tIds, studentStart: a.studentStart, studentEnd: a.studentEnd, teacherStart: a.teacherStart,
    teacherEnd: a.teacherEnd, flags: a.flags, logprobs: teacher.logprobs, topkIds: teacher.topkIds, topkLogprobs: teacher.topkLogprobs,
    k, includeFlags, device, projection,
  })));
  const groups = r.lo && r.hi ? { lo: r.lo, hi: r.hi, byteOrder: projector.byteOrder } : undefined;
  return new Targets({ rowPtr: r.rowPtr, ids: r.ids, probs: r.probs, tail: r.tail, mask: r.mask, groups }) as Targets & { mask: Uint8Array };
}

/** Revision 2 runs on the CPU in this build: 'auto' picks it, 'cuda' is refused. */
function projectionDevice(device: Device, projection: Projection): Device {
  if (projection === 'first') return device;
  if (device === 'cuda') {
    resolveDevice('cuda');  // no CUDA at all: that error first
    check.fail(ErrorCode.CUDA_UNAVAILABLE, "grouped buckets run on the CPU in this build: project with device 'cpu' or 'auto', or with projection 'first'");
  }
  resolveDevice(device);  // checks the name
  return 'cpu';
}
