/**
 * The aligner on each of its paths, for tests (native/dev/align.cc):
 *   - 'optimised': the shipped alignPairs (the fused equal-stream pass, else the general path);
 *   - 'general': the shipped kernel's general path forced for every pair (offsets, byte streams,
 *     ByteDiff, SyncCuts), which the optimised aligner takes only when the fused pass does not finish;
 *   - 'reference': the plain reference (native/align/*_reference.cc): streams token by token, the
 *     O(n*m) ByteDiffReference when they differ, SyncCutsReference. Small inputs when they differ.
 * The last two run in the dev addon, over its own token tables, with alignPairs' checks and result.
 */
import { alignPairs, alignPairsWith, type AlignOptions, type AlignmentDetails, type ByteDiffResult, type NativeAlignOptions,
  type NativeAlignTables, type NativeBatch } from '../src/align/aligner.js';
import * as check from '../src/core/check.js';
import { callNative } from '../src/core/errors.js';
import type { NativeTokenTable, Tokenizer } from '../src/tokenizer/tokenizer.js';
import { devAddon, devTokenTable } from './addon.js';

export type AlignPath = 'optimised' | 'general' | 'reference';
export const ALIGN_PATHS: readonly AlignPath[] = ['optimised', 'general', 'reference'];

type DevBatch = (tables: NativeAlignTables, studentIds: Int32Array[], teacherIds: Int32Array[], opts: NativeAlignOptions) => NativeBatch;
interface AlignDevNative {
  AlignTables: new (studentTable: NativeTokenTable, teacherTable: NativeTokenTable) => NativeAlignTables;
  alignDev: {
    alignBatchGeneral: DevBatch;
    alignBatchReference: DevBatch;
    byteDiffReference(a: Uint8Array, b: Uint8Array, truncated: boolean): ByteDiffResult;
  };
}

const devPairTables = new WeakMap<Tokenizer, WeakMap<Tokenizer, NativeAlignTables>>();

/** The dev addon's AlignTables of a tokenizer pair, built once. */
function devAlignTables(student: Tokenizer, teacher: Tokenizer): NativeAlignTables {
  let inner = devPairTables.get(student);
  if (!inner) devPairTables.set(student, (inner = new WeakMap()));
  let t = inner.get(teacher);
  if (!t) {
    const { AlignTables } = devAddon<AlignDevNative>();
    const [st, tt] = [devTokenTable(student), devTokenTable(teacher)];
    t = callNative(() => new AlignTables(st, tt));
    inner.set(teacher, t);
  }
  return t;
}

/** alignPairs(student.table, teacher.table, pairs, opts) on the chosen path. */
export function alignPairsOn(path: AlignPath, student: Tokenizer, teacher: Tokenizer,
  pairs: ReadonlyArray<readonly [Int32Array, Int32Array]>, opts: AlignOptions): AlignmentDetails[] {
  if (path === 'optimised') return alignPairs(student.table, teacher.table, pairs, opts);
  const dev = devAddon<AlignDevNative>().alignDev;
  const batch = path === 'general' ? dev.alignBatchGeneral : dev.alignBatchReference;
  return alignPairsWith((s, t, native) => {
    const tables = devAlignTables(student, teacher);
    return callNative(() => batch(tables, s, t, native));
  }, pairs, opts);
}

/**
 * The O(n*m) dynamic program of byteDiff's edit metric (insertions + deletions), with its tie-breaks
 * and account of the end; (n+1)*(m+1) at most 2^22. `truncated`: b was cut short (a prefix alignment).
 */
export function byteDiffReference(a: Uint8Array, b: Uint8Array, opts: { truncated?: boolean } = {}): ByteDiffResult {
  check.typed(a, Uint8Array, 'a');
  check.typed(b, Uint8Array, 'b');
  const truncated = opts.truncated === undefined ? false : check.bool(opts.truncated, 'truncated');
  return callNative(() => devAddon<AlignDevNative>().alignDev.byteDiffReference(a, b, truncated));
}
