// Non-finite teacher logprobs on the served path (docs/RELIABILITY.md, "Non-finite values"):
//  - a server (vLLM or other) whose JSON holds a logprob of 1e999 (parses to Infinity), null, or
//    Python's NaN / -Infinity tokens (not JSON): E_TEACHER_RESPONSE after the configured retries;
//  - a teacher behind `xopd serve-teacher` that returns NaN: the server refuses to send it (HTTP 500
//    naming the value), the client retries, then E_TEACHER_HTTP. Never a NaN reaching the loss.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveTeacher, type TeacherServer } from '../src/serve/teacher-server.js';
import { TeacherServerError, VllmTeacher } from '../src/serve/vllm-teacher.js';
import type { ScoreRequest, Teacher, TeacherScores } from '../src/model/roles.js';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { HashTeacher } from './helpers/hash-teacher.js';

let qwen: Tokenizer;
let server: TeacherServer;
let request: ScoreRequest;

beforeAll(async () => {
  qwen = Tokenizer.load('qwen3');
  const prompt = qwen.encode(qwen.applyChatTemplate([{ role: 'user', content: 'What is 48213 + 9377?' }], { addGenerationPrompt: true }), { addSpecialTokens: false });
  const resp = qwen.encode('48213 + 9377 = 57590.', { addSpecialTokens: false });
  request = { ids: Int32Array.from([...prompt, ...resp]), start: prompt.length };
  const likely = new Set<number>(request.ids);
  server = await serveTeacher(new HashTeacher(qwen, likely), { modelName: 'hash-teacher' });
});
afterAll(async () => { await server?.close(); });

/** A proxy to the real server that rewrites the last logprob of each answer. */
async function rewriting(replacement: string): Promise<{ url: string; attempts: () => number; close: () => Promise<void> }> {
  let n = 0;
  const srv = http.createServer((req, res) => {
    n++;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const up = await fetch(server.url + req.url!, { method: req.method, headers: { 'content-type': 'application/json' }, body: Buffer.concat(chunks) });
      const text = await up.text();
      const at = text.lastIndexOf('"logprob":');
      const end = text.slice(at + 10).search(/[,}]/) + at + 10;
      res.setHeader('content-type', 'application/json');
      res.end(text.slice(0, at + 10) + replacement + text.slice(end));
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`, attempts: () => n, close: () => new Promise((r) => srv.close(() => r())) };
}

async function failure(url: string): Promise<TeacherServerError> {
  const client = new VllmTeacher({ baseUrls: url, tokenizer: qwen, model: 'hash-teacher', retries: 2, backoffMs: 5, timeoutMs: 5000 });
  try {
    const err = await client.score([request], { topK: 2 }).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(TeacherServerError);
    return err as TeacherServerError;
  } finally {
    await client.close();
  }
}

let tried = 0;
afterAll(() => console.log(`reliability-teacher: ${tried} non-finite teacher answers tried`));

describe('non-finite teacher logprobs from a server', () => {
  it('the proxy changes nothing when it writes a finite value back (control)', async () => {
    const p = await rewriting('-0.5');
    const client = new VllmTeacher({ baseUrls: p.url, tokenizer: qwen, model: 'hash-teacher', retries: 0, timeoutMs: 5000 });
    try {
      const [s] = await client.score([request], { topK: 2 });
      expect(s!.topkLogprobs.every((x) => Number.isFinite(x))).toBe(true);
    } finally {
      await client.close();
      await p.close();
    }
  });

  for (const [value, says] of [['1e999', /no finite logprob/], ['null', /no finite logprob/], ['NaN', /not JSON/], ['-Infinity', /not JSON/]] as const) {
    it(`a logprob of ${value}: retried, then E_TEACHER_RESPONSE naming the fault`, async () => {
      const p = await rewriting(value);
      try {
        const e = await failure(p.url);
        expect(e.code).toBe('E_TEACHER_RESPONSE');
        expect(e.message).toMatch(says);
        expect(p.attempts()).toBe(3);
        tried++;
      } finally {
        await p.close();
      }
    });
  }

  it('a teacher returning NaN behind xopd serve-teacher: HTTP 500 naming it, retried, then E_TEACHER_HTTP', async () => {
    const inner = new HashTeacher(qwen, new Set<number>(request.ids));
    const nanTeacher: Teacher = {
      tokenizer: qwen,
      async score(reqs, opts): Promise<TeacherScores[]> {
        const out = await inner.score(reqs, opts);
        out[0]!.logprobs[1] = NaN;
        return out;
      },
    };
    const bad = await serveTeacher(nanTeacher, { modelName: 'hash-teacher' });
    try {
      const e = await failure(bad.url);
      expect(e.code).toBe('E_TEACHER_HTTP');
      expect(e.message).toMatch(/HTTP 500.*non-finite/);
      tried++;
    } finally {
      await bad.close();
    }
  });

  it('a server that resets the connection mid-answer: retried, then E_TEACHER_UNREACHABLE naming the reset', async () => {
    let n = 0;
    const srv = http.createServer((req, res) => {
      n++;
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('{"choices": [{"index": 0, "prompt_logprobs": [null, ');
        setTimeout(() => req.socket.destroy(), 5);
      });
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    try {
      const e = await failure(`http://127.0.0.1:${(srv.address() as AddressInfo).port}`);
      expect(e.code).toBe('E_TEACHER_UNREACHABLE');
      expect(e.attempts).toBe(3);
      expect(n).toBe(3);
      expect(e.message).toMatch(/closed the connection mid-answer/);
      tried++;
    } finally {
      await new Promise<void>((r) => srv.close(() => r()));
    }
  });
});
