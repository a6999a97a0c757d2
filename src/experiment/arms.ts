/**
 * The arms of the compute-efficiency experiment, each one training step on metered models:
 * - sft: sequence-level KD — the teacher samples answers (charged), the student trains on them with
 *   cross-entropy after the text is re-encoded by its own tokenizer;
 * - chunk-pg, span-fkl, span-rkl, span-jsd: the Distiller's OPD step (DESIGN 4, 5, 6);
 * - uld: OPD rollouts scored by the teacher, with the ULD loss (sorted-probability L1, as in GOLD)
 *   at the student positions of 1:1 chunks.
 */
import { TokenizerBridge } from '../align/bridge.js';
import { ChunkFlags, type Alignment } from '../align/types.js';
import { Distiller, stepSeed } from '../train/distiller.js';
import type { DistillOptions } from '../train/options.js';
import type { DistillTask } from '../tasks/distill-task.js';
import { cutToFit, responseRoom, sequenceLimit } from '../train/limits.js';
import { crossEntropy } from '../loss/sparse-divergence.js';
import { uldLoss } from '../loss/uld.js';
import { responseEndId } from '../tasks/arithmetic.js';
import type { MeteredModel } from './metered.js';

export const ARMS = ['sft', 'chunk-pg', 'span-fkl', 'span-rkl', 'span-jsd', 'uld'] as const;
export type Arm = (typeof ARMS)[number];

export interface ArmSettings {
  batchSize: number;
  maxTokens: number;
  topK: number;
  seed: number;
}

/** What one step of any arm reports (alignment numbers are zero for SFT, which aligns nothing). */
export interface ArmStep {
  chunks: number;
  oneToOne: number;
  studentTokens: number;
  teacherTokens: number;
  maskedTokens: number;
}

export interface ArmStepper {
  step(step: number): Promise<ArmStep>;
}

export function makeArm(arm: Arm, student: MeteredModel, teacher: MeteredModel, task: DistillTask, s: ArmSettings): ArmStepper {
  const bridge = new TokenizerBridge(student.tokenizer, teacher.tokenizer);
  const opd = (o: DistillOptions): ArmStepper => {
    const d = new Distiller({ student, teacher, task, bridge }, { batchSize: s.batchSize, maxTokens: s.maxTokens, topK: s.topK, seed: s.seed, ...o });
    return {
      async step(i) {
        const r = await d.step(i);
        return { chunks: r.chunks, oneToOne: Math.round(r.oneToOneShare * r.chunks), studentTokens: r.studentTokens, teacherTokens: r.teacherTokens, maskedTokens: Math.round(r.maskedShare * r.studentTokens) };
      },
    };
  };
  switch (arm) {
    case 'chunk-pg': return opd({ loss: 'chunk-pg' });
    case 'span-fkl': return opd({ loss: 'span-kl', divergence: 'forward-kl' });
    case 'span-rkl': return opd({ loss: 'span-kl', divergence: 'reverse-kl' });
    case 'span-jsd': return opd({ loss: 'span-kl', divergence: 'jsd', beta: 0.5 });
    case 'sft': return sftArm(student, teacher, task, s);
    case 'uld': return uldArm(student, teacher, task, bridge, s);
  }
}

function sftArm(student: MeteredModel, teacher: MeteredModel, task: DistillTask, s: ArmSettings): ArmStepper {
  // Teacher text into student tokens: the bridge read backwards (its end of turn maps to the student's).
  const toStudent = new TokenizerBridge(teacher.tokenizer, student.tokenizer);
  const forPrompts = new TokenizerBridge(student.tokenizer, teacher.tokenizer);
  const teacherStop = Int32Array.from(new Set([responseEndId(teacher.tokenizer), ...teacher.tokenizer.eosIds]));
  const col = columnOf(student);
  return {
    async step(i) {
      const prompts = task.trainPrompts(s.batchSize, stepSeed(s.seed, i, 1)).map((m) => forPrompts.renderPrompts(m));
      const maxTokens = Math.max(1, responseRoom(sequenceLimit(teacher), prompts.map((p) => p.teacher), s.maxTokens));
      const answers = await teacher.generate(prompts.map((p) => p.teacher), { maxTokens, temperature: 1, seed: stepSeed(s.seed, i, 2), stopIds: teacherStop });
      // An answer whose student tokens fall outside the student's id list cannot be read by it: dropped.
      // One longer than the student's context is cut to fit.
      const all = answers.map((a, j) => ({
        prompt: prompts[j]!.student, response: cutToFit(toStudent.retokenize(a.ids), sequenceLimit(student), prompts[j]!.student.length),
      }));
      const batch = all.filter((b) => b.response.length > 0 && b.response.every((id) => col(id) >= 0));
      const labels = Int32Array.from(batch.flatMap((b) => Array.from(b.response, (id) => col(id))));
      const masked = all.reduce((n, b) => n + b.response.length, 0) - labels.length;
      if (labels.length > 0) {
        const logits = await student.forward(batch);
        const ce = crossEntropy(logits.logits, { rows: logits.rows, vocab: logits.vocab }, labels);
        await student.backward(ce.grad);
        await student.step();
      }
      return { chunks: 0, oneToOne: 0, studentTokens: labels.length + masked, teacherTokens: answers.reduce((a, r) => a + r.ids.length, 0), maskedTokens: masked };
    },
  };
}

