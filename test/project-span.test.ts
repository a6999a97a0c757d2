// Sparse span projection (DESIGN 5, revisions 1 and 2) on real tokenizers: the invariants DESIGN 5
// lists, the " 5198" groups, a group of more than 50,000 ids, the fast path against the plain
// reference (explicit buckets from the definition), masking, the studentVocab index space, bad input.
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { mixedCorpus, rng } from '../dev/corpus.js';
import type { Alignment } from '../src/align/types.js';
import { spanProjection, spanProjector, PROJECTIONS, type SpanTeacher } from '../src/project/span-projection.js';
import { referenceRow, spanProjectionReference } from '../dev/project-reference.js';
import { sparseDivergence } from '../src/loss/sparse-divergence.js';
import { sparseDivergenceReference } from '../dev/loss-reference.js';
import type { TargetRow } from '../src/project/targets.js';
import { info } from '../src/core/native.js';
import { fuzzParams } from './helpers/fuzz.js';
import { errCode, randomLogits } from './helpers/loss.js';
import { TOL, expectAllClose, expectClose } from './helpers/tolerances.js';
import { TokenizerBridge } from '../src/align/bridge.js';
import { Siblings, teacherScores } from './helpers/project.js';

const toks: Record<string, Tokenizer> = {};
const sib: Record<string, Siblings> = {};
const load = (name: string) => (toks[name] ??= Tokenizer.load(name));
const siblings = (name: string) => (sib[name] ??= new Siblings(load(name)));
const enc = (name: string, text: string) => load(name).encode(text, { addSpecialTokens: false });

const bridges = new Map<string, TokenizerBridge>();
function bridgeOf(studentName: string, teacherName: string): TokenizerBridge {
  const key = `${studentName}>${teacherName}`;
  let b = bridges.get(key);
  if (!b) bridges.set(key, (b = new TokenizerBridge(load(studentName), load(teacherName))));
  return b;
}

/**
 * A student response for the text, the teacher's ids for it (TokenizerBridge.retokenize) and their
 * alignment (TokenizerBridge.align): where the byte streams differ (Qwen 3's NFC, Mistral's
 * prepended space) the aligner makes APPROX chunks, which the projection masks.
 */
function pairOf(studentName: string, teacherName: string, text: string) {
  const bridge = bridgeOf(studentName, teacherName);
  const s = enc(studentName, text), t = bridge.retokenize(s);
  return { student: bridge.student, teacher: bridge.teacher, bridge, s, t, alignment: bridge.align(s, t) };
}

/** Row j's single-id buckets as id -> q (rows without groups: the whole row). */
function row(targets: { row(j: number): TargetRow }, j: number): Map<number, number> {
  const out = new Map<number, number>();
  for (const b of targets.row(j).buckets) if (b.ids.length === 1) out.set(b.ids[0]!, b.q);
  return out;
}

/** A row's buckets in a canonical order (by smallest id): rows of two implementations compare bucket by bucket. */
function canonical(r: TargetRow): Array<{ ids: number[]; q: number }> {
  return r.buckets.map((b) => ({ ids: [...b.ids].sort((x, y) => x - y), q: b.q })).sort((a, b) => a.ids[0]! - b.ids[0]!);
}

/** The fast row equals the reference row: the same buckets with the same ids, q and tail within tolerance. */
function expectRowsEqual(got: TargetRow, want: TargetRow, what: string): void {
  const g = canonical(got), w = canonical(want);
  expect(g.map((b) => b.ids), what).toEqual(w.map((b) => b.ids));
  expectAllClose(g.map((b) => b.q), w.map((b) => b.q), TOL.projectionProbs, `${what}: q`);
  expectClose(got.tail, want.tail, TOL.projectionTail, `${what}: tail`);
}

/** DESIGN 5's invariants of one row: q > 0, q + tail = 1, tail >= 0, buckets disjoint, s_j in a bucket of its own. */
function expectRowInvariants(r: TargetRow, sj: number | undefined, what: string): void {
  const seen = new Set<number>();
  let sum = r.tail;
  for (const b of r.buckets) {
    expect(b.q, what).toBeGreaterThan(0);
    expect(b.ids.length, what).toBeGreaterThan(0);
    for (const id of b.ids) {
      expect(seen.has(id), `${what}: id ${id} in two buckets`).toBe(false);
      seen.add(id);
    }
    sum += b.q;
  }
  expect(r.tail, what).toBeGreaterThanOrEqual(0);
  expectClose(sum, 1, TOL.projectionRowSum, `${what}: probs + tail`);
  if (sj !== undefined) expect(r.buckets.some((b) => b.ids.length === 1 && b.ids[0] === sj), `${what}: s_j alone in its bucket`).toBe(true);
}

/** Texts where tokenizers disagree: numbers, code, CJK, emoji, accents, whitespace runs. */
function corpusTexts(count: number, bytes: number, seed: number): string[] {
  const r = rng(seed);
  const text = mixedCorpus(count * bytes, seed);
  const out: string[] = [];
  let at = 0;
  for (let i = 0; i < count; i++) {
    let end = Math.min(text.length, at + Math.floor(bytes * (0.5 + r())));
    if (/[\uD800-\uDBFF]/.test(text[end - 1] ?? '')) end--;  // do not split a surrogate pair
    out.push(text.slice(at, end));
    at = end;
  }
  return out.filter((x) => x.length > 0);
}

