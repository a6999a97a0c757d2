/**
 * TRL's teacher-server protocol, as TRL's VLLMClient.get_sequence_logprobs speaks it to
 * `trl vllm-serve` (its DistillationTrainer with use_teacher_server, and ServerDistillationTrainer):
 *
 *   GET  /health/                  -> 200 (VLLMClient.check_server polls it before anything else)
 *   POST /get_sequence_logprobs/   { sequences: int[][], prompt_lengths: int[], top_logprobs: int,
 *                                    temperature: float, response_format: "json" | "binary" }
 *
 * Every sequence is the student's ids (prompt + completion). Per completion position the answer
 * ranks STUDENT ids: first the realised token s_j with log q_j(s_j) of the span projection (DESIGN
 * 5; with top_logprobs 1 the teacher is asked for its realised tokens alone, and the logprobs of a
 * chunk's student tokens then add up to the chunk's teacher logprob), then the other single-id
 * buckets by probability. Rows with fewer buckets than top_logprobs are padded (binary: logprob
 * -inf and id 0, as TRL's own server pads; json: null and 0).
 *
 *   binary: { logprobs_b64, token_ids_b64: [B, T, K] float32 / int32 little-endian, base64;
 *             actual_logprobs_b64, actual_token_ids_b64: [B, T, 1]; shape: [B, T, K]; completion_lengths }
 *   json:   { logprobs: [B][T_i][K], logprob_token_ids: [B][T_i][K], actual_logprobs, actual_token_ids: [B][T_i][1] }
 *
 * `temperature` is accepted and not applied: the teacher's logprobs are its raw ones, as vLLM's
 * prompt_logprobs are by default.
 */
import { ErrorCode, XopdError } from '../core/errors.js';
import { logprobOrShare, type ScoredItem, type ScoreItem } from './scorer.js';

export interface TrlRequest {
  items: ScoreItem[];
  topLogprobs: number;
  format: 'json' | 'binary';
}

const bad = (message: string) => new XopdError(ErrorCode.ARG_VALUE, message);

/** Reads a parsed request body; every problem is an XopdError (HTTP 400) naming the field. */
export function readTrlRequest(body: unknown, maxTopLogprobs: number): TrlRequest {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw bad('the request body must be a JSON object { sequences, prompt_lengths, top_logprobs, temperature, response_format }');
  const b = body as Record<string, unknown>;
  const seqs = b.sequences, lens = b.prompt_lengths;
  if (!Array.isArray(seqs)) throw bad('sequences must be a list of token-id lists (prompt + completion, student ids)');
  if (!Array.isArray(lens)) throw bad('prompt_lengths must be a list of integers, one per sequence');
  if (seqs.length !== lens.length) throw bad(`sequences and prompt_lengths must have the same length (got ${seqs.length} and ${lens.length})`);
  const topLogprobs = b.top_logprobs === undefined ? 100 : b.top_logprobs;
  if (typeof topLogprobs !== 'number' || !Number.isInteger(topLogprobs) || topLogprobs < 0 || topLogprobs > maxTopLogprobs)
    throw bad(`top_logprobs must be an integer in [0, ${maxTopLogprobs}], got ${JSON.stringify(topLogprobs)}`);
  const temperature = b.temperature === undefined ? 1 : b.temperature;
  if (typeof temperature !== 'number' || !(temperature > 0) || !Number.isFinite(temperature)) throw bad(`temperature must be a positive number, got ${JSON.stringify(temperature)}`);
  const format = b.response_format === undefined ? 'json' : b.response_format;
  if (format !== 'json' && format !== 'binary') throw bad(`response_format must be "json" or "binary", got ${JSON.stringify(format)}`);
  const items: ScoreItem[] = seqs.map((seq, i) => {
    if (!Array.isArray(seq)) throw bad(`sequences[${i}] must be a list of token ids`);
    const ids = new Int32Array(seq.length);
    for (let j = 0; j < seq.length; j++) {
      const v = seq[j];
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0x7fffffff) throw new XopdError(ErrorCode.TOKEN_ID, `sequences[${i}][${j}] = ${JSON.stringify(v)} is not a token id`);
      ids[j] = v;
    }
    const pl = lens[i];
    if (typeof pl !== 'number' || !Number.isInteger(pl) || pl < 0 || pl > ids.length)
      throw bad(`prompt_lengths[${i}] = ${JSON.stringify(pl)} is out of range [0, ${ids.length}] for a sequence of ${ids.length} tokens`);
    return { promptIds: ids.subarray(0, pl), responseIds: ids.subarray(pl) };
  });
  return { items, topLogprobs, format };
}

