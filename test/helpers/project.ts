// Helpers for the span-projection tests: alignments of equal byte streams straight from DESIGN 3.1
// (used until the aligner lands on main; the tests switch to TokenizerBridge.align when it does),
// and teacher top-k data with realistic siblings (tokens that share a prefix with the realised one).
import { rng } from '../../src/corpus.js';
import type { Alignment } from '../../src/align/types.js';
import type { Tokenizer } from '../../src/tokenizer/tokenizer.js';
import type { SpanTeacher } from '../../src/project/span-projection.js';

/**
 * Minimal synchronized chunks of two token sequences with equal bytes: cut at every offset both
 * sides share that starts a UTF-8 character. An optional final end-of-turn pair is its own 1:1 chunk.
 */
export function alignEqualBytes(student: Tokenizer, teacher: Tokenizer, s: Int32Array, t: Int32Array,
  opts: { maxChunkTokens?: number; endOfTurnPair?: boolean } = {}): Alignment {
  const max = opts.maxChunkTokens ?? 6;
  const eot = opts.endOfTurnPair === true;
  const ns = eot ? s.length - 1 : s.length, nt = eot ? t.length - 1 : t.length;
  const sb = student.bytesOf(s.subarray(0, ns)), tb = teacher.bytesOf(t.subarray(0, nt));
  if (Buffer.compare(Buffer.from(sb), Buffer.from(tb)) !== 0) throw new Error('alignEqualBytes: the byte streams differ');
  const so = student.byteOffsets(s.subarray(0, ns)), to = teacher.byteOffsets(t.subarray(0, nt));
  const chunks: Array<[number, number, number, number]> = [];
  let i = 0, j = 0, ps = 0, pt = 0;
  while (i < ns || j < nt) {
    // advance the side that is behind; cut where both sit at the same offset on a character start
    if (so[i + 1] !== undefined && (to[j + 1] === undefined || so[i + 1]! <= to[j + 1]!)) i++;
    else j++;
    if (so[i] === to[j] && (so[i] === sb.length || (sb[so[i]!]! & 0xc0) !== 0x80) && i > ps && j > pt) {
      while (i < ns && so[i + 1] === so[i]) i++;  // zero-byte tokens join the chunk before
      while (j < nt && to[j + 1] === to[j]) j++;
      chunks.push([ps, i, pt, j]);
      ps = i;
      pt = j;
    }
  }
  if (eot) chunks.push([ns, ns + 1, nt, nt + 1]);
  const a: Alignment = {
    chunkCount: chunks.length,
    studentStart: Int32Array.from(chunks.map((c) => c[0])), studentEnd: Int32Array.from(chunks.map((c) => c[1])),
    teacherStart: Int32Array.from(chunks.map((c) => c[2])), teacherEnd: Int32Array.from(chunks.map((c) => c[3])),
    flags: Uint8Array.from(chunks.map((c) => (c[1] - c[0] > max || c[3] - c[2] > max ? 1 : 0))),
    studentChunk: new Int32Array(s.length),
  };
  chunks.forEach((c, k) => { for (let x = c[0]; x < c[1]; x++) a.studentChunk[x] = k; });
  return a;
}

/** Teacher ids grouped by their first 1, 2 and 3 bytes (non-special), to draw plausible candidates. */
export class Siblings {
  private byPrefix = new Map<string, number[]>();
  private plain: number[] = [];
  constructor(readonly tok: Tokenizer) {
    const t = tok.byteTable;
    for (let id = 0; id < tok.vocabSize; id++) {
      const a = t.offsets[id]!, e = t.offsets[id + 1]!;
      if (t.special[id] || e === a) continue;
      this.plain.push(id);
      for (let n = 1; n <= 3 && a + n <= e; n++) {
        const key = Buffer.from(t.bytes.subarray(a, a + n)).toString('latin1');
        let l = this.byPrefix.get(key);
        if (!l) this.byPrefix.set(key, (l = []));
        l.push(id);
      }
    }
  }
  /** Up to `count` distinct ids: mostly sharing 1..3 leading bytes with `id`, some random. */
  draw(id: number, count: number, r: () => number): number[] {
    const t = this.tok.byteTable;
    const a = t.offsets[id]!, e = t.offsets[id + 1]!;
    const out = new Set<number>();
    for (let tries = 0; out.size < count && tries < count * 8; tries++) {
      const n = 1 + Math.floor(r() * 3);
      const pool = a + n <= e && r() < 0.8 ? this.byPrefix.get(Buffer.from(t.bytes.subarray(a, a + n)).toString('latin1')) : undefined;
      const list = pool && pool.length > 1 ? pool : this.plain;
      const c = list[Math.floor(r() * list.length)]!;
      if (c !== id) out.add(c);
    }
    return [...out];
  }
}

/**
 * Teacher scores for ids: the realised token's probability in [0.05, 0.9]; k candidates (the realised
 * one among them at a random rank about half the time), the rest of the mass spread below 1.
 */
export function teacherScores(ids: Int32Array, k: number, seed: number, siblings: Siblings, extra: number[] = []): SpanTeacher {
  const r = rng(seed);
  const m = ids.length;
  const logprobs = new Float32Array(m), topkIds = new Int32Array(m * k), topkLogprobs = new Float32Array(m * k);
  for (let i = 0; i < m; i++) {
    const pReal = 0.05 + 0.85 * r();
    logprobs[i] = Math.log(pReal);
    if (k === 0) continue;
    const withReal = r() < 0.5;
    const others = siblings.draw(ids[i]!, withReal ? k - 1 : k, r);
    for (const x of extra) if (others.length < k && x !== ids[i] && !others.includes(x) && r() < 0.3) others.unshift(x);
    const cand = withReal ? [ids[i]!, ...others] : others;
    while (cand.length < k) {
      const c = siblings.draw(ids[i]!, 1, r)[0];
      if (c !== undefined && c !== ids[i] && !cand.includes(c)) cand.push(c);
    }
    let rest = (1 - pReal) * (0.3 + 0.69 * r());
    for (let c = 0; c < k; c++) {
      const id = cand[c]!;
      topkIds[i * k + c] = id;
      if (id === ids[i]) topkLogprobs[i * k + c] = logprobs[i]!;
      else {
        const p = rest * (0.2 + 0.6 * r());
        rest -= p;
        topkLogprobs[i * k + c] = Math.log(Math.max(p, 1e-12));
      }
    }
  }
  return { ids, logprobs, topkIds, topkLogprobs, k };
}
