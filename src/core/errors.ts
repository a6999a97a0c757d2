/**
 * Every error xopd raises on purpose is an XopdError with a stable `code` (see ErrorCode) and a
 * message that says what to fix. Native errors arrive with a code and are converted here.
 */
export const ErrorCode = {
  ARG_TYPE: 'E_ARG_TYPE',
  ARG_RANGE: 'E_ARG_RANGE',
  ARG_SHAPE: 'E_ARG_SHAPE',
  ARG_VALUE: 'E_ARG_VALUE',
  TOKEN_ID: 'E_TOKEN_ID',
  TOKEN_TABLE: 'E_TOKEN_TABLE',
  TOKENIZER_NOT_FOUND: 'E_TOKENIZER_NOT_FOUND',
  TOKENIZER_INVALID: 'E_TOKENIZER_INVALID',
  CHAT_TEMPLATE: 'E_CHAT_TEMPLATE',
  NATIVE_UNAVAILABLE: 'E_NATIVE_UNAVAILABLE',
  NATIVE: 'E_NATIVE',
  OUT_OF_MEMORY: 'E_OUT_OF_MEMORY',
  TOO_LONG: 'E_TOO_LONG',
  CUDA_UNAVAILABLE: 'E_CUDA_UNAVAILABLE',
  // A CUDA call failed while a kernel ran on device 'cuda' (out of device memory, a vocabulary too
  // wide for the kernel's shared memory, a driver fault); the message names the call and the reason.
  CUDA: 'E_CUDA',
  CLI_USAGE: 'E_CLI_USAGE',
  MODEL_CONFIG: 'E_MODEL_CONFIG',
  MODEL_FORMAT: 'E_MODEL_FORMAT',
  MODEL_NOT_FOUND: 'E_MODEL_NOT_FOUND',
  MODEL_STATE: 'E_MODEL_STATE',
  NONFINITE: 'E_NONFINITE',
  // A served teacher failed (after the configured retries); the message names the server and fault.
  TEACHER_UNREACHABLE: 'E_TEACHER_UNREACHABLE',
  TEACHER_TIMEOUT: 'E_TEACHER_TIMEOUT',
  TEACHER_HTTP: 'E_TEACHER_HTTP',
  TEACHER_RESPONSE: 'E_TEACHER_RESPONSE',
  // Checkpoints and run folders.
  CHECKPOINT: 'E_CHECKPOINT',
  CONFIG: 'E_CONFIG',
  // xopd serve: prompt ids that are no rendering of the student's chat template; faults of an HTTP request.
  PROMPT_PARSE: 'E_PROMPT_PARSE',
  UNAUTHORIZED: 'E_UNAUTHORIZED',
  OVERLOADED: 'E_OVERLOADED',
  REQUEST_TIMEOUT: 'E_REQUEST_TIMEOUT',
  BODY_TOO_LARGE: 'E_BODY_TOO_LARGE',
  // A file a user keeps could not be written (read-only, full, a path through a file); see src/files.ts.
  WRITE: 'E_WRITE',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode] | (string & {});

export class XopdError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'XopdError';
    this.code = code;
  }
}

/** Converts an error thrown by the addon (it carries `code`) into an XopdError; rethrows others. */
export function fromNative(err: unknown): never {
  if (err instanceof XopdError) throw err;
  const e = err as { code?: unknown; message?: unknown; xopdNative?: unknown };
  if (e && typeof e.code === 'string' && e.xopdNative === true) {
    throw new XopdError(e.code, String(e.message));
  }
  throw err;
}

/** Runs a native call, turning its errors into XopdError. */
export function callNative<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    fromNative(err);
  }
}
