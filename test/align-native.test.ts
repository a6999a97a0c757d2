// The native aligner against its plain references (sync cuts, byte diff, whole pairs), TAIL and
// OVERSIZE, the diff's bounds, and bad input.
import { beforeAll, describe, expect, it } from 'vitest';
import { Tokenizer, TokenizerBridge, ChunkFlags, XopdError, alignPairs, type AlignmentDetails } from '../src/index.js';
import { byteDiff, DiffEnd } from '../src/internal.js';
import { ALIGN_PATHS, alignPairsOn, byteDiffReference, type AlignPath } from '../dev/align-reference.js';
import { mixedCorpus, mixedDocuments, rng } from '../dev/corpus.js';
import { chunksOf, partitionProblem } from './helpers/definition.js';

let qwen: Tokenizer, llama: Tokenizer, bridge: TokenizerBridge;
beforeAll(() => {
  qwen = Tokenizer.load('qwen3');
  llama = Tokenizer.load('llama3');
  bridge = new TokenizerBridge(qwen, llama);
});

const enc = new TextEncoder();

function align(pairs: Array<[Int32Array, Int32Array]>, path: AlignPath = 'optimised', maxChunkTokens = 6,
  teacherTruncated?: boolean[]): AlignmentDetails[] {
  return alignPairsOn(path, qwen, llama, pairs,
    { maxChunkTokens, studentEos: qwen.eosIds, teacherEos: llama.eosIds, teacherTruncated });
}

/** The code of the XopdError f throws, or 'no error'; any other error fails the test. */
function errorCode(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(XopdError);
    return (e as XopdError).code;
  }
  return 'no error';
}

function plain(a: AlignmentDetails) {
  return { chunks: chunksOf(a), flags: Array.from(a.flags), studentChunk: Array.from(a.studentChunk), bytesEqual: a.bytesEqual };
}

/** Text over [a-z ] with edits whose bytes occur nowhere near them, so the minimal edit script is unique. */
function editedPair(seed: number): [string, string] {
  const r = rng(seed);
  const letters = 'abcdefghijklmnopqrstuvwxyz';
  let base = '';
  const len = 40 + Math.floor(r() * 300);
  for (let i = 0; i < len; i++) base += r() < 0.18 ? ' ' : letters[Math.floor(r() * 26)]!;
  let edited = '';
  for (let i = 0; i < base.length; i++) {
    const c = base[i]!;
    const k = r();
    const prev = base[i - 1], next = base[i + 1];
    if (k < 0.02) edited += c + '∆';                       // insertion of a 3-byte character
    else if (k < 0.04) edited += c === 'e' ? 'é' : 'ß';    // replacement
    else if (k < 0.06 && prev !== c && next !== c && prev !== next) edited += ''; // deletion of a lone character
    else edited += c;
  }
  return [base, edited];
}

