/**
 * VllmTeacher against real HTTP servers on loopback: the xopd teacher server (numbers equal to the
 * in-process teacher), and a fault-injecting server for every fault kind (down, slow, HTTP 500,
 * malformed JSON, wrong length), with retries and the final XopdError checked.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveTeacher, type TeacherServer } from '../src/serve/teacher-server.js';
import { TeacherServerError, VllmTeacher, apiRoot, failureSummary } from '../src/serve/vllm-teacher.js';
import type { ScoreRequest } from '../src/model/roles.js';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { XopdError } from '../src/core/errors.js';
import { HashTeacher } from './helpers/hash-teacher.js';

let qwen: Tokenizer;
let teacher: HashTeacher;
let server: TeacherServer;
let requests: ScoreRequest[];

const TEXTS = [
  'What is 48213 + 9377? 48213 + 9377 = 57590. The answer is 57590.',
  'Tom has 7204 apples and buys 389 more. 7204 + 389 = 7593.',
  'Naïve café: 3.75% of $2,415.50 — 90.56 per month.',
];

beforeAll(async () => {
  qwen = Tokenizer.load('qwen3');
  const likely = new Set<number>();
  for (const t of TEXTS) for (const id of qwen.encode(t, { addSpecialTokens: false })) likely.add(id);
  for (const d of '0123456789') likely.add(qwen.encode(d, { addSpecialTokens: false })[0]!);
  teacher = new HashTeacher(qwen, likely);
  requests = TEXTS.map((t, j) => {
    const prompt = qwen.encode(qwen.applyChatTemplate([{ role: 'user', content: `question ${j}` }], { addGenerationPrompt: true }), { addSpecialTokens: false });
    const resp = qwen.encode(t, { addSpecialTokens: false });
    const ids = new Int32Array(prompt.length + resp.length);
    ids.set(prompt);
    ids.set(resp, prompt.length);
    return { ids, start: prompt.length };
  });
  // An id outside the likely set, so the realised token is not always in the top-k.
  requests.push({ ids: Int32Array.from([...requests[0]!.ids.slice(0, 20), 100000, 5]), start: 3 });
  server = await serveTeacher(teacher, { modelName: 'hash-teacher' });
});

afterAll(async () => {
  await server?.close();
});

describe('VllmTeacher on a served teacher', () => {
  it('returns exactly the in-process numbers, for k = 0 and k = 8', async () => {
    const client = new VllmTeacher({ baseUrls: server.url, tokenizer: qwen, retries: 0 });
    try {
      for (const k of [0, 8]) {
        const remote = await client.score(requests, { topK: k });
        const local = await teacher.score(requests, { topK: k });
        expect(remote.length).toBe(requests.length);
        for (let j = 0; j < requests.length; j++) {
          expect(remote[j]!.k).toBe(k);
          expect(remote[j]!.logprobs.length).toBe(requests[j]!.ids.length - requests[j]!.start);
          expect(Array.from(remote[j]!.logprobs)).toEqual(Array.from(local[j]!.logprobs));
          expect(Array.from(remote[j]!.topkIds)).toEqual(Array.from(local[j]!.topkIds));
          expect(Array.from(remote[j]!.topkLogprobs)).toEqual(Array.from(local[j]!.topkLogprobs));
        }
      }
      expect(await client.modelName()).toBe('hash-teacher'); // asked from /v1/models
    } finally {
      await client.close();
    }
  });

  it('reads the realised logprob by id even when ranks are misleading', async () => {
    // A vLLM-shaped answer where the realised token is listed first but with a bad rank.
    const ids = Int32Array.from([11, 22, 33]);
    const body = JSON.stringify({ choices: [{ index: 0, text: '', prompt_logprobs: [null,
      { '22': { logprob: -3.5, rank: 1, decoded_token: 'b' }, '7': { logprob: -0.1, rank: 1, decoded_token: 'x' }, '8': { logprob: -0.5, rank: 2, decoded_token: 'y' } },
      { '9': { logprob: -0.2, rank: 1, decoded_token: 'z' }, '33': { logprob: -0.25, rank: 7, decoded_token: 'c' } }] }] });
    const fake = await listen((req, res) => { req.resume(); req.on('end', () => res.end(body)); });
    const client = new VllmTeacher({ baseUrls: fake.url, tokenizer: qwen, model: 'm', retries: 0 });
    try {
      const [s] = await client.score([{ ids, start: 1 }], { topK: 2 });
      expect(Array.from(s!.logprobs)).toEqual([Math.fround(-3.5), Math.fround(-0.25)]);
      expect(Array.from(s!.topkIds)).toEqual([7, 8, 9, 33]);
    } finally {
      await client.close();
      await fake.close();
    }
  });

  it('rotates over several servers and bounds the requests in flight', async () => {
    let inFlight = 0, maxInFlight = 0;
    const counts = [0, 0];
    const proxies = await Promise.all([0, 1].map((s) => listen((req, res) => {
      counts[s]!++;
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      forward(server.url, req, res, 20).finally(() => inFlight--);
    })));
    const client = new VllmTeacher({ baseUrls: proxies.map((p) => p.url + '/v1/'), tokenizer: qwen, model: 'hash-teacher', concurrency: 2, retries: 0 });
    try {
      const many = Array.from({ length: 10 }, (_, i) => requests[i % requests.length]!);
      const out = await client.score(many, { topK: 4 });
      const local = await teacher.score(many, { topK: 4 });
      out.forEach((s, i) => expect(Array.from(s.logprobs)).toEqual(Array.from(local[i]!.logprobs)));
      expect(counts).toEqual([5, 5]);
      expect(maxInFlight).toBe(2);
    } finally {
      await client.close();
      await Promise.all(proxies.map((p) => p.close()));
    }
  });
});

describe('VllmTeacher faults', () => {
  type Fault = 'slow' | '500' | 'malformed' | 'length' | 'ok';
  /** A server that answers attempt i with script[i] (the last entry repeats); 'ok' forwards to the real one. */
  async function faulty(script: Fault[]) {
    let n = 0;
    const f = await listen((req, res) => {
      const what = script[Math.min(n++, script.length - 1)]!;
      if (what === 'ok') return void forward(server.url, req, res);
      req.resume();
      req.on('end', () => {
        if (what === 'slow') setTimeout(() => res.end('{}'), 2000);
        else if (what === '500') { res.statusCode = 500; res.end(JSON.stringify({ error: { message: 'CUDA out of memory', code: 500 } })); }
        else if (what === 'malformed') res.end('{"choices": [{"prompt_logprobs": [null, {"1":');
        else res.end(JSON.stringify({ choices: [{ index: 0, text: '', prompt_logprobs: [null] }] }));
      });
    });
    return { ...f, attempts: () => n };
  }

  const cases: Array<[Fault, string, RegExp]> = [
    ['slow', 'E_TEACHER_TIMEOUT', /timeout.*no complete answer within 150 ms/],
    ['500', 'E_TEACHER_HTTP', /\(http\).*HTTP 500 \(CUDA out of memory\)/],
    ['malformed', 'E_TEACHER_RESPONSE', /\(malformed\).*not JSON/],
    ['length', 'E_TEACHER_RESPONSE', /\(length\).*prompt_logprobs has 1 entries for a prompt of \d+ tokens/],
  ];
  for (const [fault, code, msg] of cases) {
    it(`${fault}: retried as configured, then an XopdError naming the server and the fault`, async () => {
      const f = await faulty([fault]);
      const client = new VllmTeacher({ baseUrls: f.url, tokenizer: qwen, model: 'hash-teacher', retries: 2, backoffMs: 5, timeoutMs: 150 });
      try {
        const err = await client.score([requests[0]!], { topK: 2 }).then(() => null, (e: unknown) => e);
        expect(err).toBeInstanceOf(TeacherServerError);
        expect(err).toBeInstanceOf(XopdError);
        const e = err as TeacherServerError;
        expect(e.code).toBe(code);
        expect(e.attempts).toBe(3);
        expect(e.server).toBe(`${f.url}/v1`);
        expect(e.message).toContain(`teacher server ${f.url}/v1 failed`);
        expect(e.message).toMatch(msg);
        expect(f.attempts()).toBe(3);
      } finally {
        await client.close();
        await f.close();
      }
    });
  }

  it('server down: refused connections are retried, then E_TEACHER_UNREACHABLE names the server', async () => {
    const f = await listen(() => {});
    const url = f.url;
    await f.close(); // nothing listens on this port now
    const client = new VllmTeacher({ baseUrls: url, tokenizer: qwen, model: 'm', retries: 3, backoffMs: 5 });
    const err = (await client.score([requests[0]!], { topK: 1 }).catch((e: unknown) => e)) as TeacherServerError;
    await client.close();
    expect(err.code).toBe('E_TEACHER_UNREACHABLE');
    expect(err.attempts).toBe(4);
    expect(err.message).toContain(`teacher server ${url}/v1 failed (unreachable) after 4 attempts`);
    // Summarised once: the server and the refused connection appear once, not once per attempt.
    expect(err.message.split('server down or unreachable').length - 1).toBe(1);
    expect(err.message.split(url).length - 1).toBe(1);
  });

  it('a failure summary names each server once and counts the earlier errors that differ', () => {
    const msg = failureSummary([
      { server: 'http://a:1/v1', message: 'connect ECONNREFUSED' },
      { server: 'http://b:1/v1', message: 'timed out after 5 ms' },
      { server: 'http://a:1/v1', message: 'connect ECONNREFUSED' },
      { server: 'http://b:1/v1', message: 'timed out after 5 ms' },
    ], 'timeout', 'POST /completions');
    expect(msg).toBe('teacher servers http://a:1/v1, http://b:1/v1 failed (timeout) after 4 attempts of POST /completions; ' +
      'last error (http://b:1/v1): timed out after 5 ms; earlier: http://a:1/v1: connect ECONNREFUSED (2 times)');
  });

  it('recovers when a later attempt succeeds, and fails over from a dead server to a live one', async () => {
    const f = await faulty(['500', 'malformed', 'length', 'ok']);
    const client = new VllmTeacher({ baseUrls: f.url, tokenizer: qwen, model: 'hash-teacher', retries: 3, backoffMs: 1 });
    const [s] = await client.score([requests[1]!], { topK: 3 });
    await client.close();
    await f.close();
    const [local] = await teacher.score([requests[1]!], { topK: 3 });
    expect(Array.from(s!.topkLogprobs)).toEqual(Array.from(local!.topkLogprobs));

    const dead = await listen(() => {});
    await dead.close();
    const both = new VllmTeacher({ baseUrls: [dead.url, server.url], tokenizer: qwen, model: 'hash-teacher', retries: 1, backoffMs: 1 });
    const out = await both.score(requests, { topK: 2 });
    await both.close();
    expect(out.length).toBe(requests.length);
  });

  it('a bad request (HTTP 400) is not retried', async () => {
    const client = new VllmTeacher({ baseUrls: server.url, tokenizer: qwen, model: 'hash-teacher', retries: 3, backoffMs: 1 });
    const err = (await client.score([requests[0]!], { topK: 21 }).catch((e: unknown) => e)) as TeacherServerError;
    await client.close();
    expect(err.code).toBe('E_TEACHER_HTTP');
    expect(err.status).toBe(400);
    expect(err.attempts).toBe(1);
    expect(err.message).toContain('greater than max allowed: 20');
  });

  it('refuses bad arguments before any request', async () => {
    expect(() => new VllmTeacher({ baseUrls: [], tokenizer: qwen })).toThrow(/at least one/);
    expect(() => new VllmTeacher({ baseUrls: 'ftp://x', tokenizer: qwen })).toThrow(/http/);
    expect(apiRoot('http://h:1/')).toBe('http://h:1/v1');
    expect(apiRoot('http://h:1/v1')).toBe('http://h:1/v1');
    const client = new VllmTeacher({ baseUrls: 'http://127.0.0.1:9', tokenizer: qwen, model: 'm' });
    await expect(client.score([{ ids: Int32Array.from([1, 2]), start: 0 }], { topK: 1 })).rejects.toMatchObject({ code: 'E_ARG_RANGE' });
    await expect(client.score([{ ids: Int32Array.from([1, 1 << 30]), start: 1 }], { topK: 1 })).rejects.toMatchObject({ code: 'E_TOKEN_ID' });
    await expect(client.score([{ ids: [1, 2] as unknown as Int32Array, start: 1 }], { topK: 1 })).rejects.toMatchObject({ code: 'E_ARG_TYPE' });
    await client.close();
  });
});

