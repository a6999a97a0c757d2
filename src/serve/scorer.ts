/**
 * OpdScorer: the teacher signal of DESIGN 9 for sequences a trainer elsewhere sampled, in the
 * STUDENT's vocabulary. Per item (a student prompt, as ids or messages, and a student response):
 *
 *   prompt ids ─► messages (PromptParser) ─► teacher prompt (the teacher's own template)
 *   response ids ─► retokenize (teacher ids, cut to the teacher's context)
 *   teacher.score (realised logprob + top-k) ─► align ─► span projection ─► log q_j(s_j) per student token
 *                                                     └► chunk advantages (DESIGN 4) when the rollout's logprobs are given
 *
 * It keeps nothing between calls but memo tables (parsed prompts), so any number of copies can
 * serve behind a load balancer. Identical tokenizers skip the parse, the retokenization and the
 * alignment (every token its own 1:1 chunk), as the Distiller does.
 */
import * as check from '../core/check.js';
import { ErrorCode, XopdError } from '../core/errors.js';
import { TokenizerBridge } from '../align/bridge.js';
import { ChunkFlags, type Alignment } from '../align/types.js';
import { chunkAdvantages } from '../loss/chunk-advantages.js';
import type { SparseTargets } from '../project/targets.js';
import { spanProjection, type Projection } from '../project/span-projection.js';
import type { ChatMessage } from '../tokenizer/chat-template.js';
import { PromptParser } from '../tokenizer/prompt-parse.js';
import { rustEncoder, type AsyncEncoder } from '../tokenizer/rust-encoder.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { identityAlignment } from '../train/distiller.js';
import { cutToFit, sequenceLimit } from '../train/limits.js';
import type { Teacher, TeacherScores } from '../model/roles.js';

/** How student prompts are read: as chat-template renderings (messages recovered), or as plain text. */
export type PromptFormat = 'chat' | 'text';

export interface ScoreItem {
  /** the student's prompt ids (its chat template's rendering, generation prompt included) */
  promptIds?: Int32Array;
  /** or the conversation itself */
  messages?: ChatMessage[];
  /** the student's response ids */
  responseIds: Int32Array;
  /** the rollout's logprob of each response token: chunk advantages are computed when given */
  studentLogprobs?: Float32Array;
}

export interface ScoreOptions {
  /** teacher candidates per teacher position (0: the realised tokens alone) */
  topK: number;
  /** chunk credit (DESIGN 4), used with studentLogprobs */
  credit?: 'proportional' | 'uniform';
  clamp?: number;
  /** ChunkFlags bits whose chunks still give signal (default 0) */
  includeFlags?: number;
  /** span projection revision (default 'prefix', DESIGN 5 revision 2) */
  projection?: Projection;
}

export interface ScoredItem {
  responseIds: Int32Array;
  /** the teacher's ids of the response, cut to its context */
  teacherIds: Int32Array;
  /** teacher response tokens that did not fit the teacher's context (their student tokens are TAIL) */
  teacherCut: number;
  teacherPromptLength: number;
  alignment: Alignment;
  teacher: TeacherScores;
  /** span projection rows (OVERSIZE chunks projected too; APPROX and TAIL rows have none) */
  targets: SparseTargets & { mask: Uint8Array };
  /** [n] log q_j(s_j): the realised student token's share of the teacher's probability; NaN where the row has no projection */
  logprob: Float32Array;
  /** [n] 1 where the token's chunk gives signal (its flags within includeFlags) */
  mask: Uint8Array;
  /** [n] chunk advantages, when studentLogprobs were given */
  advantages?: Float32Array;
}

/** The teacher the scorer asks; a VllmTeacher learns its context from /v1/models through modelName(). */
export type ScorerTeacher = Teacher & { modelName?(): Promise<string> };

export interface OpdScorerOptions {
  prompts?: PromptFormat;
  /** most tokens per chunk side before OVERSIZE (default 6) */
  maxChunkTokens?: number;
  /** parsed prompts remembered (default 512) */
  promptCache?: number;
  /** the teacher's encoder: 'auto' uses npm `tokenizers` (Rust) where installed, 'js' always @huggingface/tokenizers (default 'auto') */
  encoder?: 'auto' | 'js';
}

const utf8 = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
const EMPTY_SCORES = (k: number): TeacherScores => ({ logprobs: new Float32Array(0), topkIds: new Int32Array(0), topkLogprobs: new Float32Array(0), k });

