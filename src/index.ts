export { XopdError, ErrorCode } from './errors.js';
export { info, setThreads, version, type NativeInfo, type Device } from './native.js';
export { Tokenizer, TOKENIZER_PACKAGES, type EncodeOptions, type DecodeOptions, type NativeTokenTable } from './tokenizer/tokenizer.js';
export type { ChatMessage } from './tokenizer/chat-template.js';
export type { TokenizerKind } from './tokenizer/token-bytes.js';
export { Model, UNLISTED_LOGPROB, type OptimizerOptions, type StepInfo } from './model/model.js';
export { DEFAULT_SHAPE, type ModelConfig, type ModelConfigInput, type ModelShape, type MlpKind } from './model/config.js';
export { readSafetensors, writeSafetensors, type SafetensorsFile, type TensorEntry } from './model/safetensors.js';
export { pretrain, type PretrainOptions, type PretrainResult } from './model/pretrain.js';
export {
  TASK_NAME, generateProblems, problemStream, extractAnswer, grade, splitOf, responseText, endOfTurnId, promptIds, responseIds, taskVocabIds,
  type Problem, type ProblemKind, type Split,
} from './tasks/arithmetic.js';
export { evaluate, evaluateProblems, type EvalResult, type EvalOptions } from './tasks/eval.js';
