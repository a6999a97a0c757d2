export { XopdError, ErrorCode } from './errors.js';
export { info, setThreads, version, type NativeInfo, type Device } from './native.js';
export { Tokenizer, TOKENIZER_PACKAGES, type EncodeOptions, type DecodeOptions, type LoadOptions, type NativeTokenTable } from './tokenizer/tokenizer.js';
export { PromptParser, type PromptParserOptions } from './tokenizer/prompt-parse.js';
export type { ChatMessage } from './tokenizer/chat-template.js';
export type { TokenizerKind } from './tokenizer/token-bytes.js';
// distillation: the OPD loop, served teachers (vLLM protocol), runs with checkpoints
export type { Teacher, StudentPolicy, ScoreRequest, TeacherScores, Rollout, PolicyLogits, GenerateOptions } from './distill/roles.js';
export { Distiller, resolveOptions, parseLoss, type DistillOptions, type DistillTask, type DistillerParts, type LossSpec, type StepReport, type EvalReport } from './distill/distiller.js';
export { VllmTeacher, TeacherServerError, type VllmTeacherOptions, type TeacherFault } from './distill/vllm-teacher.js';
export { serveTeacher, type TeacherServer, type TeacherServerOptions } from './distill/teacher-server.js';
export { CheckpointStore, writeFileAtomic, type Checkpoint } from './distill/checkpoint.js';
export { MetricsLog } from './distill/metrics.js';
export { runDistillation, type RunOptions, type RunResult } from './distill/run.js';
export { distill, type DistillJob } from './distill/job.js';
export { arithmeticDistillTask } from './distill/tasks.js';
// xopd serve: the cross-tokenizer teacher behind HTTP (TRL's teacher-server protocol, POST /v1/opd/score)
export { serveOpd, type OpdServer, type OpdServerOptions } from './serve/server.js';
export { OpdScorer, type ScoreItem, type ScoredItem, type ScoreOptions, type PromptFormat } from './serve/scorer.js';
export { OPD_SCORE_REQUEST_SCHEMA, OPD_SCORE_RESPONSE_SCHEMA } from './serve/opd-route.js';
export type { ServeConfig } from './serve/handler.js';
export { TokenizerBridge, type TokenizerBridgeOptions } from './align/bridge.js';
export { ChunkFlags, type ChunkFlag, type Alignment } from './align/types.js';
export { alignPairs, alignTables, byteDiff, DiffEnd, type AlignmentDetails, type AlignOptions, type DiffLimits, type ByteDiffResult } from './align/aligner.js';
// Losses (DESIGN 4, 6) and sparse span projection (DESIGN 5)
export { chunkAdvantages, type ChunkAdvantageOptions, type ChunkSignal } from './loss/chunk-advantages.js';
export { policyGradientLoss, DEFAULT_CLIP, type ClipOptions, type PolicyGradientOptions, type PolicyGradientResult } from './loss/policy-gradient.js';
export { sparseDivergence, crossEntropy, DIVERGENCES, type Divergence, type SparseDivergenceOptions, type LossResult } from './loss/sparse-divergence.js';
export { oneHotTargets, concatTargets, type SparseTargets } from './loss/targets.js';
export { toBf16, fromBf16, type Logits, type LogitsShape } from './loss/logits.js';
export { spanProjection, type SpanTeacher, type SpanProjectionOptions, type TokenizerPair } from './project/span-projection.js';
export { Model, UNLISTED_LOGPROB, type OptimizerOptions, type StepInfo } from './model/model.js';
export { DEFAULT_SHAPE, type ModelConfig, type ModelConfigInput, type ModelShape, type MlpKind } from './model/config.js';
export { readSafetensors, writeSafetensors, type SafetensorsFile, type TensorEntry } from './model/safetensors.js';
export { pretrain, type PretrainOptions, type PretrainResult } from './model/pretrain.js';
export {
  TASK_NAME, generateProblems, problemStream, extractAnswer, grade, splitOf, responseText, endOfTurnId, promptIds, responseIds, taskVocabIds,
  type Problem, type ProblemKind, type Split,
} from './tasks/arithmetic.js';
export { evaluate, evaluateProblems, type EvalResult, type EvalOptions } from './tasks/eval.js';
