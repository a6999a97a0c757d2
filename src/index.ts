export { XopdError, ErrorCode } from './errors.js';
export { info, setThreads, version, type NativeInfo, type Device } from './native.js';
export { Tokenizer, TOKENIZER_PACKAGES, type EncodeOptions, type DecodeOptions, type NativeTokenTable } from './tokenizer/tokenizer.js';
export type { ChatMessage } from './tokenizer/chat-template.js';
export type { TokenizerKind } from './tokenizer/token-bytes.js';
export { TokenizerBridge, type TokenizerBridgeOptions } from './align/bridge.js';
export { ChunkFlags, type ChunkFlag, type Alignment } from './align/types.js';
export { alignPairs, alignTables, byteDiff, DiffEnd, type AlignmentDetails, type AlignOptions, type DiffLimits, type ByteDiffResult } from './align/aligner.js';
