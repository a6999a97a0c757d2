/**
 * A model folder on disk (DESIGN 8): config.json, model.safetensors, optionally optimizer.safetensors
 * (AdamW moments and step count, in checkpoints) and the tokenizer files when config.tokenizer is
 * '.'. Reads validate every part against the others; writes go to a fresh temporary folder that is
 * renamed into place, so a folder a user keeps is never left half written.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as check from '../core/check.js';
import { ErrorCode, XopdError } from '../core/errors.js';
import { writeFailure } from '../core/files.js';
import { configFromJson, type ModelConfig } from './config.js';
import type { NativeTensor } from './native.js';
import { f32, readSafetensors, writeSafetensors } from './safetensors.js';

/** AdamW moments and step count beside the weights, in checkpoints. */
export const OPTIMIZER_FILE = 'optimizer.safetensors';
const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json'];

export interface OptimizerState {
  m: Float32Array;
  v: Float32Array;
  step: number;
}

/** config.json of a model folder, validated. */
export function readModelConfig(dir: string): ModelConfig {
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
  return configFromJson(json, cfgFile);
}

/** model.safetensors as one flat buffer in `layout` order; every tensor must be there with its shape, and finite. */
export function readWeights(dir: string, layout: NativeTensor[], paramCount: number): Float32Array {
  const weights = path.join(dir, 'model.safetensors');
  if (!existsSync(weights)) throw new XopdError(ErrorCode.MODEL_NOT_FOUND, `${dir} holds no model.safetensors`);
  const st = readSafetensors(weights);
  const flat = new Float32Array(paramCount);
  const expected = new Set(layout.map((t) => t.name));
  for (const name of st.tensors.keys())
    if (!expected.has(name)) throw new XopdError(ErrorCode.MODEL_FORMAT, `${weights}: tensor ${name} is not part of the model config.json describes`);
  for (const t of layout) {
    const e = st.tensors.get(t.name);
    if (!e) throw new XopdError(ErrorCode.MODEL_FORMAT, `${weights}: tensor ${t.name} is missing (config.json and the weights disagree)`);
    if (e.shape.length !== t.shape.length || e.shape.some((d, i) => d !== t.shape[i]))
      throw new XopdError(ErrorCode.MODEL_FORMAT, `${weights}: tensor ${t.name} has shape ${JSON.stringify(e.shape)} but config.json implies ${JSON.stringify(t.shape)}`);
    flat.set(f32(weights, st, t.name), t.offset);
  }
  for (let i = 0; i < flat.length; i++)
    if (!Number.isFinite(flat[i])) throw new XopdError(ErrorCode.MODEL_FORMAT, `${weights}: weight ${i} is ${flat[i]}: the checkpoint is corrupt`);
  return flat;
}

/** The optimizer state of a folder (null when it holds none); one that does not fit `paramCount` is an E_MODEL_FORMAT. */
export function readOptimizerState(dir: string, paramCount: number): OptimizerState | null {
  check.str(dir, 'dir');
  const file = path.join(dir, OPTIMIZER_FILE);
  if (!existsSync(file)) return null;
  const st = readSafetensors(file);
  for (const name of ['adamw.m', 'adamw.v']) {
    const e = st.tensors.get(name);
    if (!e || e.shape.length !== 1 || e.shape[0] !== paramCount)
      throw new XopdError(ErrorCode.MODEL_FORMAT, `${file}: ${name} must be a tensor of ${paramCount} floats (one per parameter of this model)`);
  }
  const step = Number(st.metadata.step);
  if (!Number.isInteger(step) || step < 0) throw new XopdError(ErrorCode.MODEL_FORMAT, `${file}: metadata step must be a non-negative integer, got ${check.describe(st.metadata.step)}`);
  return { m: f32(file, st, 'adamw.m'), v: f32(file, st, 'adamw.v'), step };
}

export interface ModelFolderContent {
  /** config.json, as written */
  configJson: unknown;
  params: Float32Array;
  layout: NativeTensor[];
  producer: string;
  optimizer?: OptimizerState;
  /** where tokenizer.json / tokenizer_config.json come from (config.tokenizer '.') */
  tokenizerDir?: string;
}

/**
 * Writes a model folder into a fresh temporary folder beside `dir`, then renames it to `dir` (an
 * existing dir is moved aside, then removed).
 */
export function writeModelFolder(dir: string, c: ModelFolderContent): void {
  const target = path.resolve(dir);
  try {
    mkdirSync(path.dirname(target), { recursive: true });
  } catch (err) {
    throw writeFailure('the model folder', target, err);
  }
  const tmp = `${target}.tmp-${process.pid}-${Date.now()}`;
  try {
    mkdirSync(tmp);
    writeFileSync(path.join(tmp, 'config.json'), JSON.stringify(c.configJson, null, 2) + '\n');
    writeSafetensors(path.join(tmp, 'model.safetensors'), c.params, c.layout, { format: 'pt', producer: c.producer });
    if (c.optimizer) {
      const n = c.optimizer.m.length;
      const both = new Float32Array(2 * n);
      both.set(c.optimizer.m);
      both.set(c.optimizer.v, n);
      writeSafetensors(path.join(tmp, OPTIMIZER_FILE), both,
        [{ name: 'adamw.m', offset: 0, shape: [n] }, { name: 'adamw.v', offset: n, shape: [n] }],
        { format: 'pt', producer: c.producer, step: String(c.optimizer.step) });
    }
    if (c.tokenizerDir !== undefined)
      for (const f of TOKENIZER_FILES) if (existsSync(path.join(c.tokenizerDir, f))) copyFileSync(path.join(c.tokenizerDir, f), path.join(tmp, f));
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
}
