// The whole decoder against its float64 reference: forward logits, gradients of every parameter
// against central finite differences of the reference, and determinism across thread counts.
import { describe, expect, it } from 'vitest';
import { rng } from '../dev/corpus.js';
import { setThreads, info } from '../src/core/native.js';
import { Model } from '../src/model/model.js';
import { nativeConfig, type MlpKind } from '../src/model/config.js';
import { modelDev } from '../dev/model-kernels.js';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { TOL, expectAllClose } from './helpers/tolerances.js';

const tok = Tokenizer.load('qwen3');
// A dozen real Qwen 3 ids: digits, " +", " =", ".", <|im_end|>.
const ids = tok.encode('0123456789 + = .', { addSpecialTokens: false });
const vocabIds = Int32Array.from(new Set([...ids, tok.eosIds[0]!]));

function tiny(mlp: MlpKind, seed: number): Model {
  const m = Model.create({ tokenizer: 'qwen3', vocabIds, hiddenSize: 8, numLayers: 2, numHeads: 2, intermediateSize: 12, mlp, maxSeqLen: 32 }, { seed, tokenizer: tok });
  // Larger-than-init weights so every nonlinearity works away from its linear regime.
  const r = rng(seed + 100);
  m.setParams(Float32Array.from(m.getParams(), (p) => p * 10 + (r() - 0.5) * 0.6));
  return m;
}

const pick = (xs: number[]) => Int32Array.from(xs, (i) => vocabIds[i % vocabIds.length]!);
const batch = [
  { prompt: pick([1, 2, 3, 10]), response: pick([4, 5, 6, 7, 0]) },
  { prompt: pick([9]), response: pick([8, 8, 1]) },
  { prompt: pick([3, 1, 4, 1, 5, 9, 2, 6]), response: pick([5]) },
];

/** The sequences Model.forward runs (prompt + response minus its last token), in index space. */
function referenceInputs(m: Model) {
  const toks: number[] = [], offsets = [0], outStart: number[] = [];
  for (const { prompt, response } of batch) {
    const seq = [...prompt, ...response.subarray(0, response.length - 1)].map((id) => m.indexOf(id));
    toks.push(...seq);
    offsets.push(toks.length);
    outStart.push(prompt.length - 1);
  }
  return { tokens: Int32Array.from(toks), offsets: Int32Array.from(offsets), outStart: Int32Array.from(outStart) };
}

describe.each(['swiglu', 'gelu'] as const)('decoder (%s MLP) vs float64 reference', (mlp) => {
  it('forward logits match the float64 forward', () => {
    const m = tiny(mlp, 3);
    const { logits, rows, vocab } = m.forwardSync(batch);
    expect(rows).toBe(5 + 3 + 1);
    expect(vocab).toBe(vocabIds.length);
    const { tokens, offsets, outStart } = referenceInputs(m);
    const ref = modelDev().referenceForward(nativeConfig(m.config), Float64Array.from(m.getParams()), tokens, offsets, outStart);
    expectAllClose(logits, ref, TOL.modelForward, 'logits');
  });

  it('gradients of every parameter match central differences of the reference', () => {
    const m = tiny(mlp, 5);
    const { logits } = m.forwardSync(batch);
    const r = rng(11);
    const c = Float32Array.from(logits, () => r() - 0.5); // loss = Σ c · logits
    m.backwardSync(c);
    const grads = m.getGrads();
    const p = Float64Array.from(m.getParams());
    const { tokens, offsets, outStart } = referenceInputs(m);
    const cfg = nativeConfig(m.config);
    const loss = () => {
      const z = modelDev().referenceForward(cfg, p, tokens, offsets, outStart);
      let s = 0;
      for (let i = 0; i < z.length; i++) s += z[i]! * c[i]!;
      return s;
    };
    const h = TOL.modelVsFd.h;
    const fds = new Float64Array(p.length);
    for (let i = 0; i < p.length; i++) {
      const x = p[i]!;
      p[i] = x + h;
      const up = loss();
      p[i] = x - h;
      const down = loss();
      p[i] = x;
      fds[i] = (up - down) / (2 * h);
    }
    expect(fds.length).toBe(m.paramCount);
    expectAllClose(grads, fds, TOL.modelVsFd, 'd loss / d params');
  });
});

describe('determinism', () => {
  it('forward, backward and AdamW give identical numbers on 1 and 2 threads', () => {
    const before = info().threads;
    const run = (threads: number) => {
      setThreads(threads);
      // big enough that the GEMMs and attention actually split across workers
      const big = Model.create({ tokenizer: 'qwen3', vocabIds, hiddenSize: 64, numLayers: 2, numHeads: 4, intermediateSize: 96, maxSeqLen: 128 }, { seed: 9, tokenizer: tok });
      big.setOptimizer({ lr: 1e-2, warmup: 2, totalSteps: 4, weightDecay: 0.1 });
      const r = rng(4);
      const data = Array.from({ length: 24 }, () => ({
        prompt: Int32Array.from({ length: 20 + Math.floor(r() * 30) }, () => vocabIds[Math.floor(r() * vocabIds.length)]!),
        response: Int32Array.from({ length: 5 + Math.floor(r() * 20) }, () => vocabIds[Math.floor(r() * vocabIds.length)]!),
      }));
      let logits = new Float32Array();
      for (let s = 0; s < 3; s++) {
        const f = big.forwardSync(data);
        logits = f.logits;
        big.backwardSync(Float32Array.from(f.logits, (z, i) => Math.sin(i) * 0.01 + z * 1e-3));
        big.stepSync();
      }
      return { logits, params: big.getParams() };
    };
    try {
      const one = run(1), two = run(2);
      expect(Buffer.from(two.logits.buffer).equals(Buffer.from(one.logits.buffer))).toBe(true);
      expect(Buffer.from(two.params.buffer).equals(Buffer.from(one.params.buffer))).toBe(true);
    } finally {
      setThreads(before);
    }
  });
});
