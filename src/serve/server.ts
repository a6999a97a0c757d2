/**
 * `xopd serve`: the cross-tokenizer teacher behind HTTP (DESIGN 9). Stateless: replicas scale it.
 *
 *   GET  /health, /health/            200 {"status":"ok"} (503 while draining); never needs a key
 *   POST /get_sequence_logprobs/      TRL's teacher-server protocol (trl-protocol.ts)
 *   POST /v1/opd/score                per-token signal for other trainers (opd-route.ts)
 *   GET  /v1/opd/schema               the JSON schemas of /v1/opd/score
 *   GET  /metrics                     Prometheus text (metrics.ts)
 *
 * The event loop only accepts, checks and routes: the host work of a request (parse, template,
 * retokenize, align, project, format) and its teacher calls run on a worker pool (pool.ts), so one
 * process uses every core. Production guards: a bounded queue (429 + Retry-After when full), a
 * body limit (413), a per-request timeout (504), teacher faults as 502/504 naming the teacher,
 * an optional API key (Bearer, compared in constant time, on every route but /health), and
 * drain(): stop accepting, finish what is in flight, then close.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import * as check from '../core/check.js';
import { ErrorCode, XopdError } from '../core/errors.js';
import { errorJson, type HandlerResult, type Route, type ServeConfig } from './handler.js';
import { ServeMetrics } from './metrics.js';
import { OPD_SCORE_REQUEST_SCHEMA, OPD_SCORE_RESPONSE_SCHEMA } from './opd-route.js';
import { WorkerPool } from './pool.js';

export interface OpdServerOptions {
  config: ServeConfig;
  /** 0 picks a free port (default 0) */
  port?: number;
  /** default 127.0.0.1 */
  host?: string;
  /** worker threads (default: the cores this process may use; 0 runs requests on the event loop) */
  workers?: number;
  /** requests one worker works on at once (default 4) */
  perWorker?: number;
  /** requests waiting for a worker before 429 (default 64) */
  queueSize?: number;
  /** largest request body (default 32 MiB); larger gets 413 */
  maxBodyBytes?: number;
  /** a request not answered within this gets 504 (default 300000 ms) */
  requestTimeoutMs?: number;
  /** when set, every route but /health needs `Authorization: Bearer <apiKey>` */
  apiKey?: string;
  log?: (line: string) => void;
}

export interface OpdServer {
  readonly url: string;
  readonly port: number;
  readonly pool: WorkerPool;
  readonly metrics: ServeMetrics;
  /** Stops accepting, answers what is in flight (up to timeoutMs, default 60 s), then closes. */
  drain(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

const ROUTES: Record<string, { method: 'GET' | 'POST'; name: string }> = {
  '/health': { method: 'GET', name: 'health' },
  '/get_sequence_logprobs': { method: 'POST', name: 'trl' },
  '/v1/opd/score': { method: 'POST', name: 'opd' },
  '/v1/opd/schema': { method: 'GET', name: 'schema' },
  '/metrics': { method: 'GET', name: 'metrics' },
};

class Refusal extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly type = 'BadRequestError', readonly headers: Record<string, string> = {}) {
    super(message);
  }
}

