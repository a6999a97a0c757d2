/**
 * Serves any Teacher over the subset of vLLM's OpenAI-compatible protocol a VllmTeacher uses
 * (vllm-protocol.ts): GET /health, GET /v1/models, POST /v1/completions with token-id prompts and
 * `prompt_logprobs: k`. It scores prompts, it does not generate: the completion text is empty.
 * Concurrent requests are batched into one teacher.score call, and calls never overlap (a native
 * model is used from one caller at a time). Bad requests get HTTP 400 with a JSON error.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as check from '../core/check.js';
import { ErrorCode, XopdError } from '../core/errors.js';
import type { ScoreRequest, Teacher, TeacherScores } from '../model/roles.js';
import { errorBody } from './vllm-protocol.js';
import { sequenceLimit } from '../train/limits.js';

export interface TeacherServerOptions {
  /** 0 picks a free port (default 0) */
  port?: number;
  /** default 127.0.0.1 */
  host?: string;
  /** the name /v1/models lists and requests may give as `model` (default 'xopd-teacher') */
  modelName?: string;
  /** largest request body accepted (default 16 MiB); bigger gets HTTP 413 */
  maxBodyBytes?: number;
  /** largest prompt_logprobs accepted, as vLLM's --max-logprobs (default 20) */
  maxLogprobs?: number;
  /** most sequences per teacher.score call (default 64) */
  maxBatch?: number;
  /** longest prompt accepted, in tokens (default: the teacher's maxSequenceLength, else 32768) */
  maxModelLen?: number;
  /** called with each request's outcome (for logs) */
  log?: (line: string) => void;
}

export interface TeacherServer {
  readonly url: string;
  readonly port: number;
  /** Stops accepting, finishes what is in flight, and resolves when the socket is closed. */
  close(): Promise<void>;
}

class BadRequest extends Error {
  constructor(readonly status: number, message: string, readonly type = 'BadRequestError') {
    super(message);
  }
}

interface Job {
  req: ScoreRequest;
  k: number;
  resolve: (s: TeacherScores) => void;
  reject: (e: unknown) => void;
}

/** Queues score requests; one teacher.score call at a time, each over as many queued jobs (same k) as fit. */
class Batcher {
  private queue: Job[] = [];
  private busy = false;
  constructor(private readonly teacher: Teacher, private readonly maxBatch: number) {}

  score(req: ScoreRequest, k: number): Promise<TeacherScores> {
    return new Promise((resolve, reject) => {
      this.queue.push({ req, k, resolve, reject });
      if (!this.busy) setImmediate(() => void this.drain());
    });
  }

  private async drain(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      while (this.queue.length) {
        const k = this.queue[0]!.k;
        const batch: Job[] = [];
        const rest: Job[] = [];
        for (const j of this.queue) (j.k === k && batch.length < this.maxBatch ? batch : rest).push(j);
        this.queue = rest;
        try {
          const out = await this.teacher.score(batch.map((j) => j.req), { topK: k });
          if (!Array.isArray(out) || out.length !== batch.length) throw new XopdError(ErrorCode.NATIVE, `the teacher returned ${Array.isArray(out) ? out.length : 'no'} results for ${batch.length} requests`);
          batch.forEach((j, i) => j.resolve(out[i]!));
        } catch (err) {
          for (const j of batch) j.reject(err);
        }
      }
    } finally {
      this.busy = false;
    }
  }
}

function readBody(req: http.IncomingMessage, max: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > max) return reject(new BadRequest(413, `the request body (${declared} bytes) exceeds the limit of ${max} bytes`));
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      if (over) return;
      size += c.length;
      if (size > max) {
        over = true;
        chunks.length = 0;
        reject(new BadRequest(413, `the request body exceeds the limit of ${max} bytes`));
      } else chunks.push(c);
    });
    req.on('end', () => { if (!over) resolve(Buffer.concat(chunks).toString('utf8')); });
    req.on('error', reject);
  });
}

/**
 * A float32 value as JSON text. Nine significant digits identify a float32 exactly, so a reader
 * that stores the number as float32 gets the teacher's value bit for bit, with half the text.
 */
function num(x: number, what: string): string {
  if (!Number.isFinite(x)) throw new XopdError(ErrorCode.NATIVE, `the teacher returned a non-finite ${what} (${x})`);
  return x.toPrecision(9);
}

