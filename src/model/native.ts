/** The model module's slice of the native addon (native/model/binding.cc). */
import { addon } from '../core/native.js';

/** The numbers the native decoder is built from (see native/model/config.h). */
export interface NativeModelConfig {
  vocab: number;
  dim: number;
  layers: number;
  heads: number;
  hidden: number;
  maxSeq: number;
  swiglu: boolean;
  ropeTheta: number;
  normEps: number;
}

export interface NativeTensor {
  name: string;
  offset: number; // in floats
  shape: number[];
  decay: boolean;
}

export interface NativeOptimizer {
  lr: number;
  minLr: number;
  warmup: number;
  totalSteps: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  clip: number;
}

export interface NativeTinyModel {
  readonly paramCount: number;
  stepCount: number;
  readonly backwardReady: boolean;
  layout(): NativeTensor[];
  getParams(): Float32Array;
  setParams(p: Float32Array): void;
  initParams(seed: number): void;
  getGrads(): Float32Array;
  zeroGrads(): void;
  forward(tokens: Int32Array, offsets: Int32Array, outStart: Int32Array, train: boolean): Float32Array;
  backward(gradLogits: Float32Array): void;
  setOptimizer(o: NativeOptimizer): void;
  step(): { lr: number; gradNorm: number; step: number };
  getOptimizerState(): { m: Float32Array; v: Float32Array; step: number };
  setOptimizerState(m: Float32Array, v: Float32Array, step: number): void;
  generate(tokens: Int32Array, offsets: Int32Array, maxNew: number, temperature: number, topP: number, seed: number,
    stop: Uint8Array, firstIndex: number): { tokens: Int32Array; logprobs: Float32Array; offsets: Int32Array };
}

/** The row kernels the facade calls directly (the GEMM, references and per-op entry points are in dev/model-kernels.ts). */
export interface ModelKernels {
  crossEntropy(logits: Float32Array, targets: Int32Array, vocab: number): { loss: number; grad: Float32Array };
  logprobsTopK(logits: Float32Array, targets: Int32Array, vocab: number, k: number, floor: number):
    { logprobs: Float32Array; topIdx: Int32Array; topLogprobs: Float32Array };
}

export interface ModelNative {
  TinyModel: new (config: NativeModelConfig) => NativeTinyModel;
  modelKernels: ModelKernels;
}

export const modelNative = (): ModelNative => addon<ModelNative>();
