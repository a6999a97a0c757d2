/**
 * Checks an alignment of real token ids against DESIGN 3 whatever the two byte streams are (equal or
 * not, teacher complete or cut short), plus the small tools the conformance suite needs: ids that
 * spell given bytes in a real vocabulary, the five families and their 20 ordered pairs.
 */
import { ChunkFlags, Tokenizer, type Alignment } from '../../src/index.js';
import { charBoundary, minimalityProblem, offsetsOf, partitionProblem } from './definition.js';

export const FAMILIES = ['qwen3', 'llama3', 'gemma3', 'deepseek_v3', 'mistral'] as const;
export type Family = (typeof FAMILIES)[number];
export const ORDERED_PAIRS: Array<[Family, Family]> = FAMILIES.flatMap((s) => FAMILIES.filter((t) => t !== s).map((t) => [s, t] as [Family, Family]));

const loaded = new Map<string, Tokenizer>();
/** One load per family per test file (they are large). */
export function family(name: Family): Tokenizer {
  let t = loaded.get(name);
  if (!t) loaded.set(name, (t = Tokenizer.load(name)));
  return t;
}

const spellers = new WeakMap<Tokenizer, { byBytes: Map<string, number>; maxLen: number }>();

/**
 * Ids of `tok` whose bytes are exactly `bytes` (a string is taken as UTF-8): at each place the
 * longest vocabulary entry that is not a control token. Every shipped vocabulary has all 256 single
 * bytes (byte-level symbols or SentencePiece <0xNN>), so any bytes can be spelled. This is how a
 * test writes a token list of another project's suite in a real vocabulary.
 */
export function spell(tok: Tokenizer, bytes: Uint8Array | string): Int32Array {
  const b = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : Buffer.from(bytes);
  let index = spellers.get(tok);
  if (!index) {
    const t = tok.byteTable;
    const byBytes = new Map<string, number>();
    let maxLen = 0;
    for (let id = 0; id < t.vocabSize; id++) {
      const a = t.offsets[id]!, e = t.offsets[id + 1]!;
      if (t.special[id] || e === a || e - a > 48) continue;
      const key = Buffer.from(t.bytes.subarray(a, e)).toString('latin1');
      if (!byBytes.has(key)) byBytes.set(key, id);
      maxLen = Math.max(maxLen, e - a);
    }
    spellers.set(tok, (index = { byBytes, maxLen }));
  }
  const key = b.toString('latin1');
  const out: number[] = [];
  for (let at = 0; at < key.length;) {
    let len = Math.min(index.maxLen, key.length - at);
    while (len > 0 && !index.byBytes.has(key.slice(at, at + len))) len--;
    if (len === 0) throw new Error(`${tok.name} cannot spell byte 0x${key.charCodeAt(at).toString(16)}`);
    out.push(index.byBytes.get(key.slice(at, at + len))!);
    at += len;
  }
  return Int32Array.from(out);
}

/** Several token texts spelled one after another; `owner[k]` is the text that id k spells. */
export function spellTokens(tok: Tokenizer, texts: readonly string[]): { ids: Int32Array; owner: number[] } {
  const ids: number[] = [], owner: number[] = [];
  texts.forEach((text, k) => {
    for (const id of spell(tok, text)) {
      ids.push(id);
      owner.push(k);
    }
  });
  return { ids: Int32Array.from(ids), owner };
}

export const MASKING = ChunkFlags.APPROX | ChunkFlags.TAIL;

export function chunkBytes(tok: Tokenizer, ids: Int32Array, a: number, b: number): Buffer {
  return Buffer.from(tok.bytesOf(ids.subarray(a, b)));
}

/** Offsets of ids inside [a, b), relative to the start of id a. */
function relativeOffsets(off: Int32Array, a: number, b: number): number[] {
  const out: number[] = [];
  for (let i = a; i <= b; i++) out.push(off[i]! - off[a]!);
  return out;
}

export interface AlignmentFacts {
  /** the teacher ids are the whole response (no TAIL allowed) or a prefix of it cut short */
  teacherComplete: boolean;
  /** the student and the teacher end with an end-of-turn pair the aligner splits off (DESIGN 3.4) */
  endOfTurnPair?: boolean;
}

/**
 * Why `a` does not satisfy DESIGN 3 for these ids, or null:
 *  - the chunks cover both sides in order (partition);
 *  - an exact chunk (no APPROX, no TAIL) has equal bytes on both sides and no synchronized boundary
 *    inside (3.1: minimal);
 *  - an APPROX chunk has unequal bytes, and no exact piece can be split off its start (the diff
 *    re-anchors on the first equal byte, so an equal prefix of tokens would be a chunk of its own);
 *  - TAIL only past a truncated teacher: none at all when the teacher is complete; otherwise the TAIL
 *    chunks are the last chunks, and those past the teacher's end hold one student token each (3.2);
 *  - a differing region is one chunk: a teacher-only chunk is never next to a student-only one
 *    (but for TAIL chunks past a truncated teacher's end);
 *  - on equal byte streams the chunks are the minimal synchronized chunks (test/helpers/definition.ts).
 */