beforeAll(() => {
  for (const n of ['qwen3', 'llama3']) siblings(n);
});

describe('identical tokenizers: exactly top-k distillation', () => {
  for (const [name, projection] of [['qwen3', 'prefix'], ['llama3', 'prefix'], ['llama3', 'first']] as const) {
    it(`${name} -> ${name} (${projection}): each candidate goes to itself, tail = 1 - sum`, () => {
      const tok = load(name);
      const text = corpusTexts(1, 1500, 7)[0]!;
      const ids = enc(name, text);
      const eos = tok.eosIds[tok.eosIds.length - 1]!;
      const scores = teacherScores(ids, 8, 11, siblings(name), [eos]);
      const alignment = new TokenizerBridge(tok, tok).align(ids, ids);  // chunks of several tokens where one splits a character
      const q = spanProjection({ student: tok, teacher: tok }, alignment, ids, scores, { projection });
      expect(q.ids.includes(-1)).toBe(false);  // no groups: the teacher never stops inside a student token
      let sawEos = false;
      for (let j = 0; j < ids.length; j++) {
        const want = new Map<number, number>([[ids[j]!, Math.exp(scores.logprobs[j]!)]]);
        for (let c = 0; c < scores.k; c++) {
          const id = scores.topkIds[j * scores.k + c]!;
          if (id !== ids[j]) want.set(id, Math.exp(scores.topkLogprobs[j * scores.k + c]!));
          if (id === eos) sawEos = true;
        }
        const got = row(q, j);
        expect([...got.keys()].sort((a, b) => a - b)).toEqual([...want.keys()].sort((a, b) => a - b));
        let sum = 0;
        for (const [id, p] of want) {
          expectClose(got.get(id)!, p, TOL.float32Rounding);
          sum += p;
        }
        expectClose(q.tail[j], 1 - sum, TOL.float32Rounding);
        expect(q.mask[j]).toBe(1);
      }
      expect(sawEos).toBe(true);  // a special candidate maps to itself too
    });
  }
});

describe('realised tokens only (k = 0): the chunk product is the chunk teacher probability', () => {
  for (const [s, t] of [['llama3', 'qwen3'], ['qwen3', 'llama3'], ['gemma3', 'llama3'], ['deepseek_v3', 'qwen3']]) {
    it(`${s} student, ${t} teacher, mixed corpus`, () => {
      let chunks = 0, multi = 0;
      for (const [n, text] of corpusTexts(8, 700, 3).entries()) {
        const p = pairOf(s, t, text);
        const scores = teacherScores(p.t, 0, 100 + n, siblings(t));
        const q = spanProjection(p, p.alignment, p.s, scores);  // revision 2, the default
        for (let c = 0; c < p.alignment.chunkCount; c++) {
          if (p.alignment.flags[c]) continue;
          let logQ = 0, logT = 0;
          for (let j = p.alignment.studentStart[c]!; j < p.alignment.studentEnd[c]!; j++) {
            const r = row(q, j);
            expect(r.size).toBe(1);
            logQ += Math.log(r.get(p.s[j]!)!);
          }
          for (let i = p.alignment.teacherStart[c]!; i < p.alignment.teacherEnd[c]!; i++) logT += scores.logprobs[i]!;
          expectClose(logQ, logT, TOL.projectionLogRatio, `chunk ${c}`);
          chunks++;
          if (p.alignment.studentEnd[c]! - p.alignment.studentStart[c]! > 1 && p.alignment.teacherEnd[c]! - p.alignment.teacherStart[c]! > 1) multi++;
        }
      }
      expect(chunks).toBeGreaterThan(200);
      expect(multi).toBeGreaterThan(0);  // chunks where tokens straddle each other on both sides
    });
  }
});

