/**
 * Where the student goes wrong and what each arm's signal does there, measured on an SFT
 * checkpoint (the start of stage 2):
 * - first errors: the student's greedy answers to validation problems, retokenized and scored by
 *   the teacher; the first chunk the teacher gives less than 5% is where the answer goes wrong, and
 *   its place in the working (restatement, operand digit, carry, column result, answer, format)
 *   is counted, with the teacher's top alternatives there and the student's probability of them;
 * - gradient scales: every arm's d loss / d logits and parameter gradient on one batch from the
 *   same checkpoint (OPD arms on the same rollouts), and for OPD arms the share of the logit
 *   gradient (squared norm) that falls on the rows of such wrong chunks.
 */
import { TokenizerBridge } from '../align/bridge.js';
import type { Alignment } from '../align/types.js';
import { Model } from '../model/model.js';
import type { PolicyLogits, Rollout } from '../model/roles.js';
import { arithmeticDistillTask } from '../tasks/distill-task.js';
import { sequenceLimit } from '../train/limits.js';
import { MAX_RESPONSE_TOKENS, generateProblems, promptIds, responseStopIds } from '../tasks/arithmetic.js';
import { distillOptimizer } from '../run/job.js';
import { ARMS, makeArm, SPAN_ARMS, type Projection } from './arms.js';
import { MeteredModel } from './metered.js';
import { VALIDATION_SEED } from './runs.js';
import { stepSeed } from '../train/distiller.js';
import type { ArmGradient, DiagnosisResult, FirstError } from '../report/html.js';

/** A chunk the teacher gives less than this probability is a wrong one. */
export const WRONG_CHUNK_LOGPROB = Math.log(0.05);

export interface DiagnosisJob {
  kind: 'diagnose';
  student: string;
  teacher: string;
  /** validation problems whose greedy answers are examined */
  n: number;
  /** prompts of the batch the gradients are measured on */
  batchSize: number;
  seed: number;
  topK: number;
  projection: Projection;
  maxTokens: number;
}

/**
 * Where in the working a chunk falls, from the response text before it: the restatement of the
 * operands, an operand digit of a column step, the carry decision (writing "+ 1" or not), a column
 * result, the final answer, or format (punctuation, spaces, the end of the turn).
 */
export function placeOf(before: string, chunk: string): string {
  if (/The answer is/.test(before)) return 'answer';
  if (chunk.trim() === '' || /^[.,:]+$/.test(chunk.trim())) return 'format';
  const working = before.slice(before.lastIndexOf('. ') + 1);
  if (!working.includes(':')) return 'restatement';
  const step = working.slice(Math.max(working.lastIndexOf(', '), working.lastIndexOf(': ')) + 2);
  if (/\d [+-] \d+ \+ ?$/.test(step) || (/\d [+-] \d+$/.test(step) && /^ ?[+=]/.test(chunk))) return 'carry';
  if (step.includes('=')) return 'column result';
  if (step.trim() === '' && /^ ?The/.test(chunk)) return 'format';
  return 'operand digit';
}

/** A model whose updates are measured and not applied: backward records the gradients, step does nothing. */
class GradientProbe extends MeteredModel {
  readonly seen: Array<{ logitGradNorm: number; paramGradNorm: number; rowNorms: Float64Array }> = [];
  readonly rollouts: Rollout[][] = [];
  private vocab = 0;

  override async generate(prompts: Int32Array[], opts: Parameters<MeteredModel['generate']>[1]): Promise<Rollout[]> {
    const r = await super.generate(prompts, opts);
    this.rollouts.push(r);
    return r;
  }

  override async forward(batch: Array<{ prompt: Int32Array; response: Int32Array }>): Promise<PolicyLogits> {
    const l = await super.forward(batch);
    this.vocab = l.vocab;
    return l;
  }

  override async backward(gradLogits: Float32Array): Promise<void> {
    await super.backward(gradLogits);
    const rows = gradLogits.length / this.vocab;
    const rowNorms = new Float64Array(rows);
    let total = 0;
    for (let r = 0; r < rows; r++) {
      let s = 0;
      for (let v = 0; v < this.vocab; v++) s += gradLogits[r * this.vocab + v]! ** 2;
      rowNorms[r] = s;
      total += s;
    }
    let p = 0;
    for (const g of this.model.getGrads()) p += g * g;
    this.seen.push({ logitGradNorm: Math.sqrt(total), paramGradNorm: Math.sqrt(p), rowNorms });
    this.model.zeroGrads();
  }

  override async step(): Promise<void> {
    // measured, not applied
  }
}

