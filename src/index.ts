export { XopdError, ErrorCode } from './errors.js';
export { info, setThreads, version, type NativeInfo, type Device } from './native.js';
export { Tokenizer, TOKENIZER_PACKAGES, type EncodeOptions, type DecodeOptions, type NativeTokenTable } from './tokenizer/tokenizer.js';
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
