/**
 * The arms of the experiment's stage 2, each one training step on metered models:
 * - sft: continued SFT — the teacher samples answers (charged), the student trains on them with
 *   cross-entropy after its own tokenizer re-encodes the text;
 * - chunk-pg: the paper's chunk credit (DESIGN 4) as a policy gradient with its PPO clipping
 *   against the rollout logprobs;
 * - span-fkl, span-rkl, span-jsd: span projection of the teacher's top-k (DESIGN 5, the revision
 *   chosen by `projection`) with forward KL, reverse KL, JSD(0.5) (DESIGN 6);
 * - mix: the `npm start` recipe's signal (chunk-pg and span projection with reverse KL, 1:1);
 * - uld: ULD as its paper trains it (Boizard et al. 2024): cross-entropy on teacher answers plus
 *   1.5 × the sorted-probability L1 at positions paired by index, offline like SFT.
 * Every OPD arm samples the student's rollouts at temperature 1 (no top-p), up to maxTokens.
 */
import { TokenizerBridge } from '../align/bridge.js';
import { Distiller, stepSeed } from '../train/distiller.js';
import { DISTILL_OPTIONS, type DistillOptions } from '../train/options.js';
import { PROJECTIONS, type Projection } from '../project/span-projection.js';
import type { DistillTask } from '../tasks/distill-task.js';
import { cutToFit, responseRoom, sequenceLimit } from '../train/limits.js';
import { crossEntropy } from '../loss/sparse-divergence.js';
import { uldLoss } from '../loss/uld.js';
import { responseStopIds } from '../tasks/arithmetic.js';
import { START_RECIPE } from '../run/recipes.js';
import { ErrorCode, XopdError } from '../core/errors.js';
import type { MeteredModel } from './metered.js';

export const ARMS = ['sft', 'chunk-pg', 'span-fkl', 'span-rkl', 'span-jsd', 'mix', 'uld'] as const;
export type Arm = (typeof ARMS)[number];

/** What each arm is, as the report labels it. */
export const ARM_LABELS: Record<Arm, string> = {
  sft: 'continued SFT (teacher samples, cross-entropy)',
  'chunk-pg': "chunk-pg (the paper's chunk credit, PPO clipping)",
  'span-fkl': 'span projection, forward KL',
  'span-rkl': 'span projection, reverse KL',
  'span-jsd': 'span projection, JSD 0.5',
  mix: '`npm start` mix (chunk-pg + span reverse KL, 1:1)',
  uld: 'ULD as in its paper: CE + 1.5 × ULD on teacher answers',
};

/** OPD arms: the student samples, the teacher scores. */
export const OPD_ARMS: readonly Arm[] = ['chunk-pg', 'span-fkl', 'span-rkl', 'span-jsd', 'mix'];

/** Arms whose signal goes through span projection (the projection revision matters to them). */
export const SPAN_ARMS: readonly Arm[] = ['span-fkl', 'span-rkl', 'span-jsd', 'mix'];

/** The weight of the ULD term against cross-entropy, as in the ULD paper. */
export const ULD_WEIGHT = 1.5;

/** Span projection revision 2 (DESIGN 5: prefix groups), the distiller's default, is what the arms use. */
export { PROJECTIONS, type Projection };
export const DEFAULT_PROJECTION: Projection = DISTILL_OPTIONS.projection.default;

export interface ArmSettings {
  batchSize: number;
  maxTokens: number;
  topK: number;
  seed: number;
  projection: Projection;
}

/** What one step of any arm reports (alignment numbers are zero for arms that align nothing). */
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
  if (!PROJECTIONS.includes(s.projection))
    throw new XopdError(ErrorCode.ARG_VALUE, `projection '${s.projection}' is not one of ${PROJECTIONS.join(', ')}`);
  const bridge = new TokenizerBridge(student.tokenizer, teacher.tokenizer);
  const opd = (o: DistillOptions): ArmStepper => {
    const d = new Distiller({ student, teacher, task, bridge }, { batchSize: s.batchSize, maxTokens: s.maxTokens, topK: s.topK, seed: s.seed, temperature: 1, projection: s.projection, ...o });
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
    case 'mix': return opd({ loss: START_RECIPE.options.loss, divergence: START_RECIPE.options.divergence });
    case 'sft': return offlineArm(student, teacher, task, s, 0);
    case 'uld': return offlineArm(student, teacher, task, s, ULD_WEIGHT);
  }
}

