/**
 * VllmTeacher: a Teacher served over vLLM's OpenAI-compatible completions protocol (see
 * vllm-protocol.ts), by vLLM itself or by `xopd serve-teacher`. One HTTP request per sequence;
 * several base URLs in rotation, bounded concurrency, a timeout per attempt, and retries with
 * exponential backoff (a retry goes to the next server). When every attempt fails the error is an
 * XopdError whose code says the fault and whose message names the server.
 */
import http from 'node:http';
import https from 'node:https';
import * as check from '../core/check.js';
import { ErrorCode, XopdError } from '../core/errors.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import type { ScoreRequest, Teacher, TeacherScores } from '../model/roles.js';
import { ProtocolFault, errorMessage, readCompletion } from './vllm-protocol.js';

export interface VllmTeacherOptions {
  /** One or more servers: `http://host:8000` or `http://host:8000/v1` (requests rotate over them). */
  baseUrls: string | string[];
  /** The teacher's tokenizer (the ids sent are its ids). */
  tokenizer: Tokenizer;
  /** The served model's name; default: the first model the first reachable server lists at /v1/models. */
  model?: string;
  /** Requests in flight at once, over all servers (default 4 per server). */
  concurrency?: number;
  /** Time allowed for one attempt, from sending to the last byte of the answer (default 60000 ms). */
  timeoutMs?: number;
  /** Attempts after the first one fails (default 3). Bad requests (HTTP 4xx but 408/429) are not retried. */
  retries?: number;
  /** Backoff before the first retry (default 250 ms); doubles each retry, with jitter, up to maxBackoffMs. */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** Sent as `Authorization: Bearer <apiKey>` (default: the XOPD_TEACHER_API_KEY environment variable), as vLLM's --api-key expects. */
  apiKey?: string;
  /** Larger answers are refused as malformed (default 256 MiB). */
  maxResponseBytes?: number;
  /** The server's context limit in tokens (default: max_model_len from /v1/models once modelName() has run, else none) */
  maxSequenceLength?: number;
}

export type TeacherFault = 'unreachable' | 'timeout' | 'http' | 'malformed' | 'length';

const FAULT_CODE: Record<TeacherFault, string> = {
  unreachable: ErrorCode.TEACHER_UNREACHABLE,
  timeout: ErrorCode.TEACHER_TIMEOUT,
  http: ErrorCode.TEACHER_HTTP,
  malformed: ErrorCode.TEACHER_RESPONSE,
  length: ErrorCode.TEACHER_RESPONSE,
};

/** The error a VllmTeacher raises when a request failed for good. */
export class TeacherServerError extends XopdError {
  constructor(readonly server: string, readonly fault: TeacherFault, readonly attempts: number, message: string, readonly status?: number) {
    super(FAULT_CODE[fault], message);
    this.name = 'TeacherServerError';
  }
}

/**
 * One message for a request that failed for good: each server named once, the last error in full,
 * and earlier errors that differ from it once each with their count (a down server's "connection
 * refused" does not repeat per attempt).
 */
export function failureSummary(history: Array<{ server: string; message: string }>, fault: TeacherFault, what: string): string {
  const tries = history.length;
  const servers = [...new Set(history.map((h) => h.server))];
  const last = history[tries - 1]!;
  const earlier = new Map<string, number>();
  for (const h of history.slice(0, -1)) {
    const key = servers.length > 1 ? `${h.server}: ${h.message}` : h.message;
    if (key !== (servers.length > 1 ? `${last.server}: ${last.message}` : last.message)) earlier.set(key, (earlier.get(key) ?? 0) + 1);
  }
  const others = [...earlier].map(([m, n]) => (n > 1 ? `${m} (${n} times)` : m));
  return `teacher server${servers.length > 1 ? 's' : ''} ${servers.join(', ')} failed (${fault}) after ${tries} attempt${tries > 1 ? 's' : ''} of ${what}; ` +
    `last error${servers.length > 1 ? ` (${last.server})` : ''}: ${last.message}${others.length ? `; earlier: ${others.join('; ')}` : ''}`;
}

class Attempt extends Error {
  constructor(readonly fault: TeacherFault, message: string, readonly retryable: boolean, readonly status?: number) {
    super(message);
  }
}