describe('qwen3 -> llama3 numbers: " 936"', () => {
  it('revision 1: the sampled path lands on "936", alternatives on "8", "9x" and "93x"', () => {
    const student = load('llama3'), teacher = load('qwen3');
    const s = enc('llama3', 'It costs 936 dollars'), t = enc('qwen3', 'It costs 936 dollars');
    const alignment = bridgeOf('llama3', 'qwen3').align(s, t);
    const d = (x: string) => teacher.id(x)!;
    const L = (x: string) => student.id(x)!;
    const j = [...s].indexOf(L('936'));
    const i9 = [...t].indexOf(d('9'));
    expect(j).toBeGreaterThan(0);
    expect([...t.subarray(i9, i9 + 3)]).toEqual([d('9'), d('3'), d('6')]);
    // Teacher: p(9) = 0.6 with alternative "8" 0.3; p(3) = 0.5 with "4" 0.2, "7" 0.1; p(6) = 0.7 with "5" 0.25.
    const k = 2;
    const logprobs = new Float32Array(t.length).fill(Math.log(0.9));
    const topkIds = new Int32Array(t.length * k), topkLogprobs = new Float32Array(t.length * k).fill(Math.log(0.01));
    for (let i = 0; i < t.length; i++) topkIds.set([t[i]!, d('Ġ') === t[i] ? d('a') : d('Ġ')], i * k);
    const set = (i: number, real: number, alts: Array<[string, number]>) => {
      logprobs[i] = Math.log(real);
      alts.forEach(([x, p], c) => { topkIds[i * k + c] = d(x); topkLogprobs[i * k + c] = Math.log(p); });
    };
    set(i9, 0.6, [['8', 0.3], ['9', 0.6]]);
    set(i9 + 1, 0.5, [['4', 0.2], ['7', 0.1]]);
    set(i9 + 2, 0.7, [['5', 0.25], ['6', 0.7]]);
    const q = spanProjection({ student, teacher }, alignment, s, { ids: t, logprobs, topkIds, topkLogprobs, k }, { projection: 'first' });
    const r = row(q, j);
    expectClose(r.get(L('936'))!, 0.6 * 0.5 * 0.7, TOL.float32Rounding);
    expectClose(r.get(L('8'))!, 0.3, TOL.float32Rounding);
    expectClose(r.get(L('94'))!, 0.6 * 0.2, TOL.float32Rounding);
    expectClose(r.get(L('97'))!, 0.6 * 0.1, TOL.float32Rounding);
    expectClose(r.get(L('935'))!, 0.6 * 0.5 * 0.25, TOL.float32Rounding);
    expect(r.size).toBe(5);
    expectClose(q.tail[j], 1 - (0.21 + 0.3 + 0.12 + 0.06 + 0.075), TOL.float32Rounding);
  });

  it('a teacher token straddling student tokens conditions on the bytes already emitted (llama3 teacher, qwen3 student)', () => {
    // Teacher "936" is one token; student rows "9", "3", "6". Row "3" conditions on u = "9".
    const student = load('qwen3'), teacher = load('llama3');
    const s = enc('qwen3', 'It costs 936 dollars'), t = enc('llama3', 'It costs 936 dollars');
    const alignment = bridgeOf('qwen3', 'llama3').align(s, t);
    const T = (x: string) => teacher.id(x)!, S = (x: string) => student.id(x)!;
    const i = [...t].indexOf(T('936')), j = [...s].indexOf(S('9'));
    const k = 3;
    const logprobs = new Float32Array(t.length).fill(Math.log(0.9));
    const topkIds = new Int32Array(t.length * k), topkLogprobs = new Float32Array(t.length * k).fill(Math.log(0.01));
    for (let x = 0; x < t.length; x++) topkIds.set([T('a'), T('b'), T('c')], x * k);
    // at "936": 0.4; "937" 0.2 (begins with "93"), "94" 0.1 (begins with "9"), "8" 0.1
    logprobs[i] = Math.log(0.4);
    topkIds.set([T('937'), T('94'), T('8')], i * k);
    topkLogprobs.set([Math.log(0.2), Math.log(0.1), Math.log(0.1)], i * k);
    const q = spanProjection({ student, teacher }, alignment, s, { ids: t, logprobs, topkIds, topkLogprobs, k });
    // row "9": u empty; "937" -> "9", "94" -> "9", "8" -> "8"; sampled "936" -> "9"
    const r9 = row(q, j);
    expectClose(r9.get(S('9'))!, 0.4 + 0.2 + 0.1, TOL.float32Rounding);
    expectClose(r9.get(S('8'))!, 0.1, TOL.float32Rounding);
    // row "3": u = "9", Z = 0.4 + 0.2 + 0.1; "937" -> "3", "94" -> "4"; sampled -> "3"
    const r3 = row(q, j + 1);
    expectClose(r3.get(S('3'))!, (0.4 + 0.2) / 0.7, TOL.float32Rounding);
    expectClose(r3.get(S('4'))!, 0.1 / 0.7, TOL.float32Rounding);
    // row "6": u = "93", Z = 0.4 + 0.2; "937" -> "7"; sampled -> "6"
    const r6 = row(q, j + 2);
    expectClose(r6.get(S('6'))!, 0.4 / 0.6, TOL.float32Rounding);
    expectClose(r6.get(S('7'))!, 0.2 / 0.6, TOL.float32Rounding);
    // chunk product with alternatives: 0.7 * (0.6/0.7) * (0.4/0.6) = 0.4 = p(936)... and the "9" row holds
    // the paths through "937" and "94" too (the accepted approximation of DESIGN 5)
    expectClose(r9.get(S('9'))! * r3.get(S('3'))! * r6.get(S('6'))!, 0.4, TOL.float32Rounding);
  });
});