/**
 * One step on teacher answers: the teacher samples an answer to each prompt (temperature 1, charged),
 * the student trains on its own tokenization of the text with cross-entropy, plus, when `uldWeight`
 * is above 0, that weight times the ULD term against the teacher's top-k along its answer (the
 * teacher scores its answer for it, charged), student position i paired with teacher position i up
 * to the shorter of the two (the ULD paper's alignment).
 */
function offlineArm(student: MeteredModel, teacher: MeteredModel, task: DistillTask, s: ArmSettings, uldWeight: number): ArmStepper {
  // Teacher text into student tokens: the bridge read backwards (its end of turn maps to the student's).
  const toStudent = new TokenizerBridge(teacher.tokenizer, student.tokenizer);
  const forPrompts = new TokenizerBridge(student.tokenizer, teacher.tokenizer);
  const teacherStop = responseStopIds(teacher.tokenizer);
  const col = columnOf(student);
  const k = Math.max(1, s.topK);
  return {
    async step(i) {
      const prompts = task.trainPrompts(s.batchSize, stepSeed(s.seed, i, 1)).map((m) => forPrompts.renderPrompts(m));
      const maxTokens = Math.max(1, responseRoom(sequenceLimit(teacher), prompts.map((p) => p.teacher), s.maxTokens));
      const answers = await teacher.generate(prompts.map((p) => p.teacher), { maxTokens, temperature: 1, seed: stepSeed(s.seed, i, 2), stopIds: teacherStop });
      // An answer whose student tokens fall outside the student's id list cannot be read by it:
      // dropped. One longer than the student's context is cut to fit.
      const all = answers.map((a, j) => ({
        prompt: prompts[j]!.student, teacherPrompt: prompts[j]!.teacher, teacherIds: a.ids,
        response: cutToFit(toStudent.retokenize(a.ids), sequenceLimit(student), prompts[j]!.student.length),
      }));
      const batch = all.filter((b) => b.response.length > 0 && b.response.every((id) => col(id) >= 0));
      const labels = Int32Array.from(batch.flatMap((b) => Array.from(b.response, (id) => col(id))));
      const masked = all.reduce((n, b) => n + b.response.length, 0) - labels.length;
      const out: ArmStep = { chunks: 0, oneToOne: 0, studentTokens: labels.length + masked, teacherTokens: answers.reduce((a, r) => a + r.ids.length, 0), maskedTokens: masked };
      if (labels.length === 0) return out;
      const logits = await student.forward(batch);
      const shape = { rows: logits.rows, vocab: logits.vocab };
      const ce = crossEntropy(logits.logits, shape, labels);
      const grad = ce.grad;
      if (uldWeight > 0) {
        const scores = await teacher.score(batch.map((b) => {
          const ids = new Int32Array(b.teacherPrompt.length + b.teacherIds.length);
          ids.set(b.teacherPrompt);
          ids.set(b.teacherIds, b.teacherPrompt.length);
          return { ids, start: b.teacherPrompt.length };
        }), { topK: k });
        const target = new Float32Array(logits.rows * k);
        const mask = new Uint8Array(logits.rows);
        let at = 0;
        batch.forEach((b, j) => {
          const sc = scores[j]!;
          const n = Math.min(b.response.length, sc.logprobs.length);
          for (let r = 0; r < n; r++) {
            // top-k comes most likely first, so its probabilities are already sorted
            for (let q = 0; q < k; q++) target[(at + r) * k + q] = q < sc.k ? Math.exp(sc.topkLogprobs[r * sc.k + q]!) : 0;
            mask[at + r] = 1;
          }
          at += b.response.length;
        });
        const uld = uldLoss(logits.logits, shape, target, k, mask);
        for (let j = 0; j < grad.length; j++) grad[j]! += uldWeight * uld.grad[j]!;
      }
      await student.backward(grad);
      await student.step();
      return out;
    },
  };
}

function columnOf(student: MeteredModel): (id: number) => number {
  const col = new Int32Array(student.tokenizer.vocabSize).fill(-1);
  student.vocabIds.forEach((id, c) => { col[id] = c; });
  return (id) => col[id]!;
}