describe('optimised aligner = reference aligner', () => {
  it('on equal streams (mixed documents, every chunk field)', () => {
    const docs = mixedDocuments(40, 1500, 3);
    const pairs: Array<[Int32Array, Int32Array]> = docs.map((d) => {
      const s = qwen.encode(d, { addSpecialTokens: false });
      return [s, bridge.retokenize(s)];
    });
    // The fused one-pass merge, the general path (offsets, runs, SyncCuts) and the reference agree.
    const opt = align(pairs), general = align(pairs, 'general'), ref = align(pairs, 'reference');
    for (let k = 0; k < pairs.length; k++) {
      expect(opt[k]!.bytesEqual).toBe(true);
      expect(plain(opt[k]!)).toEqual(plain(ref[k]!));
      expect(plain(general[k]!)).toEqual(plain(ref[k]!));
    }
    // With end-of-turn ids on both sides too.
    const eot: Array<[Int32Array, Int32Array]> = pairs.slice(0, 8).map(([s, t]) => [Int32Array.from([...s, qwen.eosIds[0]!]), Int32Array.from([...t, 128009])]);
    const a = align(eot), b = align(eot, 'general'), c = align(eot, 'reference');
    for (let k = 0; k < eot.length; k++) {
      expect(plain(a[k]!)).toEqual(plain(c[k]!));
      expect(plain(b[k]!)).toEqual(plain(c[k]!));
      expect(a[k]!.flags[a[k]!.chunkCount - 1]).toBe(0);
    }
  });

  it('on streams with unambiguous byte edits (diff path)', () => {
    let approx = 0, exact = 0;
    for (let seed = 1; seed <= 120; seed++) {
      const [base, edited] = editedPair(seed);
      const pair: [Int32Array, Int32Array] = [qwen.encode(base, { addSpecialTokens: false }), llama.encode(edited, { addSpecialTokens: false })];
      const [opt] = align([pair]);
      const [ref] = align([pair], 'reference');
      expect(partitionProblem(opt!, pair[0].length, pair[1].length)).toBeNull();
      expect(plain(opt!)).toEqual(plain(ref!));
      expect(opt!.byteEdits).toBe(ref!.byteEdits);
      for (let c = 0; c < opt!.chunkCount; c++) (opt!.flags[c]! & ChunkFlags.APPROX ? approx++ : exact++);
    }
    expect(approx).toBeGreaterThan(100);
    expect(exact).toBeGreaterThan(approx * 5);
  });

  it('exact chunks have equal bytes, and cover no more than the bytes both streams share', () => {
    for (let seed = 200; seed < 260; seed++) {
      const [base, edited] = editedPair(seed);
      const s = qwen.encode(base, { addSpecialTokens: false }), t = llama.encode(edited, { addSpecialTokens: false });
      const [a] = align([[s, t]]);
      let exactBytes = 0;
      for (let c = 0; c < a!.chunkCount; c++) {
        const sb = Buffer.from(qwen.bytesOf(s.subarray(a!.studentStart[c]!, a!.studentEnd[c]!)));
        const tb = Buffer.from(llama.bytesOf(t.subarray(a!.teacherStart[c]!, a!.teacherEnd[c]!)));
        if (!(a!.flags[c]! & (ChunkFlags.APPROX | ChunkFlags.TAIL))) {
          expect(sb.equals(tb)).toBe(true);
          exactBytes += sb.length;
        }
      }
      // Every base byte outside an APPROX chunk is matched, so the exact bytes are at most the LCS.
      const d = byteDiffReference(enc.encode(base), enc.encode(edited));
      let lcs = 0;
      for (let r = 0; r < d.runs.length; r += 3) lcs += d.runs[r + 2]!;
      expect(exactBytes).toBeLessThanOrEqual(lcs);
      expect(exactBytes).toBeGreaterThan(lcs * 0.5);
    }
  });
});