describe('revision 2 on qwen3 -> llama3 numbers: " 5198" (DESIGN 5)', () => {
  const student = () => load('llama3'), teacher = () => load('qwen3');
  /** Student ids whose bytes begin with `x`, found by scanning the vocabulary (non-special, at least one byte). */
  function beginning(x: string): number[] {
    const want = Buffer.from(x, 'utf8'), t = student().byteTable, out: number[] = [];
    for (let id = 0; id < student().vocabSize; id++) {
      const a = t.offsets[id]!, e = t.offsets[id + 1]!;
      if (!t.special[id] && e - a >= want.length && Buffer.from(t.bytes.subarray(a, a + want.length)).equals(want)) out.push(id);
    }
    return out;
  }
  /** "The answer is 5198.": student " ", "519", "8"; teacher " ", "5", "1", "9", "8"; alternatives set per digit. */
  function setup(alts: Array<Array<[string, number]>>, real = [0.6, 0.5, 0.7]) {
    const text = 'The answer is 5198.';
    const s = enc('llama3', text), bridge = bridgeOf('llama3', 'qwen3'), t = bridge.retokenize(s);
    const S = (x: string) => student().id(x)!, T = (x: string) => teacher().id(x)!;
    const j = [...s].indexOf(S('519')), i5 = [...t].indexOf(T('5'));
    expect([...s.subarray(j - 1, j + 2)]).toEqual([S('Ġ'), S('519'), S('8')]);
    expect([...t.subarray(i5 - 1, i5 + 4)]).toEqual([T('Ġ'), T('5'), T('1'), T('9'), T('8')]);
    const k = 2;
    const logprobs = new Float32Array(t.length).fill(Math.log(0.9));
    const topkIds = new Int32Array(t.length * k), topkLogprobs = new Float32Array(t.length * k).fill(Math.log(0.01));
    for (let i = 0; i < t.length; i++) topkIds.set([T('a'), T('b')], i * k);
    alts.forEach((list, d) => {
      logprobs[i5 + d] = Math.log(real[d]!);
      list.forEach(([x, p], c) => { topkIds[(i5 + d) * k + c] = T(x); topkLogprobs[(i5 + d) * k + c] = Math.log(p); });
    });
    const scores = { ids: t, logprobs, topkIds, topkLogprobs, k };
    return { s, t, j, bridge, alignment: bridge.align(s, t), scores, S };
  }
  const bucketOf = (r: TargetRow, id: number) => r.buckets.find((b) => b.ids.includes(id));

  it('"6" at the first digit -> the 111 tokens beginning with "6"; "2" at the second -> the 11 beginning with "52"; "0" at the third -> "510"; "." at the second -> "5"', () => {
    const c = setup([[['6', 0.3], ['7', 0.05]], [['2', 0.2], ['.', 0.1]], [['0', 0.25], ['8', 0.01]]]);
    const q = spanProjection(c.bridge, c.alignment, c.s, c.scores);
    const r = q.row(c.j);
    const six = bucketOf(r, c.S('6'))!, fiftyTwo = bucketOf(r, c.S('52'))!;
    expect(six.ids.length).toBe(111);
    expect([...six.ids]).toEqual(beginning('6'));
    expectClose(six.q, 0.3, TOL.float32Rounding);
    expect(bucketOf(r, c.S('7'))!.ids.length).toBe(111);
    expectClose(bucketOf(r, c.S('7'))!.q, 0.05, TOL.float32Rounding);
    expect(fiftyTwo.ids.length).toBe(11);
    expect([...fiftyTwo.ids]).toEqual(beginning('52'));
    expectClose(fiftyTwo.q, 0.6 * 0.2, TOL.float32Rounding);
    // at the last teacher position of the token: single ids
    expect([...bucketOf(r, c.S('510'))!.ids]).toEqual([c.S('510')]);
    expectClose(bucketOf(r, c.S('510'))!.q, 0.6 * 0.5 * 0.25, TOL.float32Rounding);
    expect([...bucketOf(r, c.S('518'))!.ids]).toEqual([c.S('518')]);
    // G("5.") is empty: "5"
    expect([...bucketOf(r, c.S('5'))!.ids]).toEqual([c.S('5')]);
    expectClose(bucketOf(r, c.S('5'))!.q, 0.6 * 0.1, TOL.float32Rounding);
    expect([...bucketOf(r, c.S('519'))!.ids]).toEqual([c.S('519')]);
    expectClose(bucketOf(r, c.S('519'))!.q, 0.6 * 0.5 * 0.7, TOL.float32Rounding);
    expect(r.buckets.length).toBe(7);
    expectClose(r.tail, 1 - (0.3 + 0.05 + 0.12 + 0.075 + 0.003 + 0.06 + 0.21), TOL.float32Rounding);
    expectRowsEqual(r, referenceRow(spanProjectionReference(c.bridge, c.alignment, c.s, c.scores), c.j), 'reference');
    // revision 1 on the same teacher: every path to first(x)
    const r1 = spanProjection(c.bridge, c.alignment, c.s, c.scores, { projection: 'first' }).row(c.j);
    expect(r1.buckets.every((b) => b.ids.length === 1)).toBe(true);
    expectClose(bucketOf(r1, c.S('6'))!.q, 0.3, TOL.float32Rounding);
    expectClose(bucketOf(r1, c.S('52'))!.q, 0.12, TOL.float32Rounding);
  });

  it('first claim (Turkish "larak" = teacher "lar" + "ak"): a single id holds its id first; an emptied group goes to first(x)', () => {
    // At "lar": "large" (0.1) and "larg" (0.05) leave the sampled text: groups G("large") = {"large"}
    // and G("larg") = {"large", "larg"}. At "ak" (the last position): "ge" -> x = "large", the
    // single id "large" (0.6 * 0.2). It claims "large" first, so G("large") holds nothing and its
    // mass joins "large"; G("larg") keeps "larg".
    const text = 'Bunlar birlikte kullanılarak yapıldı.';
    const s = enc('llama3', text), bridge = bridgeOf('llama3', 'qwen3'), t = bridge.retokenize(s);
    const S = (x: string) => student().id(x)!, T = (x: string) => teacher().id(x)!;
    const j = [...s].indexOf(S('larak')), i = [...t].indexOf(T('lar'), 3);
    expect([...t.subarray(i, i + 2)]).toEqual([T('lar'), T('ak')]);
    const k = 2;
    const logprobs = new Float32Array(t.length).fill(Math.log(0.9));
    const topkIds = new Int32Array(t.length * k), topkLogprobs = new Float32Array(t.length * k).fill(Math.log(0.01));
    for (let x = 0; x < t.length; x++) topkIds.set([T('Ġ'), T(',')], x * k);
    logprobs[i] = Math.log(0.6);
    topkIds.set([T('large'), T('larg')], i * k);
    topkLogprobs.set([Math.log(0.1), Math.log(0.05)], i * k);
    logprobs[i + 1] = Math.log(0.7);
    topkIds.set([T('ge'), T(',')], (i + 1) * k);
    topkLogprobs.set([Math.log(0.2), Math.log(0.01)], (i + 1) * k);
    const scores = { ids: t, logprobs, topkIds, topkLogprobs, k };
    const alignment = bridge.align(s, t);
    const r = spanProjection(bridge, alignment, s, scores).row(j);
    expect(beginning('large')).toEqual([S('large')]);
    expect(beginning('larg').sort((a, b) => a - b)).toEqual([S('large'), S('larg')].sort((a, b) => a - b));
    expect([...bucketOf(r, S('large'))!.ids]).toEqual([S('large')]);
    expectClose(bucketOf(r, S('large'))!.q, 0.1 + 0.6 * 0.2, TOL.float32Rounding);
    expect([...bucketOf(r, S('larg'))!.ids]).toEqual([S('larg')]);
    expectClose(bucketOf(r, S('larg'))!.q, 0.05, TOL.float32Rounding);
    expectClose(bucketOf(r, S('larak'))!.q, 0.6 * 0.7, TOL.float32Rounding);
    expectRowInvariants(r, S('larak'), 'row');
    expectRowsEqual(r, referenceRow(spanProjectionReference(bridge, alignment, s, scores), j), 'reference');
  });

  it('a group of more than 50,000 ids (" " at the first digit: every token beginning with a space), through the divergence', () => {
    const c = setup([[['Ġ', 0.2], ['6', 0.1]], [['2', 0.1]], []]);
    const q = spanProjection(c.bridge, c.alignment, c.s, c.scores);
    const r = q.row(c.j);
    const space = r.buckets.find((b) => b.ids.length > 50000)!;
    expect(space.ids.length).toBe(beginning(' ').length);
    expect(space.ids.length).toBeGreaterThan(50000);
    expectClose(space.q, 0.2, TOL.float32Rounding);
    expectRowInvariants(r, c.S('519'), 'row');
    expectRowsEqual(r, referenceRow(spanProjectionReference(c.bridge, c.alignment, c.s, c.scores), c.j), 'reference');
    // The fused divergence on the whole response over the full vocabulary: against the float64
    // reference (which gets every bucket's ids listed), and one coefficient per bucket.
    const rows = c.s.length, vocab = student().vocabSize;
    const logits = randomLogits(rows, vocab, 5);
    for (const divergence of ['forward-kl', 'reverse-kl', 'jsd'] as const) {
      const got = sparseDivergence(logits, { rows, vocab }, q, { divergence, temperature: 0.8, device: 'cpu' });
      const want = sparseDivergenceReference(logits, { rows, vocab }, q, { divergence, temperature: 0.8 });
      expectClose(got.loss, want.loss, TOL.divergenceLossWide, `${divergence} loss`);
      expectAllClose(got.grad, want.grad, TOL.lossGrad, `${divergence} grad`);
    }
  });
});