describe('the teacher server', () => {
  async function post(path: string, body: string, method = 'POST') {
    const res = await fetch(server.url + path, { method, body: method === 'GET' ? undefined : body, headers: { 'content-type': 'application/json' } });
    return { status: res.status, json: (await res.json()) as Record<string, any> };
  }

  it('answers /health and /v1/models, and batches a list of prompts into choices', async () => {
    expect((await fetch(server.url + '/health')).status).toBe(200);
    const models = (await post('/v1/models', '', 'GET')).json;
    expect(models.data[0].id).toBe('hash-teacher');
    const ids = Array.from(requests[0]!.ids);
    const r = await post('/v1/completions', JSON.stringify({ model: 'hash-teacher', prompt: [ids, ids.slice(0, 5)], max_tokens: 1, prompt_logprobs: 2 }));
    expect(r.status).toBe(200);
    expect(r.json.choices.length).toBe(2);
    const pl = r.json.choices[1].prompt_logprobs;
    expect(pl.length).toBe(5);
    expect(pl[0]).toBeNull();
    expect(Object.keys(pl[1]).length).toBeGreaterThanOrEqual(2);
    expect(pl[1][String(ids[1])]).toBeDefined();
    expect(r.json.usage.prompt_tokens).toBe(ids.length + 5);
  });

  it('refuses bad requests with a JSON error and the right status', async () => {
    const ids = Array.from(requests[0]!.ids.slice(0, 4));
    const bad: Array<[string, number, RegExp]> = [
      ['{"prompt": [1, 2', 400, /not JSON/],
      ['[1, 2]', 400, /JSON object/],
      [JSON.stringify({ prompt: 'hello', prompt_logprobs: 1 }), 400, /token ids/],
      [JSON.stringify({ prompt: [], prompt_logprobs: 1 }), 400, /non-empty/],
      [JSON.stringify({ prompt: ids }), 400, /prompt_logprobs/],
      [JSON.stringify({ prompt: ids, prompt_logprobs: 1, max_tokens: 16 }), 400, /max_tokens/],
      [JSON.stringify({ prompt: [1, -3], prompt_logprobs: 1 }), 400, /outside the vocabulary/],
      [JSON.stringify({ prompt: [1, 2.5], prompt_logprobs: 1 }), 400, /outside the vocabulary/],
      [JSON.stringify({ prompt: ids, prompt_logprobs: 1, stream: true }), 400, /stream/],
      [JSON.stringify({ model: 'other', prompt: ids, prompt_logprobs: 1 }), 404, /does not exist/],
    ];
    for (const [body, status, msg] of bad) {
      const r = await post('/v1/completions', body);
      expect(r.status, body).toBe(status);
      expect(r.json.error.message, body).toMatch(msg);
    }
    expect((await post('/v1/nothing', '{}')).status).toBe(404);
    expect((await post('/v1/completions', '', 'GET')).status).toBe(405);
  });

  it('refuses a body over the limit with 413', async () => {
    const small = await serveTeacher(teacher, { maxBodyBytes: 1024 });
    try {
      const res = await fetch(small.url + '/v1/completions', { method: 'POST', body: JSON.stringify({ prompt: new Array(2000).fill(1), prompt_logprobs: 1 }) });
      expect(res.status).toBe(413);
      expect(((await res.json()) as any).error.message).toMatch(/exceeds the limit of 1024 bytes/);
    } finally {
      await small.close();
    }
  });
});

// ---- loopback helpers ----

function listen(handler: http.RequestListener): Promise<{ url: string; close: () => Promise<void> }> {
  const s = http.createServer(handler);
  return new Promise((resolve) => s.listen(0, '127.0.0.1', () => {
    const port = (s.address() as AddressInfo).port;
    resolve({
      url: `http://127.0.0.1:${port}`,
      close: () => new Promise<void>((r) => { s.close(() => r()); s.closeAllConnections(); }),
    });
  }));
}

/** Passes a request on to the real teacher server (after an optional delay). */
async function forward(target: string, req: http.IncomingMessage, res: http.ServerResponse, delayMs = 0): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
  const r = await fetch(target + req.url, { method: req.method, body: req.method === 'POST' ? Buffer.concat(chunks) : undefined, headers: { 'content-type': 'application/json' } });
  res.statusCode = r.status;
  res.end(Buffer.from(await r.arrayBuffer()));
}