describe('byteDiff', () => {
  function checkRuns(a: Uint8Array, b: Uint8Array, runs: Int32Array): number {
    let px = 0, py = 0, matched = 0;
    for (let r = 0; r < runs.length; r += 3) {
      const x = runs[r]!, y = runs[r + 1]!, len = runs[r + 2]!;
      expect(len).toBeGreaterThan(0);
      expect(x).toBeGreaterThanOrEqual(px);
      expect(y).toBeGreaterThanOrEqual(py);
      expect(Buffer.from(a.subarray(x, x + len)).equals(Buffer.from(b.subarray(y, y + len)))).toBe(true);
      px = x + len;
      py = y + len;
      matched += len;
    }
    return matched;
  }

  it('finds a minimal edit script, as the O(n*m) dynamic program (random bytes, small alphabets)', () => {
    const r = rng(99);
    for (let t = 0; t < 300; t++) {
      const alpha = 2 + Math.floor(r() * 6);
      const n = Math.floor(r() * 60), m = Math.floor(r() * 60);
      const a = Uint8Array.from({ length: n }, () => 97 + Math.floor(r() * alpha));
      const b = Uint8Array.from({ length: m }, () => 97 + Math.floor(r() * alpha));
      // With an anchor longer than the inputs, only the stream ends anchor: the search is plain Myers.
      const fast = byteDiff(a, b, { anchorBytes: 4096 });
      const ref = byteDiffReference(a, b);
      const total = (d: typeof fast) => d.edits + (n - d.x) + (m - d.y);
      expect(total(fast)).toBe(total(ref));
      const matched = checkRuns(a, b, fast.runs);
      expect(n + m - 2 * matched).toBe(total(fast));
      checkRuns(a, b, ref.runs);
    }
  });

  it('re-anchors after each local difference (NFC, a prepended space, a BOS)', () => {
    const text = 'The café served crème brûlée and jalapeño poppers. '.repeat(40);
    const nfd = enc.encode(text.normalize('NFD')), nfc = enc.encode(text.normalize('NFC'));
    const d = byteDiff(nfd, nfc);
    expect(d.end).toBe(DiffEnd.BOTH);
    // Each decomposed accent (3 bytes: base + 2-byte mark) vs composed (2 bytes): 5 byte edits.
    expect(d.edits).toBe(5 * 5 * 40);
    expect(checkRuns(nfd, nfc, d.runs)).toBe((nfd.length + nfc.length - d.edits) / 2);
    const spaced = byteDiff(enc.encode('Hello there'), enc.encode(' Hello there'));
    expect(Array.from(spaced.runs)).toEqual([0, 1, 11]);
    const bos = byteDiff(enc.encode('Hi'), enc.encode('<|begin_of_text|>Hi'));
    expect(Array.from(bos.runs)).toEqual([0, 17, 2]);
  });

  it('a teacher stream that stops early is a tail, even right after a difference', () => {
    const t1 = byteDiff(enc.encode('abc def ghi jkl'), enc.encode('abc de'));
    expect([t1.end, t1.x, t1.y]).toEqual([DiffEnd.TEACHER_ENDED, 6, 6]);
    const t2 = byteDiff(enc.encode('caf\u0065\u0301 au lait, and more words here'), enc.encode('café au'));
    expect(t2.end).toBe(DiffEnd.TEACHER_ENDED);
    expect(t2.x).toBe(9);
    // Not a tail: the teacher's last byte matching an earlier student byte is no reason to stop.
    const t3 = byteDiff(enc.encode('cafe\u0301 au lait and cre\u0300me'), enc.encode('café au lait and crème'));
    expect(t3.end).toBe(DiffEnd.BOTH);
  });

  it('re-synchronizes after a region too different for the edit search', () => {
    const r = rng(17);
    const prose = mixedCorpus(30_000, 6).normalize('NFC'); // Qwen 3 would change decomposed accents
    const block = Array.from({ length: 6000 }, () => String.fromCharCode(0x61 + Math.floor(r() * 26))).join('');
    const other = Array.from({ length: 5000 }, () => String.fromCharCode(0x41 + Math.floor(r() * 26))).join('');
    const a = enc.encode(prose.slice(0, 10_000) + block + prose.slice(10_000));
    const b = enc.encode(prose.slice(0, 10_000) + other + prose.slice(10_000));
    const d = byteDiff(a, b);
    expect(d.end).toBe(DiffEnd.BOTH);
    const head = enc.encode(prose.slice(0, 10_000)).length;
    const tail = enc.encode(prose.slice(10_000)).length;
    expect(d.runs[0]).toBe(0);
    expect(d.runs[2]).toBeGreaterThanOrEqual(head);
    const last = d.runs.length - 3;
    expect(d.runs[last]! + d.runs[last + 2]!).toBe(a.length);
    expect(d.runs[last + 2]).toBeGreaterThanOrEqual(tail - 64);
    // Through the aligner: the text after the block aligns exactly again.
    const s = qwen.encode(prose.slice(0, 10_000) + block + prose.slice(10_000), { addSpecialTokens: false });
    const t = llama.encode(prose.slice(0, 10_000) + other + prose.slice(10_000), { addSpecialTokens: false });
    const [al] = align([[s, t]]);
    expect(partitionProblem(al!, s.length, t.length)).toBeNull();
    const lastApprox = Math.max(...Array.from(al!.flags, (f, c) => (f & ChunkFlags.APPROX ? c : -1)));
    const maskedAfter = al!.studentEnd[lastApprox]!;
    const blockEnd = qwen.encode(prose.slice(0, 10_000) + block, { addSpecialTokens: false }).length;
    expect(maskedAfter).toBeLessThan(blockEnd + 40);
    expect(s.length - maskedAfter).toBeGreaterThan(4000);
  });

  it('stays within its budget on streams that share nothing (gives up, linear time)', () => {
    const r = rng(5);
    const n = 2_000_000;
    const a = Uint8Array.from({ length: n }, () => Math.floor(r() * 256));
    const b = Uint8Array.from({ length: n }, () => Math.floor(r() * 256));
    const t0 = performance.now();
    const d = byteDiff(a, b);
    const ms = performance.now() - t0;
    expect(d.end).toBe(DiffEnd.GAVE_UP);
    expect(ms).toBeLessThan(20_000); // bounded; typically well under a second
    // The budget is explicit: zero work allowed gives up at the first difference.
    const none = byteDiff(enc.encode('same start X then more'), enc.encode('same start Y then more'), { workPerByte: 0, workBase: 0 });
    expect([none.end, none.x, none.y]).toEqual([DiffEnd.GAVE_UP, 11, 11]);
  });
});

