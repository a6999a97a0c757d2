/**
 * FLOPs of the embedded decoder, counted from its shape: 2 per multiply-add of every weight matrix
 * (q, k, v, o, the MLP, and the tied logits layer where logits are needed) and of attention (causal:
 * position t attends to t + 1 keys, for QKᵀ and for AV). Backward costs twice the forward.
 */
import type { ModelShape } from '../model/config.js';

export interface FlopShape extends ModelShape {
  /** logit columns (the config's id list) */
  vocab: number;
}

/** Multiply-adds per token of the weight matrices (no attention, no logits). */
function matMacsPerToken(s: FlopShape): number {
  const d = s.hiddenSize, f = s.intermediateSize;
  const mlp = s.mlp === 'swiglu' ? 3 * d * f : 2 * d * f;
  return s.numLayers * (4 * d * d + mlp);
}

/**
 * Forward FLOPs of positions [from, to) of one sequence whose keys start at 0 (a KV cache holds the
 * earlier ones), with `logitRows` rows of logits.
 */
export function forwardFlops(s: FlopShape, from: number, to: number, logitRows: number): number {
  const n = Math.max(0, to - from);
  // Σ_{t=from}^{to-1} (t + 1) keys, for QKᵀ and AV: 2 · d MACs per key per layer.
  const keys = (to * (to + 1)) / 2 - (from * (from + 1)) / 2;
  const macs = matMacsPerToken(s) * n + s.numLayers * 2 * s.hiddenSize * keys + s.vocab * s.hiddenSize * logitRows;
  return 2 * macs;
}

/** Sampling `generated` tokens after a prompt: prefill (one logits row), then one token at a time. */
export function generateFlops(s: FlopShape, prompt: number, generated: number): number {
  if (generated <= 0) return forwardFlops(s, 0, prompt, 1);
  return forwardFlops(s, 0, prompt, 1) + forwardFlops(s, prompt, prompt + generated - 1, generated - 1);
}

/** A training forward + backward over prompt + response with logits on the response rows. */
export function trainFlops(s: FlopShape, prompt: number, response: number): number {
  return 3 * forwardFlops(s, 0, prompt + response, response);
}

/** Mean prompt and response lengths (tokens) of a batch of samples on each side. */
export interface SampleLengths {
  studentPrompt: number;
  studentResponse: number;
  teacherPrompt: number;
  teacherResponse: number;
}

/**
 * FLOPs of one OPD sample: the student samples its answer, the teacher scores it (one forward with
 * logits on the response), the student trains on it (forward and backward).
 */
export function opdSampleFlops(student: FlopShape, teacher: FlopShape, l: SampleLengths): number {
  return generateFlops(student, l.studentPrompt, l.studentResponse)
    + forwardFlops(teacher, 0, l.teacherPrompt + l.teacherResponse, l.teacherResponse)
    + trainFlops(student, l.studentPrompt, l.studentResponse);
}
