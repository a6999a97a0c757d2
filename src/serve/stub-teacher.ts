/**
 * A stand-in teacher for load tests and fault injection, NOT a model: it speaks the subset of
 * vLLM's completions protocol a VllmTeacher uses (GET /health, GET /v1/models, POST /v1/completions
 * with token-id prompts and prompt_logprobs) and answers at once, with logprobs that are a hash of
 * the position and the ids (the realised token always present, k other candidates ranked).
 *
 * Faults, switchable while it runs: `delayMs` (answers late), `fault: 'malformed'` (a body that is
 * not JSON), `fault: 'http500'`, and kill() (stops listening and drops every connection, as a
 * teacher that dies mid-run).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Socket } from 'node:net';

export interface StubTeacherOptions {
  /** the teacher vocabulary the candidate ids are drawn from */
  vocab: number;
  maxModelLen?: number;
  model?: string;
  port?: number;
  delayMs?: number;
  fault?: 'malformed' | 'http500' | null;
  /** when set, completions need Authorization: Bearer <apiKey> (401 otherwise), as vLLM's --api-key */
  apiKey?: string;
}

export interface StubTeacher {
  readonly url: string;
  /** completions answered so far */
  readonly served: number;
  options: StubTeacherOptions;
  /** Stops listening and drops every open connection at once. */
  kill(): void;
  close(): Promise<void>;
}

function mix(a: number, b: number): number {
  let h = Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(b + 0x632be5ab, 0xc2b2ae35);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  return (h ^ (h >>> 12)) >>> 0;
}

/** prompt_logprobs JSON for ids with k candidates per position (position 0 is null, as vLLM's). */
function promptLogprobs(ids: number[], k: number, vocab: number): string {
  const parts: string[] = ['null'];
  for (let i = 1; i < ids.length; i++) {
    const h = mix(ids[i - 1]!, i);
    // The realised token gets a probability in (0.05, 0.95); candidates share part of the rest.
    const p = 0.05 + 0.9 * ((h & 0xffff) / 0x10000);
    let s = `{"${ids[i]}":{"logprob":${Math.log(p).toFixed(6)},"rank":1}`;
    let rest = 1 - p;
    for (let c = 0; c < k; c++) {
      const id = mix(h, c + 1) % vocab;
      if (id === ids[i]) continue;
      rest *= 0.5;
      s += `,"${id}":{"logprob":${Math.log(rest).toFixed(6)},"rank":${c + 2}}`;
    }
    parts.push(s + '}');
  }
  return `[${parts.join(',')}]`;
}

export async function serveStubTeacher(options: StubTeacherOptions): Promise<StubTeacher> {
  const model = options.model ?? 'stub-teacher';
  let served = 0;
  const sockets = new Set<Socket>();
  const state = { options: { ...options } };
  const server = http.createServer((req, res) => {
    const o = state.options;
    const reply = (status: number, body: string) => {
      const go = () => {
        if (res.destroyed) return;
        res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      };
      if (o.delayMs) setTimeout(go, o.delayMs);
      else go();
    };
    if (req.url === '/health') return reply(200, '{}');
    if (req.url === '/v1/models') return reply(200, JSON.stringify({ object: 'list', data: [{ id: model, object: 'model', max_model_len: o.maxModelLen ?? 32768 }] }));
    if (o.apiKey && req.headers.authorization !== `Bearer ${o.apiKey}`) return reply(401, '{"error":"Unauthorized"}');
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (o.fault === 'malformed') return reply(200, '{"choices": [{"prompt_logprobs": [null, {"1": ');
      if (o.fault === 'http500') return reply(500, '{"error":{"message":"the stub teacher fails on purpose","code":500}}');
      let q: { prompt?: number[]; prompt_logprobs?: number };
      try {
        q = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        return reply(400, '{"error":{"message":"not JSON"}}');
      }
      const ids = q.prompt ?? [];
      served++;
      reply(200, `{"id":"cmpl-stub-${served}","object":"text_completion","model":"${model}","choices":[{"index":0,"text":"","logprobs":null,"finish_reason":"length","prompt_logprobs":${promptLogprobs(ids, q.prompt_logprobs ?? 0, o.vocab)}}]}`);
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    get served() { return served; },
    get options() { return state.options; },
    set options(o) { state.options = o; },
    kill() {
      server.close();
      for (const s of sockets) s.destroy();
    },
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const s of sockets) s.destroy();
    }),
  };
}