describe('flags', () => {
  it('a truncated teacher flags only the remaining student tokens TAIL', () => {
    const text = mixedCorpus(6000, 21);
    const s = qwen.encode(text, { addSpecialTokens: false });
    const t = bridge.retokenize(s);
    const full = bridge.align(s, t);
    expect(full.flags.every((f) => (f & (ChunkFlags.TAIL | ChunkFlags.APPROX)) === 0)).toBe(true);
    // Cut the teacher at a chunk boundary: earlier chunks are unchanged, each later student token is a TAIL chunk.
    const c = Math.floor(full.chunkCount / 2);
    const k = full.teacherEnd[c]!;
    const cut = bridge.align(s, t.subarray(0, k));
    expect(partitionProblem(cut, s.length, k)).toBeNull();
    expect(chunksOf(cut).slice(0, c + 1)).toEqual(chunksOf(full).slice(0, c + 1));
    expect(Array.from(cut.flags.subarray(0, c + 1))).toEqual(Array.from(full.flags.subarray(0, c + 1)));
    const rest = s.length - full.studentEnd[c]!;
    expect(cut.chunkCount).toBe(c + 1 + rest);
    for (let x = c + 1; x < cut.chunkCount; x++) {
      expect(cut.flags[x]).toBe(ChunkFlags.TAIL);
      expect(cut.studentEnd[x]! - cut.studentStart[x]!).toBe(1);
      expect([cut.teacherStart[x], cut.teacherEnd[x]]).toEqual([k, k]);
    }
    // Cut inside a multi-token teacher chunk: that chunk becomes TAIL, nothing before it changes.
    const multi = Array.from({ length: full.chunkCount }, (_, x) => x).find((x) => x > 10 && full.teacherEnd[x]! - full.teacherStart[x]! > 1)!;
    const k2 = full.teacherStart[multi]! + 1;
    const cut2 = bridge.align(s, t.subarray(0, k2));
    expect(chunksOf(cut2).slice(0, multi)).toEqual(chunksOf(full).slice(0, multi));
    expect(cut2.flags[multi]! & ChunkFlags.TAIL).toBe(ChunkFlags.TAIL);
    expect(cut2.studentStart[multi]).toBe(full.studentStart[multi]);
    expect(cut2.teacherEnd[multi]).toBe(k2);
    for (let x = 0; x < multi; x++) expect(cut2.flags[x]! & ChunkFlags.TAIL).toBe(0);
  });

  it('an oversize chunk is flagged, not merged into its neighbours', () => {
    const text = mixedCorpus(20000, 8);
    const s = qwen.encode(text, { addSpecialTokens: false });
    const t = bridge.retokenize(s);
    const [a6] = align([[s, t]], 'optimised', 6);
    const [a2] = align([[s, t]], 'optimised', 2);
    expect(chunksOf(a2!)).toEqual(chunksOf(a6!));
    let over6 = 0, over2 = 0;
    for (let c = 0; c < a6!.chunkCount; c++) {
      const size = Math.max(a6!.studentEnd[c]! - a6!.studentStart[c]!, a6!.teacherEnd[c]! - a6!.teacherStart[c]!);
      expect((a6!.flags[c]! & ChunkFlags.OVERSIZE) !== 0).toBe(size > 6);
      expect((a2!.flags[c]! & ChunkFlags.OVERSIZE) !== 0).toBe(size > 2);
      if (size > 6) over6++;
      if (size > 2) over2++;
    }
    expect(over6).toBeGreaterThan(0);
    expect(over2).toBeGreaterThan(over6);
  });
});

/** A byte-level tokenizer with exactly this vocabulary (pieces in GPT-2's byte-to-unicode spelling). */
function tiny(vocab: Record<string, number>): Tokenizer {
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false };
  return Tokenizer.fromJSON({
    version: '1.0', truncation: null, padding: null, added_tokens: [], normalizer: null, pre_tokenizer: byteLevel,
    post_processor: null, decoder: byteLevel,
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges: [] },
  }, {}, 'tiny');
}

/** Bytes written as a byte-level vocabulary piece (GPT-2's reversible byte-to-unicode map). */
function byteLevelPiece(bytes: Uint8Array): string {
  const kept = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || b >= 0xae;
  const map = new Map<number, number>();
  let shifted = 0;
  for (let b = 0; b < 256; b++) map.set(b, kept(b) ? b : 256 + shifted++);
  return Array.from(bytes, (b) => String.fromCodePoint(map.get(b)!)).join('');
}

/** A one-token tokenizer per text: its token 0 spells exactly these bytes. */
function oneToken(bytes: Uint8Array | string): Tokenizer {
  return tiny({ [byteLevelPiece(typeof bytes === 'string' ? enc.encode(bytes) : bytes)]: 0 });
}

