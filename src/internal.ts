// Internals that tools and tests built on xopd may need ('xopd/internal'). Not part of the stable
// API: names and shapes here can change in any release.
export { writeFileAtomic } from './core/files.js';
export { addon, packageRoot } from './core/native.js';
export type { NativeTokenTable } from './tokenizer/tokenizer.js';
export { byteDiff, DiffEnd, type DiffLimits, type ByteDiffOptions, type ByteDiffResult } from './align/aligner.js';
export { spanProjector } from './project/span-projection.js';
export { readSafetensors, writeSafetensors, type SafetensorsFile, type TensorEntry } from './model/safetensors.js';
export { problemStream, splitOf } from './tasks/arithmetic.js';
export { CheckpointStore } from './run/checkpoint.js';
export { MetricsLog } from './run/metrics.js';
