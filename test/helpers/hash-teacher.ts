/**
 * A deterministic stand-in Teacher for protocol tests: its next-token distribution at each position
 * comes from a hash of the previous token and the position, over a small set of "likely" ids, with
 * every other id of the real tokenizer sharing a low floor logit. Computed in float64 like a real
 * model's log-softmax, then stored as float32.
 */
import type { ScoreRequest, Teacher, TeacherScores } from '../../src/model/roles.js';
import type { Tokenizer } from '../../src/tokenizer/tokenizer.js';

const FLOOR = -20;

function hash(a: number, b: number, c: number): number {
  let h = Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(b + 0x632be5ab, 0xc2b2ae35) ^ Math.imul(c + 0x27d4eb2f, 0x165667b1);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  h ^= h >>> 12;
  return (h >>> 0) / 4294967296;
}

export class HashTeacher implements Teacher {
  calls = 0;
  readonly likely: Int32Array;
  constructor(readonly tokenizer: Tokenizer, likely: Iterable<number>) {
    this.likely = Int32Array.from(new Set(likely));
  }

  async score(requests: ScoreRequest[], opts: { topK: number }): Promise<TeacherScores[]> {
    this.calls++;
    const k = opts.topK;
    const V = this.tokenizer.vocabSize;
    const M = this.likely.length;
    if (k > M) throw new Error(`HashTeacher serves topK <= ${M}`);
    return requests.map(({ ids, start }) => {
      const rows = ids.length - start;
      const logprobs = new Float32Array(rows);
      const topkIds = new Int32Array(rows * k);
      const topkLogprobs = new Float32Array(rows * k);
      const logits = new Float64Array(M);
      for (let r = 0; r < rows; r++) {
        const i = start + r;
        const prev = ids[i - 1]!;
        let max = FLOOR;
        for (let m = 0; m < M; m++) {
          logits[m] = 8 * hash(prev, i % 7, this.likely[m]!) - 4;
          if (logits[m]! > max) max = logits[m]!;
        }
        let z = (V - M) * Math.exp(FLOOR - max);
        for (let m = 0; m < M; m++) z += Math.exp(logits[m]! - max);
        const logZ = max + Math.log(z);
        const realised = ids[i]!;
        const at = this.likely.indexOf(realised);
        logprobs[r] = (at >= 0 ? logits[at]! : FLOOR) - logZ;
        const order = Array.from({ length: M }, (_, m) => m).sort((a, b) => logits[b]! - logits[a]! || this.likely[a]! - this.likely[b]!);
        for (let j = 0; j < k; j++) {
          topkIds[r * k + j] = this.likely[order[j]!]!;
          topkLogprobs[r * k + j] = logits[order[j]!]! - logZ;
        }
      }
      return { logprobs, topkIds, topkLogprobs, k };
    });
  }
}
