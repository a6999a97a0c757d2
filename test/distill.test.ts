/**
 * The OPD loop end to end on the shipped models: the teacher served by the xopd teacher server on
 * loopback gives exactly the in-process teacher's numbers, and distillation steps driven through the
 * served teacher equal, number for number, the same steps with the in-process teacher.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Distiller, identityAlignment, stepSeed, topkTargets, type DistillOptions } from '../src/distill/distiller.js';
import { DEFAULT_STUDENT, DEFAULT_TEACHER } from '../src/distill/job.js';
import { arithmeticDistillTask } from '../src/distill/tasks.js';
import { serveTeacher, type TeacherServer } from '../src/distill/teacher-server.js';
import { VllmTeacher } from '../src/distill/vllm-teacher.js';
import { TokenizerBridge } from '../src/align/bridge.js';
import { ChunkFlags } from '../src/align/types.js';
import { Model } from '../src/model/model.js';
import { setThreads } from '../src/native.js';

let teacher: Model;
let server: TeacherServer;
let served: VllmTeacher;
const task = arithmeticDistillTask();

beforeAll(async () => {
  setThreads(2);
  teacher = Model.load(DEFAULT_TEACHER);
  server = await serveTeacher(teacher, { modelName: 'teacher-qwen3' });
  served = new VllmTeacher({ baseUrls: server.url, tokenizer: teacher.tokenizer, retries: 0, concurrency: 4 });
});

afterAll(async () => {
  await served?.close();
  await server?.close();
});

describe('served teacher', () => {
  it('scores real student rollouts (retokenized to Qwen 3) exactly as the in-process teacher', async () => {
    const student = Model.load(DEFAULT_STUDENT);
    const bridge = new TokenizerBridge(student.tokenizer, teacher.tokenizer);
    const prompts = task.trainPrompts(6, 7).map((m) => bridge.renderPrompts(m));
    const rollouts = await student.generate(prompts.map((p) => p.student), { maxTokens: 40, temperature: 1, seed: 3 });
    const requests = rollouts.map((r, i) => {
      const resp = bridge.retokenize(r.ids);
      const ids = new Int32Array(prompts[i]!.teacher.length + resp.length);
      ids.set(prompts[i]!.teacher);
      ids.set(resp, prompts[i]!.teacher.length);
      return { ids, start: prompts[i]!.teacher.length };
    });
    for (const k of [0, 5]) {
      const remote = await served.score(requests, { topK: k });
      const local = await teacher.score(requests, { topK: k });
      for (let i = 0; i < requests.length; i++) {
        expect(remote[i]!.logprobs.length).toBe(requests[i]!.ids.length - requests[i]!.start);
        expect(Array.from(remote[i]!.logprobs)).toEqual(Array.from(local[i]!.logprobs));
        expect(Array.from(remote[i]!.topkIds)).toEqual(Array.from(local[i]!.topkIds));
        expect(Array.from(remote[i]!.topkLogprobs)).toEqual(Array.from(local[i]!.topkLogprobs));
      }
    }
  });

  it('distillation steps through the served teacher equal those with the in-process teacher', async () => {
    const options: DistillOptions = { loss: 'chunk-pg', batchSize: 4, steps: 2, evalSize: 0, seed: 5, maxTokens: 40 };
    const a = Model.load(DEFAULT_STUDENT), b = Model.load(DEFAULT_STUDENT);
    const before = a.getParams();
    const local = new Distiller({ student: a, teacher, task }, options);
    const remote = new Distiller({ student: b, teacher: served, task }, options);
    expect(local.fastPath).toBe(false); // Llama 3 student, Qwen 3 teacher
    for (const step of [1, 2]) {
      const x = await local.step(step);
      const y = await remote.step(step);
      expect(y.loss).toBe(x.loss);
      expect(y.meanAdvantage).toBe(x.meanAdvantage);
      expect(y.teacherLogprob).toBe(x.teacherLogprob);
      expect(y.chunks).toBe(x.chunks);
      // a real cross-tokenizer batch: chunks, some of them not 1:1, finite loss
      expect(x.studentTokens).toBeGreaterThan(20);
      expect(x.teacherTokens).toBeGreaterThan(x.studentTokens);
      expect(x.oneToOneShare).toBeGreaterThan(0);
      expect(x.oneToOneShare).toBeLessThan(1);
      expect(x.maskedShare).toBeGreaterThanOrEqual(0);
      expect(x.maskedShare).toBeLessThan(0.5);
      expect(Number.isFinite(x.loss)).toBe(true);
      for (const t of Object.values(x.seconds)) expect(t).toBeGreaterThanOrEqual(0);
      expect(x.tokensPerSecond).toBeGreaterThan(0);
    }
    const after = a.getParams();
    expect(Array.from(b.getParams())).toEqual(Array.from(after));
    let moved = 0;
    for (let i = 0; i < after.length; i++) if (after[i] !== before[i]) moved++;
    expect(moved).toBeGreaterThan(after.length / 2);
  });
});

describe('distiller pieces', () => {
  it('identical tokenizers: every token its own 1:1 chunk, TAIL past the teacher', () => {
    const a = identityAlignment(4, 3);
    expect(a.chunkCount).toBe(4);
    expect(Array.from(a.flags)).toEqual([0, 0, 0, ChunkFlags.TAIL]);
    expect(Array.from(a.teacherEnd)).toEqual([1, 2, 3, 3]);
  });

  it('top-k targets: candidates the student covers, the realised token once, tail = the rest', () => {
    const colOf = new Int32Array(10).fill(-1);
    colOf[2] = 0; colOf[5] = 1; colOf[7] = 2;
    const lp = (p: number) => Math.log(p);
    const scores = { k: 2, logprobs: Float32Array.from([lp(0.5), lp(0.1)]), topkIds: Int32Array.from([5, 9, 7, 2]), topkLogprobs: Float32Array.from([lp(0.5), lp(0.2), lp(0.6), lp(0.3)]) };
    const t = topkTargets(scores, Int32Array.from([5, 3]), 2, colOf);
    expect(Array.from(t.rowPtr)).toEqual([0, 1, 3]);
    expect(Array.from(t.ids)).toEqual([1, 2, 0]); // row 0: id 5 (id 9 not covered, realised 5 already in); row 1: 7, 2 (realised 3 not covered)
    expect(t.tail[0]).toBeCloseTo(0.5, 6);
    expect(t.tail[1]).toBeCloseTo(0.1, 6);
  });

  it('step seeds differ per step and per use, and repeat for the same inputs', () => {
    const s = new Set([1, 2, 3].flatMap((step) => [1, 2].map((salt) => stepSeed(1, step, salt))));
    expect(s.size).toBe(6);
    expect(stepSeed(9, 4, 1)).toBe(stepSeed(9, 4, 1));
  });
});
