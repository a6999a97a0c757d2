/**
 * The work of one request, after the HTTP layer accepted it: body bytes in, status and body text
 * out. It runs on a worker thread (worker.ts), or on the main thread with --workers 0; it holds the
 * tokenizers, the prompt parser, the aligner's tables and a VllmTeacher of its own.
 *
 * Errors become OpenAI-style JSON bodies { error: { message, type, code, xopd_code[, teacher] } }:
 * a bad request 400, a teacher that failed 502 (504 when it timed out) naming the teacher.
 */
import { ErrorCode, XopdError } from '../core/errors.js';
import { Tokenizer } from '../tokenizer/tokenizer.js';
import { TeacherServerError, VllmTeacher } from './vllm-teacher.js';
import { OpdScorer, type PromptFormat } from './scorer.js';
import { formatTrlResponse, readTrlRequest, trlTeacherTopK } from './trl-protocol.js';
import { formatOpdResponse, readOpdRequest } from './opd-route.js';

/** Everything a handler is built from (plain data: it crosses to worker threads). */
export interface ServeConfig {
  studentTokenizer: string;
  teacherTokenizer: string;
  /** chat template text replacing (or supplying) a tokenizer's own */
  studentChatTemplate?: string;
  teacherChatTemplate?: string;
  teacherUrls: string[];
  teacherModel?: string;
  teacherApiKey?: string;
  teacherTimeoutMs: number;
  teacherRetries: number;
  /** backoff before the first teacher retry (default 250 ms) */
  teacherBackoffMs?: number;
  /** teacher requests in flight from one handler */
  teacherConcurrency: number;
  /** teacher candidates per position when more than the realised token is asked for */
  teacherTopK: number;
  /** largest top_logprobs (TRL) and top_k (native) accepted */
  maxTopLogprobs: number;
  prompts: PromptFormat;
  maxChunkTokens: number;
  /** the teacher's encoder: 'auto' (npm tokenizers, Rust, where installed) or 'js' (default 'auto') */
  teacherEncoder?: 'auto' | 'js';
}

export type Route = 'trl' | 'opd';

export interface HandlerResult {
  status: number;
  body: string;
  studentTokens: number;
  teacherTokens: number;
  /** set when a teacher failed the request */
  teacherFault?: { teacher: string; fault: string };
}

/** OpenAI-style error body, with xopd's stable code (and the teacher, for teacher faults). */
export function errorJson(status: number, message: string, type: string, xopdCode: string, teacher?: string): string {
  return JSON.stringify({ error: { message, type, code: status, xopd_code: xopdCode, ...(teacher ? { teacher } : {}) } });
}

const CLIENT_ERRORS = new Set<string>([ErrorCode.ARG_TYPE, ErrorCode.ARG_RANGE, ErrorCode.ARG_SHAPE, ErrorCode.ARG_VALUE, ErrorCode.TOKEN_ID,
  ErrorCode.PROMPT_PARSE, ErrorCode.CHAT_TEMPLATE, ErrorCode.TOO_LONG, ErrorCode.NONFINITE]);

/** The HTTP answer for an error raised while handling a request. */
export function errorResult(err: unknown): HandlerResult {
  const base = { studentTokens: 0, teacherTokens: 0 };
  if (err instanceof TeacherServerError) {
    const status = err.fault === 'timeout' ? 504 : 502;
    return { ...base, status, body: errorJson(status, err.message, status === 504 ? 'TeacherTimeout' : 'TeacherError', err.code, err.server), teacherFault: { teacher: err.server, fault: err.fault } };
  }
  if (err instanceof XopdError && CLIENT_ERRORS.has(err.code)) return { ...base, status: 400, body: errorJson(400, err.message, 'BadRequestError', err.code) };
  const msg = err instanceof XopdError ? err.message : String((err as Error)?.stack ?? err);
  const code = err instanceof XopdError ? err.code : 'E_INTERNAL';
  return { ...base, status: 500, body: errorJson(500, `xopd serve failed on this request: ${msg}`, 'InternalServerError', code) };
}

export class ServeHandler {
  readonly scorer: OpdScorer;
  private readonly teacher: VllmTeacher;

  constructor(readonly config: ServeConfig) {
    const student = Tokenizer.load(config.studentTokenizer, { chatTemplate: config.studentChatTemplate });
    const teacherTok = Tokenizer.load(config.teacherTokenizer, { chatTemplate: config.teacherChatTemplate });
    this.teacher = new VllmTeacher({
      baseUrls: config.teacherUrls, tokenizer: teacherTok, model: config.teacherModel, apiKey: config.teacherApiKey,
      timeoutMs: config.teacherTimeoutMs, retries: config.teacherRetries, backoffMs: config.teacherBackoffMs, concurrency: config.teacherConcurrency,
    });
    this.scorer = new OpdScorer(student, teacherTok, this.teacher, { prompts: config.prompts, maxChunkTokens: config.maxChunkTokens, encoder: config.teacherEncoder });
  }

  async handle(route: Route, body: Uint8Array): Promise<HandlerResult> {
    try {
      let json: unknown;
      try {
        json = JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8'));
      } catch (err) {
        throw new XopdError(ErrorCode.ARG_VALUE, `the request body is not JSON: ${(err as Error).message}`);
      }
      const { teacherTopK, maxTopLogprobs } = this.config;
      if (route === 'trl') {
        const q = readTrlRequest(json, maxTopLogprobs);
        const scored = await this.scorer.score(q.items, { topK: trlTeacherTopK(q.topLogprobs, teacherTopK) });
        return { status: 200, body: formatTrlResponse(scored, q.topLogprobs, q.format), ...counts(scored) };
      }
      const q = readOpdRequest(json, teacherTopK, maxTopLogprobs);
      const scored = await this.scorer.score(q.items, q.options);
      return { status: 200, body: formatOpdResponse(scored, q.options.topK, q.spans), ...counts(scored) };
    } catch (err) {
      return errorResult(err);
    }
  }

  async close(): Promise<void> {
    await this.teacher.close();
  }
}

function counts(scored: Array<{ responseIds: Int32Array; teacherIds: Int32Array }>): { studentTokens: number; teacherTokens: number } {
  let s = 0, t = 0;
  for (const x of scored) {
    s += x.responseIds.length;
    t += x.teacherIds.length;
  }
  return { studentTokens: s, teacherTokens: t };
}
