/**
 * `xopd serve` end to end on loopback: in front of `xopd serve-teacher` (the shipped Qwen 3 teacher),
 * with a Llama 3 student, both as child processes. Requests are shaped exactly as TRL's VLLMClient
 * shapes them (GET /health/ first, then POST /get_sequence_logprobs/ with sequences, prompt_lengths,
 * top_logprobs, temperature, response_format), for rollouts the in-process Distiller sampled in one
 * of its own steps; the answers are checked against that step (its mean advantage and mean teacher
 * logprob) and against spanProjection / chunkAdvantages computed in process on the same sequences.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Distiller, stepSeed, type StepReport } from '../src/train/distiller.js';
import { DEFAULT_STUDENT, DEFAULT_TEACHER } from '../src/run/job.js';
import { arithmeticDistillTask } from '../src/tasks/distill-task.js';
import type { GenerateOptions, Rollout, StudentPolicy } from '../src/model/roles.js';
import { TokenizerBridge } from '../src/align/bridge.js';
import { ChunkFlags } from '../src/align/types.js';
import { chunkAdvantages } from '../src/loss/chunk-advantages.js';
import { spanProjection } from '../src/project/span-projection.js';
import { Model } from '../src/model/model.js';
import { sequenceLimit } from '../src/train/limits.js';
import { setThreads } from '../src/core/native.js';
import { startCli, type CliServer } from './helpers/serve-process.js';

/** A StudentPolicy that remembers the prompts and rollouts of the Distiller's step. */
class RecordingStudent implements StudentPolicy {
  prompts: Int32Array[] = [];
  rollouts: Rollout[] = [];
  constructor(readonly inner: Model) {}
  get tokenizer() { return this.inner.tokenizer; }
  get vocabIds() { return this.inner.vocabIds; }
  get maxSequenceLength() { return sequenceLimit(this.inner); }
  async generate(prompts: Int32Array[], opts: GenerateOptions) {
    this.prompts = prompts;
    this.rollouts = await this.inner.generate(prompts, opts);
    return this.rollouts;
  }
  forward(b: Array<{ prompt: Int32Array; response: Int32Array }>) { return this.inner.forward(b); }
  backward(g: Float32Array) { return this.inner.backward(g); }
  step() { return this.inner.step(); }
}

let teacherServer: CliServer;
let serve: CliServer;
let teacher: Model;
let student: RecordingStudent;
let report: StepReport;
let bridge: TokenizerBridge;
let kept: number[];  // rollouts with a response

/** TRL's VLLMClient._decode_binary_logprobs, in TypeScript: [B, T, K] arrays trimmed to each completion. */
function decodeBinary(r: Record<string, unknown>) {
  const shape = r.shape as [number, number, number];
  const [B, T, K] = shape;
  const f32 = (k: string) => { const b = Buffer.from(r[k] as string, 'base64'); return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)); };
  const i32 = (k: string) => { const b = Buffer.from(r[k] as string, 'base64'); return new Int32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)); };
  const lp = f32('logprobs_b64'), ids = i32('token_ids_b64'), alp = f32('actual_logprobs_b64'), aids = i32('actual_token_ids_b64');
  expect(lp.length).toBe(B * T * K);
  expect(alp.length).toBe(B * T);
  const lens = r.completion_lengths as number[];
  return lens.map((n, i) => ({
    logprobs: Array.from({ length: n }, (_, j) => Array.from(lp.subarray((i * T + j) * K, (i * T + j + 1) * K))),
    ids: Array.from({ length: n }, (_, j) => Array.from(ids.subarray((i * T + j) * K, (i * T + j + 1) * K))),
    actual: Array.from(alp.subarray(i * T, i * T + n)),
    actualIds: Array.from(aids.subarray(i * T, i * T + n)),
  }));
}

