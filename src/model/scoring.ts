/**
 * The embedded model as a Teacher (DESIGN 1): for each request, the logprob of every realised
 * response token and the top-k (tokenizer ids, logprobs), in batches of whole requests bounded in
 * tokens.
 */
import * as check from '../core/check.js';
import { ErrorCode, XopdError, callNative } from '../core/errors.js';
import type { ScoreRequest, TeacherScores } from './roles.js';
import { modelNative } from './native.js';
import { pack, teacherForced } from './packing.js';
import type { VocabMap } from './vocab-map.js';

/**
 * Logprob reported for a realised token the model's id list lacks: its probability is 0 by
 * construction; a finite floor (e^-30 ≈ 1e-13) keeps downstream ratios finite.
 */
export const UNLISTED_LOGPROB = -30;

/** Tokens per native forward: bounds the activation memory. */
const SCORE_TOKENS_PER_CALL = 16384;

/** What scoring needs of a model: its id list, its context and an inference forward. */
export interface ScoringNet {
  vocab: VocabMap;
  maxSeqLen: number;
  forward(tokens: Int32Array, offsets: Int32Array, outStart: Int32Array): Float32Array;
}

export function scoreRequests(net: ScoringNet, requests: ScoreRequest[], topK: number): TeacherScores[] {
  check.array(requests, 'requests', '{ ids, start }');
  const { vocab } = net;
  const V = vocab.size;
  const k = Math.min(check.int(topK, 'topK', 0, 1 << 20), V);
  const prepared = requests.map((req, i) => {
    check.object(req, `requests[${i}]`, '{ ids, start }');
    const ids = check.typed(req.ids, Int32Array, `requests[${i}].ids`);
    const start = check.int(req.start, `requests[${i}].start`, 1, Math.max(1, ids.length));
    if (ids.length > net.maxSeqLen)
      throw new XopdError(ErrorCode.TOO_LONG, `requests[${i}] has ${ids.length} tokens; the model's context is ${net.maxSeqLen} (max_position_embeddings)`);
    const prompt = vocab.toColumns(ids.subarray(0, start), `requests[${i}].ids (prompt part)`, 1);
    // A response id outside the list reads as a zero embedding and scores UNLISTED_LOGPROB.
    const resp = new Int32Array(ids.length - start);
    for (let j = start; j < ids.length; j++) {
      const v = ids[j]!;
      if (v < 0 || v >= vocab.tokenizer.vocabSize)
        throw new XopdError(ErrorCode.TOKEN_ID, `requests[${i}].ids[${j}] = ${v} is outside the vocabulary of ${vocab.tokenizer.name}`);
      resp[j - start] = vocab.columnOf(v);
    }
    return { prompt, resp };
  });
  const out: TeacherScores[] = new Array(requests.length);
  for (let i = 0; i < prepared.length;) {
    let j = i, tokens = 0;
    while (j < prepared.length && (j === i || tokens + prepared[j]!.prompt.length + prepared[j]!.resp.length <= SCORE_TOKENS_PER_CALL)) {
      tokens += prepared[j]!.prompt.length + prepared[j]!.resp.length;
      j++;
    }
    const part = prepared.slice(i, j);
    const inputs = part.map(({ prompt, resp }) => teacherForced(prompt, resp));
    const { tokens: flat, offsets } = pack(inputs.map((x) => x.seq));
    const logits = callNative(() => net.forward(flat, offsets, Int32Array.from(inputs, (x) => x.outStart)));
    const targets = new Int32Array(part.reduce((n, p) => n + p.resp.length, 0));
    let at = 0;
    for (const p of part) {
      targets.set(p.resp, at);
      at += p.resp.length;
    }
    const r = callNative(() => modelNative().modelKernels.logprobsTopK(logits, targets, V, k, UNLISTED_LOGPROB));
    at = 0;
    part.forEach((p, n) => {
      const rows = p.resp.length;
      out[i + n] = {
        logprobs: r.logprobs.slice(at, at + rows),
        topkIds: vocab.toIds(r.topIdx, at * k, (at + rows) * k),
        topkLogprobs: r.topLogprobs.slice(at * k, (at + rows) * k),
        k,
      };
      at += rows;
    });
    i = j;
  }
  return out;
}