describe('a difference in the last bytes (issue 16)', () => {
  const ONE = { s0: 0, s1: 1, t0: 0, t1: 1 };

  it.each([['x', '2', false], ['e\u0301', '\u00e9', false], ['\u00e9', 'e\u0301', false], ['\uff12', '2', false], ['2', '\uff12', false],
    ['foo', 'fo0', true], ['fo0', 'foo', true]] as const)(
    'one-token tokenizers %j against %j: one APPROX chunk of both tokens, on every path', (x, y, sharedStart) => {
      // Before: a teacher-only APPROX chunk s[0,0)t[0,1) and a student TAIL chunk s[0,1)t[1,1).
      const S = oneToken(x), T = oneToken(y);
      for (const path of ALIGN_PATHS) {
        const [a] = alignPairsOn(path, S, T, [[Int32Array.of(0), Int32Array.of(0)]], { maxChunkTokens: 6 });
        expect(chunksOf(a!)).toEqual([ONE]);
        expect(Array.from(a!.flags)).toEqual([ChunkFlags.APPROX]);
        expect(a!.diffEnd).toBe(DiffEnd.BOTH);
      }
      // Told the teacher is complete: the same. Told it was cut short: its differing last bytes are
      // inserted and the student's are past its end: a teacher-only APPROX chunk and a TAIL one, or,
      // when the two share their first bytes, one chunk whose student token reaches past the end.
      const [complete] = alignPairs(S.table, T.table, [[Int32Array.of(0), Int32Array.of(0)]], { maxChunkTokens: 6, teacherTruncated: [false] });
      expect([chunksOf(complete!), Array.from(complete!.flags)]).toEqual([[ONE], [ChunkFlags.APPROX]]);
      for (const path of ALIGN_PATHS) {
        const [cut] = alignPairsOn(path, S, T, [[Int32Array.of(0), Int32Array.of(0)]], { maxChunkTokens: 6, teacherTruncated: [true] });
        if (sharedStart) {
          expect(chunksOf(cut!)).toEqual([ONE]);
          expect(Array.from(cut!.flags)).toEqual([ChunkFlags.APPROX | ChunkFlags.TAIL]);
        } else {
          expect(chunksOf(cut!)).toEqual([{ s0: 0, s1: 0, t0: 0, t1: 1 }, { s0: 0, s1: 1, t0: 1, t1: 1 }]);
          expect(Array.from(cut!.flags)).toEqual([ChunkFlags.APPROX, ChunkFlags.TAIL]);
        }
      }
    });

  it('the byte diff ends as both when the teacher\'s last byte is unmatched, as a possible tail when it is matched', () => {
    const x2 = byteDiff(enc.encode('x'), enc.encode('2'));
    expect([x2.end, x2.x, x2.y, x2.edits]).toEqual([DiffEnd.BOTH, 1, 1, 2]);
    const ref = byteDiffReference(enc.encode('x'), enc.encode('2'));
    expect([ref.end, ref.x, ref.y, ref.edits]).toEqual([DiffEnd.BOTH, 1, 1, 2]);
    // Cut short, the teacher's byte is inserted and the student's is a tail.
    for (const diff of [byteDiff, byteDiffReference]) {
      const cut = diff(enc.encode('x'), enc.encode('2'), { truncated: true });
      expect([cut.end, cut.x, cut.y, cut.edits]).toEqual([DiffEnd.TEACHER_ENDED, 0, 1, 1]);
    }
  });

  it('a few teacher bytes matched by chance at the end do not make a tail: the whole last teacher token must lie in equal bytes', () => {
    // Student byte tokens F0 BD 80 (a 4-byte character cut after 3 bytes), teacher U+FFFD (EF BF BD) as
    // one token: the diff matches BD, so the teacher's bytes end on a matched byte with 80 left over.
    const S = tiny({ [byteLevelPiece(Uint8Array.of(0xf0))]: 0, [byteLevelPiece(Uint8Array.of(0xbd))]: 1, [byteLevelPiece(Uint8Array.of(0x80))]: 2 });
    const T = oneToken('\ufffd');
    expect(byteDiff(Uint8Array.of(0xf0, 0xbd, 0x80), enc.encode('\ufffd')).end).toBe(DiffEnd.TEACHER_ENDED);
    for (const path of ALIGN_PATHS) {
      const [a] = alignPairsOn(path, S, T, [[Int32Array.of(0, 1, 2), Int32Array.of(0)]], { maxChunkTokens: 6 });
      expect(chunksOf(a!)).toEqual([{ s0: 0, s1: 3, t0: 0, t1: 1 }]);
      expect(Array.from(a!.flags)).toEqual([ChunkFlags.APPROX]);
    }
  });

  it('llama3 -> qwen3, "Voila\u0300" and the end of turn: one APPROX chunk, as with "Voila\u0300!"', () => {
    const b = new TokenizerBridge(llama, qwen);
    const run = (text: string) => {
      const s = Int32Array.from([...llama.encode(text, { addSpecialTokens: false }), b.studentEndOfTurn!]);
      const t = b.retokenize(s);
      return { a: b.align(s, t), s, t };
    };
    const { a, s, t } = run('Voila\u0300');
    // Before: s[0,1)t[0,1) | s[1,2)t[1,3) APPROX|TAIL | s[2,3)t[3,3) TAIL | s[3,4)t[3,4).
    expect(chunksOf(a)).toEqual([{ s0: 0, s1: 1, t0: 0, t1: 1 }, { s0: 1, s1: 3, t0: 1, t1: 3 }, { s0: 3, s1: 4, t0: 3, t1: 4 }]);
    expect(Array.from(a.flags)).toEqual([0, ChunkFlags.APPROX, 0]);
    expect([s.length, t.length]).toEqual([4, 4]);
    const bang = run('Voila\u0300!').a;
    expect(chunksOf(bang).slice(0, 2)).toEqual(chunksOf(a).slice(0, 2));
    expect(Array.from(bang.flags.subarray(0, 2))).toEqual([0, ChunkFlags.APPROX]);
  });

  it('llama3 -> deepseek_v3, "你好😊" without its last byte token: the unfinished character and its U+FFFD are one APPROX chunk', () => {
    const ds = Tokenizer.load('deepseek_v3');
    const b = new TokenizerBridge(llama, ds);
    const whole = llama.encode('你好😊', { addSpecialTokens: false });
    const s = whole.slice(0, whole.length - 1);
    const t = b.retokenize(s);
    expect(new TextDecoder().decode(ds.bytesOf(t))).toBe('你好\ufffd');
    const a = b.align(s, t);
    // Before: s[0,2)t[0,1) | s[2,2)t[1,2) APPROX | s[2,3)t[2,2) TAIL.
    const last = a.chunkCount - 1;
    expect(chunksOf(a)[last]).toEqual({ s0: s.length - 1, s1: s.length, t0: t.length - 1, t1: t.length });
    expect(a.flags[last]).toBe(ChunkFlags.APPROX);
    expect(a.flags.every((f) => (f & ChunkFlags.TAIL) === 0)).toBe(true);
  });
});