function uldArm(student: MeteredModel, teacher: MeteredModel, task: DistillTask, bridge: TokenizerBridge, s: ArmSettings): ArmStepper {
  const col = columnOf(student);
  const k = Math.max(1, s.topK);
  return {
    async step(i) {
      const prompts = task.trainPrompts(s.batchSize, stepSeed(s.seed, i, 1)).map((m) => bridge.renderPrompts(m));
      const maxTokens = Math.max(1, responseRoom(sequenceLimit(student), prompts.map((p) => p.student), s.maxTokens));
      const rollouts = (await student.generate(prompts.map((p) => p.student), { maxTokens, temperature: 1, seed: stepSeed(s.seed, i, 2) }))
        .map((r, j) => ({ r, p: prompts[j]! })).filter((x) => x.r.ids.length > 0);
      // cut to the teacher's context, as the Distiller does (the student tokens past it get TAIL)
      const teacherResp = rollouts.map((x) => cutToFit(bridge.retokenize(x.r.ids), sequenceLimit(teacher), x.p.teacher.length));
      const scores = await teacher.score(rollouts.map((x, j) => {
        const ids = new Int32Array(x.p.teacher.length + teacherResp[j]!.length);
        ids.set(x.p.teacher);
        ids.set(teacherResp[j]!, x.p.teacher.length);
        return { ids, start: x.p.teacher.length };
      }), { topK: k });
      const alignments: Alignment[] = bridge.alignBatch(rollouts.map((x, j) => [x.r.ids, teacherResp[j]!] as [Int32Array, Int32Array]));
      const rows = rollouts.reduce((a, x) => a + x.r.ids.length, 0);
      const target = new Float32Array(rows * k);
      const mask = new Uint8Array(rows);
      const out: ArmStep = { chunks: 0, oneToOne: 0, studentTokens: rows, teacherTokens: 0, maskedTokens: 0 };
      let at = 0;
      rollouts.forEach((x, j) => {
        const a = alignments[j]!, sc = scores[j]!;
        out.chunks += a.chunkCount;
        out.teacherTokens += teacherResp[j]!.length;
        for (let c = 0; c < a.chunkCount; c++) {
          const oneToOne = a.studentEnd[c]! - a.studentStart[c]! === 1 && a.teacherEnd[c]! - a.teacherStart[c]! === 1;
          if (oneToOne) out.oneToOne++;
          if (!oneToOne || a.flags[c]! & (ChunkFlags.OVERSIZE | ChunkFlags.TAIL)) continue;
          const row = at + a.studentStart[c]!, t = a.teacherStart[c]!;
          // top-k comes most likely first, so exp of it is already sorted
          for (let q = 0; q < k; q++) target[row * k + q] = q < sc.k ? Math.exp(sc.topkLogprobs[t * sc.k + q]!) : 0;
          mask[row] = col(x.r.ids[a.studentStart[c]!]!) >= 0 ? 1 : 0;
        }
        at += x.r.ids.length;
      });
      out.maskedTokens = rows - mask.reduce((a, m) => a + m, 0);
      if (rows > out.maskedTokens) {
        const logits = await student.forward(rollouts.map((x) => ({ prompt: x.p.student, response: x.r.ids })));
        const uld = uldLoss(logits.logits, { rows: logits.rows, vocab: logits.vocab }, target, k, mask);
        await student.backward(uld.grad);
        await student.step();
      }
      return out;
    },
  };
}

function columnOf(student: MeteredModel): (id: number) => number {
  const col = new Int32Array(student.tokenizer.vocabSize).fill(-1);
  student.vocabIds.forEach((id, c) => { col[id] = c; });
  return (id) => col[id]!;
}