describe('fast path equals the plain reference', () => {
  const pairs: Array<[string, string]> = [['llama3', 'qwen3'], ['qwen3', 'llama3'], ['gemma3', 'qwen3'], ['qwen3', 'gemma3'], ['mistral', 'llama3']];
  for (const [sName, tName] of pairs) {
    it(`${sName} student, ${tName} teacher: top-8 with prefix-sharing candidates, both revisions; rows <= 1, buckets disjoint`, () => {
      let rows = 0, groups = 0;
      for (const projection of PROJECTIONS) {
        // revision 2 (the default) on six texts, revision 1 on three of them
        for (const [n, text] of corpusTexts(6, 600, 21).slice(0, projection === 'prefix' ? 6 : 3).entries()) {
          const p = pairOf(sName, tName, text);
          const scores = teacherScores(p.t, 8, 300 + n, siblings(tName), [...p.teacher.eosIds]);
          const q = spanProjection(p, p.alignment, p.s, scores, { projection });
          const ref = spanProjectionReference(p, p.alignment, p.s, scores, { projection });
          expect(Array.from(q.mask)).toEqual(Array.from(ref.mask));
          if (projection === 'first') expect(q.groups).toBeUndefined();
          for (let j = 0; j < p.s.length; j++) {
            const r = q.row(j);
            expectRowsEqual(r, referenceRow(ref, j), `${projection}, text ${n}, row ${j}`);
            expectRowInvariants(r, r.buckets.length ? p.s[j] : undefined, `${projection}, text ${n}, row ${j}`);
          }
          for (const id of q.ids) groups += id === -1 ? 1 : 0;
          rows += p.s.length;
        }
      }
      expect(rows).toBeGreaterThan(450);
      // Groups appear where a student token covers several teacher tokens.
      if (sName === 'llama3' || sName === 'gemma3' || (sName === 'qwen3' && tName === 'gemma3')) expect(groups).toBeGreaterThan(0);
    }, 120_000);  // the float64 reference builds its student tables on every call (up to 262,144 ids)
  }

  it('random Unicode text (property): fast == reference for both revisions, rows sum to at most 1', () => {
    const student = load('llama3'), teacher = load('qwen3');
    fc.assert(fc.property(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }), fc.integer({ min: 0, max: 6 }), fc.integer(),
      fc.constantFrom(...PROJECTIONS), (text, k, seed, projection) => {
        const bridge = bridgeOf('llama3', 'qwen3');
        const s = student.encode(text, { addSpecialTokens: false });
        if (s.length === 0) return;
        const t = bridge.retokenize(s);
        const alignment = bridge.align(s, t);
        const scores = teacherScores(t, k, seed, siblings('qwen3'));
        const q = spanProjection({ student, teacher }, alignment, s, scores, { projection });
        const ref = spanProjectionReference({ student, teacher }, alignment, s, scores, { projection });
        for (let j = 0; j < s.length; j++) {
          const r = q.row(j);
          expectRowsEqual(r, referenceRow(ref, j), `row ${j}`);
          expect(r.buckets.reduce((a, b) => a + b.q, 0)).toBeLessThanOrEqual(1 + TOL.projectionRowMass.abs);
        }
      }), fuzzParams(60, 15));
  });
});

