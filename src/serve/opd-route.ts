/**
 * POST /v1/opd/score: the per-token teacher signal for trainers that take one (verl's custom
 * reward managers, your own). Its request and response are defined by the JSON schemas below
 * (served at GET /v1/opd/schema); readOpdRequest and formatOpdResponse are their one reading.
 *
 * Per student response token: `logprob` = log q_j(s_j), the teacher's probability share of the
 * realised token (span projection, DESIGN 5; null where its chunk's bytes differ or it lies past
 * the teacher's context), `chunk` and `flags` (DESIGN 3.2: 1 OVERSIZE, 2 APPROX, 4 TAIL), `mask`
 * (1 where the chunk gives signal), and with the rollout's `student_logprobs` the chunk advantage
 * A_i of DESIGN 4. With `spans: true` also the projected targets as CSR rows over student ids:
 * single-id buckets, and under revision 2 (`projection: "prefix"`, the default) prefix groups, each
 * sent with its member ids listed after the first-claim rule so a client needs no tokenizer to use it.
 */
import { ErrorCode, XopdError } from '../core/errors.js';
import type { ChatMessage } from '../tokenizer/chat-template.js';
import { PROJECTIONS, type Projection } from '../project/span-projection.js';
import { targetRow } from '../project/targets.js';
import type { ScoredItem, ScoreItem, ScoreOptions } from './scorer.js';

const tokenIds = { type: 'array', items: { type: 'integer', minimum: 0 } } as const;
const numbers = { type: 'array', items: { type: 'number' } } as const;

export const OPD_SCORE_REQUEST_SCHEMA = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'xopd/opd-score.request',
  title: 'POST /v1/opd/score request',
  type: 'object',
  required: ['items'],
  additionalProperties: false,
  properties: {
    items: {
      type: 'array', minItems: 1,
      description: 'one entry per sampled response',
      items: {
        type: 'object',
        required: ['response_ids'],
        additionalProperties: false,
        properties: {
          messages: {
            type: 'array', minItems: 1, description: 'the conversation the response answers (give this or prompt_ids)',
            items: { type: 'object', required: ['role', 'content'], properties: { role: { type: 'string' }, content: { type: 'string' } } },
          },
          prompt_ids: { ...tokenIds, minItems: 1, description: "the student's prompt ids: its chat template's rendering, generation prompt included" },
          response_ids: { ...tokenIds, description: "the student's response ids" },
          student_logprobs: { ...numbers, description: "the rollout's logprob of each response token; chunk advantages are returned when given" },
        },
      },
    },
    top_k: { type: 'integer', minimum: 0, description: "teacher candidates per teacher position (default 0, or the server's --teacher-top-k with spans)" },
    spans: { type: 'boolean', description: 'also return the projected targets (default false)' },
    projection: { enum: ['prefix', 'first'], description: 'span projection revision: "prefix" (2, prefix groups; default) or "first" (1, single ids only)' },
    credit: { enum: ['proportional', 'uniform'], description: 'chunk credit assignment (default proportional)' },
    clamp: { type: 'number', minimum: 0, description: 'bound of |advantage| (default 10)' },
    include_flags: { type: 'integer', minimum: 0, maximum: 7, description: 'chunk flags that still give signal (default 0)' },
  },
} as const;

const nullableNumbers = { type: 'array', items: { type: ['number', 'null'] } } as const;

