/** Logits as the loss kernels take them: [rows, vocab] row-major, fp32, or bf16 bit patterns in a Uint16Array. */
import * as check from '../core/check.js';
import { ErrorCode } from '../core/errors.js';

export type Logits = Float32Array | Uint16Array;
/** The gradient has the logits' element type: Float32Array for fp32, Uint16Array (bf16) for bf16. */
export type GradOf<L extends Logits> = L extends Uint16Array ? Uint16Array : Float32Array;

export interface LogitsShape {
  rows: number;
  vocab: number;
}

/** Checks logits against their shape; returns the shape. Finiteness is checked natively, per row, as it is read. */
export function checkLogits(logits: unknown, shape: unknown): LogitsShape {
  if (!(logits instanceof Float32Array) && !(logits instanceof Uint16Array))
    check.fail(ErrorCode.ARG_TYPE, `logits must be a Float32Array (fp32) or a Uint16Array (bf16), got ${check.describe(logits)}`);
  if (!shape || typeof shape !== 'object') check.fail(ErrorCode.ARG_TYPE, 'shape must be { rows, vocab }');
  const s = shape as Record<string, unknown>;
  if (s.rows === 0) check.fail(ErrorCode.ARG_SHAPE, 'shape.rows is 0: the batch is empty');
  const rows = check.int(s.rows, 'shape.rows', 1, 2 ** 31 - 1);
  const vocab = check.int(s.vocab, 'shape.vocab', 1, 2 ** 31 - 1);
  if (logits.length !== rows * vocab)
    check.fail(ErrorCode.ARG_SHAPE, `logits has ${logits.length} values, expected rows * vocab = ${rows} * ${vocab} = ${rows * vocab}`);
  return { rows, vocab };
}

/** An optional Uint8Array row mask (1 = the row counts). */
export function checkMask(mask: unknown, rows: number, name = 'mask'): Uint8Array | undefined {
  if (mask === undefined || mask === null) return undefined;
  return check.typed(mask, Uint8Array, name, rows);
}

/**
 * An optional output buffer for the gradient, reused instead of allocating one per call. It may be
 * the logits array itself (the gradient then overwrites the logits in place: each element is read
 * before it is written), but not a partly overlapping view.
 */
export function checkOut(out: unknown, logits: Logits): Logits | undefined {
  if (out === undefined) return undefined;
  const ctor = logits instanceof Uint16Array ? Uint16Array : Float32Array;
  const o = check.typed(out as Logits, ctor as unknown as { new (n: number): Logits; name: string }, 'out', logits.length);
  if (o.buffer === logits.buffer && o.byteOffset !== logits.byteOffset) {
    const a0 = o.byteOffset, a1 = a0 + o.byteLength, b0 = logits.byteOffset, b1 = b0 + logits.byteLength;
    if (a0 < b1 && b0 < a1) check.fail(ErrorCode.ARG_VALUE, 'out overlaps logits partially: pass logits itself (in place) or separate memory');
  }
  return o;
}

/** Both masks combined (a row counts only where every given mask says so). */
export function andMasks(a: Uint8Array | undefined, b: Uint8Array | undefined): Uint8Array | undefined {
  if (!a) return b;
  if (!b) return a;
  const out = new Uint8Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] && b[i] ? 1 : 0;
  return out;
}

/** bf16 bit patterns <-> numbers (round to nearest even), for callers holding fp32 data. */
export function toBf16(x: Float32Array): Uint16Array {
  check.typed(x, Float32Array, 'x');
  const u = new Uint32Array(x.buffer, x.byteOffset, x.length);
  const out = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const v = u[i]!;
    out[i] = ((v + 0x7fff + ((v >>> 16) & 1)) >>> 16) & 0xffff;
  }
  return out;
}

export function fromBf16(x: Uint16Array): Float32Array {
  check.typed(x, Uint16Array, 'x');
  const u = new Uint32Array(x.length);
  for (let i = 0; i < x.length; i++) u[i] = x[i]! << 16;
  return new Float32Array(u.buffer);
}