describe('teacherTruncated: what the caller says of the teacher ids', () => {
  it('a prefix alignment when cut short: Myers costs agree with the dynamic program (random bytes)', () => {
    const r = rng(4242);
    for (let k = 0; k < 300; k++) {
      const alpha = 2 + Math.floor(r() * 5);
      const n = Math.floor(r() * 50), m = Math.floor(r() * 50);
      const a = Uint8Array.from({ length: n }, () => 97 + Math.floor(r() * alpha));
      const b = Uint8Array.from({ length: m }, () => 97 + Math.floor(r() * alpha));
      const fast = byteDiff(a, b, { anchorBytes: 4096, truncated: true });
      const ref = byteDiffReference(a, b, { truncated: true });
      // Cost of a prefix alignment: edits, plus extra teacher bytes; student bytes past the teacher's end are free.
      const cost = (d: typeof fast) => d.edits + (m - d.y);
      expect(cost(fast)).toBe(cost(ref));
      let matched = 0;
      for (let i = 0; i < fast.runs.length; i += 3) matched += fast.runs[i + 2]!;
      expect(fast.edits).toBe(fast.x + fast.y - 2 * matched);
      // Never more than a global alignment's edits.
      const global = byteDiff(a, b, { anchorBytes: 4096 });
      expect(cost(fast)).toBeLessThanOrEqual(global.edits + (n - global.x) + (m - global.y));
    }
  });

  it('told, the aligner neither infers a tail for a complete teacher nor misses one for a cut teacher', () => {
    const text = mixedCorpus(1500, 33).normalize('NFC').slice(0, 1500);
    const s = qwen.encode(text, { addSpecialTokens: false });
    const t = bridge.retokenize(s);
    // "abc" against "ab": read from the bytes it is a cut (TAIL); told it is complete, the extra student
    // bytes are one APPROX chunk; told it is cut, TAIL as inferred.
    const k = Math.floor(t.length / 2);
    const inferred = bridge.align(s, t.subarray(0, k));
    const cut = bridge.align(s, t.subarray(0, k), { teacherTruncated: true });
    const complete = bridge.align(s, t.subarray(0, k), { teacherTruncated: false });
    expect(plain(cut)).toEqual(plain(inferred));
    expect(cut.flags.some((f) => f & ChunkFlags.TAIL)).toBe(true);
    expect(complete.flags.every((f) => (f & ChunkFlags.TAIL) === 0)).toBe(true);
    const lastC = complete.chunkCount - 1;
    expect(complete.flags[lastC]! & ChunkFlags.APPROX).toBe(ChunkFlags.APPROX);
    expect(complete.teacherStart[lastC]).toBe(complete.teacherEnd[lastC]); // student-only: the teacher has nothing there
    expect(chunksOf(complete).slice(0, lastC)).toEqual(chunksOf(cut).slice(0, lastC));
    // A Mistral teacher cut after its first token (its leading space and a word): read from the bytes,
    // a later occurrence of that word may be matched; told, the first word is APPROX and the rest TAIL.
    const mistral = Tokenizer.load('mistral');
    const mb = new TokenizerBridge(qwen, mistral);
    const ms = qwen.encode('The cat saw The dog and The bird.', { addSpecialTokens: false });
    const mt = mb.retokenize(ms);
    const first = mb.align(ms, mt.subarray(0, 1), { teacherTruncated: true });
    expect(chunksOf(first)[0]).toEqual({ s0: 0, s1: 1, t0: 0, t1: 1 });
    expect(first.flags[0]).toBe(ChunkFlags.APPROX);
    expect(Array.from(first.flags.subarray(1))).toEqual(Array.from(ms.subarray(1), () => ChunkFlags.TAIL));
    // The optimised and reference aligners agree when told.
    for (const told of [true, false]) {
      const cuts: Array<[Int32Array, Int32Array]> = [5, 17, 40, k].map((j) => [s, t.subarray(0, j)]);
      const flags = cuts.map(() => told);
      expect(align(cuts, 'optimised', 6, flags).map(plain)).toEqual(align(cuts, 'reference', 6, flags).map(plain));
      const mcuts: Array<[Int32Array, Int32Array]> = [1, 2, 4].map((j) => [ms, mt.subarray(0, j)]);
      const mopts = { maxChunkTokens: 6, teacherTruncated: mcuts.map(() => told) };
      expect(alignPairs(qwen.table, mistral.table, mcuts, mopts).map(plain))
        .toEqual(alignPairsOn('reference', qwen, mistral, mcuts, mopts).map(plain));
    }
  });

  it('refuses an entry per pair that is missing or not a boolean', () => {
    const s = qwen.encode('hello world', { addSpecialTokens: false });
    const t = llama.encode('hello world', { addSpecialTokens: false });
    expect(errorCode(() => bridge.alignBatch([[s, t]], { teacherTruncated: [] }))).toBe('E_ARG_TYPE');
    expect(errorCode(() => bridge.alignBatch([[s, t]], { teacherTruncated: ['yes' as unknown as boolean] }))).toBe('E_ARG_TYPE');
    expect(errorCode(() => bridge.align(s, t, { teacherTruncated: 1 as unknown as boolean }))).toBe('E_ARG_TYPE');
    expect(errorCode(() => bridge.align(s, t, null as unknown as { teacherTruncated?: boolean }))).toBe('E_ARG_TYPE');
    expect(bridge.alignBatch([[s, t], [s, t]], { teacherTruncated: [undefined, false] }).length).toBe(2);
  });
});