export const OPD_SCORE_RESPONSE_SCHEMA = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'xopd/opd-score.response',
  title: 'POST /v1/opd/score response',
  type: 'object',
  required: ['object', 'teacher_top_k', 'items'],
  additionalProperties: false,
  properties: {
    object: { enum: ['opd.score'] },
    teacher_top_k: { type: 'integer', minimum: 0 },
    items: {
      type: 'array',
      items: {
        type: 'object',
        required: ['response_tokens', 'teacher_tokens', 'chunks', 'logprob', 'chunk', 'flags', 'mask'],
        additionalProperties: false,
        properties: {
          response_tokens: { type: 'integer', minimum: 0, description: 'n, the length of every per-token list' },
          teacher_tokens: { type: 'integer', minimum: 0, description: "the response in the teacher's tokens (cut to its context)" },
          chunks: { type: 'integer', minimum: 0 },
          logprob: { ...nullableNumbers, description: 'log q_j(s_j) per token; null where the chunk gives no token-level teacher number (APPROX, TAIL)' },
          chunk: { type: 'array', items: { type: 'integer', minimum: 0 }, description: "the token's chunk index" },
          flags: { type: 'array', items: { type: 'integer', minimum: 0, maximum: 7 }, description: "its chunk's flags: 1 OVERSIZE, 2 APPROX, 4 TAIL" },
          mask: { type: 'array', items: { enum: [0, 1] }, description: '1 where the chunk gives signal' },
          advantage: { ...numbers, description: 'chunk advantage per token (with student_logprobs; 0 where masked)' },
          spans: {
            type: 'object',
            description: 'projected targets as CSR rows of buckets: row j has buckets row_ptr[j] .. row_ptr[j+1]-1; bucket b is the single student id ids[b], or when ids[b] = -1 a prefix group, with target probability probs[b]; tail[j] is the teacher mass on the ids in none of its buckets',
            required: ['row_ptr', 'ids', 'probs', 'tail', 'groups'],
            additionalProperties: false,
            properties: {
              row_ptr: { type: 'array', items: { type: 'integer', minimum: 0 } },
              ids: { type: 'array', items: { type: 'integer', minimum: -1 } },
              probs: numbers,
              tail: numbers,
              groups: {
                type: 'object',
                description: "the prefix groups in bucket order: group g is bucket bucket[g], holding the student ids members[ptr[g] .. ptr[g+1]) (the ids whose bytes begin with the group's text, less those a single id or a narrower group of the same row claims)",
                required: ['bucket', 'ptr', 'members'],
                additionalProperties: false,
                properties: { bucket: { type: 'array', items: { type: 'integer', minimum: 0 } }, ptr: { type: 'array', items: { type: 'integer', minimum: 0 } }, members: tokenIds },
              },
            },
          },
        },
      },
    },
  },
} as const;

export interface OpdRequest {
  items: ScoreItem[];
  options: ScoreOptions;
  spans: boolean;
}

const bad = (message: string) => new XopdError(ErrorCode.ARG_VALUE, message);

function ids(x: unknown, what: string): Int32Array {
  if (!Array.isArray(x)) throw bad(`${what} must be a list of token ids`);
  const out = new Int32Array(x.length);
  for (let j = 0; j < x.length; j++) {
    const v = x[j];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0x7fffffff) throw new XopdError(ErrorCode.TOKEN_ID, `${what}[${j}] = ${JSON.stringify(v)} is not a token id`);
    out[j] = v;
  }
  return out;
}

function known(o: Record<string, unknown>, keys: readonly string[], what: string): void {
  for (const k of Object.keys(o)) if (!keys.includes(k)) throw bad(`${what} has an unknown field '${k}'; known: ${keys.join(', ')}`);
}