export class OpdScorer {
  readonly bridge: TokenizerBridge;
  readonly prompts: PromptFormat;
  /** the accelerated teacher encoder in use, if any */
  readonly encoder: AsyncEncoder | undefined;
  private readonly parser: PromptParser | undefined;
  private readonly cache = new Map<string, Int32Array>();
  private readonly cacheSize: number;

  constructor(readonly student: Tokenizer, readonly teacherTokenizer: Tokenizer, readonly teacher: ScorerTeacher, opts: OpdScorerOptions = {}) {
    this.prompts = opts.prompts === undefined ? 'chat' : check.oneOf(opts.prompts, 'prompts', ['chat', 'text'] as const);
    this.bridge = new TokenizerBridge(student, teacherTokenizer, { maxChunkTokens: opts.maxChunkTokens });
    this.cacheSize = opts.promptCache === undefined ? 512 : check.int(opts.promptCache, 'promptCache', 0, 1 << 20);
    // Chat prompts of identical tokenizers go to the teacher as they are: nothing to parse.
    this.parser = this.prompts === 'chat' && !this.bridge.sameVocabulary ? new PromptParser(student) : undefined;
    const encoder = opts.encoder === undefined ? 'auto' : check.oneOf(opts.encoder, 'encoder', ['auto', 'js'] as const);
    this.encoder = encoder === 'auto' && !this.bridge.sameVocabulary ? rustEncoder(teacherTokenizer) : undefined;
  }

  /** The teacher's ids of a student response (TokenizerBridge.retokenize, with the faster encoder where there is one). */
  async retokenize(ids: Int32Array): Promise<Int32Array> {
    if (!this.encoder) return this.bridge.retokenize(ids);
    const plan = this.bridge.retokenizePlan(ids);
    return this.bridge.retokenizeJoin(plan, await Promise.all(plan.texts.map((t) => this.encoder!.encode(t))));
  }

  /** The teacher's prompt ids for an item: its own template over the same messages. */
  teacherPrompt(item: Pick<ScoreItem, 'promptIds' | 'messages'>): Int32Array {
    const t = this.teacherTokenizer;
    if (item.messages) return t.encode(t.applyChatTemplate(item.messages, { addGenerationPrompt: true }), { addSpecialTokens: false });
    const ids = item.promptIds!;
    if (this.bridge.sameVocabulary) return ids;
    const key = ids.join(',');
    const hit = this.cache.get(key);
    if (hit) {
      this.cache.delete(key);  // most recently used last
      this.cache.set(key, hit);
      return hit;
    }
    let out: Int32Array;
    if (this.parser) {
      const messages = this.parser.parse(ids);
      out = t.encode(t.applyChatTemplate(messages, { addGenerationPrompt: true }), { addSpecialTokens: false });
    } else {
      out = t.encode(utf8.decode(this.student.bytesOf(ids)), { addSpecialTokens: false });  // plain-text prompts
    }
    if (this.cacheSize > 0) {
      if (this.cache.size >= this.cacheSize) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(key, out);
    }
    return out;
  }

