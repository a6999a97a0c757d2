/**
 * Faults around `xopd serve` (a child process, two worker threads) with a stub teacher on loopback:
 * a teacher that answers malformed JSON, HTTP 500, too slowly, or dies mid-run (and comes back);
 * 10k requests with 1% malformed bodies (every bad one a 4xx JSON error, every good one answered,
 * no worker lost, memory flat); and SIGTERM, which answers what is in flight before the exit.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveStubTeacher, type StubTeacher } from '../src/serve/stub-teacher.js';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { startCli, type CliServer } from './helpers/serve-process.js';
import { errorOf, llamaSequence, request, trlBody, type Answer } from './helpers/serve-requests.js';

let stub: StubTeacher;
let stubPort: number;
let serve: CliServer;
let llama: Tokenizer;
let qwenVocab: number;

const serveArgs = (teacherUrl: string) => ['serve', '--student-tokenizer', 'llama3', '--teacher-tokenizer', 'qwen3', '--teacher-url', teacherUrl, '--port', '0',
  '--workers', '2', '--per-worker', '16', '--queue-size', '512', '--teacher-retries', '1', '--teacher-timeout', '3000', '--quiet'];

const metric = async (name: string): Promise<number> => {
  const text = (await request(`${serve.url}/metrics`)).text;
  const m = new RegExp(`^${name.replace(/[{}"=/:.]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
};

beforeAll(async () => {
  llama = Tokenizer.load('llama3');
  qwenVocab = Tokenizer.load('qwen3').vocabSize;
  stub = await serveStubTeacher({ vocab: qwenVocab });
  stubPort = Number(new URL(stub.url).port);
  serve = await startCli(serveArgs(stub.url));
}, 300_000);

afterAll(async () => {
  await serve?.stop();
  await stub?.close();
});

const trl = (n: number, topLogprobs = 1) => request(`${serve.url}/get_sequence_logprobs/`, { body: trlBody([llamaSequence(llama, n)], topLogprobs) });

describe('teacher faults', () => {
  it('malformed JSON from the teacher: 502 naming the teacher', async () => {
    stub.options = { ...stub.options, fault: 'malformed' };
    try {
      const a = await trl(1);
      expect(a.status).toBe(502);
      const e = errorOf(a);
      expect(e.xopd_code).toBe('E_TEACHER_RESPONSE');
      expect(e.teacher).toBe(`${stub.url}/v1`);
      expect(e.message).toMatch(/not JSON/);
    } finally {
      stub.options = { ...stub.options, fault: null };
    }
  });

  it('HTTP 500 from the teacher: 502 naming the teacher', async () => {
    stub.options = { ...stub.options, fault: 'http500' };
    try {
      const a = await trl(2);
      expect(a.status).toBe(502);
      expect(errorOf(a).xopd_code).toBe('E_TEACHER_HTTP');
      expect(errorOf(a).message).toMatch(/HTTP 500.*fails on purpose/);
    } finally {
      stub.options = { ...stub.options, fault: null };
    }
  });

  it('a teacher slower than --teacher-timeout: 504 naming the teacher', async () => {
    stub.options = { ...stub.options, delayMs: 3500 };
    try {
      const a = await trl(3);
      expect(a.status).toBe(504);
      expect(errorOf(a).xopd_code).toBe('E_TEACHER_TIMEOUT');
      expect(errorOf(a).teacher).toBe(`${stub.url}/v1`);
    } finally {
      stub.options = { ...stub.options, delayMs: 0 };
    }
    expect(await metric(`xopd_serve_teacher_errors_total{teacher="${stub.url}/v1",fault="timeout"}`)).toBe(1);
    expect(await metric(`xopd_serve_teacher_errors_total{teacher="${stub.url}/v1",fault="malformed"}`)).toBe(1);
  });

  it('a teacher that dies mid-run: the requests it leaves get 502 naming it; back up, it is used again', async () => {
    const answers: Answer[] = [];
    let next = 0;
    const lane = async () => {
      while (next < 60) {
        const n = next++;
        if (n === 20) stub.kill();
        answers.push(await trl(100 + n));
      }
    };
    await Promise.all(Array.from({ length: 6 }, lane));
    const ok = answers.filter((a) => a.status === 200).length;
    const down = answers.filter((a) => a.status === 502);
    expect(ok + down.length).toBe(60);
    expect(ok).toBeGreaterThanOrEqual(14);
    expect(down.length).toBeGreaterThanOrEqual(30);
    for (const a of down) {
      expect(errorOf(a).xopd_code).toBe('E_TEACHER_UNREACHABLE');
      expect(errorOf(a).teacher).toBe(`${stub.url}/v1`);
    }
    expect((await request(`${serve.url}/health`)).status).toBe(200);
    stub = await serveStubTeacher({ vocab: qwenVocab, port: stubPort });
    // The teacher client rests a failed server briefly; within a second it is asked again.
    let back: Answer | undefined;
    for (let t = 0; t < 20 && back?.status !== 200; t++) {
      back = await trl(7);
      if (back.status !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    expect(back!.status).toBe(200);
  });
});

/** Bad bodies of every kind, each with the route it goes to. */
function badBodies(): Array<{ path: string; body: string }> {
  const good = llamaSequence(llama, 9);
  const seq = [...good.prompt, ...good.response];
  const plain = Array.from(llama.encode('no chat template here', { addSpecialTokens: false }));
  const trlPath = '/get_sequence_logprobs/';
  return [
    { path: trlPath, body: 'not json {' },
    { path: trlPath, body: '' },
    { path: trlPath, body: '[1, 2, 3]' },
    { path: trlPath, body: '{"sequences": "abc", "prompt_lengths": []}' },
    { path: trlPath, body: JSON.stringify({ sequences: [seq], prompt_lengths: [1, 2] }) },
    { path: trlPath, body: JSON.stringify({ sequences: [seq], prompt_lengths: [-1] }) },
    { path: trlPath, body: JSON.stringify({ sequences: [[...good.prompt, 999_999_999]], prompt_lengths: [good.prompt.length] }) },
    { path: trlPath, body: JSON.stringify({ sequences: [seq], prompt_lengths: [good.prompt.length], top_logprobs: 100_000 }) },
    { path: trlPath, body: JSON.stringify({ sequences: [[...plain, ...good.response]], prompt_lengths: [plain.length] }) },
    { path: trlPath, body: trlBody([good]).slice(0, 40) },
    { path: '/v1/opd/score', body: '{"items": []}' },
    { path: '/v1/opd/score', body: JSON.stringify({ items: [{ prompt_ids: good.prompt, response_ids: good.response, student_logprobs: [0.5] }] }) },
  ];
}

