/**
 * The options of a distillation run, written once (core/options.ts): the Distiller resolves them
 * from this table, and `xopd distill` builds its flags and --help from it.
 */
import * as check from '../core/check.js';
import { ErrorCode, XopdError } from '../core/errors.js';
import { resolveOptions, type OptionsOf, type ResolvedOf } from '../core/options.js';
import { DIVERGENCES } from '../loss/sparse-divergence.js';
import { PROJECTIONS } from '../project/span-projection.js';

/** The training signal: the paper's chunk credit, span projection + divergence, or a weighted mix. */
export type LossSpec = 'chunk-pg' | 'span-kl' | { chunkPg: number; spanKl: number };

/** 'chunk-pg', 'span-kl', an object { chunkPg, spanKl }, or text 'chunk-pg=0.5,span-kl=0.5'. */
export function parseLoss(x: unknown): LossSpec {
  if (x === 'chunk-pg' || x === 'span-kl') return x;
  let w: { chunkPg?: unknown; spanKl?: unknown } | undefined;
  if (typeof x === 'string' && x.includes('=')) {
    w = {};
    for (const part of x.split(',')) {
      const [name, value] = part.split('=').map((s) => s.trim());
      const v = Number(value);
      if (name === 'chunk-pg') w.chunkPg = v;
      else if (name === 'span-kl') w.spanKl = v;
      else throw new XopdError(ErrorCode.ARG_VALUE, `loss weight '${part}' names no signal: use chunk-pg=W,span-kl=W`);
    }
  } else if (x && typeof x === 'object') w = x as { chunkPg?: unknown; spanKl?: unknown };
  if (!w) throw new XopdError(ErrorCode.ARG_VALUE, `loss must be 'chunk-pg', 'span-kl' or weights { chunkPg, spanKl }, got ${check.describe(x)}`);
  for (const k of Object.keys(w)) if (k !== 'chunkPg' && k !== 'spanKl') throw new XopdError(ErrorCode.ARG_VALUE, `loss weights take chunkPg and spanKl, not '${k}'`);
  const chunkPg = check.num(w.chunkPg ?? 0, 'loss.chunkPg', 0, 1e6);
  const spanKl = check.num(w.spanKl ?? 0, 'loss.spanKl', 0, 1e6);
  if (chunkPg + spanKl <= 0) throw new XopdError(ErrorCode.ARG_VALUE, 'loss weights must not all be zero');
  return { chunkPg, spanKl };
}

export function lossWeights(loss: LossSpec): { chunkPg: number; spanKl: number } {
  if (loss === 'chunk-pg') return { chunkPg: 1, spanKl: 0 };
  if (loss === 'span-kl') return { chunkPg: 0, spanKl: 1 };
  return loss;
}

/** The text form of a loss (what --loss takes). */
export function lossName(loss: LossSpec): string {
  return typeof loss === 'string' ? loss : `chunk-pg=${loss.chunkPg},span-kl=${loss.spanKl}`;
}

export const DISTILL_OPTIONS = {
  loss: {
    kind: 'parsed', default: 'chunk-pg' as LossSpec, parse: parseLoss, show: lossName, valueName: 'chunk-pg|span-kl|chunk-pg=W,span-kl=W',
    help: 'the training signal: chunk credit policy gradient, sparse span projection + divergence, or a weighted mix',
  },
  divergence: { kind: 'choice', choices: DIVERGENCES, default: 'reverse-kl', help: 'divergence of the span-kl signal' },
  projection: {
    kind: 'choice', choices: PROJECTIONS, default: 'prefix',
    help: "span projection of span-kl (DESIGN 5): 'prefix' sends a teacher alternative inside a student token to the group of student tokens beginning with its text; 'first' (revision 1) to the longest student token it begins with",
  },
  beta: { kind: 'number', min: 0, max: 1, default: 0.5, help: 'JSD interpolation (0: forward KL, 1: reverse KL)' },
  lossTemperature: { kind: 'number', min: 1e-3, max: 100, default: 1, help: 'temperature dividing the student logits in the divergence' },
  topK: { kind: 'int', min: 0, max: 1024, default: 8, help: 'teacher top-k per position (span-kl; chunk-pg alone asks for none)' },
  batchSize: { kind: 'int', min: 1, max: 65536, default: 16, help: 'prompts per step' },
  steps: { kind: 'int', min: 0, max: 1e9, default: 100, help: 'optimizer steps of the run' },
  evalInterval: { kind: 'int', min: 0, max: 1e9, default: 0, help: 'evaluate every N steps (0: before and after only)' },
  evalSize: { kind: 'int', min: 0, max: 1e7, default: 200, help: 'test problems per evaluation (0: no evaluation)' },
  seed: { kind: 'int', min: 0, max: 2 ** 31 - 1, default: 1, help: 'seed of prompts and samples' },
  maxTokens: { kind: 'int', min: 1, max: 1 << 20, default: 256, help: "longest sampled response, in student tokens (clamped to what the student's context leaves after the prompt)" },
  temperature: { kind: 'number', min: 1e-3, max: 100, default: 1, help: 'sampling temperature of the student rollouts' },
  credit: { kind: 'choice', choices: ['proportional', 'uniform'], default: 'proportional', help: "chunk credit assignment: 'proportional' (the paper) or 'uniform'" },
  clamp: { kind: 'number', min: 0, max: 1e6, default: 10, help: 'clamp of the per-token advantage' },
  maxChunkTokens: { kind: 'int', min: 1, max: 1 << 16, default: 6, help: 'chunks with more tokens on a side are flagged OVERSIZE and masked' },
  includeFlags: { kind: 'int', min: 0, max: 7, default: 0, valueName: 'bits', help: 'flagged chunks that still give signal: 1 OVERSIZE, 2 APPROX, 4 TAIL, summed' },
} as const;

export type DistillOptions = OptionsOf<typeof DISTILL_OPTIONS>;
export type ResolvedOptions = ResolvedOf<typeof DISTILL_OPTIONS>;

/** Checks and completes distillation options; every problem is an XopdError that names the option. */
export function resolveDistillOptions(o: DistillOptions = {}): ResolvedOptions {
  const r = resolveOptions(DISTILL_OPTIONS, o, 'distill');
  if (lossWeights(r.loss).spanKl > 0 && r.topK === 0) throw new XopdError(ErrorCode.ARG_VALUE, "span-kl needs the teacher's top-k: topK must be at least 1");
  return r;
}
