/**
 * The OPD step of DESIGN section 1, as one call:
 *
 *   prompts ─► student.generate (ids + logprobs) ─► teacher prompt (teacher's own chat template)
 *   ─► retokenize the response ─► teacher.score (realised + top-k) ─► align ─► signal
 *   (chunk-pg: chunkAdvantages → policyGradientLoss; span-kl: spanProjection → sparseDivergence;
 *   or a weighted mix) ─► d loss / d logits ─► student.backward + step.
 *
 * Identical tokenizers take the fast path: no retokenization and no alignment; the teacher scores
 * the student's own ids and every token is its own 1:1 chunk.
 */
import { ErrorCode, XopdError } from '../core/errors.js';
import { ChunkFlags, type Alignment } from '../align/types.js';
import { TokenizerBridge } from '../align/bridge.js';
import { chunkAdvantages } from '../loss/chunk-advantages.js';
import { policyGradientLoss } from '../loss/policy-gradient.js';
import { sparseDivergence } from '../loss/sparse-divergence.js';
import { spanProjection } from '../project/span-projection.js';
import { concatTargets, type SparseTargets } from '../project/targets.js';
import { lossWeights, resolveDistillOptions, type DistillOptions, type ResolvedOptions } from './options.js';
import type { DistillTask } from '../tasks/distill-task.js';
import type { Rollout, StudentPolicy, Teacher } from '../model/roles.js';
import { cutToFit, responseRoom, sequenceLimit } from './limits.js';

export interface StepReport {
  step: number;
  /** the optimised loss (weighted sum of the parts) */
  loss: number;
  lossChunkPg: number | null;
  lossSpanKl: number | null;
  /** mean chunk advantage over unmasked student tokens (section 4; computed for every loss) */
  meanAdvantage: number;
  /** mean teacher logprob per teacher response token: how much the teacher likes the samples */
  teacherLogprob: number;
  /** share of chunks with one student and one teacher token */
  oneToOneShare: number;
  /** share of student tokens in masked chunks */
  maskedShare: number;
  chunks: number;
  studentTokens: number;
  teacherTokens: number;
  meanResponseTokens: number;
  /** seconds: student (generate, forward, backward, step), teacher (score), alignment (retokenize, align, projection), loss kernels */
  seconds: { student: number; teacher: number; align: number; loss: number; total: number };
  /** student response tokens per second of the whole step */
  tokensPerSecond: number;
}

export interface EvalReport {
  step: number;
  accuracy: number;
  correct: number;
  n: number;
  seconds: number;
}

/** Mixes the step index into the seed (steps are reproducible one by one, so a resume replays them). */
export function stepSeed(seed: number, step: number, salt: number): number {
  let h = (seed ^ Math.imul(step + 1, 0x9e3779b1) ^ Math.imul(salt + 1, 0x85ebca77)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d) >>> 0;
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b) >>> 0;
  return (h ^ (h >>> 16)) & 0x7fffffff;
}

/** Every token its own 1:1 chunk (identical tokenizers); tokens at or past `teacherLen` are TAIL. */
export function identityAlignment(n: number, teacherLen = n): Alignment {
  const idx = Int32Array.from({ length: n }, (_, i) => i);
  const flags = new Uint8Array(n);
  const tStart = new Int32Array(n), tEnd = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    if (i < teacherLen) {
      tStart[i] = i;
      tEnd[i] = i + 1;
    } else {
      flags[i] = ChunkFlags.TAIL;
      tStart[i] = tEnd[i] = teacherLen;
    }
  }
  return { chunkCount: n, studentStart: idx, studentEnd: Int32Array.from(idx, (i) => i + 1), teacherStart: tStart, teacherEnd: tEnd, flags, studentChunk: idx.slice() };
}

export interface DistillerParts {
  student: StudentPolicy;
  teacher: Teacher;
  task: DistillTask;
  /** built from the two tokenizers when not given */
  bridge?: TokenizerBridge;
}

export class Distiller {
  readonly student: StudentPolicy;
  readonly teacher: Teacher;
  readonly task: DistillTask;
  readonly options: ResolvedOptions;
  readonly bridge: TokenizerBridge;
  /** identical tokenizers: no retokenization, no alignment */
  readonly fastPath: boolean;
  private readonly colOf: Int32Array;