/** The request TRL's client sends, byte for byte in its field order. */
async function trlPost(topLogprobs: number, format: 'binary' | 'json') {
  const sequences = kept.map((i) => [...student.prompts[i]!, ...student.rollouts[i]!.ids]);
  const promptLengths = kept.map((i) => student.prompts[i]!.length);
  const res = await fetch(`${serve.url}/get_sequence_logprobs/`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ sequences, prompt_lengths: promptLengths, top_logprobs: topLogprobs, temperature: 1.0, response_format: format }),
  });
  expect(res.status).toBe(200);
  return (await res.json()) as Record<string, unknown>;
}

/** The teacher's scores for rollout i, in process: the same prompt rendering and retokenization as the Distiller. */
async function inProcess(i: number, topK: number) {
  const r = student.rollouts[i]!;
  const messages = task.trainPrompts(16, stepSeedFor())[i]!;
  const tPrompt = bridge.renderPrompts(messages).teacher;
  const tResp = bridge.retokenize(r.ids);
  const ids = new Int32Array(tPrompt.length + tResp.length);
  ids.set(tPrompt);
  ids.set(tResp, tPrompt.length);
  const [scores] = await teacher.score([{ ids, start: tPrompt.length }], { topK });
  const alignment = bridge.align(r.ids, tResp);
  const targets = spanProjection(bridge, alignment, r.ids, { ids: tResp, logprobs: scores!.logprobs, topkIds: scores!.topkIds, topkLogprobs: scores!.topkLogprobs, k: topK }, { includeFlags: ChunkFlags.OVERSIZE });
  return { scores: scores!, alignment, targets, tResp };
}

const task = arithmeticDistillTask();
const SEED = 5;
// The Distiller's step 1 draws its prompts with stepSeed(seed, 1, 1); recompute it the same way.
const stepSeedFor = () => stepSeed(SEED, 1, 1);

beforeAll(async () => {
  setThreads(1);
  teacherServer = await startCli(['serve-teacher', '--model', DEFAULT_TEACHER, '--port', '0', '--quiet', '--threads', '1']);
  serve = await startCli(['serve', '--student-tokenizer', 'llama3', '--teacher-tokenizer', 'qwen3', '--teacher-url', teacherServer.url,
    '--port', '0', '--workers', '2', '--quiet', '--teacher-retries', '0']);
  teacher = Model.load(DEFAULT_TEACHER);
  student = new RecordingStudent(Model.load(DEFAULT_STUDENT));
  bridge = new TokenizerBridge(student.tokenizer, teacher.tokenizer);
  const d = new Distiller({ student, teacher, task }, { loss: 'chunk-pg', batchSize: 16, seed: SEED, evalSize: 0 });
  report = await d.step(1);
  kept = student.rollouts.flatMap((r, i) => (r.ids.length > 0 ? [i] : []));
}, 300_000);

afterAll(async () => {
  await serve?.stop();
  await teacherServer?.stop();
});

