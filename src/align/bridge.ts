/**
 * TokenizerBridge: everything between a student and a teacher tokenizer (DESIGN sections 1 and 3).
 *   renderPrompts: the same messages through each side's own chat template; the prompt lengths are
 *     the response boundaries (no marker is ever searched for).
 *   retokenize: the student's response bytes as text, encoded by the teacher without special tokens;
 *     a final student end-of-turn id becomes the teacher's end-of-turn id.
 *   align / alignBatch: chunks of the two response id sequences (native, all cores).
 */
import * as check from '../check.js';
import { ErrorCode, XopdError } from '../errors.js';
import { Tokenizer } from '../tokenizer/tokenizer.js';
import type { ChatMessage } from '../tokenizer/chat-template.js';
import { alignPairs, type AlignmentDetails } from './aligner.js';
import type { Alignment } from './types.js';

export interface TokenizerBridgeOptions {
  /** chunks with more tokens than this on either side are flagged OVERSIZE (default 6, as the paper) */
  maxChunkTokens?: number;
}

const utf8 = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

function sameTables(a: Tokenizer, b: Tokenizer): boolean {
  if (a === b) return true;
  const x = a.byteTable, y = b.byteTable;
  if (x.vocabSize !== y.vocabSize || x.bytes.length !== y.bytes.length) return false;
  return Buffer.from(x.bytes.buffer, x.bytes.byteOffset, x.bytes.byteLength)
      .equals(Buffer.from(y.bytes.buffer, y.bytes.byteOffset, y.bytes.byteLength)) &&
    Buffer.from(x.offsets.buffer, x.offsets.byteOffset, x.offsets.byteLength)
      .equals(Buffer.from(y.offsets.buffer, y.offsets.byteOffset, y.offsets.byteLength));
}

/**
 * The id a tokenizer's chat template closes an assistant turn with: the last end-of-turn id in the
 * rendering of a one-exchange conversation. Without a template, the first EOS id (or null).
 */