/** Teacher chunk logprobs of student responses: retokenize, score, align. */
async function chunkScores(bridge: TokenizerBridge, teacher: Model, prompts: Int32Array[], responses: Int32Array[], topK: number) {
  const teacherResp = responses.map((r) => bridge.retokenize(r));
  const scores = await teacher.score(prompts.map((p, i) => {
    const ids = new Int32Array(p.length + teacherResp[i]!.length);
    ids.set(p);
    ids.set(teacherResp[i]!, p.length);
    return { ids, start: p.length };
  }), { topK });
  const alignments: Alignment[] = bridge.alignBatch(responses.map((r, i) => [r, teacherResp[i]!] as [Int32Array, Int32Array]));
  return responses.map((_, i) => {
    const a = alignments[i]!, s = scores[i]!;
    const lp = Array.from({ length: a.chunkCount }, (_, c) => {
      let x = 0;
      for (let t = a.teacherStart[c]!; t < a.teacherEnd[c]!; t++) x += s.logprobs[t]!;
      return x;
    });
    return { alignment: a, scores: s, chunkLogprob: lp, teacherResp: teacherResp[i]! };
  });
}

export async function runDiagnosis(job: DiagnosisJob): Promise<DiagnosisResult> {
  const student = Model.load(job.student), teacher = Model.load(job.teacher);
  const bridge = new TokenizerBridge(student.tokenizer, teacher.tokenizer);
  const sTok = student.tokenizer, tTok = teacher.tokenizer;
  const problems = generateProblems({ split: 'train', count: job.n, seed: VALIDATION_SEED });
  const sPrompts = problems.map((p) => promptIds(sTok, p)), tPrompts = problems.map((p) => promptIds(tTok, p));
  const stop = responseStopIds(sTok);
  const greedy = student.generateSync(sPrompts, { maxTokens: MAX_RESPONSE_TOKENS, temperature: 0, seed: 0, stopIds: stop });
  const graded = problems.map((p, i) => ({ p, i, text: sTok.decode(greedy[i]!.ids, { skipSpecialTokens: true }) }));
  let wrong = graded.filter((g) => !/answer is\s*(-?\d[\d,]*)/.test(g.text) || Number(/answer is\s*(-?\d[\d,]*)/.exec(g.text)![1]!.replace(/,/g, '')) !== g.p.answer);
  // A wrong answer that runs past the teacher's context once retokenized is counted as a runaway and
  // not scored (the teacher cannot read it whole); the rest are analysed.
  const all = wrong;
  const fitsTeacher = (w: (typeof all)[number]) => tPrompts[w.i]!.length + bridge.retokenize(greedy[w.i]!.ids).length <= sequenceLimit(teacher);
  const runaways = all.filter((w) => !fitsTeacher(w)).length;
  wrong = all.filter(fitsTeacher);
  const scored = await chunkScores(bridge, teacher, wrong.map((w) => tPrompts[w.i]!), wrong.map((w) => greedy[w.i]!.ids), job.topK);
  // The student's own distribution along its greedy answers (for its probability at the wrong chunk).
  const logits = wrong.length ? student.forwardSync(wrong.map((w) => ({ prompt: sPrompts[w.i]!, response: greedy[w.i]!.ids }))) : null;
  const emittable = Array.from(student.vocabIds, (id) => ({ id, col: student.indexOf(id), text: Buffer.from(sTok.tokenBytes(id)).toString('latin1') }));
  const places: Record<string, number> = runaways ? { 'runaway (past the teacher\'s context)': runaways } : {};
  const examples: FirstError[] = [];
  let unflagged = 0, row0 = 0;
  const sums = { teacherProbOfStudent: 0, studentProbOwn: 0, studentProbTeacherTop: 0, teacherTopProb: 0 };
  wrong.forEach((w, j) => {
    const ids = greedy[w.i]!.ids, sc = scored[j]!;
    const c = sc.chunkLogprob.findIndex((lp) => lp < WRONG_CHUNK_LOGPROB);
    if (c < 0) {
      unflagged++;
      row0 += ids.length;
      return;
    }
    const a = sc.alignment, s0 = a.studentStart[c]!, t0 = a.teacherStart[c]!;
    const before = sTok.decode(ids.subarray(0, s0), { skipSpecialTokens: true });
    const chunkText = sTok.decode(ids.subarray(s0, a.studentEnd[c]!), { skipSpecialTokens: false });
    const place = placeOf(before, chunkText);
    places[place] = (places[place] ?? 0) + 1;
    const k = sc.scores.k;
    const teacherTop = Array.from({ length: Math.min(3, k) }, (_, q) => ({ text: tTok.decode([sc.scores.topkIds[t0 * k + q]!]), p: Math.exp(sc.scores.topkLogprobs[t0 * k + q]!) }));
    // softmax of the student's row at its first token of the chunk
    const V = logits!.vocab, row = logits!.logits.subarray((row0 + s0) * V, (row0 + s0 + 1) * V);
    let max = -Infinity, z = 0;
    for (const x of row) max = Math.max(max, x);
    for (const x of row) z += Math.exp(x - max);
    const prob = (col: number) => Math.exp(row[col]! - max) / z;
    // the bytes the teacher's top alternative adds at this point, as latin1 text to compare with token bytes
    const topBytes = Buffer.from(tTok.tokenBytes(sc.scores.topkIds[t0 * k]!)).toString('latin1');
    const own = prob(student.indexOf(ids[s0]!));
    const group = topBytes.length ? emittable.filter((e) => e.text.startsWith(topBytes)).reduce((acc, e) => acc + prob(e.col), 0) : 0;
    const e: FirstError = {
      question: w.p.question, response: w.text, at: before.length, place, studentText: chunkText, teacherProb: Math.exp(sc.chunkLogprob[c]!),
      teacherTop, studentProbOwn: own, studentProbTeacherTop: group,
    };
    sums.teacherProbOfStudent += e.teacherProb;
    sums.studentProbOwn += own;
    sums.studentProbTeacherTop += group;
    sums.teacherTopProb += teacherTop[0]?.p ?? 0;
    if (examples.length < 8) examples.push(e);
    row0 += ids.length;
  });
  const flagged = Math.max(1, wrong.length - unflagged);
  const mean = Object.fromEntries(Object.entries(sums).map(([key, v]) => [key, v / flagged])) as DiagnosisResult['mean'];

  // Gradient scales: each arm's first step on a fresh probe of the checkpoint (same seed: OPD arms see the same rollouts).
  const gradients: ArmGradient[] = [];
  const task = arithmeticDistillTask();
  for (const arm of ARMS) {
    const m = Model.load(job.student);
    m.setOptimizer(distillOptimizer(1e-4));
    const probe = new GradientProbe(m);
    const stepper = makeArm(arm, probe, new MeteredModel(teacher), task, {
      batchSize: job.batchSize, maxTokens: job.maxTokens, topK: job.topK, seed: job.seed, projection: SPAN_ARMS.includes(arm) ? job.projection : 'first',
    });
    await stepper.step(0);
    const seen = probe.seen[0];
    if (!seen) continue;
    let wrongShare: number | null = null, wrongRows: number | null = null;
    const rollouts = probe.rollouts[0];
    if (rollouts && seen.rowNorms.length === rollouts.reduce((n, r) => n + r.ids.length, 0)) {
      // the Distiller's prompts of step 0, rendered for the teacher
      const conv = task.trainPrompts(job.batchSize, stepSeed(job.seed, 0, 1));
      const tp = conv.map((msgs) => bridge.renderPrompts(msgs).teacher);
      // A rollout the teacher cannot read whole (a runaway past its context) is left out of the
      // share: its chunks have no teacher score to flag them by.
      const fits = rollouts.map((r, i) => tp[i]!.length + bridge.retokenize(r.ids).length <= sequenceLimit(teacher));
      const read = rollouts.filter((_, i) => fits[i]);
      const sc = await chunkScores(bridge, teacher, tp.filter((_, i) => fits[i]), read.map((r) => r.ids), 1);
      let at = 0, num = 0, den = 0, rows = 0, total = 0, k = 0;
      rollouts.forEach((r, i) => {
        if (!fits[i]) {
          at += r.ids.length;
          return;
        }
        const { alignment: a, chunkLogprob } = sc[k++]!;
        for (let t = 0; t < r.ids.length; t++) {
          const bad = chunkLogprob[a.studentChunk[t]!]! < WRONG_CHUNK_LOGPROB;
          den += seen.rowNorms[at + t]!;
          total++;
          if (bad) {
            num += seen.rowNorms[at + t]!;
            rows++;
          }
        }
        at += r.ids.length;
      });
      wrongShare = den > 0 ? num / den : 0;
      wrongRows = total ? rows / total : 0;
    }
    gradients.push({ arm: arm as string, logitGradNorm: seen.logitGradNorm, paramGradNorm: seen.paramGradNorm, wrongShare, wrongRows });
  }
  return { kind: 'diagnose', n: problems.length, correct: problems.length - all.length, places, unflagged, mean, examples, gradients };
}