describe('zero-byte tokens', () => {
  // No shipped tokenizer has one, but a vocabulary with holes (ids without a piece) does.
  it('join the chunk before them (the first chunk at the start), on every path', () => {
    const S = tiny({ a: 0, b: 2, ab: 3 }); // id 1 is a hole
    const T = tiny({ b: 0, a: 1, ab: 5 }); // ids 2, 3, 4 are holes
    const cases: Array<[number[], number[], Array<{ s0: number; s1: number; t0: number; t1: number }>]> = [
      [[1, 0, 2], [2, 1, 0], [{ s0: 0, s1: 2, t0: 0, t1: 2 }, { s0: 2, s1: 3, t0: 2, t1: 3 }]],
      [[0, 1, 2], [1, 0, 3], [{ s0: 0, s1: 2, t0: 0, t1: 1 }, { s0: 2, s1: 3, t0: 1, t1: 3 }]],
      [[3, 1], [5, 2, 3], [{ s0: 0, s1: 2, t0: 0, t1: 3 }]],
      [[1, 1], [4], [{ s0: 0, s1: 2, t0: 0, t1: 1 }]],
    ];
    for (const [s, t, want] of cases) {
      const pair: [Int32Array, Int32Array] = [Int32Array.from(s), Int32Array.from(t)];
      for (const path of ALIGN_PATHS) {
        const [a] = alignPairsOn(path, S, T, [pair], { maxChunkTokens: 6 });
        expect(partitionProblem(a!, s.length, t.length)).toBeNull();
        expect(chunksOf(a!)).toEqual(want);
        expect(Array.from(a!.flags)).toEqual(want.map(() => 0));
      }
    }
  });
});