describe('load with malformed requests', () => {
  it('10k requests, 1% malformed: every bad one a 4xx JSON error, every good one answered, no worker lost, memory flat', async () => {
    // Under the sanitizer build (XOPD_SANITIZED, several times slower) the same mix runs 2k requests.
    const N = process.env.XOPD_SANITIZED ? 2000 : 10_000, CONCURRENCY = 32;
    const bad = badBodies();
    const prompts = Array.from({ length: 50 }, (_, n) => llamaSequence(llama, n));
    const goodBodies = prompts.map((s) => trlBody([s]));
    let next = 0, goodOk = 0, badOk = 0;
    const failures: string[] = [];
    let rssAt2k = NaN;
    const lane = async () => {
      for (;;) {
        const n = next++;
        if (n >= N) return;
        if (n === N / 5) rssAt2k = await metric('process_resident_memory_bytes');
        if (n % 100 === 37) {
          const b = bad[(n / 100 | 0) % bad.length]!;
          const a = await request(`${serve.url}${b.path}`, { body: b.body });
          let code = '';
          try {
            code = errorOf(a).xopd_code;
          } catch {
            /* not JSON: counted below */
          }
          if (a.status >= 400 && a.status < 500 && /^E_[A-Z_]+$/.test(code)) badOk++;
          else failures.push(`bad #${n} (${b.body.slice(0, 30)}): ${a.status} ${a.text.slice(0, 120)}`);
        } else {
          const s = prompts[n % prompts.length]!;
          const a = await request(`${serve.url}/get_sequence_logprobs/`, { body: goodBodies[n % prompts.length]! });
          if (a.status === 200 && JSON.parse(a.text).completion_lengths[0] === s.response.length) goodOk++;
          else failures.push(`good #${n}: ${a.status} ${a.text.slice(0, 120)}`);
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, lane));
    expect(failures.slice(0, 5)).toEqual([]);
    expect(badOk).toBe(N / 100);
    expect(goodOk).toBe(N - N / 100);
    expect(await metric('xopd_serve_workers')).toBe(2);
    expect(await metric('xopd_serve_worker_restarts_total')).toBe(0);
    const rssEnd = await metric('process_resident_memory_bytes');
    // The requests after the first fifth must not make the server's resident memory keep growing.
    expect(rssEnd - rssAt2k).toBeLessThan(64 * 2 ** 20);
    console.log(`serve RSS ${(rssAt2k / 2 ** 20).toFixed(0)} MiB after ${N / 5} requests, ${(rssEnd / 2 ** 20).toFixed(0)} MiB after ${N}`);
  }, 120_000);
});

describe('SIGTERM', () => {
  it('answers the requests in flight, refuses new connections, and exits 0', async () => {
    stub.options = { ...stub.options, delayMs: 400 };  // under --teacher-timeout
    const inflight = [trl(201), trl(202), trl(203)];
    await new Promise((r) => setTimeout(r, 100));
    const exited = serve.stop('SIGTERM');
    const answers = await Promise.all(inflight);
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
    expect(await exited).toBe(0);
    await expect(request(`${serve.url}/health`)).rejects.toThrow(/ECONNREFUSED/);
  });
});