/** One sequence's answer rows: [T * K] ranked ids and logprobs, and [T] the realised token's. */
interface Rows {
  ids: Int32Array;
  logprobs: Float32Array;
  actual: Float32Array;
}

function rowsOf(item: ScoredItem, K: number, index: number): Rows {
  if (item.teacherCut > 0)
    throw new XopdError(ErrorCode.TOO_LONG, `sequences[${index}]: the completion is ${item.teacherIds.length + item.teacherCut} teacher tokens after a teacher prompt of ${item.teacherPromptLength}, more than the teacher's context allows (${item.teacherCut} too many); shorten the completion or serve the teacher with a longer max_model_len`);
  const n = item.responseIds.length;
  const actual = logprobOrShare(item);
  const ids = new Int32Array(n * K);
  const logprobs = new Float32Array(n * K).fill(-Infinity);
  const t = item.targets;
  const order: number[] = [];
  for (let j = 0; j < n; j++) {
    if (K === 0) continue;
    const sj = item.responseIds[j]!;
    ids[j * K] = sj;
    logprobs[j * K] = actual[j]!;
    order.length = 0;
    for (let e = t.rowPtr[j]!; e < t.rowPtr[j + 1]!; e++) if (t.ids[e] !== sj && t.probs[e]! > 0) order.push(e);
    order.sort((x, y) => t.probs[y]! - t.probs[x]! || t.ids[x]! - t.ids[y]!);
    for (let r = 0; r < order.length && r + 1 < K; r++) {
      ids[j * K + r + 1] = t.ids[order[r]!]!;
      logprobs[j * K + r + 1] = Math.log(t.probs[order[r]!]!);
    }
  }
  return { ids, logprobs, actual };
}

const b64 = (a: Float32Array | Int32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');

/** The response body for TRL's client (see the module comment for both formats). */
export function formatTrlResponse(scored: ScoredItem[], K: number, format: 'json' | 'binary'): string {
  const rows = scored.map((s, i) => rowsOf(s, K, i));
  const lengths = scored.map((s) => s.responseIds.length);
  if (format === 'binary') {
    const B = scored.length, T = lengths.reduce((a, b) => Math.max(a, b), 0);
    const lp = new Float32Array(B * T * K).fill(-Infinity), ids = new Int32Array(B * T * K);
    const alp = new Float32Array(B * T).fill(-Infinity), aids = new Int32Array(B * T);
    rows.forEach((r, i) => {
      lp.set(r.logprobs, i * T * K);
      ids.set(r.ids, i * T * K);
      alp.set(r.actual, i * T);
      aids.set(scored[i]!.responseIds, i * T);
    });
    return `{"logprobs_b64":"${b64(lp)}","token_ids_b64":"${b64(ids)}","actual_logprobs_b64":"${b64(alp)}","actual_token_ids_b64":"${b64(aids)}","shape":[${B},${T},${K}],"completion_lengths":[${lengths.join(',')}]}`;
  }
  // Nine significant digits give a float32 back bit for bit.
  const num = (x: number) => (Number.isFinite(x) ? x.toPrecision(9) : 'null');
  const nested = (flat: Float32Array | Int32Array, n: number, k: number, f: (x: number) => string) => {
    const out: string[] = [];
    for (let j = 0; j < n; j++) {
      const row: string[] = [];
      for (let c = 0; c < k; c++) row.push(f(flat[j * k + c]!));
      out.push(`[${row.join(',')}]`);
    }
    return `[${out.join(',')}]`;
  };
  const all = (f: (r: Rows, i: number) => string) => `[${rows.map(f).join(',')}]`;
  return `{"logprobs":${all((r, i) => nested(r.logprobs, lengths[i]!, K, num))},` +
    `"logprob_token_ids":${all((r, i) => nested(r.ids, lengths[i]!, K, String))},` +
    `"actual_logprobs":${all((r, i) => nested(r.actual, lengths[i]!, 1, num))},` +
    `"actual_token_ids":${all((_, i) => nested(scored[i]!.responseIds, lengths[i]!, 1, String))}}`;
}

/** The teacher candidates asked for: none when only the realised token is answered for. */
export function trlTeacherTopK(topLogprobs: number, teacherTopK: number): number {
  return topLogprobs <= 1 ? 0 : teacherTopK;
}