function endOfTurnId(tok: Tokenizer): number | null {
  const eos = new Set(tok.eosIds);
  if (tok.hasChatTemplate) {
    try {
      const text = tok.applyChatTemplate([{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b' }],
        { addGenerationPrompt: false });
      const ids = tok.encode(text, { addSpecialTokens: false });
      for (let i = ids.length - 1; i >= 0; i--) if (eos.has(ids[i]!)) return ids[i]!;
    } catch {
      /* a template that refuses this conversation: fall back to the EOS id */
    }
  }
  return tok.eosIds.length > 0 ? tok.eosIds[0]! : null;
}

/** A student response as the teacher must see it: texts to encode, and pieces in order (an index into texts, or teacher ids as they are). */
export interface RetokenizePlan {
  texts: string[];
  pieces: Array<number | Int32Array>;
}

export class TokenizerBridge {
  readonly student: Tokenizer;
  readonly teacher: Tokenizer;
  readonly maxChunkTokens: number;
  /** both tokenizers map every id to the same bytes: retokenize returns the student's ids */
  readonly sameVocabulary: boolean;
  /** the id each side's chat template closes an assistant turn with (null: none); a final student
   *  end-of-turn id (any of student.eosIds) becomes teacherEndOfTurn */
  readonly studentEndOfTurn: number | null;
  readonly teacherEndOfTurn: number | null;

  constructor(student: Tokenizer, teacher: Tokenizer, opts: TokenizerBridgeOptions = {}) {
    if (!(student instanceof Tokenizer)) throw new XopdError(ErrorCode.ARG_TYPE, `student must be a Tokenizer (Tokenizer.load('qwen3')), got ${check.describe(student)}`);
    if (!(teacher instanceof Tokenizer)) throw new XopdError(ErrorCode.ARG_TYPE, `teacher must be a Tokenizer (Tokenizer.load('llama3')), got ${check.describe(teacher)}`);
    if (opts === null || typeof opts !== 'object') throw new XopdError(ErrorCode.ARG_TYPE, `opts must be an object, got ${check.describe(opts)}`);
    this.student = student;
    this.teacher = teacher;
    this.maxChunkTokens = opts.maxChunkTokens === undefined ? 6 : check.int(opts.maxChunkTokens, 'maxChunkTokens', 1, 2 ** 30);
    this.sameVocabulary = sameTables(student, teacher);
    this.studentEndOfTurn = endOfTurnId(student);
    this.teacherEndOfTurn = endOfTurnId(teacher);
  }

  /** The prompt ids of each side: the messages through its own chat template, generation prompt on. */
  renderPrompts(messages: ChatMessage[]): { student: Int32Array; teacher: Int32Array } {
    if (!Array.isArray(messages) || messages.length === 0)
      throw new XopdError(ErrorCode.ARG_VALUE, 'messages must be a non-empty array of { role, content }');
    const render = (tok: Tokenizer) =>
      tok.encode(tok.applyChatTemplate(messages, { addGenerationPrompt: true }), { addSpecialTokens: false });
    return { student: render(this.student), teacher: render(this.teacher) };
  }

  /**
   * The teacher's response ids for the student's: decode the student's bytes to text (invalid UTF-8
   * becomes U+FFFD, which the aligner then marks APPROX), encode with the teacher without special
   * tokens; a final student end-of-turn id becomes the teacher's end-of-turn id.
   * Control tokens stay control tokens only where the student emitted one: text that merely spells
   * a teacher control token (a response quoting "<|eot_id|>") is given to the teacher as ordinary
   * tokens of the same bytes, and a student control token becomes the teacher's control token with
   * the same text, if there is one, else ordinary tokens.
   */
  retokenize(studentResponseIds: Int32Array): Int32Array {
    const plan = this.retokenizePlan(studentResponseIds);
    return this.retokenizeJoin(plan, plan.texts.map((t) => this.teacher.encode(t, { addSpecialTokens: false })));
  }

  /**
   * retokenize in two halves, for an encoder that runs elsewhere (an async one): the plan lists the
   * texts the teacher must encode (without special tokens); retokenizeJoin puts their ids together.
   */
  retokenizePlan(studentResponseIds: Int32Array): RetokenizePlan {
    const ids = this.checkStudentIds(studentResponseIds, 'studentResponseIds');
    if (this.sameVocabulary) return { texts: [], pieces: [Int32Array.from(ids)] };
    const n = ids.length;
    const eot = n > 0 && this.student.eosIds.includes(ids[n - 1]!);
    const body = eot ? ids.subarray(0, n - 1) : ids;
    // Split only at student control tokens the teacher has too (one encode call otherwise: a
    // SentencePiece teacher such as Mistral prepends a space to every piece it encodes).
    const sSpecial = this.student.byteTable.special;
    const plan: RetokenizePlan = { texts: [], pieces: [] };
    let start = 0;
    for (let i = 0; i <= body.length; i++) {
      let same: number | undefined;
      if (i < body.length) {
        if (!sSpecial[body[i]!]) continue;
        same = this.teacherControlIds().get(utf8.decode(this.student.tokenBytes(body[i]!)));
        if (same === undefined) continue;
      }
      if (i > start) plan.pieces.push(plan.texts.push(utf8.decode(this.student.bytesOf(body.subarray(start, i)))) - 1);
      if (same !== undefined) plan.pieces.push(Int32Array.of(same));
      start = i + 1;
    }
    if (eot && this.teacherEndOfTurn !== null) plan.pieces.push(Int32Array.of(this.teacherEndOfTurn));
    return plan;
  }

  /** The teacher ids of a plan, given the teacher's ids of each of its texts (in order). */
  retokenizeJoin(plan: RetokenizePlan, encoded: ArrayLike<number>[]): Int32Array {
    const out: number[] = [];
    for (const p of plan.pieces) {
      if (typeof p !== 'number') {
        for (const id of p) out.push(id);
        continue;
      }
      // A control token the text merely spells is given to the teacher as ordinary tokens of the same bytes.
      const tSpecial = this.teacher.byteTable.special;
      const ids = encoded[p]!;
      for (let j = 0; j < ids.length; j++) {
        const id = ids[j]!;
        if (tSpecial[id]) out.push(...this.ordinaryIds(this.teacher.tokenBytes(id)));
        else out.push(id);
      }
    }
    return Int32Array.from(out);
  }

  private controlIds: Map<string, number> | undefined;
  private ordinary: Map<string, number> | undefined;
  private ordinaryMaxLen = 0;

  /** The teacher's control tokens by their text. */
  private teacherControlIds(): Map<string, number> {
    if (!this.controlIds) {
      this.controlIds = new Map();
      for (const id of this.teacher.specialIds) {
        const s = utf8.decode(this.teacher.tokenBytes(id));
        if (s && !this.controlIds.has(s)) this.controlIds.set(s, id);
      }
    }
    return this.controlIds;
  }

  /** Ordinary (non-control) teacher ids spelling exactly these bytes: greedy longest match. */
  private ordinaryIds(bytes: Uint8Array): number[] {
    if (!this.ordinary) {
      this.ordinary = new Map();
      const t = this.teacher.byteTable;
      for (let id = 0; id < t.vocabSize; id++) {
        const a = t.offsets[id]!, b = t.offsets[id + 1]!;
        if (t.special[id] || b === a || b - a > 64) continue;
        const key = Buffer.from(t.bytes.subarray(a, b)).toString('latin1');
        // Prefer a vocabulary piece to a SentencePiece byte-fallback token (<0xNN>) for the same bytes.
        const prev = this.ordinary.get(key);
        if (prev === undefined || (/^<0x[0-9A-Fa-f]{2}>$/.test(t.pieces[prev]!) && !/^<0x[0-9A-Fa-f]{2}>$/.test(t.pieces[id]!))) this.ordinary.set(key, id);
        this.ordinaryMaxLen = Math.max(this.ordinaryMaxLen, b - a);
      }
    }
    const out: number[] = [];
    const key = Buffer.from(bytes).toString('latin1');
    for (let at = 0; at < key.length;) {
      let len = Math.min(this.ordinaryMaxLen, key.length - at);
      while (len > 0 && !this.ordinary.has(key.slice(at, at + len))) len--;
      if (len === 0) throw new XopdError(ErrorCode.TOKENIZER_INVALID, `the teacher ${this.teacher.name} has no ordinary token for byte 0x${key.charCodeAt(at).toString(16)}`);
      out.push(this.ordinary.get(key.slice(at, at + len))!);
      at += len;
    }
    return out;
  }

  /** Chunks of one student response and its teacher response (DESIGN section 3). */
  align(studentIds: Int32Array, teacherIds: Int32Array): AlignmentDetails {
    return this.alignBatch([[studentIds, teacherIds]])[0]!;
  }

  /** Chunks of many pairs, on all cores. */
  alignBatch(pairs: Array<[Int32Array, Int32Array]>): AlignmentDetails[] {
    if (!Array.isArray(pairs)) throw new XopdError(ErrorCode.ARG_TYPE, `pairs must be an array of [studentIds, teacherIds], got ${check.describe(pairs)}`);
    return alignPairs(this.student.table, this.teacher.table, pairs, {
      maxChunkTokens: this.maxChunkTokens,
      studentEos: this.student.eosIds,
      teacherEos: this.teacher.eosIds,
    });
  }

  private checkStudentIds(x: unknown, name: string): Int32Array {
    const ids = check.ids(x, name);
    const v = this.student.vocabSize;
    for (let i = 0; i < ids.length; i++) {
      if (ids[i]! < 0 || ids[i]! >= v)
        throw new XopdError(ErrorCode.TOKEN_ID, `${name}[${i}] = ${ids[i]} is outside the student vocabulary [0, ${v}) of ${this.student.name}`);
    }
    return ids;
  }
}

export type { Alignment };