describe('scale and bad input', () => {
  it('aligns 1,000,000-token sequences in linear time (equal streams, and streams that differ)', () => {
    const doc = mixedCorpus(40_000, 4);
    const s1 = qwen.encode(doc, { addSpecialTokens: false });
    const t1 = bridge.retokenize(s1);
    const reps = Math.ceil(1_000_000 / s1.length);
    const s = new Int32Array(s1.length * reps), t = new Int32Array(t1.length * reps);
    for (let r = 0; r < reps; r++) {
      s.set(s1, r * s1.length);
      t.set(t1, r * t1.length);
    }
    expect(s.length).toBeGreaterThanOrEqual(1_000_000);
    const t0 = performance.now();
    const a = bridge.align(s, t);
    const ms = performance.now() - t0;
    expect(a.bytesEqual).toBe(true);
    expect(partitionProblem(a, s.length, t.length)).toBeNull();
    const one = bridge.align(s1, t1);
    expect(a.chunkCount).toBe(one.chunkCount * reps);
    expect(ms).toBeLessThan(10_000);
    // Different streams of a million tokens each (random ids): bounded diff, one result, no crash.
    const r = rng(77);
    const rs = Int32Array.from({ length: 1_000_000 }, () => Math.floor(r() * 100_000));
    const rt = Int32Array.from({ length: 1_000_000 }, () => Math.floor(r() * 100_000));
    const t2 = performance.now();
    const b = bridge.align(rs, rt);
    expect(performance.now() - t2).toBeLessThan(30_000);
    expect(partitionProblem(b, rs.length, rt.length)).toBeNull();
    expect(b.bytesEqual).toBe(false);
  });

  it('empty sequences', () => {
    const s = qwen.encode('hello world', { addSpecialTokens: false });
    const t = llama.encode('hello world', { addSpecialTokens: false });
    const none = bridge.align(new Int32Array(0), new Int32Array(0));
    expect(none.chunkCount).toBe(0);
    const noStudent = bridge.align(new Int32Array(0), t);
    expect(chunksOf(noStudent)).toEqual([{ s0: 0, s1: 0, t0: 0, t1: t.length }]);
    expect(noStudent.flags[0]).toBe(ChunkFlags.APPROX);
    const noTeacher = bridge.align(s, new Int32Array(0));
    expect(noTeacher.chunkCount).toBe(s.length);
    expect(Array.from(noTeacher.flags)).toEqual(Array.from(s, () => ChunkFlags.TAIL));
    expect(bridge.retokenize(new Int32Array(0)).length).toBe(0);
    expect(bridge.alignBatch([])).toEqual([]);
  });

  it('ids out of range, mismatched tokenizers, wrong types: XopdError with a code, never a crash', () => {
    const s = qwen.encode('hello world', { addSpecialTokens: false });
    const t = llama.encode('hello world', { addSpecialTokens: false });
    expect(errorCode(() => bridge.align(Int32Array.of(1, -1), t))).toBe('E_TOKEN_ID');
    expect(errorCode(() => bridge.align(s, Int32Array.of(5, 128256)))).toBe('E_TOKEN_ID');
    // Qwen 3 ids given as the teacher's (Llama 3, a smaller vocabulary): the large ones are refused.
    const qwenIds = qwen.encode('你好，世界。今天天气很好 <|im_end|>', { addSpecialTokens: false });
    expect(errorCode(() => bridge.align(s, qwenIds))).toBe('E_TOKEN_ID');
    expect(errorCode(() => bridge.retokenize(Int32Array.of(200_000)))).toBe('E_TOKEN_ID');
    expect(errorCode(() => bridge.align(new Float32Array(2) as unknown as Int32Array, t))).toBe('E_ARG_TYPE');
    expect(errorCode(() => bridge.alignBatch('x' as unknown as Array<[Int32Array, Int32Array]>))).toBe('E_ARG_TYPE');
    expect(errorCode(() => bridge.alignBatch([[s]] as unknown as Array<[Int32Array, Int32Array]>))).toBe('E_ARG_TYPE');
    expect(errorCode(() => new TokenizerBridge(qwen, {} as Tokenizer))).toBe('E_ARG_TYPE');
    expect(errorCode(() => new TokenizerBridge(qwen, llama, { maxChunkTokens: 0 }))).toBe('E_ARG_RANGE');
    expect(errorCode(() => alignPairs(qwen.table, llama.table, [[s, t]], { maxChunkTokens: 6, maxEdits: -1 }))).toBe('E_ARG_RANGE');
    // Plain arrays of ids are accepted and checked.
    expect(bridge.align(Array.from(s) as unknown as Int32Array, Array.from(t) as unknown as Int32Array).chunkCount).toBe(2);
    expect(errorCode(() => bridge.align([1.5] as unknown as Int32Array, t))).toBe('E_ARG_TYPE');
  });
});