/** Normalises `http://h:p`, `http://h:p/`, `http://h:p/v1` to the API root `http://h:p/v1`. */
export function apiRoot(baseUrl: string): string {
  let u: URL;
  try {
    u = new URL(baseUrl);
  } catch {
    throw new XopdError(ErrorCode.ARG_VALUE, `teacher URL ${JSON.stringify(baseUrl)} is not a URL; give e.g. http://127.0.0.1:8000`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new XopdError(ErrorCode.ARG_VALUE, `teacher URL ${baseUrl} must be http:// or https://`);
  let p = u.pathname.replace(/\/+$/, '');
  if (!p.endsWith('/v1')) p += '/v1';
  return `${u.protocol}//${u.host}${p}`;
}

/** A counting semaphore: at most `n` holders at once, FIFO. */
class Gate {
  private free: number;
  private readonly waiting: Array<() => void> = [];
  constructor(n: number) {
    this.free = n;
  }
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((r) => this.waiting.push(r));
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    }
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class VllmTeacher implements Teacher {
  readonly tokenizer: Tokenizer;
  readonly servers: readonly string[];
  /** the served model's context (prompt + response ids), when known */
  maxSequenceLength: number | undefined;
  private model: string | undefined;
  private modelLookup: Promise<string> | undefined;
  private readonly opts: Required<Omit<VllmTeacherOptions, 'model' | 'apiKey' | 'baseUrls' | 'tokenizer' | 'maxSequenceLength'>> & { apiKey?: string };
  private readonly gate: Gate;
  private readonly agents: { http: http.Agent; https: https.Agent };
  private next = 0;
  /** per server: not before this time (ms) after a fault, unless every server is resting */
  private readonly restUntil: number[];
  private closed = false;

  constructor(options: VllmTeacherOptions) {
    check.object(options, 'VllmTeacher options', '{ baseUrls, tokenizer }');
    const urls = typeof options.baseUrls === 'string' ? [options.baseUrls] : options.baseUrls;
    if (!Array.isArray(urls) || urls.length === 0) throw new XopdError(ErrorCode.ARG_VALUE, 'baseUrls must name at least one teacher server');
    this.servers = urls.map((u) => apiRoot(check.str(u, 'baseUrls[]')));
    if (!options.tokenizer || typeof (options.tokenizer as Tokenizer).encode !== 'function')
      throw new XopdError(ErrorCode.ARG_TYPE, 'tokenizer must be the teacher Tokenizer');
    this.tokenizer = options.tokenizer;
    this.model = options.model === undefined ? undefined : check.str(options.model, 'model');
    this.maxSequenceLength = options.maxSequenceLength === undefined ? undefined : check.int(options.maxSequenceLength, 'maxSequenceLength', 2);
    this.opts = {
      concurrency: options.concurrency === undefined ? 4 * this.servers.length : check.int(options.concurrency, 'concurrency', 1, 4096),
      timeoutMs: options.timeoutMs === undefined ? 60_000 : check.num(options.timeoutMs, 'timeoutMs', 1, 24 * 3600 * 1000),
      retries: options.retries === undefined ? 3 : check.int(options.retries, 'retries', 0, 100),
      backoffMs: options.backoffMs === undefined ? 250 : check.num(options.backoffMs, 'backoffMs', 0, 600_000),
      maxBackoffMs: options.maxBackoffMs === undefined ? 10_000 : check.num(options.maxBackoffMs, 'maxBackoffMs', 0, 3_600_000),
      maxResponseBytes: options.maxResponseBytes === undefined ? 256 << 20 : check.int(options.maxResponseBytes, 'maxResponseBytes', 1024),
      apiKey: options.apiKey === undefined ? (process.env.XOPD_TEACHER_API_KEY || undefined) : check.str(options.apiKey, 'apiKey'),
    };
    this.gate = new Gate(this.opts.concurrency);
    this.agents = {
      http: new http.Agent({ keepAlive: true, maxSockets: this.opts.concurrency }),
      https: new https.Agent({ keepAlive: true, maxSockets: this.opts.concurrency }),
    };
    this.restUntil = this.servers.map(() => 0);
  }

  async score(requests: ScoreRequest[], opts: { topK: number }): Promise<TeacherScores[]> {
    if (this.closed) throw new XopdError(ErrorCode.ARG_VALUE, 'this VllmTeacher is closed');
    check.array(requests, 'requests', '{ ids, start }');
    const k = check.int(opts?.topK, 'topK', 0, 1 << 16);
    const vocab = this.tokenizer.vocabSize;
    requests.forEach((r, j) => {
      check.typed(r?.ids, Int32Array, `requests[${j}].ids`);
      // vLLM has no logprob for position 0 (nothing predicts it), so the response starts at 1 or later.
      check.int(r.start, `requests[${j}].start`, 1, r.ids.length);
      for (let i = 0; i < r.ids.length; i++)
        if (r.ids[i]! < 0 || r.ids[i]! >= vocab) throw new XopdError(ErrorCode.TOKEN_ID, `requests[${j}].ids[${i}] = ${r.ids[i]} is outside the teacher vocabulary [0, ${vocab})`);
    });
    const model = await this.modelName();
    return Promise.all(requests.map((r) => {
      if (r.start === r.ids.length) return Promise.resolve({ logprobs: new Float32Array(0), topkIds: new Int32Array(0), topkLogprobs: new Float32Array(0), k });
      const body = `{"model":${JSON.stringify(model)},"prompt":[${r.ids.join(',')}],"max_tokens":1,"temperature":0,"prompt_logprobs":${k}}`;
      return this.gate.run(() => this.withRetries('POST', '/completions', body, (json) => readCompletion(json, r.ids, r.start, k)));
    }));
  }

  /**
   * The served model's name: asks /v1/models once when it was not given, and takes the model's
   * max_model_len (vLLM lists it) as maxSequenceLength when that was not given either.
   */
  async modelName(): Promise<string> {
    if (this.model !== undefined) return this.model;
    this.modelLookup ??= this.withRetries('GET', '/models', undefined, (json) => {
      const data = (json as { data?: unknown })?.data;
      const entry = Array.isArray(data) ? (data[0] as { id?: unknown; max_model_len?: unknown } | undefined) : undefined;
      if (typeof entry?.id !== 'string') throw new ProtocolFault('malformed', '/v1/models lists no model');
      const len = entry.max_model_len;
      if (this.maxSequenceLength === undefined && typeof len === 'number' && Number.isInteger(len) && len >= 2) this.maxSequenceLength = len;
      return entry.id;
    }).then((m) => (this.model = m), (err) => {
      this.modelLookup = undefined;
      throw err;
    });
    return this.modelLookup;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.agents.http.destroy();
    this.agents.https.destroy();
  }

  /** Picks the next server in rotation, skipping those resting after a fault while others are fine. */
  private pick(): number {
    const now = Date.now();
    const n = this.servers.length;
    for (let t = 0; t < n; t++) {
      const s = (this.next + t) % n;
      if (this.restUntil[s]! <= now) {
        this.next = (s + 1) % n;
        return s;
      }
    }
    const s = this.next;
    this.next = (s + 1) % n;
    return s;
  }

  private async withRetries<T>(method: 'GET' | 'POST', path: string, body: string | undefined, read: (json: unknown) => T): Promise<T> {
    const { retries, backoffMs, maxBackoffMs } = this.opts;
    const history: Array<{ server: string; message: string }> = [];
    for (let attempt = 0; ; attempt++) {
      const s = this.pick();
      const server = this.servers[s]!;
      try {
        const text = await this.send(server, method, path, body);
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch (err) {
          throw new Attempt('malformed', `the answer is not JSON (${(err as Error).message})`, true);
        }
        try {
          return read(json);
        } catch (err) {
          if (err instanceof ProtocolFault) throw new Attempt(err.fault, err.message, true);
          throw err;
        }
      } catch (err) {
        if (!(err instanceof Attempt)) throw err;
        history.push({ server, message: err.message });
        const delay = Math.min(maxBackoffMs, backoffMs * 2 ** attempt);
        this.restUntil[s] = Date.now() + Math.max(delay, 50);
        if (!err.retryable || attempt >= retries || this.closed) {
          throw new TeacherServerError(server, err.fault, attempt + 1, failureSummary(history, err.fault, `${method} ${path}`), err.status);
        }
        await sleep(delay * (0.5 + 0.5 * Math.random()));
      }
    }
  }

  /** One HTTP exchange; resolves with the body of a 2xx answer, rejects with an Attempt. */
  private send(server: string, method: string, path: string, body: string | undefined): Promise<string> {
    const url = new URL(server + path);
    const lib = url.protocol === 'https:' ? https : http;
    const agent = url.protocol === 'https:' ? this.agents.https : this.agents.http;
    const headers: Record<string, string | number> = { accept: 'application/json' };
    if (body !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = Buffer.byteLength(body);
    }
    if (this.opts.apiKey) headers.authorization = `Bearer ${this.opts.apiKey}`;
    const timeoutMs = this.opts.timeoutMs;
    return new Promise<string>((resolve, reject) => {
      let done = false;
      const finish = (err: Attempt | null, text?: string) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (err) {
          req.destroy();
          reject(err);
        } else resolve(text!);
      };
      const req = lib.request(url, { method, headers, agent }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > this.opts.maxResponseBytes) finish(new Attempt('malformed', `the answer exceeds ${this.opts.maxResponseBytes} bytes`, false));
          else chunks.push(c);
        });
        res.on('error', (e) => finish(new Attempt('unreachable', `connection broke while reading the answer (${e.message})`, true)));
        res.on('aborted', () => finish(new Attempt('unreachable', 'the server closed the connection mid-answer', true)));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) return finish(null, text);
          // 4xx means the request is wrong (retrying cannot help), except timeouts and rate limits.
          const retryable = status >= 500 || status === 408 || status === 429;
          finish(new Attempt('http', `HTTP ${status}${text ? ` (${errorMessage(text)})` : ''}`, retryable, status));
        });
      });
      const timer = setTimeout(() => finish(new Attempt('timeout', `no complete answer within ${timeoutMs} ms`, true)), timeoutMs);
      req.on('error', (e: NodeJS.ErrnoException) => {
        const code = e.code ? `${e.code}: ` : '';
        const down = e.code === 'ECONNREFUSED' || e.code === 'ENOTFOUND' || e.code === 'EHOSTUNREACH' || e.code === 'ECONNRESET' || e.code === 'EAI_AGAIN';
        finish(new Attempt('unreachable', down ? `server down or unreachable (${code}${e.message})` : `request failed (${code}${e.message})`, true));
      });
      if (body !== undefined) req.end(body);
      else req.end();
    });
  }
}
