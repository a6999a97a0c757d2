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

export class TokenizerBridge {
  readonly student: Tokenizer;
  readonly teacher: Tokenizer;
  readonly maxChunkTokens: number;
  /** both tokenizers map every id to the same bytes: retokenize returns the student's ids */
  readonly sameVocabulary: boolean;
  /** the teacher id a final student end-of-turn id becomes (null: the teacher has none) */
  readonly teacherEndOfTurn: number | null;

  constructor(student: Tokenizer, teacher: Tokenizer, opts: TokenizerBridgeOptions = {}) {
    if (!(student instanceof Tokenizer)) throw new XopdError(ErrorCode.ARG_TYPE, `student must be a Tokenizer (Tokenizer.load('qwen3')), got ${check.describe(student)}`);
    if (!(teacher instanceof Tokenizer)) throw new XopdError(ErrorCode.ARG_TYPE, `teacher must be a Tokenizer (Tokenizer.load('llama3')), got ${check.describe(teacher)}`);
    if (opts === null || typeof opts !== 'object') throw new XopdError(ErrorCode.ARG_TYPE, `opts must be an object, got ${check.describe(opts)}`);
    this.student = student;
    this.teacher = teacher;
    this.maxChunkTokens = opts.maxChunkTokens === undefined ? 6 : check.int(opts.maxChunkTokens, 'maxChunkTokens', 1, 2 ** 30);
    this.sameVocabulary = sameTables(student, teacher);
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
   */
  retokenize(studentResponseIds: Int32Array): Int32Array {
    const ids = this.checkStudentIds(studentResponseIds, 'studentResponseIds');
    if (this.sameVocabulary) return Int32Array.from(ids);
    const n = ids.length;
    const eot = n > 0 && this.student.eosIds.includes(ids[n - 1]!);
    const body = eot ? ids.subarray(0, n - 1) : ids;
    const text = utf8.decode(this.student.bytesOf(body));
    const t = this.teacher.encode(text, { addSpecialTokens: false });
    if (!eot || this.teacherEndOfTurn === null) return t;
    const out = new Int32Array(t.length + 1);
    out.set(t);
    out[t.length] = this.teacherEndOfTurn;
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
