/**
 * The model stage's dev entry points (native/dev/model.cc, dev addon only): the packed GEMM and its
 * plain reference, the float64 forward of the whole decoder, the CPU's FMA peak for the bench, and
 * each layer op of native/model/ops.h on its own for the per-op tests (float32, shapes as in ops.h).
 */
import type { NativeModelConfig } from '../src/model/native.js';
import { devAddon } from './addon.js';

export interface OptimArgs { lr: number; minLr: number; warmup: number; totalSteps: number; beta1: number; beta2: number; eps: number; weightDecay: number }

export interface ModelDev {
  gemm(M: number, N: number, K: number, a: Float32Array, aTrans: boolean, b: Float32Array, bTrans: boolean,
    c: Float32Array, accumulate: boolean, reference: boolean): void;
  referenceForward(config: NativeModelConfig, params: Float64Array, tokens: Int32Array, offsets: Int32Array,
    outStart: Int32Array): Float64Array;
  measurePeak(seconds: number): { flops: number; threads: number; kernel: string };
  gemmKernel(): string;
  rmsNormForward(x: Float32Array, w: Float32Array, N: number, d: number, eps: number): { y: Float32Array; rstd: Float32Array };
  rmsNormBackward(dy: Float32Array, x: Float32Array, w: Float32Array, rstd: Float32Array, N: number, d: number): { dx: Float32Array; dw: Float32Array };
  ropeForward(qkv: Float32Array, N: number, d: number, heads: number, positions: Int32Array, theta: number): Float32Array;
  ropeBackward(dqkv: Float32Array, N: number, d: number, heads: number, positions: Int32Array, theta: number): Float32Array;
  attentionForward(qkv: Float32Array, T: number, d: number, heads: number): { p: Float32Array; out: Float32Array };
  attentionBackward(dout: Float32Array, qkv: Float32Array, p: Float32Array, T: number, d: number, heads: number): Float32Array;
  swiGluForward(gu: Float32Array, N: number, h: number): Float32Array;
  swiGluBackward(dact: Float32Array, gu: Float32Array, N: number, h: number): Float32Array;
  geluForward(u: Float32Array, N: number, h: number): Float32Array;
  geluBackward(dact: Float32Array, u: Float32Array, N: number, h: number): Float32Array;
  embeddingForward(tokens: Int32Array, table: Float32Array, d: number): Float32Array;
  embeddingBackward(dx: Float32Array, tokens: Int32Array, V: number, d: number): Float32Array;
  learningRate(optim: OptimArgs, step: number): number;
  gradNorm(g: Float32Array): number;
  adamwUpdate(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, decay: Uint8Array, optim: OptimArgs,
    lr: number, step: number, gscale: number): { p: Float32Array; m: Float32Array; v: Float32Array };
}

export const modelDev = (): ModelDev => devAddon<{ modelDev: ModelDev }>().modelDev;