export async function serveTeacher(teacher: Teacher, options: TeacherServerOptions = {}): Promise<TeacherServer> {
  const port = options.port === undefined ? 0 : check.int(options.port, 'port', 0, 65535);
  const host = options.host === undefined ? '127.0.0.1' : check.str(options.host, 'host');
  const modelName = options.modelName === undefined ? 'xopd-teacher' : check.str(options.modelName, 'modelName');
  const maxBody = options.maxBodyBytes === undefined ? 16 << 20 : check.int(options.maxBodyBytes, 'maxBodyBytes', 64);
  const maxLogprobs = options.maxLogprobs === undefined ? 20 : check.int(options.maxLogprobs, 'maxLogprobs', 0, 1 << 16);
  const maxBatch = options.maxBatch === undefined ? 64 : check.int(options.maxBatch, 'maxBatch', 1, 1 << 16);
  const own = sequenceLimit(teacher);
  const maxLen = options.maxModelLen === undefined ? (Number.isFinite(own) ? own : 32768) : check.int(options.maxModelLen, 'maxModelLen', 2);
  const log = options.log;
  const vocab = teacher.tokenizer.vocabSize;
  const batcher = new Batcher(teacher, maxBatch);
  const created = Math.floor(Date.now() / 1000);
  // Per id: the JSON of its decoded text and closing brace (built once; ids repeat a lot).
  const tails = new Map<number, string>();
  const tail = (id: number) => {
    let s = tails.get(id);
    if (s === undefined) tails.set(id, (s = `,"decoded_token":${JSON.stringify(teacher.tokenizer.decode([id]))}}`));
    return s;
  };
  let served = 0;

  /** One choice's prompt_logprobs as JSON text: null, then per position the top-k and the realised token. */
  const promptLogprobsJson = (ids: Int32Array, s: TeacherScores, k: number): string => {
    const parts: string[] = ['null'];
    for (let i = 1; i < ids.length; i++) {
      const r = i - 1;
      const realised = ids[i]!;
      const entries: string[] = [];
      let seen = false;
      for (let j = 0; j < k; j++) {
        const id = s.topkIds[r * k + j]!;
        if (id === realised) seen = true;
        // The realised entry carries its logprob from `logprobs`, as vLLM's does.
        const lp = id === realised ? s.logprobs[r]! : s.topkLogprobs[r * k + j]!;
        entries.push(`"${id}":{"logprob":${num(lp, 'logprob')},"rank":${j + 1}${tail(id)}`);
      }
      if (!seen) entries.push(`"${realised}":{"logprob":${num(s.logprobs[r]!, 'logprob')},"rank":null${tail(realised)}`);
      parts.push(`{${entries.join(',')}}`);
    }
    return `[${parts.join(',')}]`;
  };

  const completions = async (body: string): Promise<string> => {
    let q: Record<string, unknown>;
    try {
      q = JSON.parse(body) as Record<string, unknown>;
    } catch (err) {
      throw new BadRequest(400, `the request body is not JSON: ${(err as Error).message}`);
    }
    if (!q || typeof q !== 'object' || Array.isArray(q)) throw new BadRequest(400, 'the request body must be a JSON object');
    if (q.model !== undefined && q.model !== modelName) throw new BadRequest(404, `The model \`${String(q.model)}\` does not exist (this server serves '${modelName}').`, 'NotFoundError');
    if (q.stream === true) throw new BadRequest(400, 'stream is not supported: prompt_logprobs come in one answer');
    const k = q.prompt_logprobs;
    if (typeof k !== 'number' || !Number.isInteger(k) || k < 0) throw new BadRequest(400, 'prompt_logprobs must be an integer >= 0 (this server only scores prompts)');
    if (k > maxLogprobs) throw new BadRequest(400, `Requested prompt logprobs of ${k}, which is greater than max allowed: ${maxLogprobs}`);
    if (q.max_tokens !== undefined && q.max_tokens !== null && q.max_tokens !== 0 && q.max_tokens !== 1)
      throw new BadRequest(400, 'this server scores prompts and generates nothing: max_tokens must be 0 or 1');
    if (q.n !== undefined && q.n !== 1) throw new BadRequest(400, 'n must be 1');
    const p = q.prompt;
    const isIds = (v: unknown): v is number[] => Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'number');
    let prompts: number[][];
    if (isIds(p)) prompts = [p];
    else if (Array.isArray(p) && p.length > 0 && p.every(isIds)) prompts = p as number[][];
    else if (typeof p === 'string' || (Array.isArray(p) && p.some((x) => typeof x === 'string')))
      throw new BadRequest(400, 'prompt must be token ids (a list of integers, or a list of such lists): this server does not tokenize text');
    else throw new BadRequest(400, 'prompt must be a non-empty list of token ids, or a list of such lists');
    const seqs = prompts.map((arr, pi) => {
      if (arr.length > maxLen) throw new BadRequest(400, `prompt ${pi} has ${arr.length} tokens, more than the maximum ${maxLen}`);
      const ids = new Int32Array(arr.length);
      for (let i = 0; i < arr.length; i++) {
        const v = arr[i]!;
        if (!Number.isInteger(v) || v < 0 || v >= vocab) throw new BadRequest(400, `prompt ${pi}: token id ${v} at position ${i} is outside the vocabulary [0, ${vocab})`);
        ids[i] = v;
      }
      return ids;
    });
    const scores = await Promise.all(seqs.map((ids) =>
      ids.length < 2 ? Promise.resolve<TeacherScores>({ logprobs: new Float32Array(0), topkIds: new Int32Array(0), topkLogprobs: new Float32Array(0), k }) : batcher.score({ ids, start: 1 }, k)));
    let promptTokens = 0;
    const choices = seqs.map((ids, i) => {
      const s = scores[i]!;
      if (s.logprobs.length !== ids.length - 1 || s.k !== k || s.topkIds.length !== (ids.length - 1) * k)
        throw new XopdError(ErrorCode.NATIVE, `the teacher returned scores of the wrong shape for a prompt of ${ids.length} tokens`);
      promptTokens += ids.length;
      return `{"index":${i},"text":"","logprobs":null,"finish_reason":"length","stop_reason":null,"prompt_logprobs":${promptLogprobsJson(ids, s, k)}}`;
    });
    return `{"id":"cmpl-xopd-${++served}","object":"text_completion","created":${Math.floor(Date.now() / 1000)},"model":${JSON.stringify(modelName)},"choices":[${choices.join(',')}],"usage":{"prompt_tokens":${promptTokens},"completion_tokens":0,"total_tokens":${promptTokens}}}`;
  };

  const server = http.createServer((req, res) => {
    const t0 = performance.now();
    const send = (status: number, body: string) => {
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
      log?.(`${req.method} ${req.url} ${status} ${(performance.now() - t0).toFixed(1)} ms`);
    };
    const fail = (err: unknown) => {
      if (err instanceof BadRequest) return send(err.status, errorBody(err.status, err.message, err.type));
      const msg = err instanceof XopdError ? `${err.code}: ${err.message}` : String((err as Error)?.message ?? err);
      send(500, errorBody(500, `the teacher failed: ${msg}`, 'InternalServerError'));
    };
    const path = (req.url ?? '/').split('?')[0];
    try {
      if (path === '/health') {
        if (req.method !== 'GET') throw new BadRequest(405, 'use GET /health', 'MethodNotAllowed');
        return send(200, '{}');
      }
      if (path === '/v1/models') {
        if (req.method !== 'GET') throw new BadRequest(405, 'use GET /v1/models', 'MethodNotAllowed');
        return send(200, JSON.stringify({ object: 'list', data: [{ id: modelName, object: 'model', created, owned_by: 'xopd', root: modelName, max_model_len: maxLen }] }));
      }
      if (path === '/v1/completions') {
        if (req.method !== 'POST') throw new BadRequest(405, 'use POST /v1/completions', 'MethodNotAllowed');
        readBody(req, maxBody).then(completions).then((b) => send(200, b), fail);
        return;
      }
      throw new BadRequest(404, `no route ${req.method} ${path}: this server has /health, /v1/models and /v1/completions`, 'NotFoundError');
    } catch (err) {
      fail(err);
    }
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(new XopdError(ErrorCode.ARG_VALUE, e.code === 'EADDRINUSE' ? `port ${port} on ${host} is in use: pick another --port` : `cannot listen on ${host}:${port}: ${e.message}`)));
    server.listen(port, host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const shownHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${shownHost}:${addr.port}`,
    port: addr.port,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
    }),
  };
}
