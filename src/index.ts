// xopd: cross-tokenizer on-policy distillation. The public API, in the order data flows through
// it: tokenizer → align → project → loss → model → tasks → train → serve → run (docs/ARCHITECTURE.md).
// Tools and tests reach a few internals through 'xopd/internal' (src/internal.ts).

// core: errors every entry point raises, the native addon
export { XopdError, ErrorCode } from './core/errors.js';
export {
  info, setThreads, version, setAutoDevice, cudaStatus, releaseCudaMemory, setCudaWorkspaceLimit,
  type NativeInfo, type Device, type AutoDevice, type CudaStatus,
} from './core/native.js';

// tokenizer: the exact bytes of every token (DESIGN 2), chat templates
export { Tokenizer, TOKENIZER_PACKAGES, type EncodeOptions, type DecodeOptions, type LoadOptions, type NativeTokenTable } from './tokenizer/tokenizer.js';
export { PromptParser, type PromptParserOptions } from './tokenizer/prompt-parse.js';
export type { ChatMessage } from './tokenizer/chat-template.js';
export type { TokenizerKind } from './tokenizer/token-bytes.js';

// align: minimal synchronized chunks of two token streams (DESIGN 3)
export { TokenizerBridge, type TokenizerBridgeOptions } from './align/bridge.js';
export { ChunkFlags, type ChunkFlag, type Alignment } from './align/types.js';
export { alignPairs, alignTables, type AlignmentDetails, type AlignOptions } from './align/aligner.js';

// project: the teacher's top-k as sparse targets over student tokens (DESIGN 5)
export { spanProjection, PROJECTIONS, type Projection, type SpanTeacher, type SpanProjectionOptions, type TokenizerPair } from './project/span-projection.js';
export { oneHotTargets, concatTargets, targetRow, Targets, type SparseTargets, type BucketGroups, type TargetRow } from './project/targets.js';

// loss: chunk credit and policy gradient (DESIGN 4), the fused bucketed divergence (DESIGN 6)
export { chunkAdvantages, type ChunkAdvantageOptions, type ChunkSignal } from './loss/chunk-advantages.js';
export { policyGradientLoss, DEFAULT_CLIP, type ClipOptions, type PolicyGradientOptions, type PolicyGradientResult } from './loss/policy-gradient.js';
export { sparseDivergence, crossEntropy, DIVERGENCES, type Divergence, type SparseDivergenceOptions, type LossResult } from './loss/sparse-divergence.js';
export { toBf16, fromBf16, type Logits, type LogitsShape } from './loss/logits.js';

// model: the two roles of an OPD step, and the embedded model that plays both (DESIGN 8)
export type { Teacher, StudentPolicy, ScoreRequest, TeacherScores, Rollout, PolicyLogits, GenerateOptions } from './model/roles.js';
export { Model } from './model/model.js';
export { UNLISTED_LOGPROB } from './model/scoring.js';
export type { OptimizerOptions, StepInfo } from './model/optimizer.js';
export { DEFAULT_SHAPE, type ModelConfig, type ModelConfigInput, type ModelShape, type MlpKind } from './model/config.js';

// tasks: prompts and exact grading (the arithmetic task of the embedded default)
export {
  TASK_NAME, generateProblems, extractAnswer, grade, responseText, responseEndId, responseStopIds, promptIds, responseIds, taskVocabIds,
  type Problem, type ProblemKind, type Split,
} from './tasks/arithmetic.js';
export { evaluate, evaluateProblems, sampleStats, type EvalResult, type EvalOptions, type SampleStats, type SampleStatsOptions } from './tasks/eval.js';
export { arithmeticDistillTask, type DistillTask } from './tasks/distill-task.js';

// train: the OPD step (DESIGN 1), its options, and supervised pre-training of embedded models
export { Distiller, type DistillerParts, type StepReport, type EvalReport } from './train/distiller.js';
export { DISTILL_OPTIONS, resolveDistillOptions, parseLoss, lossName, type DistillOptions, type LossSpec } from './train/options.js';
export { pretrain, type PretrainOptions, type PretrainResult } from './train/pretrain.js';

// serve: teachers over vLLM's protocol (DESIGN 9)
export { VllmTeacher, TeacherServerError, type VllmTeacherOptions, type TeacherFault } from './serve/vllm-teacher.js';
export { serveTeacher, type TeacherServer, type TeacherServerOptions } from './serve/teacher-server.js';

// run: a distillation run with metrics, checkpoints and resume
export { distill, JOB_OPTIONS, type DistillJob, type JobOptions } from './run/job.js';
export { runDistillation, type RunOptions, type RunResult } from './run/run.js';
export type { Checkpoint } from './run/checkpoint.js';