describe('end of turn, masks, studentVocab', () => {
  it('the end-of-turn pair (different bytes) projects at its position: stop on the student end of turn', () => {
    const student = load('llama3'), teacher = load('qwen3');
    const sEot = student.endOfTurnId!, tEot = teacher.endOfTurnId!;
    expect(student.token(sEot)).toBe('<|eot_id|>');
    const bridge = bridgeOf('llama3', 'qwen3');
    const s = Int32Array.from([...enc('llama3', 'Done.'), sEot]), t = bridge.retokenize(s);
    expect(t[t.length - 1]).toBe(tEot);
    const alignment = bridge.align(s, t);
    expect(alignment.studentEnd[alignment.chunkCount - 1]! - alignment.studentStart[alignment.chunkCount - 1]!).toBe(1);
    const k = 2, last = t.length - 1;
    const logprobs = new Float32Array(t.length).fill(Math.log(0.8));
    const topkIds = new Int32Array(t.length * k), topkLogprobs = new Float32Array(t.length * k).fill(Math.log(0.05));
    for (let i = 0; i < t.length; i++) topkIds.set([teacher.id('Ġyes')!, teacher.id('Ġno')!], i * k);
    logprobs[last] = Math.log(0.7);
    topkIds.set([teacher.id('ĠThe')!, teacher.eosIds.find((x) => x !== tEot) ?? teacher.id('Ġno')!], last * k);
    topkLogprobs.set([Math.log(0.2), Math.log(0.05)], last * k);
    const q = spanProjection(bridge, alignment, s, { ids: t, logprobs, topkIds, topkLogprobs, k });
    const r = row(q, s.length - 1);
    expectClose(r.get(sEot)!, 0.7 + (teacher.eosIds.length > 1 ? 0.05 : 0), TOL.float32Rounding);
    expectClose(r.get(student.id('ĠThe')!)!, 0.2, TOL.float32Rounding);
    expect(q.mask[s.length - 1]).toBe(1);
  });

  it('real differing bytes (Qwen 3 NFC on a combining accent): the APPROX chunk is masked, the rest projected', () => {
    const p = pairOf('llama3', 'qwen3', 'A cafe\u0301 near the old lighthouse, at 7:45 p.m. sharp.');
    const approx = [...p.alignment.flags.keys()].filter((c) => p.alignment.flags[c]! & 2);
    expect(approx.length).toBe(1);
    const scores = teacherScores(p.t, 4, 8, siblings('qwen3'));
    const q = spanProjection(p.bridge, p.alignment, p.s, scores);
    for (let c = 0; c < p.alignment.chunkCount; c++)
      for (let j = p.alignment.studentStart[c]!; j < p.alignment.studentEnd[c]!; j++) {
        expect(q.mask[j]).toBe(p.alignment.flags[c] ? 0 : 1);
        expect(q.rowPtr[j + 1]! - q.rowPtr[j]! > 0).toBe(!(p.alignment.flags[c]! & 2));
      }
  });

  it('APPROX and TAIL rows get no targets and mask 0; OVERSIZE rows get targets, masked unless included', () => {
    const p = pairOf('llama3', 'qwen3', 'The committee met on Tuesday to review 123456789 figures.');
    const flags = Uint8Array.from(p.alignment.flags);
    const big = [...Array(p.alignment.chunkCount).keys()].find((c) => p.alignment.studentEnd[c]! - p.alignment.studentStart[c]! >= 1 && c > 0)!;
    flags[0] = 2;  // APPROX
    flags[big] = 1;  // OVERSIZE
    flags[p.alignment.chunkCount - 1] = 4;  // TAIL
    const alignment: Alignment = { ...p.alignment, flags };
    const scores = teacherScores(p.t, 4, 5, siblings('qwen3'));
    for (const includeFlags of [0, 1]) {
      const q = spanProjection(p, alignment, p.s, scores, { includeFlags });
      for (let c = 0; c < alignment.chunkCount; c++) {
        for (let j = alignment.studentStart[c]!; j < alignment.studentEnd[c]!; j++) {
          const n = q.rowPtr[j + 1]! - q.rowPtr[j]!;
          if (flags[c] & 6) {
            expect(n).toBe(0);
            expect(q.tail[j]).toBe(1);
            expect(q.mask[j]).toBe(0);
          } else {
            expect(n).toBeGreaterThan(0);
            expect(q.mask[j]).toBe(flags[c] === 1 && includeFlags === 0 ? 0 : 1);
          }
        }
      }
    }
  });

  it('studentVocab: targets in its index space, only its ids as targets; feeds sparseDivergence', () => {
    const p = pairOf('llama3', 'qwen3', 'Prices rose 3.75% year over year, while the median rent reached $2,415.50.');
    const digits = [...'0123456789'].map((d) => p.teacher.id(d)!);  // alternatives inside "415" and "75"
    const scores = teacherScores(p.t, 8, 9, siblings('qwen3'), digits);
    const full = spanProjection(p, p.alignment, p.s, scores);
    // the ids the student can emit: the response's ids and the first 3000 (short, common tokens, digits among them)
    const allowed = new Set<number>([...p.s]);
    for (let x = 0; x < 3000; x++) allowed.add(x);
    const vocab = Int32Array.from([...allowed].sort((a, b) => b - a));  // any order
    const q = spanProjection(p, p.alignment, p.s, scores, { studentVocab: vocab });
    const ref = spanProjectionReference(p, p.alignment, p.s, scores, { studentVocab: vocab });
    // the byte order holds the allowed ids that are not special: every group member is allowed
    expect(q.groups!.byteOrder.length).toBe([...allowed].filter((id) => !p.student.byteTable.special[id]).length);
    let groups = 0;
    for (let j = 0; j < p.s.length; j++) {
      const r = q.row(j);
      expectRowsEqual(r, referenceRow(ref, j), `row ${j}`);
      for (const b of r.buckets) for (const id of b.ids) expect(id).toBeLessThan(vocab.length);
      expect(row(q, j).get(vocab.indexOf(p.s[j]!))).toBeGreaterThan(0);
      // never more mass than unrestricted: paths whose first token is not allowed go to a shorter one or the tail
      expect(q.tail[j]!).toBeGreaterThanOrEqual(0);
    }
    for (const id of q.ids) groups += id === -1 ? 1 : 0;
    expect(groups).toBeGreaterThan(0);  // prefix groups within the allowed ids
    expect(full.ids.length).toBeGreaterThan(0);
    const rows = p.s.length, V = vocab.length;
    const logits = randomLogits(rows, V, 3);
    for (const divergence of ['forward-kl', 'reverse-kl'] as const) {
      const loss = sparseDivergence(logits, { rows, vocab: V }, q, { divergence, device: 'cpu' });
      const want = sparseDivergenceReference(logits, { rows, vocab: V }, q, { divergence });
      expectClose(loss.loss, want.loss, TOL.divergenceLoss, `${divergence} loss`);
      expectAllClose(loss.grad, want.grad, TOL.lossGrad, `${divergence} grad`);
      expect(loss.rows).toBe([...q.mask].filter((m) => m).length);
    }
    expect(() => spanProjection(p, p.alignment, p.s, scores, { studentVocab: Int32Array.from([1, 2, 3]) }))
      .toThrow(expect.objectContaining(errCode('E_TOKEN_ID')));
  });

  it('the projector is built once per (student, teacher, studentVocab)', () => {
    const pair = { student: load('llama3'), teacher: load('qwen3') };
    const a = spanProjector(pair), b = spanProjector(pair);
    expect(a).toBe(b);
    expect(spanProjector(pair, Int32Array.from([1, 2, 3]))).toBe(spanProjector(pair, Int32Array.from([1, 2, 3])));
    expect(spanProjector(pair, Int32Array.from([1, 2, 3]))).not.toBe(a);
    expect(a.trieNodes).toBeGreaterThan(128000);
    expect(a.outputSize).toBe(pair.student.vocabSize);
  });
});