export function alignmentProblem(a: Alignment, s: Int32Array, t: Int32Array, student: Tokenizer, teacher: Tokenizer,
  facts: AlignmentFacts): string | null {
  const partition = partitionProblem(a, s.length, t.length);
  if (partition) return partition;
  const offS = offsetsOf(student, s), offT = offsetsOf(teacher, t);
  // The end-of-turn pair is the last chunk, 1:1 and unflagged whatever its bytes (DESIGN 3.4).
  const eot = facts.endOfTurnPair ? 1 : 0;
  if (eot) {
    const c = a.chunkCount - 1;
    if (c < 0 || a.studentStart[c] !== s.length - 1 || a.teacherStart[c] !== t.length - 1 || a.flags[c] !== 0)
      return 'the end-of-turn pair is not the last chunk, 1:1 and unflagged';
  }
  let firstTail = -1;
  for (let c = 0; c < a.chunkCount - eot; c++) {
    const s0 = a.studentStart[c]!, s1 = a.studentEnd[c]!, t0 = a.teacherStart[c]!, t1 = a.teacherEnd[c]!, f = a.flags[c]!;
    const sb = chunkBytes(student, s, s0, s1), tb = chunkBytes(teacher, t, t0, t1);
    const where = `chunk ${c} s[${s0},${s1}) t[${t0},${t1}) flags ${f}`;
    if (f & ChunkFlags.TAIL) {
      if (facts.teacherComplete) return `${where}: TAIL although the teacher is complete`;
      if (firstTail < 0) firstTail = c;
      if (t0 === t1 && s1 - s0 !== 1) return `${where}: a TAIL chunk past the teacher's end holds ${s1 - s0} student tokens`;
      continue;
    }
    if (firstTail >= 0) return `${where}: follows the TAIL chunk ${firstTail}`;
    const equal = sb.equals(tb);
    if (f & ChunkFlags.APPROX) {
      if (equal) return `${where}: APPROX with equal bytes`;
      // No exact token-aligned prefix split at a character boundary of both sides.
      const rs = relativeOffsets(offS, s0, s1), rt = new Set(relativeOffsets(offT, t0, t1));
      for (const p of rs) {
        if (p === 0 || !rt.has(p) || (p === sb.length && p === tb.length)) continue;
        if (p > tb.length || !sb.subarray(0, p).equals(tb.subarray(0, p))) continue;
        if (charBoundary(sb, p) && charBoundary(tb, p)) return `${where}: its first ${p} bytes are equal on both sides and could be a chunk of their own`;
      }
    } else {
      if (!equal) return `${where}: exact chunk with unequal bytes`;
      const rt = new Set(relativeOffsets(offT, t0, t1));
      for (const p of relativeOffsets(offS, s0, s1)) {
        if (p > 0 && p < sb.length && rt.has(p) && charBoundary(sb, p)) return `${where}: holds the synchronized boundary at +${p}`;
      }
    }
    if (c + 1 < a.chunkCount - eot && !(a.flags[c + 1]! & ChunkFlags.TAIL)) {
      const studentOnly = (k: number) => a.teacherStart[k] === a.teacherEnd[k];
      const teacherOnly = (k: number) => a.studentStart[k] === a.studentEnd[k];
      if ((studentOnly(c) && teacherOnly(c + 1)) || (teacherOnly(c) && studentOnly(c + 1)))
        return `${where}: a one-sided chunk next to a one-sided chunk of the other side (one differing region split in two)`;
    }
  }
  // Equal streams (without an end-of-turn pair): exactly the minimal synchronized chunks.
  const sBody = s.subarray(0, s.length - eot), tBody = t.subarray(0, t.length - eot);
  const sbAll = Buffer.from(student.bytesOf(sBody));
  if (facts.teacherComplete && sbAll.equals(Buffer.from(teacher.bytesOf(tBody)))) {
    const body: Alignment = { ...a, chunkCount: a.chunkCount - eot };
    return minimalityProblem(body, offsetsOf(student, sBody), offsetsOf(teacher, tBody), sbAll);
  }
  return null;
}

/** What a teacher's normalizer makes of text (DESIGN 2): Qwen 3 NFC; Gemma 3 and Mistral spell '▁' as a space. */
export function teacherNormalized(teacher: Family, text: string): string {
  if (teacher === 'qwen3') return text.normalize('NFC');
  if (teacher === 'gemma3' || teacher === 'mistral') return text.replaceAll('\u2581', ' ');
  return text;
}

/** Why retokenized teacher bytes are not the student's bytes (normalized as the teacher does, one leading space allowed for Mistral), or null. */
export function retokenizedBytesProblem(studentText: string, teacherBytes: Uint8Array, teacher: Family): string | null {
  const want = teacherNormalized(teacher, studentText);
  const got = new TextDecoder().decode(teacherBytes);
  if (got === want || (teacher === 'mistral' && got === ' ' + want)) return null;
  let k = 0;
  while (k < got.length && k < want.length && got[k] === want[k]) k++;
  return `teacher text differs at ${k}: ${JSON.stringify(got.slice(Math.max(0, k - 12), k + 12))} vs ${JSON.stringify(want.slice(Math.max(0, k - 12), k + 12))}`;
}
