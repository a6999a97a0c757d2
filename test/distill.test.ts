/**
 * The OPD loop end to end on the shipped models: the teacher served by the xopd teacher server on
 * loopback gives exactly the in-process teacher's numbers, and distillation steps driven through the
 * served teacher equal, number for number, the same steps with the in-process teacher.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Distiller, identityAlignment, stepSeed, type DistillOptions } from '../src/train/distiller.js';
import { DEFAULT_STUDENT, DEFAULT_TEACHER } from '../src/run/job.js';
import { arithmeticDistillTask } from '../src/tasks/distill-task.js';
import { serveTeacher, type TeacherServer } from '../src/serve/teacher-server.js';
import { VllmTeacher } from '../src/serve/vllm-teacher.js';
import { TokenizerBridge } from '../src/align/bridge.js';
import { ChunkFlags } from '../src/align/types.js';
import { Model } from '../src/model/model.js';
import { sequenceLimit } from '../src/train/limits.js';
import type { Teacher } from '../src/model/roles.js';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { packageRoot, setThreads } from '../src/core/native.js';
import path from 'node:path';

// The Llama 3 student: its 3-digit number tokens against the teacher's digits make chunks that are
// not 1:1 (the shipped default student, Gemma 3, writes digits one per token like the teacher).
const LLAMA3_STUDENT = path.join(packageRoot, 'models', 'student-llama3');

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
    const a = Model.load(LLAMA3_STUDENT), b = Model.load(LLAMA3_STUDENT);
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

describe('span projection revisions', () => {
  it("the Distiller projects with its projection option: same rollouts, other targets under 'first' and 'prefix'", async () => {
    const run = async (projection: 'first' | 'prefix') => {
      const d = new Distiller({ student: Model.load(LLAMA3_STUDENT), teacher, task },
        { loss: 'span-kl', divergence: 'forward-kl', projection, batchSize: 4, evalSize: 0, seed: 3, maxTokens: 60 });
      expect(d.options.projection).toBe(projection);
      return d.step(1);
    };
    const [first, prefix] = [await run('first'), await run('prefix')];
    expect(prefix.studentTokens).toBe(first.studentTokens);  // the same samples and chunks
    expect(prefix.chunks).toBe(first.chunks);
    expect(prefix.lossSpanKl).not.toBe(first.lossSpanKl);  // groups where the teacher leaves a number inside a student token
    expect(new Distiller({ student: Model.load(LLAMA3_STUDENT), teacher, task }).options.projection).toBe('prefix');
  });
});

describe('context limits', () => {
  it("a teacher response longer than the teacher's context is cut; the student tokens past the cut are masked", async () => {
    const student = Model.load(DEFAULT_STUDENT);
    const bridge = new TokenizerBridge(student.tokenizer, teacher.tokenizer);
    const promptLen = bridge.renderPrompts(task.trainPrompts(1, 1)[0]!).teacher.length;
    // A teacher with a short context: 10 response tokens fit, fewer than the retokenized responses hold
    // (an answer such as "908 + 5402 = 6310. The answer is 6310." takes about 30 Qwen 3 tokens).
    const short: Teacher = { tokenizer: teacher.tokenizer, maxSequenceLength: promptLen + 10, score: (r, o) => {
      for (const q of r) expect(q.ids.length).toBeLessThanOrEqual(promptLen + 10);
      return teacher.score(r, o);
    } };
    const d = new Distiller({ student, teacher: short, task }, { loss: 'chunk-pg=1,span-kl=1', batchSize: 4, evalSize: 0, seed: 2, maxTokens: 40 });
    const r = await d.step(1);
    expect(r.maskedShare).toBeGreaterThan(0.05);
    expect(r.maskedShare).toBeLessThan(1);
    expect(Number.isFinite(r.loss)).toBe(true);
    expect(sequenceLimit(teacher)).toBe(teacher.config.maxSeqLen);
    expect(sequenceLimit(short)).toBe(promptLen + 10);
  });
});

describe('distiller pieces', () => {
  it('identical tokenizers: every token its own 1:1 chunk, TAIL past the teacher', () => {
    const a = identityAlignment(4, 3);
    expect(a.chunkCount).toBe(4);
    expect(Array.from(a.flags)).toEqual([0, 0, 0, ChunkFlags.TAIL]);
    expect(Array.from(a.teacherEnd)).toEqual([1, 2, 3, 3]);
  });

  it('the fast path alignment is what the aligner gives on identical tokenizers, but per token inside a character', () => {
    const qwen = Tokenizer.load('qwen3');
    const bridge = new TokenizerBridge(qwen, qwen);
    expect(bridge.sameVocabulary).toBe(true);
    const eos = qwen.eosIds[0]!;
    const plain = Int32Array.from([...qwen.encode('Mia has 4821 apples. 4821 + 377 = 5198. The answer is 5198. Naïve café.', { addSpecialTokens: false }), eos]);
    const fast = identityAlignment(plain.length);
    const slow = bridge.align(plain, plain);
    for (const key of ['studentStart', 'studentEnd', 'teacherStart', 'teacherEnd', 'flags', 'studentChunk'] as const)
      expect(Array.from(fast[key]), key).toEqual(Array.from(slow[key]));
    // Tokens holding part of a UTF-8 character: the aligner (a cross-tokenizer tool) groups them up
    // to a character boundary; with the same ids on both sides the fast path compares them one by one.
    const emoji = Int32Array.from(qwen.encode('ok 🎉🎉 done', { addSpecialTokens: false }));
    const grouped = bridge.align(emoji, emoji);
    expect(grouped.chunkCount).toBeLessThan(emoji.length);
    const offs = qwen.byteOffsets(emoji);
    const bytes = qwen.bytesOf(emoji);
    for (let c = 0; c < grouped.chunkCount; c++) {
      const s0 = grouped.studentStart[c]!, s1 = grouped.studentEnd[c]!;
      // a chunk ends on a character boundary (the next byte is not a continuation byte)
      const end = offs[s1]!;
      expect(end === bytes.length || (bytes[end]! & 0xc0) !== 0x80).toBe(true);
      // inner token boundaries of a multi-token chunk split a character
      for (let t = s0 + 1; t < s1; t++) expect((bytes[offs[t]!]! & 0xc0) === 0x80).toBe(true);
    }
    expect(identityAlignment(emoji.length).chunkCount).toBe(emoji.length);
  });

  it('step seeds differ per step and per use, and repeat for the same inputs', () => {
    const s = new Set([1, 2, 3].flatMap((step) => [1, 2].map((salt) => stepSeed(1, step, salt))));
    expect(s.size).toBe(6);
    expect(stepSeed(9, 4, 1)).toBe(stepSeed(9, 4, 1));
  });
});