describe('bad input is an XopdError', () => {
  it('lengths, ids, probabilities, k, empty responses, alignments', () => {
    const p = pairOf('llama3', 'qwen3', 'Hello there, 42 birds.');
    const sc = teacherScores(p.t, 3, 1, siblings('qwen3'));
    const run = (over: Partial<SpanTeacher>, s = p.s, a: Alignment = p.alignment) => () => spanProjection(p, a, s, { ...sc, ...over });
    const c = (x: string) => expect.objectContaining(errCode(x));
    expect(run({ logprobs: sc.logprobs.subarray(1) })).toThrow(c('E_ARG_SHAPE'));
    expect(run({ k: 2 })).toThrow(c('E_ARG_SHAPE'));
    expect(run({ k: -1 })).toThrow(c('E_ARG_RANGE'));
    expect(run({ k: 1.5 })).toThrow(c('E_ARG_TYPE'));
    expect(run({ topkIds: sc.topkIds.map((x, i) => (i === 4 ? 10 ** 7 : x)) })).toThrow(c('E_TOKEN_ID'));
    expect(run({ topkIds: sc.topkIds.map((x, i) => (i === 1 ? sc.topkIds[0]! : x)) })).toThrow(c('E_ARG_VALUE'));
    expect(run({ logprobs: sc.logprobs.map((x, i) => (i === 2 ? 0.5 : x)) })).toThrow(c('E_ARG_VALUE'));
    expect(run({ logprobs: sc.logprobs.map((x, i) => (i === 2 ? NaN : x)) })).toThrow(c('E_ARG_VALUE'));
    expect(run({ topkLogprobs: sc.topkLogprobs.map(() => Math.log(0.6)) })).toThrow(c('E_ARG_VALUE'));
    expect(run({}, new Int32Array(0))).toThrow(c('E_ARG_SHAPE'));
    expect(run({}, p.s.map((x, i) => (i === 0 ? -3 : x)))).toThrow(c('E_TOKEN_ID'));
    const shortA = { ...p.alignment, chunkCount: p.alignment.chunkCount - 1, studentStart: p.alignment.studentStart.subarray(1) };
    expect(run({}, p.s, shortA)).toThrow(c('E_ARG_SHAPE'));
    expect(() => spanProjection({} as never, p.alignment, p.s, sc)).toThrow(c('E_ARG_TYPE'));
    expect(() => spanProjection(p, p.alignment, p.s, sc, { device: 'tpu' as never })).toThrow(c('E_ARG_VALUE'));
    expect(() => spanProjection(p, p.alignment, p.s, sc, { projection: 'longest' as never })).toThrow(c('E_ARG_VALUE'));
    // -inf logprobs are probability 0: allowed
    expect(run({ topkLogprobs: sc.topkLogprobs.map(() => -Infinity) })).not.toThrow();
  });
});