describe('xopd serve in front of xopd serve-teacher, TRL-shaped requests', () => {
  it('answers the health check TRL polls first', async () => {
    const res = await fetch(`${serve.url}/health/`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it('the Distiller step gave rollouts with multi-token chunks (the cross-tokenizer case)', () => {
    expect(kept.length).toBeGreaterThan(8);
    expect(report.oneToOneShare).toBeLessThan(1);
  });

  it('top_logprobs 1, binary: the realised token with log q_j(s_j); a chunk\'s logprobs add up to its teacher logprob', async () => {
    const decoded = decodeBinary(await trlPost(1, 'binary'));
    expect(decoded.length).toBe(kept.length);
    let servedSum = 0, teacherTokens = 0, teacherSum = 0, multi = 0, compared = 0;
    for (let b = 0; b < kept.length; b++) {
      const i = kept[b]!, r = student.rollouts[i]!;
      const d = decoded[b]!;
      expect(d.actualIds).toEqual(Array.from(r.ids));
      expect(d.ids.map((row) => row[0])).toEqual(Array.from(r.ids));  // realised first
      const ref = await inProcess(i, 0);
      for (let j = 0; j < r.ids.length; j++) {
        expect(d.logprobs[j]![0]).toBe(d.actual[j]);
        // Realised tokens alone: q_j(s_j) is read off the projection the same way, from float32 probabilities.
        let q = NaN;
        for (let e = ref.targets.rowPtr[j]!; e < ref.targets.rowPtr[j + 1]!; e++) if (ref.targets.ids[e] === r.ids[j]) q = ref.targets.probs[e]!;
        if (Number.isFinite(q) && q > 0) {
          expect(Math.abs(d.actual[j]! - Math.log(q))).toBeLessThan(1e-5);
          compared++;
        }
      }
      // DESIGN 9: with the realised tokens alone, a chunk's student logprobs add up to its teacher logprob.
      const a = ref.alignment;
      for (let c = 0; c < a.chunkCount; c++) {
        let lt = 0, ls = 0;
        for (let t = a.teacherStart[c]!; t < a.teacherEnd[c]!; t++) lt += ref.scores.logprobs[t]!;
        for (let j = a.studentStart[c]!; j < a.studentEnd[c]!; j++) ls += d.actual[j]!;
        if (a.studentEnd[c]! > a.studentStart[c]!) expect(Math.abs(ls - lt)).toBeLessThan(2e-4 * Math.max(1, Math.abs(lt)));
        if (a.teacherEnd[c]! - a.teacherStart[c]! > 1 || a.studentEnd[c]! - a.studentStart[c]! > 1) multi++;
      }
      servedSum += d.actual.reduce((x, y) => x + y, 0);
      teacherTokens += ref.tResp.length;
      teacherSum += Array.from(ref.scores.logprobs).reduce((x, y) => x + y, 0);
    }
    expect(multi).toBeGreaterThan(0);
    expect(compared).toBeGreaterThan(0.9 * decoded.reduce((a, d) => a + d.actual.length, 0));
    // The Distiller's own statistic: mean teacher logprob per teacher response token.
    expect(teacherTokens).toBe(report.teacherTokens);
    expect(Math.abs(teacherSum / teacherTokens - report.teacherLogprob)).toBeLessThan(1e-5);
    expect(Math.abs(servedSum / teacherTokens - report.teacherLogprob)).toBeLessThan(1e-4);
  });

  it('top_logprobs 4, binary and json: the other single-id buckets ranked after the realised token, equal to spanProjection', async () => {
    const bin = decodeBinary(await trlPost(4, 'binary'));
    const json = await trlPost(4, 'json') as { logprobs: Array<Array<Array<number | null>>>; logprob_token_ids: number[][][]; actual_logprobs: number[][][] };
    let alternatives = 0;
    for (let b = 0; b < kept.length; b++) {
      const i = kept[b]!, r = student.rollouts[i]!;
      const ref = await inProcess(i, 20);  // xopd serve asks the teacher for --teacher-top-k (20) candidates
      for (let j = 0; j < r.ids.length; j++) {
        const entries: Array<[number, number]> = [];
        for (let e = ref.targets.rowPtr[j]!; e < ref.targets.rowPtr[j + 1]!; e++) if (ref.targets.ids[e] !== r.ids[j] && ref.targets.probs[e]! > 0) entries.push([ref.targets.ids[e]!, ref.targets.probs[e]!]);
        entries.sort((x, y) => y[1] - x[1] || x[0] - y[0]);
        const want = entries.slice(0, 3);
        for (let c = 1; c < 4; c++) {
          if (c - 1 < want.length) {
            alternatives++;
            expect(bin[b]!.ids[j]![c]).toBe(want[c - 1]![0]);
            expect(Math.abs(bin[b]!.logprobs[j]![c]! - Math.log(want[c - 1]![1]))).toBeLessThan(1e-5);
            expect(json.logprob_token_ids[b]![j]![c]).toBe(want[c - 1]![0]);
            expect(Math.abs((json.logprobs[b]![j]![c] as number) - bin[b]!.logprobs[j]![c]!)).toBeLessThan(1e-6);
          } else {
            expect(bin[b]!.logprobs[j]![c]).toBe(-Infinity);  // padded as TRL's own server pads
            expect(json.logprobs[b]![j]![c]).toBeNull();
          }
        }
        expect(Math.abs(json.actual_logprobs[b]![j]![0]! - bin[b]!.actual[j]!)).toBeLessThan(1e-6);
      }
    }
    expect(alternatives).toBeGreaterThan(50);
  });

  it('POST /v1/opd/score with the rollout logprobs: the Distiller\'s chunk advantages, token by token and in the mean', async () => {
    const items = kept.map((i) => ({ prompt_ids: Array.from(student.prompts[i]!), response_ids: Array.from(student.rollouts[i]!.ids), student_logprobs: Array.from(student.rollouts[i]!.logprobs) }));
    const res = await fetch(`${serve.url}/v1/opd/score`, { method: 'POST', body: JSON.stringify({ items, spans: true, top_k: 8 }) });
    expect(res.status).toBe(200);
    const body = await res.json() as { teacher_top_k: number; items: Array<{ advantage: number[]; mask: number[]; chunk: number[]; flags: number[]; teacher_tokens: number; spans: { row_ptr: number[]; ids: number[]; probs: number[]; groups: { bucket: number[]; ptr: number[]; members: number[] } } }> };
    expect(body.teacher_top_k).toBe(8);
    let sum = 0, n = 0, groups = 0;
    for (let b = 0; b < kept.length; b++) {
      const i = kept[b]!, r = student.rollouts[i]!, it = body.items[b]!;
      const ref = await inProcess(i, 8);
      const adv = chunkAdvantages(ref.alignment, { teacherLogprobs: ref.scores.logprobs, studentLogprobs: r.logprobs }, { credit: 'proportional', clamp: 10 });
      expect(it.teacher_tokens).toBe(ref.tResp.length);
      expect(it.chunk).toEqual(Array.from(ref.alignment.studentChunk));
      expect(it.mask).toEqual(Array.from(adv.mask));
      for (let j = 0; j < r.ids.length; j++) expect(Math.abs(it.advantage[j]! - adv.advantages[j]!)).toBeLessThan(1e-5);
      for (let j = 0; j < r.ids.length; j++) if (it.mask[j]) { sum += it.advantage[j]!; n++; }
      expect(it.spans.row_ptr).toEqual(Array.from(ref.targets.rowPtr));
      expect(it.spans.ids).toEqual(Array.from(ref.targets.ids));
      it.spans.probs.forEach((p, e) => expect(Math.abs(p - ref.targets.probs[e]!)).toBeLessThan(1e-6));
      // Each prefix group (revision 2) comes with its members after the first-claim rule, as targets.row lists them.
      const g = it.spans.groups;
      expect(g.bucket).toEqual(Array.from(ref.targets.ids.keys()).filter((e) => ref.targets.ids[e] === -1));
      g.bucket.forEach((e, x) => {
        const j = it.spans.row_ptr.findIndex((start, r) => start <= e && e < it.spans.row_ptr[r + 1]!);
        expect(g.members.slice(g.ptr[x]!, g.ptr[x + 1]!)).toEqual(Array.from(ref.targets.row(j).buckets[e - it.spans.row_ptr[j]!]!.ids));
      });
      groups += g.bucket.length;
    }
    expect(groups).toBeGreaterThan(0);  // Llama 3 student, Qwen 3 teacher: alternatives inside numbers
    expect(Math.abs(sum / n - report.meanAdvantage)).toBeLessThan(1e-5);
  });

  it('messages instead of prompt ids give the same answer', async () => {
    const i = kept[0]!;
    const messages = task.trainPrompts(16, stepSeedFor())[i]!;
    const post = (item: object) => fetch(`${serve.url}/v1/opd/score`, { method: 'POST', body: JSON.stringify({ items: [{ ...item, response_ids: Array.from(student.rollouts[i]!.ids) }] }) }).then((r) => r.json());
    const a = await post({ messages });
    const b = await post({ prompt_ids: Array.from(student.prompts[i]!) });
    expect(a).toEqual(b);
  });
});
