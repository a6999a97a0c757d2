/**
 * The oracle: a port of the decode-and-compare Dual-Pointer Chunk Alignment (DPCA) of arXiv
 * 2606.09456, written from its description. It never looks at bytes: it decodes token ranges with
 * each tokenizer's own decoder and compares text.
 *
 * From a chunk start (i, j) it grows end pointers a > i and b > j until
 *   NFC(decode(S[i:a])) === NFC(decode(T[j:b])) and that text does not end in U+FFFD,
 * then emits the chunk [i, a) x [j, b) and starts the next one at (a, b). Growth rules:
 *   1. a side whose decoded text ends in U+FFFD (an unfinished character) grows (both, if both do);
 *   2. otherwise the side whose decoded text is shorter (code points, before normalization) grows;
 *   3. equal lengths that still differ: both grow.
 * A side that is used up cannot grow (the other one does); when neither can, everything left is one
 * last chunk (the paper's "no later match": the rest of the sequence is lost).
 * Reading of the rules: rule 1 is how "a match needs text not ending in U+FFFD" is kept while
 * growing; without it, equal decoded lengths would move both pointers past a boundary (the
 * alignment tests show that variant with `growOpenSideFirst: false`).
 */
export interface OracleChunk {
  s0: number;
  s1: number;
  t0: number;
  t1: number;
}

export interface OracleResult {
  chunks: OracleChunk[];
  /** the last chunk is a leftover: no match was possible any more */
  lost: boolean;
  /** decode calls made */
  decodes: number;
}

export interface OracleOptions {
  /** rule 1 above (default true) */
  growOpenSideFirst?: boolean;
}

function codePoints(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xd800 || c > 0xdbff) n++;
  }
  return n;
}

export type Decode = (ids: Int32Array) => string;

export function dpcaOracle(S: Int32Array, T: Int32Array, decodeS: Decode, decodeT: Decode, opts: OracleOptions = {}): OracleResult {
  const growOpen = opts.growOpenSideFirst ?? true;
  const n = S.length, m = T.length;
  const chunks: OracleChunk[] = [];
  let decodes = 0;
  let i = 0, j = 0;
  let lost = false;
  while (i < n && j < m) {
    let a = i + 1, b = j + 1;
    let matched = false;
    for (;;) {
      const sRaw = decodeS(S.subarray(i, a));
      const tRaw = decodeT(T.subarray(j, b));
      decodes += 2;
      const s = sRaw.normalize('NFC');
      const t = tRaw.normalize('NFC');
      if (s === t && !s.endsWith('\uFFFD')) {
        matched = true;
        break;
      }
      let growS: boolean, growT: boolean;
      const sOpen = sRaw.endsWith('\uFFFD'), tOpen = tRaw.endsWith('\uFFFD');
      if (growOpen && (sOpen || tOpen)) {
        growS = sOpen;
        growT = tOpen;
      } else {
        const ls = codePoints(sRaw), lt = codePoints(tRaw);
        growS = ls <= lt;
        growT = lt <= ls;
      }
      const canS = a < n, canT = b < m;
      if (growS && !canS) {
        growS = false;
        growT = canT;
      }
      if (growT && !canT) {
        growT = false;
        growS = canS;
      }
      if (!growS && !growT) break;
      if (growS) a++;
      if (growT) b++;
    }
    if (!matched) {
      lost = true;
      break;
    }
    chunks.push({ s0: i, s1: a, t0: j, t1: b });
    i = a;
    j = b;
  }
  if (i < n || j < m) chunks.push({ s0: i, s1: n, t0: j, t1: m });
  return { chunks, lost: lost || (i < n || j < m), decodes };
}