  async score(items: ScoreItem[], opts: ScoreOptions): Promise<ScoredItem[]> {
    const k = check.int(opts.topK, 'topK', 0, 4096);
    const includeFlags = opts.includeFlags === undefined ? 0 : check.int(opts.includeFlags, 'includeFlags', 0, 7);
    const sv = this.student.vocabSize;
    items.forEach((it, i) => {
      check.typed(it.responseIds, Int32Array, `items[${i}].responseIds`);
      for (let j = 0; j < it.responseIds.length; j++) {
        const id = it.responseIds[j]!;
        if (id < 0 || id >= sv) throw new XopdError(ErrorCode.TOKEN_ID, `items[${i}]: response id ${id} at position ${j} is outside the student vocabulary [0, ${sv}) of ${this.student.name}`);
      }
      if (!it.messages) {
        check.typed(it.promptIds, Int32Array, `items[${i}].promptIds`);
        for (let j = 0; j < it.promptIds!.length; j++) {
          const id = it.promptIds![j]!;
          if (id < 0 || id >= sv) throw new XopdError(ErrorCode.TOKEN_ID, `items[${i}]: prompt id ${id} at position ${j} is outside the student vocabulary [0, ${sv}) of ${this.student.name}`);
        }
        if (it.promptIds!.length === 0) throw new XopdError(ErrorCode.ARG_VALUE, `items[${i}]: the prompt is empty; the teacher needs the prompt the response answers`);
      }
      if (it.studentLogprobs !== undefined) check.typed(it.studentLogprobs, Float32Array, `items[${i}].studentLogprobs`, it.responseIds.length);
    });

    const prompts = items.map((it, i) => {
      try {
        return this.teacherPrompt(it);
      } catch (err) {
        if (err instanceof XopdError) throw new XopdError(err.code, `items[${i}]: ${err.message}`);
        throw err;
      }
    });
    await this.teacher.modelName?.();  // a served teacher's context, from /v1/models (once)
    const limit = sequenceLimit(this.teacher);
    const full = await Promise.all(items.map((it) => (this.bridge.sameVocabulary ? it.responseIds : this.retokenize(it.responseIds))));
    const teacherIds = full.map((ids, i) => cutToFit(ids, limit, prompts[i]!.length));
    const asked = items.map((it, i) => it.responseIds.length > 0 && teacherIds[i]!.length > 0);
    const requests = prompts.flatMap((p, i) => {
      if (!asked[i]) return [];
      const ids = new Int32Array(p.length + teacherIds[i]!.length);
      ids.set(p);
      ids.set(teacherIds[i]!, p.length);
      return [{ ids, start: p.length }];
    });
    const answers = requests.length ? await this.teacher.score(requests, { topK: k }) : [];
    let next = 0;
    const scores = asked.map((a) => (a ? answers[next++]! : EMPTY_SCORES(k)));

    const alignments: Alignment[] = this.bridge.sameVocabulary
      ? items.map((it, i) => identityAlignment(it.responseIds.length, teacherIds[i]!.length))
      : this.bridge.alignBatch(items.map((it, i) => [it.responseIds, teacherIds[i]!] as [Int32Array, Int32Array]));

    return items.map((it, i) => {
      const n = it.responseIds.length;
      const a = alignments[i]!, s = scores[i]!;
      const targets = n === 0
        ? { rowPtr: new Int32Array(1), ids: new Int32Array(0), probs: new Float32Array(0), tail: new Float32Array(0), mask: new Uint8Array(0) }
        : spanProjection(this.bridge, a, it.responseIds, { ids: teacherIds[i]!, logprobs: s.logprobs, topkIds: s.topkIds, topkLogprobs: s.topkLogprobs, k: s.k },
          { includeFlags: ChunkFlags.OVERSIZE | includeFlags, projection: opts.projection });
      const logprob = new Float32Array(n).fill(NaN);
      for (let j = 0; j < n; j++) {
        const sj = it.responseIds[j]!;
        for (let e = targets.rowPtr[j]!; e < targets.rowPtr[j + 1]!; e++)
          if (targets.ids[e] === sj && targets.probs[e]! > 0) logprob[j] = Math.log(targets.probs[e]!);
      }
      const mask = new Uint8Array(n);
      for (let j = 0; j < n; j++) mask[j] = (a.flags[a.studentChunk[j]!]! & ~includeFlags) === 0 ? 1 : 0;
      let advantages: Float32Array | undefined;
      if (it.studentLogprobs && n > 0)
        advantages = chunkAdvantages(a, { teacherLogprobs: s.logprobs, studentLogprobs: it.studentLogprobs }, { credit: opts.credit, clamp: opts.clamp, includeFlags }).advantages;
      return {
        responseIds: it.responseIds, teacherIds: teacherIds[i]!, teacherCut: full[i]!.length - teacherIds[i]!.length,
        teacherPromptLength: prompts[i]!.length, alignment: a, teacher: s, targets, logprob, mask, advantages,
      };
    });
  }
}

/**
 * log q_j(s_j) where the projection has it, else the chunk's teacher logprob spread evenly over
 * its student tokens (an APPROX chunk: the bytes differ, so no token-level split exists). For
 * protocols that need a finite number at every position (TRL's). TAIL tokens have no teacher
 * number at all: the caller refuses those first.
 */
export function logprobOrShare(item: ScoredItem): Float32Array {
  const out = Float32Array.from(item.logprob);
  const a = item.alignment;
  for (let j = 0; j < out.length; j++) {
    if (!Number.isNaN(out[j]!)) continue;
    const c = a.studentChunk[j]!;
    let lt = 0;
    for (let t = a.teacherStart[c]!; t < a.teacherEnd[c]!; t++) lt += item.teacher.logprobs[t]!;
    out[j] = lt / (a.studentEnd[c]! - a.studentStart[c]!);
  }
  return out;
}
