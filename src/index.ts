export { XopdError, ErrorCode } from './core/errors.js';
export { info, setThreads, version, type NativeInfo, type Device } from './core/native.js';
export { Tokenizer, TOKENIZER_PACKAGES, type EncodeOptions, type DecodeOptions, type NativeTokenTable } from './tokenizer/tokenizer.js';
export type { ChatMessage } from './tokenizer/chat-template.js';
export type { TokenizerKind } from './tokenizer/token-bytes.js';
// distillation: the OPD loop, served teachers (vLLM protocol), runs with checkpoints
export type { Teacher, StudentPolicy, ScoreRequest, TeacherScores, Rollout, PolicyLogits, GenerateOptions } from './model/roles.js';
export { Distiller, type DistillerParts, type StepReport, type EvalReport } from './train/distiller.js';
export { DISTILL_OPTIONS, resolveDistillOptions, parseLoss, lossName, type DistillOptions, type LossSpec } from './train/options.js';
export { VllmTeacher, TeacherServerError, type VllmTeacherOptions, type TeacherFault } from './serve/vllm-teacher.js';
export { serveTeacher, type TeacherServer, type TeacherServerOptions } from './serve/teacher-server.js';
export { CheckpointStore, writeFileAtomic, type Checkpoint } from './run/checkpoint.js';
export { MetricsLog } from './run/metrics.js';
export { runDistillation, type RunOptions, type RunResult } from './run/run.js';
export { distill, type DistillJob } from './run/job.js';
export { arithmeticDistillTask, type DistillTask } from './tasks/distill-task.js';
export { TokenizerBridge, type TokenizerBridgeOptions } from './align/bridge.js';
export { ChunkFlags, type ChunkFlag, type Alignment } from './align/types.js';
export { alignPairs, alignTables, byteDiff, DiffEnd, type AlignmentDetails, type AlignOptions, type DiffLimits, type ByteDiffResult } from './align/aligner.js';
// Losses (DESIGN 4, 6) and sparse span projection (DESIGN 5)
export { chunkAdvantages, type ChunkAdvantageOptions, type ChunkSignal } from './loss/chunk-advantages.js';
export { policyGradientLoss, DEFAULT_CLIP, type ClipOptions, type PolicyGradientOptions, type PolicyGradientResult } from './loss/policy-gradient.js';
export { sparseDivergence, crossEntropy, DIVERGENCES, type Divergence, type SparseDivergenceOptions, type LossResult } from './loss/sparse-divergence.js';
export { oneHotTargets, concatTargets, type SparseTargets } from './project/targets.js';
export { toBf16, fromBf16, type Logits, type LogitsShape } from './loss/logits.js';
export { spanProjection, type SpanTeacher, type SpanProjectionOptions, type TokenizerPair } from './project/span-projection.js';
export { Model } from './model/model.js';
export { UNLISTED_LOGPROB } from './model/scoring.js';
export type { OptimizerOptions, StepInfo } from './model/optimizer.js';
export { DEFAULT_SHAPE, type ModelConfig, type ModelConfigInput, type ModelShape, type MlpKind } from './model/config.js';
export { readSafetensors, writeSafetensors, type SafetensorsFile, type TensorEntry } from './model/safetensors.js';
export { pretrain, type PretrainOptions, type PretrainResult } from './train/pretrain.js';
export {
  TASK_NAME, generateProblems, problemStream, extractAnswer, grade, splitOf, responseText, responseEndId, promptIds, responseIds, taskVocabIds,
  type Problem, type ProblemKind, type Split,
} from './tasks/arithmetic.js';
export { evaluate, evaluateProblems, type EvalResult, type EvalOptions } from './tasks/eval.js';
