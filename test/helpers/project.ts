// Helpers for the span-projection tests: teacher top-k data with realistic siblings (tokens that
// share a prefix with the realised one), so the conditioning on u and the trie walks are exercised.
import { rng } from '../../dev/corpus.js';
import type { Tokenizer } from '../../src/tokenizer/tokenizer.js';
import type { SpanTeacher } from '../../src/project/span-projection.js';

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