  constructor(parts: DistillerParts, options: DistillOptions = {}) {
    if (!parts?.student || !parts.teacher || !parts.task) throw new XopdError(ErrorCode.ARG_VALUE, 'a Distiller needs { student, teacher, task }');
    this.student = parts.student;
    this.teacher = parts.teacher;
    this.task = parts.task;
    this.options = resolveDistillOptions(options);
    this.bridge = parts.bridge ?? new TokenizerBridge(this.student.tokenizer, this.teacher.tokenizer, { maxChunkTokens: this.options.maxChunkTokens });
    this.fastPath = this.bridge.sameVocabulary;
    const sv = this.student.tokenizer.vocabSize;
    this.colOf = new Int32Array(sv).fill(-1);
    this.student.vocabIds.forEach((id, c) => { this.colOf[id] = c; });
  }

  /** One OPD step on the batch of step `step` (prompts and samples are a function of seed and step). */
  async step(step: number): Promise<StepReport> {
    const o = this.options;
    const weights = lossWeights(o.loss);
    const t0 = performance.now();
    const time = { student: 0, teacher: 0, align: 0, loss: 0, total: 0 };  // seconds
    const lap = (key: keyof typeof time, since: number) => {
      const now = performance.now();
      time[key] += (now - since) / 1000;
      return now;
    };

    // 1. prompts, rendered by each side's own chat template
    let t = performance.now();
    const conversations = this.task.trainPrompts(o.batchSize, stepSeed(o.seed, step, 1));
    const prompts = conversations.map((m) => this.bridge.renderPrompts(m));
    t = lap('align', t);

    // 2. student rollout (as long as the student's context allows)
    const maxTokens = responseRoom(sequenceLimit(this.student), prompts.map((p) => p.student), o.maxTokens);
    if (maxTokens < 1) {
      const longest = prompts.reduce((a, p) => Math.max(a, p.student.length), 0);
      throw new XopdError(ErrorCode.TOO_LONG, `a student prompt of ${longest} tokens leaves no room in the student's context of ${sequenceLimit(this.student)} tokens`);
    }
    const rollouts: Rollout[] = await this.student.generate(prompts.map((p) => p.student), {
      maxTokens, temperature: o.temperature, seed: stepSeed(o.seed, step, 2),
    });
    t = lap('student', t);
    const keep = rollouts.map((r) => r.ids.length > 0);

    // 3. the response in teacher tokens (its own encoding of the same text), cut to the teacher's
    //    context: the student tokens past the cut become TAIL and give no signal
    const teacherLimit = sequenceLimit(this.teacher);
    const fullTeacherResp = rollouts.map((r) => (this.fastPath ? r.ids : this.bridge.retokenize(r.ids)));
    const teacherResp = fullTeacherResp.map((ids, i) => cutToFit(ids, teacherLimit, prompts[i]!.teacher.length));
    // The aligner is told which teacher responses were cut, rather than reading it from the bytes.
    const teacherTruncated = teacherResp.map((ids, i) => ids.length < fullTeacherResp[i]!.length);
    t = lap('align', t);

    // 4. teacher scores (realised logprob + top-k) on teacher prompt + teacher response
    const requests = prompts.map((p, i) => {
      const ids = new Int32Array(p.teacher.length + teacherResp[i]!.length);
      ids.set(p.teacher);
      ids.set(teacherResp[i]!, p.teacher.length);
      return { ids, start: p.teacher.length };
    });
    const topK = weights.spanKl > 0 ? o.topK : 0;
    const scores = await this.teacher.score(requests, { topK });
    t = lap('teacher', t);

    // 5. alignment
    const alignments: Alignment[] = this.fastPath
      ? rollouts.map((r, i) => identityAlignment(r.ids.length, teacherResp[i]!.length))
      : this.bridge.alignBatch(rollouts.map((r, i) => [r.ids, teacherResp[i]!] as [Int32Array, Int32Array]), { teacherTruncated });
    t = lap('align', t);

    // 6. chunk credit for every sequence (the signal of chunk-pg, a statistic for span-kl)
    const rows = rollouts.reduce((a, r, i) => a + (keep[i] ? r.ids.length : 0), 0);
    const advantages = new Float32Array(rows);
    const mask = new Uint8Array(rows);
    const actions = new Int32Array(rows);
    const oldLogprobs = new Float32Array(rows);
    let at = 0, chunks = 0, oneToOne = 0, teacherTokens = 0, teacherLpSum = 0;
    for (let i = 0; i < rollouts.length; i++) {
      if (!keep[i]) continue;
      const r = rollouts[i]!, a = alignments[i]!, s = scores[i]!;
      const adv = chunkAdvantages(a, { teacherLogprobs: s.logprobs, studentLogprobs: r.logprobs }, { credit: o.credit, clamp: o.clamp, includeFlags: o.includeFlags });
      advantages.set(adv.advantages, at);
      mask.set(adv.mask, at);
      for (let j = 0; j < r.ids.length; j++) {
        const c = this.colOf[r.ids[j]!]!;
        if (c < 0) throw new XopdError(ErrorCode.TOKEN_ID, `the student sampled id ${r.ids[j]}, which its logits do not cover`);
        actions[at + j] = c;
      }
      oldLogprobs.set(r.logprobs, at);
      at += r.ids.length;
      chunks += a.chunkCount;
      for (let c = 0; c < a.chunkCount; c++) if (a.studentEnd[c]! - a.studentStart[c]! === 1 && a.teacherEnd[c]! - a.teacherStart[c]! === 1) oneToOne++;
      teacherTokens += s.logprobs.length;
      for (const lp of s.logprobs) teacherLpSum += lp;
    }
    let unmasked = 0, advSum = 0;
    for (let j = 0; j < rows; j++) if (mask[j]) { unmasked++; advSum += advantages[j]!; }

    // 7. span projection (span-kl)
    let targets: SparseTargets | undefined;
    if (weights.spanKl > 0) {
      const parts: SparseTargets[] = [];
      for (let i = 0; i < rollouts.length; i++) {
        if (!keep[i]) continue;
        const r = rollouts[i]!, s = scores[i]!;
        // Identical tokenizers too: a candidate the student's logits lack goes to its longest prefix they have.
        parts.push(spanProjection(this.bridge, alignments[i]!, r.ids, { ids: teacherResp[i]!, logprobs: s.logprobs, topkIds: s.topkIds, topkLogprobs: s.topkLogprobs, k: s.k },
          { studentVocab: this.student.vocabIds, includeFlags: o.includeFlags, projection: o.projection }));
      }
      targets = concatTargets(parts);
    }
    t = lap('align', t);

    // 8. student logits, loss and d loss / d logits, update
    let lossChunkPg: number | null = null, lossSpanKl: number | null = null, loss = 0;
    if (rows > 0 && unmasked > 0) {
      const batch = rollouts.flatMap((r, i) => (keep[i] ? [{ prompt: prompts[i]!.student, response: r.ids }] : []));
      const logits = await this.student.forward(batch);
      t = lap('student', t);
      if (logits.rows !== rows) throw new XopdError(ErrorCode.ARG_SHAPE, `the student returned ${logits.rows} logit rows for ${rows} response tokens`);
      const shape = { rows, vocab: logits.vocab };
      let grad: Float32Array | undefined;
      if (weights.chunkPg > 0) {
        const pg = policyGradientLoss(logits.logits, shape, actions, advantages, mask, { oldLogprobs });
        lossChunkPg = pg.loss;
        loss += weights.chunkPg * pg.loss;
        grad = pg.grad;
        if (weights.chunkPg !== 1) for (let j = 0; j < grad.length; j++) grad[j]! *= weights.chunkPg;
      }
      if (weights.spanKl > 0) {
        const kl = sparseDivergence(logits.logits, shape, targets!, { divergence: o.divergence, beta: o.beta, temperature: o.lossTemperature, mask });
        lossSpanKl = kl.loss;
        loss += weights.spanKl * kl.loss;
        if (grad) for (let j = 0; j < grad.length; j++) grad[j]! += weights.spanKl * kl.grad[j]!;
        else {
          grad = kl.grad;
          if (weights.spanKl !== 1) for (let j = 0; j < grad.length; j++) grad[j]! *= weights.spanKl;
        }
      }
      t = lap('loss', t);
      await this.student.backward(grad!);
      await this.student.step();
      t = lap('student', t);
    }
    time.total = (performance.now() - t0) / 1000;
    const kept = keep.filter(Boolean).length;
    return {
      step, loss, lossChunkPg, lossSpanKl,
      meanAdvantage: unmasked ? advSum / unmasked : 0,
      teacherLogprob: teacherTokens ? teacherLpSum / teacherTokens : 0,
      oneToOneShare: chunks ? oneToOne / chunks : 0,
      maskedShare: rows ? 1 - unmasked / rows : 0,
      chunks, studentTokens: rows, teacherTokens,
      meanResponseTokens: kept ? rows / kept : 0,
      seconds: time,
      tokensPerSecond: time.total > 0 ? rows / time.total : 0,
    };
  }

  /** Test accuracy of the student now. */
  async evaluate(step: number): Promise<EvalReport> {
    const t0 = performance.now();
    const r = await this.task.evaluate(this.student, this.options.evalSize, this.options.seed);
    return { step, accuracy: r.accuracy, correct: r.correct, n: r.n, seconds: (performance.now() - t0) / 1000 };
  }
}
