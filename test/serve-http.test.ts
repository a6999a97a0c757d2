/**
 * The HTTP behaviour of `xopd serve` on loopback, with a stub teacher that answers at once: the
 * loopback default, the API key on every route but /health (constant-time Bearer check), the body
 * limit, 429 + Retry-After when the queue is full, the per-request timeout, JSON errors for wrong
 * routes and methods, /metrics in Prometheus text, the JSON schemas of /v1/opd/score (and the
 * documented copy), and a VllmTeacher that sends its key to a teacher that needs one.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveOpd, type OpdServer } from '../src/serve/server.js';
import { serveStubTeacher, type StubTeacher } from '../src/serve/stub-teacher.js';
import { OPD_SCORE_REQUEST_SCHEMA, OPD_SCORE_RESPONSE_SCHEMA } from '../src/serve/opd-route.js';
import { VllmTeacher } from '../src/serve/vllm-teacher.js';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { ROOT, ensureBuilt } from './helpers/built.js';
import { errorOf, llamaQwenConfig, llamaSequence, request, trlBody } from './helpers/serve-requests.js';
import { validate } from './helpers/json-schema.js';
import { runCli } from './helpers/cli.js';

const KEY = 'test-key-7f3a';
const TEACHER_KEY = 'teacher-key-91c2';
let stub: StubTeacher;
let server: OpdServer;
let llama: Tokenizer;
const auth = { authorization: `Bearer ${KEY}` };

beforeAll(async () => {
  ensureBuilt();  // the worker threads run the compiled worker
  llama = Tokenizer.load('llama3');
  const qwenVocab = Tokenizer.load('qwen3').vocabSize;
  stub = await serveStubTeacher({ vocab: qwenVocab, apiKey: TEACHER_KEY });
  server = await serveOpd({
    config: llamaQwenConfig(stub.url, { teacherApiKey: TEACHER_KEY }),
    workers: 1, perWorker: 1, queueSize: 1, maxBodyBytes: 64 * 1024, requestTimeoutMs: 3000, apiKey: KEY,
  });
  // First use builds the projector's trie and asks the teacher's /v1/models: pay that before the timed tests.
  expect((await request(`${server.url}/get_sequence_logprobs/`, { body: trlBody([llamaSequence(llama, 0)]), headers: auth })).status).toBe(200);
}, 300_000);

afterAll(async () => {
  await server?.close();
  await stub?.close();
});

describe('xopd serve on the command line', () => {
  it('lists its options and refuses a start without its required ones', async () => {
    const help = await runCli(['serve', '--help']);
    expect(help.code).toBe(0);
    for (const o of ['--student-tokenizer', '--teacher-tokenizer', '--teacher-url', '--api-key', '--workers', '--queue-size', '--request-timeout', '--teacher-top-k'])
      expect(help.out).toContain(o);
    expect((await runCli(['--help'])).out).toMatch(/^ {2}serve /m);
    const missing = await runCli(['serve', '--student-tokenizer', 'llama3', '--teacher-tokenizer', 'qwen3']);
    expect(missing.code).toBe(2);
    expect(missing.err).toMatch(/--teacher-url is required/);
  });
});

describe('xopd serve over HTTP', () => {
  it('listens on 127.0.0.1 unless told otherwise', () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('/health needs no key; every other route answers 401 without the right one', async () => {
    expect((await request(`${server.url}/health`)).status).toBe(200);
    expect((await request(`${server.url}/health/`)).status).toBe(200);
    const body = trlBody([llamaSequence(llama, 1)]);
    for (const headers of [{}, { authorization: 'Bearer wrong' }, { authorization: KEY }, { authorization: `Bearer ${KEY}x` }]) {
      const a = await request(`${server.url}/get_sequence_logprobs/`, { body, headers });
      expect(a.status).toBe(401);
      expect(a.headers['www-authenticate']).toBe('Bearer');
      expect(errorOf(a).xopd_code).toBe('E_UNAUTHORIZED');
    }
    for (const p of ['/metrics', '/v1/opd/schema']) expect((await request(`${server.url}${p}`)).status).toBe(401);
    expect((await request(`${server.url}/v1/opd/score`, { body: '{}' })).status).toBe(401);
    const ok = await request(`${server.url}/get_sequence_logprobs/`, { body, headers: auth });
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.text).completion_lengths).toEqual([llamaSequence(llama, 1).response.length]);
  });

  it('a teacher that needs a key gets it from VllmTeacher (and refuses a client without it, naming the teacher)', async () => {
    const qwen = Tokenizer.load('qwen3');
    const ids = qwen.encode('1 + 1 = 2', { addSpecialTokens: false });
    const withKey = new VllmTeacher({ baseUrls: stub.url, tokenizer: qwen, apiKey: TEACHER_KEY, retries: 0 });
    const without = new VllmTeacher({ baseUrls: stub.url, tokenizer: qwen, retries: 0, model: 'stub-teacher' });
    try {
      const [s] = await withKey.score([{ ids, start: 1 }], { topK: 2 });
      expect(s!.logprobs.length).toBe(ids.length - 1);
      await expect(without.score([{ ids, start: 1 }], { topK: 2 })).rejects.toThrow(new RegExp(`teacher server ${stub.url}/v1 failed \\(http\\).*HTTP 401`));
    } finally {
      await withKey.close();
      await without.close();
    }
  });

  it('refuses bodies over the limit with 413, declared or streamed', async () => {
    const big = Buffer.alloc(100 * 1024, 0x20);
    const declared = await request(`${server.url}/v1/opd/score`, { body: big, headers: auth });
    expect(declared.status).toBe(413);
    expect(errorOf(declared).xopd_code).toBe('E_BODY_TOO_LARGE');
    const streamed = await request(`${server.url}/v1/opd/score`, { body: big, headers: { ...auth, 'transfer-encoding': 'chunked' } });
    expect(streamed.status).toBe(413);
    expect((await request(`${server.url}/health`)).status).toBe(200);
  });

  it('answers wrong routes and methods with JSON errors', async () => {
    const a = await request(`${server.url}/v1/completions`, { body: '{}', headers: auth });
    expect(a.status).toBe(404);
    expect(errorOf(a).message).toMatch(/get_sequence_logprobs/);
    const b = await request(`${server.url}/get_sequence_logprobs/`, { headers: auth });
    expect(b.status).toBe(405);
    expect(b.headers.allow).toBe('POST');
  });

  it('serves the JSON schemas of /v1/opd/score, and the documented copy is the same', async () => {
    const a = await request(`${server.url}/v1/opd/schema`, { headers: auth });
    expect(a.status).toBe(200);
    const served = JSON.parse(a.text);
    expect(served).toEqual({ request: JSON.parse(JSON.stringify(OPD_SCORE_REQUEST_SCHEMA)), response: JSON.parse(JSON.stringify(OPD_SCORE_RESPONSE_SCHEMA)) });
    const doc = JSON.parse(readFileSync(path.join(ROOT, 'docs', 'opd-score.schema.json'), 'utf8'));
    expect(doc).toEqual(served);
  });

  it('a /v1/opd/score answer fits its schema; a request outside it is a 400 naming the field', async () => {
    const s = llamaSequence(llama, 3);
    const body = { items: [{ prompt_ids: s.prompt, response_ids: s.response, student_logprobs: s.response.map(() => -0.25) }, { messages: [{ role: 'user', content: 'hi' }], response_ids: s.response }], spans: true };
    expect(validate(OPD_SCORE_REQUEST_SCHEMA, body)).toEqual([]);
    const a = await request(`${server.url}/v1/opd/score`, { body: JSON.stringify(body), headers: auth });
    expect(a.status).toBe(200);
    const out = JSON.parse(a.text);
    expect(validate(OPD_SCORE_RESPONSE_SCHEMA, out)).toEqual([]);
    expect(out.items[0].logprob.length).toBe(s.response.length);
    expect(out.items[0].advantage.length).toBe(s.response.length);
    // Revision 1 on request: single ids only, no groups.
    const first = await request(`${server.url}/v1/opd/score`, { body: JSON.stringify({ ...body, projection: 'first' }), headers: auth });
    expect(first.status).toBe(200);
    const r1 = JSON.parse(first.text);
    expect(validate(OPD_SCORE_RESPONSE_SCHEMA, r1)).toEqual([]);
    for (const it of r1.items) {
      expect(it.spans.ids.every((id: number) => id >= 0)).toBe(true);
      expect(it.spans.groups).toEqual({ bucket: [], ptr: [0], members: [] });
    }
    const badProjection = await request(`${server.url}/v1/opd/score`, { body: JSON.stringify({ ...body, projection: 'last' }), headers: auth });
    expect(badProjection.status).toBe(400);
    expect(errorOf(badProjection).message).toMatch(/projection must be one of "first", "prefix"/);
    const wrong = await request(`${server.url}/v1/opd/score`, { body: JSON.stringify({ items: [{ response_ids: [1], prompt_ids: [1], extra: 1 }] }), headers: auth });
    expect(wrong.status).toBe(400);
    expect(errorOf(wrong).message).toMatch(/unknown field 'extra'/);
  });

  it('refuses with 429 and Retry-After when every slot and the queue are taken', async () => {
    stub.options = { ...stub.options, delayMs: 400 };
    try {
      const body = trlBody([llamaSequence(llama, 4)]);
      const answers = await Promise.all(Array.from({ length: 6 }, () => request(`${server.url}/get_sequence_logprobs/`, { body, headers: auth })));
      const statuses = answers.map((a) => a.status).sort();
      expect(statuses.filter((s) => s === 200).length).toBe(2);  // one working, one queued
      expect(statuses.filter((s) => s === 429).length).toBe(4);
      for (const a of answers.filter((x) => x.status === 429)) {
        expect(a.headers['retry-after']).toBe('1');
        expect(errorOf(a).xopd_code).toBe('E_OVERLOADED');
      }
    } finally {
      stub.options = { ...stub.options, delayMs: 0 };
    }
  });

  it('answers 504 when a request takes longer than --request-timeout', async () => {
    stub.options = { ...stub.options, delayMs: 4000 };
    try {
      const a = await request(`${server.url}/get_sequence_logprobs/`, { body: trlBody([llamaSequence(llama, 5)]), headers: auth });
      expect(a.status).toBe(504);
      expect(errorOf(a).xopd_code).toBe('E_REQUEST_TIMEOUT');
    } finally {
      stub.options = { ...stub.options, delayMs: 0 };
    }
  });

  it('/metrics: Prometheus text with requests, latency histogram, tokens and the gauges', async () => {
    const text = (await request(`${server.url}/metrics`, { headers: auth })).text;
    expect(text).toMatch(/^# HELP xopd_serve_requests_total /m);
    expect(text).toMatch(/^xopd_serve_requests_total\{route="trl",status="200"\} [1-9]\d*$/m);
    expect(text).toMatch(/^xopd_serve_requests_total\{route="trl",status="429"\} 4$/m);
    expect(text).toMatch(/^xopd_serve_requests_total\{route="trl",status="401"\} 4$/m);
    expect(text).toMatch(/^xopd_serve_request_duration_seconds_bucket\{route="trl",le="\+Inf"\} \d+$/m);
    expect(text).toMatch(/^xopd_serve_student_tokens_total [1-9]\d*$/m);
    expect(text).toMatch(/^xopd_serve_rejected_total 4$/m);
    expect(text).toMatch(/^xopd_serve_workers 1$/m);
    expect(text).toMatch(/^process_resident_memory_bytes \d+$/m);
    // Every sample line is `name{labels} value`.
    for (const line of text.trim().split('\n')) if (!line.startsWith('#')) expect(line).toMatch(/^[a-z_]+(\{[^}]*\})? [-+0-9.eInf]+$/);
  });
});
