/**
 * The two pluggable roles of an OPD step (DESIGN section 1). Embed xopd in your own trainer by
 * implementing these; xopd ships the embedded Model (both roles) and VllmTeacher (teacher).
 */
import type { Tokenizer } from '../tokenizer/tokenizer.js';

/** One scoring request: a full sequence (prompt + response ids) and where the response starts. */
export interface ScoreRequest {
  ids: Int32Array;
  /** index of the first response token in ids (the prompt length); positions [start, n) are scored */
  start: number;
}

/**
 * Teacher numbers for positions start..n-1 of one request; row i is about ids[start + i] given
 * ids[0 .. start + i). Ids are tokenizer ids of the teacher.
 */
export interface TeacherScores {
  /** [n - start] logprob of the realised token */
  logprobs: Float32Array;
  /** [(n - start) * k] top-k ids at each position, most likely first */
  topkIds: Int32Array;
  /** [(n - start) * k] their logprobs */
  topkLogprobs: Float32Array;
  k: number;
}

export interface Teacher {
  readonly tokenizer: Tokenizer;
  /**
   * Longest sequence (prompt + response ids) score() accepts, when the teacher has a limit. A
   * distiller cuts the teacher response to fit; the student tokens past the cut are masked (TAIL).
   */
  readonly maxSequenceLength?: number;
  score(requests: ScoreRequest[], opts: { topK: number }): Promise<TeacherScores[]>;
  close?(): Promise<void>;
}

export interface GenerateOptions {
  maxTokens: number;
  temperature?: number; // default 1
  topP?: number; // default 1
  seed?: number;
  /** tokenizer ids that end a response (default: the tokenizer's eosIds); the stop token is kept */
  stopIds?: Int32Array;
}

/** A sampled response: tokenizer ids (stop token included when one was sampled) and their logprobs. */
export interface Rollout {
  ids: Int32Array;
  logprobs: Float32Array;
}

/** Logits for the response positions of a batch: row r predicts response token r (concatenated). */
export interface PolicyLogits {
  logits: Float32Array; // [rows * vocab]
  rows: number;
  vocab: number;
}

export interface StudentPolicy {
  readonly tokenizer: Tokenizer;
  /** Longest sequence (prompt + response ids) the student handles, when it has a limit. */
  readonly maxSequenceLength?: number;
  /**
   * Tokenizer ids covered by the logits, in logit order (logit column c is tokenizer id vocabIds[c]).
   * A full-vocabulary model returns 0..V-1.
   */
  readonly vocabIds: Int32Array;
  generate(prompts: Int32Array[], opts: GenerateOptions): Promise<Rollout[]>;
  /** Logits of every response position of each (prompt, response) pair, rows concatenated in order. */
  forward(batch: Array<{ prompt: Int32Array; response: Int32Array }>): Promise<PolicyLogits>;
  /** Accumulates d loss / d logits (same layout as forward's logits) into the parameter gradients. */
  backward(gradLogits: Float32Array): Promise<void>;
  /** One optimizer step on the accumulated gradients; clears them. */
  step(): Promise<void>;
}