export async function serveOpd(options: OpdServerOptions): Promise<OpdServer> {
  const port = options.port === undefined ? 0 : check.int(options.port, 'port', 0, 65535);
  const host = options.host === undefined ? '127.0.0.1' : check.str(options.host, 'host');
  const workers = options.workers === undefined ? os.availableParallelism() : check.int(options.workers, 'workers', 0, 256);
  const perWorker = options.perWorker === undefined ? 4 : check.int(options.perWorker, 'perWorker', 1, 4096);
  const queueSize = options.queueSize === undefined ? 64 : check.int(options.queueSize, 'queueSize', 0, 1 << 20);
  const maxBody = options.maxBodyBytes === undefined ? 32 << 20 : check.int(options.maxBodyBytes, 'maxBodyBytes', 1024);
  const timeoutMs = options.requestTimeoutMs === undefined ? 300_000 : check.num(options.requestTimeoutMs, 'requestTimeoutMs', 1);
  const apiKey = options.apiKey === undefined || options.apiKey === '' ? undefined : check.str(options.apiKey, 'apiKey');
  const expected = apiKey === undefined ? undefined : createHash('sha256').update(`Bearer ${apiKey}`).digest();
  const log = options.log;

  const pool = new WorkerPool(options.config, { workers, perWorker, queueSize });
  await pool.start();
  const metrics = new ServeMetrics();
  let draining = false;
  let active = 0;
  let idle: (() => void) | undefined;
  const schema = JSON.stringify({ request: OPD_SCORE_REQUEST_SCHEMA, response: OPD_SCORE_RESPONSE_SCHEMA });

  /** Constant-time check of the Authorization header (hashes make the lengths equal). */
  const authorized = (req: http.IncomingMessage) => {
    if (!expected) return true;
    const got = createHash('sha256').update(String(req.headers.authorization ?? '')).digest();
    return timingSafeEqual(got, expected);
  };

  const readBody = (req: http.IncomingMessage) => new Promise<Uint8Array>((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > maxBody)
      return reject(new Refusal(413, ErrorCode.BODY_TOO_LARGE, `the request body (${declared} bytes) exceeds the limit of ${maxBody} bytes (--max-body-bytes)`, 'RequestTooLarge', { connection: 'close' }));
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > maxBody) {
        chunks.length = 0;
        req.pause();
        reject(new Refusal(413, ErrorCode.BODY_TOO_LARGE, `the request body exceeds the limit of ${maxBody} bytes (--max-body-bytes)`, 'RequestTooLarge', { connection: 'close' }));
      } else chunks.push(c);
    });
    req.on('end', () => {
      // A buffer of its own (never a pooled slab): it is transferred to a worker.
      const body = new Uint8Array(size);
      let at = 0;
      for (const c of chunks) {
        body.set(c, at);
        at += c.length;
      }
      resolve(body);
    });
    req.on('error', reject);
  });

  const run = (route: Route, body: Uint8Array): Promise<HandlerResult> => {
    const job = pool.submit(route, body);
    if (job === 'full') {
      metrics.rejected++;
      throw new Refusal(429, ErrorCode.OVERLOADED, `every worker is busy and ${queueSize} requests are waiting; retry shortly`, 'TooManyRequests', { 'retry-after': '1' });
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Refusal(504, ErrorCode.REQUEST_TIMEOUT, `the request was not answered within ${timeoutMs} ms (--request-timeout)`, 'Timeout')), timeoutMs);
      job.then((r) => {
        clearTimeout(timer);
        metrics.studentTokens += r.studentTokens;
        metrics.teacherTokens += r.teacherTokens;
        if (r.teacherFault) metrics.teacherError(r.teacherFault.teacher, r.teacherFault.fault);
        resolve(r);
      }, reject);
    });
  };

  const server = http.createServer((req, res) => {
    const t0 = performance.now();
    active++;
    const path = (req.url ?? '/').split('?')[0]!.replace(/(.)\/+$/, '$1');
    const spec = ROUTES[path];
    let routeName = spec?.name ?? 'other';
    let done = false;
    const send = (status: number, body: string, headers: Record<string, string> = {}, type = 'application/json') => {
      if (done) return;
      done = true;
      if (draining) headers.connection = 'close';
      res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), ...headers });
      res.end(body);
      const seconds = (performance.now() - t0) / 1000;
      metrics.request(routeName, status, seconds);
      log?.(`${req.method} ${path} ${status} ${(seconds * 1000).toFixed(1)} ms`);
      if (--active === 0 && idle) idle();
    };
    const fail = (err: unknown) => {
      if (err instanceof Refusal) return send(err.status, errorJson(err.status, err.message, err.type, err.code), err.headers);
      const msg = err instanceof Error ? err.message : String(err);
      send(500, errorJson(500, `xopd serve failed on this request: ${msg}`, 'InternalServerError', 'E_INTERNAL'));
    };
    res.on('close', () => { if (!done) { done = true; if (--active === 0 && idle) idle(); } });
    try {
      if (!spec) {
        routeName = 'other';
        throw new Refusal(404, ErrorCode.ARG_VALUE, `no route ${req.method} ${path}: xopd serve has GET /health, POST /get_sequence_logprobs/, POST /v1/opd/score, GET /v1/opd/schema and GET /metrics`, 'NotFoundError');
      }
      if (req.method !== spec.method) throw new Refusal(405, ErrorCode.ARG_VALUE, `use ${spec.method} ${path}`, 'MethodNotAllowed', { allow: spec.method });
      if (spec.name === 'health') return send(draining ? 503 : 200, JSON.stringify({ status: draining ? 'draining' : 'ok' }));
      if (!authorized(req))
        throw new Refusal(401, ErrorCode.UNAUTHORIZED, 'this server needs Authorization: Bearer <key> (the key given to xopd serve --api-key or XOPD_API_KEY)', 'Unauthorized', { 'www-authenticate': 'Bearer', connection: 'close' });
      if (draining) throw new Refusal(503, ErrorCode.OVERLOADED, 'the server is shutting down; send this request to another replica', 'ServiceUnavailable', { 'retry-after': '1' });
      if (spec.name === 'metrics') return send(200, metrics.render({ inflight: pool.inflight, queued: pool.queued, workers: pool.workers, restarts: pool.restarts, draining }), {}, 'text/plain; version=0.0.4; charset=utf-8');
      if (spec.name === 'schema') return send(200, schema);
      readBody(req).then((body) => run(spec.name as Route, body)).then((r) => send(r.status, r.body), fail);
    } catch (err) {
      fail(err);
    }
  });
  server.keepAliveTimeout = 30_000;
  server.headersTimeout = 60_000;
  server.requestTimeout = Math.max(120_000, timeoutMs + 10_000);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      void pool.close();
      reject(new XopdError(ErrorCode.ARG_VALUE, e.code === 'EADDRINUSE' ? `port ${port} on ${host} is in use: pick another --port` : `cannot listen on ${host}:${port}: ${e.message}`));
    });
    server.listen(port, host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const shownHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;

  let closed: Promise<void> | undefined;
  const close = () => (closed ??= (async () => {
    draining = true;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
    await pool.close();
  })());
  const drain = async (drainTimeoutMs = 60_000) => {
    draining = true;
    const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    if (active > 0) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, drainTimeoutMs);
        idle = () => { clearTimeout(t); resolve(); };
      });
    }
    server.closeAllConnections();
    await stopped;
    await close();
  };
  return { url: `http://${shownHost}:${addr.port}`, port: addr.port, pool, metrics, drain, close };
}
