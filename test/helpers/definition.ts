/**
 * DESIGN section 3.1 taken literally, in plain TypeScript (no native code): on equal byte streams a
 * synchronized boundary is an offset in both cumulative offset sets that lies on a UTF-8 character
 * boundary; the chunks are the intervals between consecutive boundaries. Plus checks that an
 * Alignment is a well-formed partition.
 */
import { expect } from 'vitest';
import type { Alignment, Tokenizer } from '../../src/index.js';

/** Cumulative byte offsets of ids from the tokenizer's byte table (length n + 1). */
export function offsetsOf(tok: Tokenizer, ids: Int32Array): Int32Array {
  const off = tok.byteTable.offsets;
  const out = new Int32Array(ids.length + 1);
  for (let i = 0; i < ids.length; i++) out[i + 1] = out[i]! + off[ids[i]! + 1]! - off[ids[i]!]!;
  return out;
}

export function charBoundary(bytes: Uint8Array, at: number): boolean {
  return at >= bytes.length || (bytes[at]! & 0xc0) !== 0x80;
}

export interface SimpleChunk {
  s0: number;
  s1: number;
  t0: number;
  t1: number;
}

/** The minimal synchronized chunks of two sequences with equal byte streams. */
export function definitionChunks(offS: Int32Array, offT: Int32Array, bytes: Uint8Array): SimpleChunk[] {
  const lastS = new Map<number, number>();
  offS.forEach((o, i) => lastS.set(o, i));
  const lastT = new Map<number, number>();
  offT.forEach((o, j) => lastT.set(o, j));
  const boundaries = [...lastS.keys()].filter((o) => o > 0 && lastT.has(o) && charBoundary(bytes, o)).sort((a, b) => a - b);
  const chunks: SimpleChunk[] = [];
  let i = 0, j = 0;
  for (const o of boundaries) {
    const i1 = lastS.get(o)!, j1 = lastT.get(o)!;
    chunks.push({ s0: i, s1: i1, t0: j, t1: j1 });
    i = i1;
    j = j1;
  }
  return chunks;
}

export function chunksOf(a: Alignment): SimpleChunk[] {
  return Array.from({ length: a.chunkCount }, (_, c) => ({ s0: a.studentStart[c]!, s1: a.studentEnd[c]!, t0: a.teacherStart[c]!, t1: a.teacherEnd[c]! }));
}

/** Why a is not a partition of [0, n) x [0, m) in order, or null. */
export function partitionProblem(a: Alignment, n: number, m: number): string | null {
  if (a.studentStart.length !== a.chunkCount || a.studentEnd.length !== a.chunkCount || a.teacherStart.length !== a.chunkCount ||
    a.teacherEnd.length !== a.chunkCount || a.flags.length !== a.chunkCount) return 'chunk arrays of the wrong length';
  if (a.studentChunk.length !== n) return `studentChunk has ${a.studentChunk.length} entries for ${n} tokens`;
  let s = 0, t = 0;
  for (let c = 0; c < a.chunkCount; c++) {
    const s1 = a.studentEnd[c]!, t1 = a.teacherEnd[c]!;
    if (a.studentStart[c] !== s || a.teacherStart[c] !== t) return `chunk ${c} does not start where chunk ${c - 1} ends`;
    if (s1 < s || t1 < t || s1 - s + t1 - t === 0) return `chunk ${c} is empty or reversed`;
    if ((a.flags[c]! & ~7) !== 0) return `chunk ${c} has unknown flag bits ${a.flags[c]}`;
    for (let i = s; i < s1; i++) if (a.studentChunk[i] !== c) return `studentChunk[${i}] = ${a.studentChunk[i]}, not ${c}`;
    s = s1;
    t = t1;
  }
  if (s !== n || t !== m) return `chunks end at (${s}, ${t}), not (${n}, ${m})`;
  return null;
}

/** Chunks cover [0, n) and [0, m) in order without gaps; studentChunk agrees; flags are known bits. */
export function expectPartition(a: Alignment, n: number, m: number): void {
  expect(partitionProblem(a, n, m)).toBeNull();
}

/**
 * On equal streams: every chunk ends on a synchronized boundary and holds no synchronized boundary
 * strictly inside it, i.e. no smaller pair of token groups covers the same bytes. Returns why not.
 */
export function minimalityProblem(a: Alignment, offS: Int32Array, offT: Int32Array, bytes: Uint8Array): string | null {
  const inT = new Set(offT);
  const sync = (o: number) => inT.has(o) && charBoundary(bytes, o);
  for (let c = 0; c < a.chunkCount; c++) {
    const x0 = offS[a.studentStart[c]!]!, x1 = offS[a.studentEnd[c]!]!;
    if (offT[a.teacherStart[c]!] !== x0 || offT[a.teacherEnd[c]!] !== x1) return `chunk ${c} covers different bytes on the two sides`;
    if (!sync(x1)) return `chunk ${c} ends at ${x1}, not a synchronized boundary`;
    for (let i = a.studentStart[c]! + 1; i < a.studentEnd[c]!; i++) {
      const o = offS[i]!;
      if (o > x0 && o < x1 && sync(o)) return `chunk ${c} holds the synchronized boundary ${o}`;
    }
  }
  return null;
}

export function expectMinimalSynchronized(a: Alignment, offS: Int32Array, offT: Int32Array, bytes: Uint8Array): void {
  expect(minimalityProblem(a, offS, offT, bytes)).toBeNull();
}