export function readOpdRequest(body: unknown, teacherTopK: number, maxTopK: number): OpdRequest {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw bad('the request body must be a JSON object { items: [...] }');
  const b = body as Record<string, unknown>;
  known(b, Object.keys(OPD_SCORE_REQUEST_SCHEMA.properties), 'the request');
  if (!Array.isArray(b.items) || b.items.length === 0) throw bad('items must be a non-empty list of { prompt_ids | messages, response_ids, student_logprobs? }');
  const spans = b.spans === undefined ? false : b.spans;
  if (typeof spans !== 'boolean') throw bad('spans must be true or false');
  const topK = b.top_k === undefined ? (spans ? teacherTopK : 0) : b.top_k;
  if (typeof topK !== 'number' || !Number.isInteger(topK) || topK < 0 || topK > maxTopK) throw bad(`top_k must be an integer in [0, ${maxTopK}]`);
  const credit = b.credit === undefined ? 'proportional' : b.credit;
  if (credit !== 'proportional' && credit !== 'uniform') throw bad('credit must be "proportional" or "uniform"');
  const clamp = b.clamp === undefined ? 10 : b.clamp;
  if (typeof clamp !== 'number' || !(clamp >= 0) || !Number.isFinite(clamp)) throw bad('clamp must be a finite number >= 0');
  const projection = b.projection === undefined ? 'prefix' : b.projection;
  if (!PROJECTIONS.includes(projection as Projection)) throw bad(`projection must be one of ${PROJECTIONS.map((x) => `"${x}"`).join(', ')}`);
  const includeFlags = b.include_flags === undefined ? 0 : b.include_flags;
  if (typeof includeFlags !== 'number' || !Number.isInteger(includeFlags) || includeFlags < 0 || includeFlags > 7) throw bad('include_flags must be an integer in [0, 7]');
  const itemKeys = Object.keys(OPD_SCORE_REQUEST_SCHEMA.properties.items.items.properties);
  const items = b.items.map((raw, i): ScoreItem => {
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw bad(`items[${i}] must be an object`);
    const it = raw as Record<string, unknown>;
    known(it, itemKeys, `items[${i}]`);
    const responseIds = ids(it.response_ids, `items[${i}].response_ids`);
    let messages: ChatMessage[] | undefined, promptIds: Int32Array | undefined;
    if (it.messages !== undefined) {
      if (it.prompt_ids !== undefined) throw bad(`items[${i}]: give messages or prompt_ids, not both`);
      if (!Array.isArray(it.messages) || it.messages.length === 0 || it.messages.some((m) => !m || typeof m.role !== 'string' || typeof m.content !== 'string'))
        throw bad(`items[${i}].messages must be a non-empty list of { role, content } strings`);
      messages = (it.messages as ChatMessage[]).map((m) => ({ role: m.role, content: m.content }));
    } else if (it.prompt_ids !== undefined) promptIds = ids(it.prompt_ids, `items[${i}].prompt_ids`);
    else throw bad(`items[${i}] needs messages or prompt_ids`);
    let studentLogprobs: Float32Array | undefined;
    if (it.student_logprobs !== undefined) {
      const lp = it.student_logprobs;
      if (!Array.isArray(lp) || lp.length !== responseIds.length) throw bad(`items[${i}].student_logprobs must list one logprob per response token (${responseIds.length})`);
      studentLogprobs = new Float32Array(lp.length);
      for (let j = 0; j < lp.length; j++) {
        const v = lp[j];
        if (typeof v !== 'number' || !Number.isFinite(v) || v > 1e-4) throw bad(`items[${i}].student_logprobs[${j}] = ${JSON.stringify(v)} is not a finite log-probability`);
        studentLogprobs[j] = v;
      }
    }
    return { messages, promptIds, responseIds, studentLogprobs };
  });
  return { items, spans, options: { topK, credit, clamp, includeFlags, projection: projection as Projection } };
}

export function formatOpdResponse(scored: ScoredItem[], topK: number, spans: boolean): string {
  const num = (x: number) => (Number.isFinite(x) ? x.toPrecision(9) : 'null');
  const list = (a: ArrayLike<number>, f: (x: number) => string = String) => {
    const out = new Array<string>(a.length);
    for (let i = 0; i < a.length; i++) out[i] = f(a[i]!);
    return `[${out.join(',')}]`;
  };
  const items = scored.map((s) => {
    const a = s.alignment;
    const flags = Array.from(a.studentChunk, (c) => a.flags[c]!);
    let out = `{"response_tokens":${s.responseIds.length},"teacher_tokens":${s.teacherIds.length},"chunks":${a.chunkCount},` +
      `"logprob":${list(s.logprob, num)},"chunk":${list(a.studentChunk)},"flags":${list(flags)},"mask":${list(s.mask)}`;
    if (s.advantages) out += `,"advantage":${list(s.advantages, num)}`;
    if (spans) {
      const t = s.targets, bucket: number[] = [], ptr = [0], members: string[] = [];
      for (let j = 0; j + 1 < t.rowPtr.length; j++) {
        if (!t.ids.subarray(t.rowPtr[j]!, t.rowPtr[j + 1]!).includes(-1)) continue;
        // targetRow lists the row's buckets in bucket order, each group after the first-claim rule
        targetRow(t, j).buckets.forEach((bk, e) => {
          const b = t.rowPtr[j]! + e;
          if (t.ids[b] !== -1) return;
          bucket.push(b);
          members.push(list(bk.ids).slice(1, -1));
          ptr.push(ptr[ptr.length - 1]! + bk.ids.length);
        });
      }
      out += `,"spans":{"row_ptr":${list(t.rowPtr)},"ids":${list(t.ids)},"probs":${list(t.probs, num)},"tail":${list(t.tail, num)},` +
        `"groups":{"bucket":${list(bucket)},"ptr":${list(ptr)},"members":[${members.filter((m) => m.length > 0).join(',')}]}}`;
    }
    return out + '}';
  });
  return `{"object":"opd.score","teacher_top_k":${topK},"items":[${items.join(',')}]}`;
}
