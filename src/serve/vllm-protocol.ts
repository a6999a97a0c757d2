/**
 * The subset of vLLM's OpenAI-compatible completions protocol that a served teacher speaks
 * (DESIGN section 9). One request scores a sequence of token ids:
 *
 *   POST /v1/completions
 *   { "model": "...", "prompt": [id, id, ...], "max_tokens": 1, "prompt_logprobs": k, "temperature": 0 }
 *
 * and the answer carries, per choice, `prompt_logprobs`: one entry per prompt position; entry 0 is
 * null (nothing predicts the first token), entry i is a dict keyed by the token id AS A STRING:
 *
 *   { "<id>": { "logprob": -0.12, "rank": 1, "decoded_token": "9" }, ... }
 *
 * holding the k most likely tokens (ranks 1..k) and, when it is not among them, the realised token
 * ids[i] with its own rank (vLLM's `list[dict[int, Logprob] | None]`). The realised token's logprob
 * is read by its id, never by rank: ties and float noise can reorder ranks.
 */
import type { TeacherScores } from '../model/roles.js';

export interface LogprobEntry {
  logprob: number;
  rank?: number | null;
  decoded_token?: string | null;
}

export type PromptLogprobs = Array<Record<string, LogprobEntry> | null>;

export interface CompletionChoice {
  index: number;
  text: string;
  logprobs: null;
  finish_reason: string | null;
  prompt_logprobs: PromptLogprobs | null;
}

/** Why a response could not be used (the fault names a VllmTeacher error reports). */
export class ProtocolFault extends Error {
  constructor(readonly fault: 'malformed' | 'length', message: string) {
    super(message);
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Reads one choice's prompt_logprobs for positions [start, n) of `ids` into TeacherScores with k
 * top entries per position (most likely first). Throws ProtocolFault on anything that does not fit.
 */
export function readPromptLogprobs(raw: unknown, ids: Int32Array, start: number, k: number): TeacherScores {
  const n = ids.length;
  if (!Array.isArray(raw)) throw new ProtocolFault('malformed', `prompt_logprobs is ${raw === null ? 'null' : typeof raw}, expected a list (did the server ignore prompt_logprobs?)`);
  if (raw.length !== n) throw new ProtocolFault('length', `prompt_logprobs has ${raw.length} entries for a prompt of ${n} tokens`);
  const rows = n - start;
  const logprobs = new Float32Array(rows);
  const topkIds = new Int32Array(rows * k);
  const topkLogprobs = new Float32Array(rows * k);
  const cand: Array<{ id: number; lp: number; rank: number }> = [];
  for (let i = start; i < n; i++) {
    const pos = raw[i];
    if (!isRecord(pos)) throw new ProtocolFault('malformed', `prompt_logprobs[${i}] is ${pos === null ? 'null' : typeof pos}, expected an object keyed by token id`);
    const realised = ids[i]!;
    cand.length = 0;
    let realisedLp: number | undefined;
    for (const key in pos) {
      const id = Number(key);
      const e = pos[key];
      if (!Number.isInteger(id) || id < 0 || String(id) !== key) throw new ProtocolFault('malformed', `prompt_logprobs[${i}] has key ${JSON.stringify(key)}, expected a token id`);
      if (!isRecord(e) || typeof e.logprob !== 'number' || !Number.isFinite(e.logprob) || e.logprob > 1e-3)
        throw new ProtocolFault('malformed', `prompt_logprobs[${i}]["${key}"] has no finite logprob <= 0`);
      const rank = typeof e.rank === 'number' && Number.isInteger(e.rank) && e.rank >= 1 ? e.rank : Infinity;
      if (id === realised) realisedLp = e.logprob;
      cand.push({ id, lp: e.logprob, rank });
    }
    if (realisedLp === undefined) throw new ProtocolFault('malformed', `prompt_logprobs[${i}] lacks the realised token ${realised}`);
    logprobs[i - start] = realisedLp;
    if (k > 0) {
      if (cand.length < k) throw new ProtocolFault('malformed', `prompt_logprobs[${i}] has ${cand.length} entries, expected at least k = ${k}`);
      // Most likely first; equal logprobs keep the server's rank order, then the id.
      cand.sort((a, b) => b.lp - a.lp || a.rank - b.rank || a.id - b.id);
      for (let j = 0; j < k; j++) {
        topkIds[(i - start) * k + j] = cand[j]!.id;
        topkLogprobs[(i - start) * k + j] = cand[j]!.lp;
      }
    }
  }
  return { logprobs, topkIds, topkLogprobs, k };
}

/** Reads a completions response body (already JSON-parsed) for one prompt. */
export function readCompletion(body: unknown, ids: Int32Array, start: number, k: number): TeacherScores {
  if (!isRecord(body)) throw new ProtocolFault('malformed', 'the response is not a JSON object');
  const choices = body.choices;
  if (!Array.isArray(choices)) throw new ProtocolFault('malformed', 'the response has no choices list');
  if (choices.length !== 1) throw new ProtocolFault('length', `the response has ${choices.length} choices for one prompt`);
  const c = choices[0];
  if (!isRecord(c)) throw new ProtocolFault('malformed', 'choices[0] is not an object');
  return readPromptLogprobs(c.prompt_logprobs, ids, start, k);
}

/** The JSON error body OpenAI-compatible servers send. */
export function errorBody(status: number, message: string, type = 'BadRequestError'): string {
  return JSON.stringify({ error: { message, type, param: null, code: status } });
}

/** Pulls a human message out of an error response body, whatever its exact shape. */
export function errorMessage(text: string): string {
  try {
    const v = JSON.parse(text) as unknown;
    if (isRecord(v)) {
      if (isRecord(v.error) && typeof v.error.message === 'string') return v.error.message;
      if (typeof v.message === 'string') return v.message;
      if (typeof v.detail === 'string') return v.detail;
    }
  } catch {
    /* not JSON: fall through */
  }
  const t = text.trim();
  return t.length > 200 ? t.slice(0, 200) + '…' : t;
}
