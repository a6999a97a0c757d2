/**
 * The embedded model's speed: training tokens/s (forward + cross-entropy + backward + AdamW) and
 * sampling tokens/s (KV cache), with the FLOP/s they achieve as a share of this CPU's peak,
 * measured in the same run by independent FMA chains on every worker (the dev addon's modelDev.measurePeak).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { Model } from '../src/model/model.js';
import { packageRoot } from '../src/core/native.js';
import { modelNative } from '../src/model/native.js';
import { modelDev } from '../dev/model-kernels.js';
import { info } from '../src/core/native.js';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { generateProblems, promptIds, responseIds, taskVocabIds } from '../src/tasks/arithmetic.js';
import type { ModelShape } from '../src/model/config.js';
import { type Row, type Suite } from './harness.js';

/** Multiply-adds of the weight matrices per token (both MLP kinds), logits excluded. */
function matmulMacsPerToken(s: ModelShape): number {
  const d = s.hiddenSize, h = s.intermediateSize, g = s.mlp === 'swiglu' ? 2 * h : h;
  return s.numLayers * (3 * d * d + d * d + g * d + h * d);
}

export const modelSuite: Suite = {
  name: 'model',
  summary: 'embedded decoder: training and sampling tokens/s, achieved FLOP/s vs this CPU\'s measured FMA peak',
  async run({ quick }) {
    const { measurePeak, gemmKernel } = modelDev();
    const peak = measurePeak(quick ? 0.5 : 1.5);
    const rows: Row[] = [];
    const notes = [`threads ${info().threads}, GEMM kernel ${gemmKernel()}, peak ${(peak.flops / 1e9).toFixed(1)} GFLOP/s (${peak.kernel} FMA chains on ${peak.threads} workers, FMA = 2 FLOPs)`,
      'model FLOPs: 2 per multiply-add of every weight matrix and the tied logits layer, attention counted causally (half the T x T products); backward = 2x forward'];
    // The shipped checkpoints when present (trained, so sampling sees peaked distributions), else
    // fresh models of the same shapes.
    const configs: Array<{ name: string; dir: string; tokenizer: string; shape: ModelShape }> = [
      { name: 'teacher-qwen3', dir: 'teacher-qwen3', tokenizer: 'qwen3', shape: { hiddenSize: 128, numLayers: 4, numHeads: 4, intermediateSize: 384, mlp: 'swiglu', maxSeqLen: 192, ropeTheta: 10000, rmsNormEps: 1e-5 } },
      { name: 'student-llama3', dir: 'student-llama3', tokenizer: 'llama3', shape: { hiddenSize: 96, numLayers: 3, numHeads: 4, intermediateSize: 256, mlp: 'swiglu', maxSeqLen: 192, ropeTheta: 10000, rmsNormEps: 1e-5 } },
    ];
    for (const { name: base, dir, tokenizer, shape: fresh } of configs) {
      const shipped = path.join(packageRoot, 'models', dir);
      const tok = Tokenizer.load(tokenizer);
      const model = existsSync(path.join(shipped, 'model.safetensors')) ? Model.load(shipped)
        : Model.create({ ...fresh, tokenizer, vocabIds: taskVocabIds(tok) }, { seed: 1, tokenizer: tok });
      const shape: ModelShape = model.config;
      const name = existsSync(path.join(shipped, 'model.safetensors')) ? base : `${base} (fresh)`;
      const V = model.vocabIds.length, d = shape.hiddenSize;
      const macs = matmulMacsPerToken(shape);
      const batchSize = 32;
      const problems = generateProblems({ split: 'train', count: batchSize, seed: 1 });
      const batch = problems.map((p) => ({ prompt: promptIds(tok, p), response: responseIds(tok, p) }));
      const seqLens = batch.map((b) => b.prompt.length + b.response.length - 1);
      const tokens = seqLens.reduce((a, b) => a + b, 0);
      const rowsOut = batch.reduce((a, b) => a + b.response.length, 0);
      const targets = Int32Array.from(batch.flatMap((b) => Array.from(b.response, (id) => model.indexOf(id))));
      const trainFlops = 3 * (2 * macs * tokens + 2 * rowsOut * V * d + shape.numLayers * seqLens.reduce((a, T) => a + 2 * T * T * d, 0));
      const step = () => {
        const f = model.forwardSync(batch);
        const { grad } = modelNative().modelKernels.crossEntropy(f.logits, targets, V);
        model.backwardSync(grad);
        model.stepSync();
      };
      step();
      const nSteps = quick ? 3 : 10;
      const t0 = performance.now();
      for (let i = 0; i < nSteps; i++) step();
      const tTrain = (performance.now() - t0) / 1000 / nSteps;
      rows.push({ model: name, phase: 'train step', params: model.paramCount, vocab: V, batch_tokens: tokens, tokens_s: tokens / tTrain,
        gflop_s: trainFlops / tTrain / 1e9, peak_gflop_s: peak.flops / 1e9, share_of_peak: trainFlops / tTrain / peak.flops });

      // Sampling: 64 prompts, 32 new tokens each, no stop (so every step decodes the full batch).
      const prompts = generateProblems({ split: 'test', count: 64, seed: 2 }).map((p) => promptIds(tok, p));
      const maxTokens = 32;
      let sampleFlops = 0;
      for (const p of prompts) {
        sampleFlops += 2 * macs * p.length + shape.numLayers * 2 * p.length * p.length * d + 2 * V * d; // prefill (logits of the last row)
        for (let j = 0; j < maxTokens - 1; j++) sampleFlops += 2 * macs + 2 * V * d + shape.numLayers * 4 * (p.length + j + 1) * d;
      }
      const gen = () => model.generateSync(prompts, { maxTokens, temperature: 1, topP: 0.95, seed: 1, stopIds: new Int32Array(0) });
      gen();
      const reps = quick ? 2 : 5;
      const t1 = performance.now();
      for (let i = 0; i < reps; i++) gen();
      const tGen = (performance.now() - t1) / 1000 / reps;
      rows.push({ model: name, phase: 'sample (64 x 32)', params: model.paramCount, vocab: V, batch_tokens: prompts.length * maxTokens,
        tokens_s: (prompts.length * maxTokens) / tGen, gflop_s: sampleFlops / tGen / 1e9, peak_gflop_s: peak.flops / 1e9, share_of_peak: sampleFlops / tGen / peak.flops });
    }
    // The GEMM alone at the teacher's QKV shape (packing excluded: weights are packed once per step).
    {
      const M = 2048, N = 384, K = 128;
      const a = new Float32Array(M * K).fill(0.01), b = new Float32Array(K * N).fill(0.02), c = new Float32Array(M * N);
      const { gemm } = modelDev();
      gemm(M, N, K, a, false, b, true, c, false, false);
      const reps = quick ? 10 : 40;
      const t = performance.now();
      for (let i = 0; i < reps; i++) gemm(M, N, K, a, false, b, true, c, false, false);
      const dt = (performance.now() - t) / 1000 / reps;
      rows.push({ model: 'GEMM 2048x384x128', phase: 'x Wt (pack incl.)', params: null, vocab: null, batch_tokens: M, tokens_s: M / dt,
        gflop_s: (2 * M * N * K) / dt / 1e9, peak_gflop_s: peak.flops / 1e9, share_of_peak: (2 * M * N * K) / dt / peak.flops });
    }
    return { suite: 'model', rows, notes };
  },
};
