/**
 * TokenizerBridge: everything between a student and a teacher tokenizer (DESIGN sections 1 and 3).
 *   renderPrompts: the same messages through each side's own chat template; the prompt lengths are
 *     the response boundaries (no marker is ever searched for).
 *   retokenize: the student's response bytes as text, encoded by the teacher without special tokens,
 *     to the same bytes (but for the one leading space a SentencePiece teacher puts before a text);
 *     a final student end-of-turn id becomes the teacher's end-of-turn id.
 *   align / alignBatch: chunks of the two response id sequences (native, all cores).
 */
import * as check from '../core/check.js';
import { ErrorCode, XopdError } from '../core/errors.js';
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

/** A trie of the teacher's added-token strings (UTF-16 units, as the encoder matches them). */
interface AddedTrie {
  next: Map<string, AddedTrie>;
  id?: number;
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
    check.instance(student, Tokenizer, 'student', "Tokenizer.load('qwen3')");
    check.instance(teacher, Tokenizer, 'teacher', "Tokenizer.load('llama3')");
    check.object(opts, 'opts', '{ maxChunkTokens? }');
    this.student = student;
    this.teacher = teacher;
    this.maxChunkTokens = opts.maxChunkTokens === undefined ? 6 : check.int(opts.maxChunkTokens, 'maxChunkTokens', 1, 2 ** 30);
    this.sameVocabulary = sameTables(student, teacher);
    this.studentEndOfTurn = student.endOfTurnId;
    this.teacherEndOfTurn = teacher.endOfTurnId;
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
   * a teacher control token (a response quoting "<|eot_id|>", HTML "<s>old</s>") is given to the
   * teacher as ordinary tokens of the same bytes, and a student control token becomes the teacher's
   * control token with the same text, if there is one, else ordinary tokens.
   * The teacher ids spell the student's bytes, except what the teacher's normalizer changes (Qwen 3's
   * NFC) and the one space a SentencePiece teacher (Mistral) puts before the response: that space
   * is its usual start of a text; the aligner makes it part of the first, APPROX, chunk.
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
    // Split at student control tokens the teacher has too; the text between is decoded as a whole.
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
      if (i > start) this.planText(utf8.decode(this.student.bytesOf(body.subarray(start, i))), start === 0, plan);
      if (same !== undefined) plan.pieces.push(Int32Array.of(same));
      start = i + 1;
    }
    if (eot && this.teacherEndOfTurn !== null) plan.pieces.push(Int32Array.of(this.teacherEndOfTurn));
    return plan;
  }

  /** The teacher ids of a plan, given the teacher's ids of each of its texts (in order). */
  retokenizeJoin(plan: RetokenizePlan, encoded: ArrayLike<number>[]): Int32Array {
    const tSpecial = this.teacher.byteTable.special;
    const out: number[] = [];
    for (const p of plan.pieces) {
      if (typeof p !== 'number') {
        for (const id of p) out.push(id);
        continue;
      }
      // The texts hold no spelling of a teacher control token (planText cut them out); should an
      // encoder still produce one, it is given to the teacher as ordinary tokens of the same bytes.
      const ids = encoded[p]!;
      for (let j = 0; j < ids.length; j++) {
        const id = ids[j]!;
        if (tSpecial[id]) out.push(...this.ordinaryIds(this.teacher.tokenBytes(id)));
        else out.push(id);
      }
    }
    return Int32Array.from(out);
  }

  /**
   * Plans the teacher ids of text. The teacher's encoder would split the text at every spelling of
   * one of its added tokens and encode each piece on its own, so a SentencePiece teacher that
   * prepends a space to what it encodes would write one after each spelling ("<s>old" as "<s> old");
   * and it would turn a spelled control token into that control token. So the pieces are split here:
   * a spelled control token becomes ordinary tokens of its bytes, another added token stays itself
   * (as the teacher's encoder keeps it), and each text piece is encoded without the teacher's
   * prefix, but for the first piece of a response (`responseStart`), which keeps the teacher's
   * usual start. A teacher without a prefix is split only at its control tokens (its encoder's own
   * split at other added tokens, such as Gemma 3's "\n", gives the same ids, in one call instead of
   * hundreds). Pieces encoded plainly go to the plan's texts (an external encoder may do them); a
   * piece whose prefix must come off is encoded here.
   */
  private planText(text: string, responseStart: boolean, plan: RetokenizePlan): void {
    const tSpecial = this.teacher.byteTable.special;
    const plain = this.teacherPrefix().length === 0;
    let first = responseStart;
    for (const { piece, added } of this.splitAtAdded(text)) {
      if (added !== undefined) plan.pieces.push(tSpecial[added] ? Int32Array.from(this.ordinaryIds(this.teacher.tokenBytes(added))) : Int32Array.of(added));
      else if (plain || first) plan.pieces.push(plan.texts.push(piece) - 1);
      else {
        const ids: number[] = [];
        this.encodePiece(piece, false, ids);
        plan.pieces.push(Int32Array.from(ids));
      }
      first = false;
    }
  }

  /**
   * Teacher ids of text holding no added-token spelling. With `keepPrefix` false, ids without the
   * prefix the teacher puts before what it encodes: a text that starts with the prefix lets the
   * teacher's prefix stand for it (the ids a word start gets anywhere); otherwise the prefix's bytes
   * are taken off the first ids, and the bytes left of an id it shared become ordinary ids.
   */
  private encodePiece(piece: string, keepPrefix: boolean, out: number[]): void {
    const prefix = this.teacherPrefix();
    if (keepPrefix || prefix.length === 0) {
      out.push(...this.teacher.encode(piece, { addSpecialTokens: false }));
      return;
    }
    const p = Buffer.from(prefix, 'utf8');
    const startsWithPrefix = (ids: Int32Array) => {
      const got = this.teacher.bytesOf(ids);
      return got.length >= p.length && p.equals(got.subarray(0, p.length));
    };
    if (piece.length > prefix.length && piece.startsWith(prefix)) {
      const ids = this.teacher.encode(piece.slice(prefix.length), { addSpecialTokens: false });
      if (startsWithPrefix(ids)) {
        out.push(...ids);
        return;
      }
    }
    const ids = this.teacher.encode(piece, { addSpecialTokens: false });
    if (!startsWithPrefix(ids)) {
      out.push(...ids);
      return;
    }
    let drop = p.length;
    for (const id of ids) {
      if (drop === 0) {
        out.push(id);
        continue;
      }
      const b = this.teacher.tokenBytes(id);
      if (b.length <= drop) drop -= b.length;
      else {
        out.push(...this.ordinaryIds(b.subarray(drop)));
        drop = 0;
      }
    }
  }

  private prefix: string | undefined;

  /** What the teacher's encoder puts before every text it encodes ('' for most; ' ' for Mistral). */
  private teacherPrefix(): string {
    if (this.prefix === undefined) {
      const probe = (text: string) => {
        const got = utf8.decode(this.teacher.bytesOf(this.teacher.encode(text, { addSpecialTokens: false })));
        return got.endsWith(text) ? got.slice(0, got.length - text.length) : '';
      };
      const a = probe('a'), b = probe('Hello world');
      this.prefix = a === b ? a : '';
    }
    return this.prefix;
  }

  private added: AddedTrie | undefined;

  /**
   * The text cut at every spelling of a teacher added token (a control token only, for a teacher
   * without a prefix), leftmost longest first, as the teacher's encoder cuts.
   */
  private splitAtAdded(text: string): Array<{ piece: string; added?: number }> {
    if (!this.added) {
      this.added = { next: new Map() };
      const all = this.teacherPrefix().length > 0;
      for (const id of this.teacher.addedIds) {
        const s = this.teacher.token(id);
        if (s.length === 0 || !(all || this.teacher.isSpecial(id))) continue;
        let node = this.added;
        for (let k = 0; k < s.length; k++) {
          const ch = s[k]!;
          let child = node.next.get(ch);
          if (!child) node.next.set(ch, (child = { next: new Map() }));
          node = child;
        }
        node.id ??= id;
      }
    }
    const parts: Array<{ piece: string; added?: number }> = [];
    let start = 0;
    for (let i = 0; i < text.length;) {
      let node: AddedTrie | undefined = this.added, end = -1, id = -1;
      for (let j = i; j < text.length && (node = node.next.get(text[j]!)); j++) {
        if (node.id !== undefined) {
          end = j + 1;
          id = node.id;
        }
      }
      if (end < 0) {
        i++;
        continue;
      }
      if (i > start) parts.push({ piece: text.slice(start, i) });
      parts.push({ piece: text.slice(i, end), added: id });
      i = start = end;
    }
    if (start < text.length) parts.push({ piece: text.slice(start) });
    return parts;
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

  /**
   * Chunks of one student response and its teacher response (DESIGN section 3). `teacherTruncated`:
   * the teacher ids were cut short (true: the student tokens past their end are TAIL) or are the
   * whole response (false: no TAIL; a difference at the end is APPROX); left out, it is read from
   * the bytes (README, "Alignment").
   */
  align(studentIds: Int32Array, teacherIds: Int32Array, opts: { teacherTruncated?: boolean } = {}): AlignmentDetails {
    check.object(opts, 'opts', '{ teacherTruncated? }');
    return this.alignBatch([[studentIds, teacherIds]], opts.teacherTruncated === undefined ? {} : { teacherTruncated: [opts.teacherTruncated] })[0]!;
  }

  /** Chunks of many pairs, on all cores; `teacherTruncated` as in align, one entry per pair. */
  alignBatch(pairs: Array<[Int32Array, Int32Array]>, opts: { teacherTruncated?: ReadonlyArray<boolean | undefined> } = {}): AlignmentDetails[] {
    check.array(pairs, 'pairs', '[studentIds, teacherIds] pairs');
    check.object(opts, 'opts', '{ teacherTruncated? }');
    return alignPairs(this.student.table, this.teacher.table, pairs, {
      maxChunkTokens: this.maxChunkTokens,
      studentEos: this.student.eosIds,
      teacherEos: this.teacher.eosIds,
      teacherTruncated: opts.teacherTruncated,
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