if (info().cuda.devices === 0) console.log('project-span: CUDA tests skipped, no CUDA device');
describe.runIf(process.env.XOPD_REQUIRE_CUDA === '1')('CUDA required (gpu-check)', () => {
  it('a CUDA device is present', () => { expect(info().cuda.devices).toBeGreaterThan(0); });
});

describe('revision 2 on device cuda', () => {
  it("'prefix' with device 'cuda' is E_CUDA_UNAVAILABLE (the CPU's in this build); 'auto' projects on the CPU", () => {
    const p = pairOf('llama3', 'qwen3', 'The answer is 5198.');
    const scores = teacherScores(p.t, 4, 3, siblings('qwen3'));
    const cpu = spanProjection(p, p.alignment, p.s, scores, { device: 'cpu' });
    expect(() => spanProjection(p, p.alignment, p.s, scores, { device: 'cuda' })).toThrow(expect.objectContaining(errCode('E_CUDA_UNAVAILABLE')));
    if (info().cuda.devices > 0)
      expect(() => spanProjection(p, p.alignment, p.s, scores, { device: 'cuda' })).toThrow(/grouped buckets run on the CPU in this build/);
    const auto = spanProjection(p, p.alignment, p.s, scores, { device: 'auto' });
    expect(Array.from(auto.ids)).toEqual(Array.from(cpu.ids));
    expect(Array.from(auto.probs)).toEqual(Array.from(cpu.probs));
  });
});

describe.skipIf(info().cuda.devices === 0)('CUDA span projection (device present)', () => {
  it('revision 1 equals the CPU path on real pairs', () => {
    for (const [sName, tName] of [['llama3', 'qwen3'], ['qwen3', 'gemma3']] as const) {
      for (const [n, text] of corpusTexts(3, 800, 41).entries()) {
        const p = pairOf(sName, tName, text);
        const scores = teacherScores(p.t, 8, 500 + n, siblings(tName));
        const a = spanProjection(p, p.alignment, p.s, scores, { device: 'cpu', projection: 'first' });
        const b = spanProjection(p, p.alignment, p.s, scores, { device: 'cuda', projection: 'first' });
        expect(Array.from(b.rowPtr)).toEqual(Array.from(a.rowPtr));
        expect(Array.from(b.ids)).toEqual(Array.from(a.ids));
        expect(Array.from(b.probs)).toEqual(Array.from(a.probs));
        expect(Array.from(b.tail)).toEqual(Array.from(a.tail));
      }
    }
  });
});
