/** Argument checks for the public API: each throws XopdError with a code and a fix-it message. */
import { ErrorCode, XopdError } from './errors.js';

export function fail(code: ErrorCode, message: string): never {
  throw new XopdError(code, message);
}

export function isInt(x: unknown): x is number {
  return typeof x === 'number' && Number.isInteger(x);
}

export function int(x: unknown, name: string, min = -Infinity, max = Infinity): number {
  if (!isInt(x)) fail(ErrorCode.ARG_TYPE, `${name} must be an integer, got ${describe(x)}`);
  if (x < min || x > max) fail(ErrorCode.ARG_RANGE, `${name} must be in [${min}, ${max}], got ${x}`);
  return x;
}

export function num(x: unknown, name: string, min = -Infinity, max = Infinity): number {
  if (typeof x !== 'number' || !Number.isFinite(x)) fail(ErrorCode.ARG_TYPE, `${name} must be a finite number, got ${describe(x)}`);
  if (x < min || x > max) fail(ErrorCode.ARG_RANGE, `${name} must be in [${min}, ${max}], got ${x}`);
  return x;
}

export function bool(x: unknown, name: string): boolean {
  if (typeof x !== 'boolean') fail(ErrorCode.ARG_TYPE, `${name} must be a boolean, got ${describe(x)}`);
  return x;
}

export function str(x: unknown, name: string): string {
  if (typeof x !== 'string') fail(ErrorCode.ARG_TYPE, `${name} must be a string, got ${describe(x)}`);
  return x;
}

export function oneOf<T extends string>(x: unknown, name: string, allowed: readonly T[]): T {
  if (typeof x !== 'string' || !(allowed as readonly string[]).includes(x))
    fail(ErrorCode.ARG_VALUE, `${name} must be one of ${allowed.map((a) => `'${a}'`).join(', ')}, got ${describe(x)}`);
  return x as T;
}

/** x is a non-null object (not an array); `shape` says what it should hold, e.g. '{ ids, start }'. */
export function object<T extends object = Record<string, unknown>>(x: unknown, name: string, shape: string): T {
  if (!x || typeof x !== 'object' || Array.isArray(x)) fail(ErrorCode.ARG_TYPE, `${name} must be an object ${shape}, got ${describe(x)}`);
  return x as T;
}

/** x is an array; `of` says of what, e.g. 'Int32Array' or '{ prompt, response }'. */
export function array<T = unknown>(x: unknown, name: string, of: string, minLength = 0): T[] {
  if (!Array.isArray(x)) fail(ErrorCode.ARG_TYPE, `${name} must be an array of ${of}, got ${describe(x)}`);
  if (x.length < minLength) fail(ErrorCode.ARG_VALUE, `${name} must hold at least ${minLength} ${of}`);
  return x as T[];
}

/** x is an instance of ctor; `hint` shows how to make one. */
export function instance<T>(x: unknown, ctor: { prototype: T; name: string }, name: string, hint: string): T {
  if (!(x instanceof (ctor as unknown as Function))) fail(ErrorCode.ARG_TYPE, `${name} must be a ${ctor.name} (${hint}), got ${describe(x)}`);
  return x as T;
}

/** Every id in [0, vocabSize) of the tokenizer `owner` names. */
export function idsBelow(ids: Int32Array, vocabSize: number, name: string, owner: string): Int32Array {
  for (let i = 0; i < ids.length; i++)
    if (ids[i]! < 0 || ids[i]! >= vocabSize) fail(ErrorCode.TOKEN_ID, `${name}[${i}] = ${ids[i]} is outside the vocabulary [0, ${vocabSize}) of ${owner}`);
  return ids;
}

type TypedCtor<T> = { new (n: number): T; name: string };

/** Checks x is an instance of the typed array kind (exact class; no silent conversion). */
export function typed<T extends ArrayBufferView>(x: unknown, ctor: TypedCtor<T>, name: string, length?: number): T {
  if (!(x instanceof (ctor as unknown as Function)))
    fail(ErrorCode.ARG_TYPE, `${name} must be a ${ctor.name}, got ${describe(x)}`);
  const len = (x as unknown as { length: number }).length;
  if (length !== undefined && len !== length) fail(ErrorCode.ARG_SHAPE, `${name} must have length ${length}, got ${len}`);
  return x as T;
}

/** Ids as Int32Array: accepts an Int32Array, or an array of integers (checked, copied). */
export function ids(x: unknown, name: string): Int32Array {
  if (x instanceof Int32Array) return x;
  if (Array.isArray(x)) {
    const out = new Int32Array(x.length);
    for (let i = 0; i < x.length; i++) {
      const v = x[i];
      if (!isInt(v)) fail(ErrorCode.ARG_TYPE, `${name}[${i}] must be an integer token id, got ${describe(v)}`);
      if (v < 0 || v > 0x7fffffff) fail(ErrorCode.TOKEN_ID, `${name}[${i}] = ${v} is not a valid token id`);
      out[i] = v;
    }
    return out;
  }
  fail(ErrorCode.ARG_TYPE, `${name} must be an Int32Array or an array of integer ids, got ${describe(x)}`);
}

export function finiteArray(x: Float32Array | Float64Array, name: string): void {
  for (let i = 0; i < x.length; i++) {
    if (!Number.isFinite(x[i])) fail(ErrorCode.ARG_VALUE, `${name}[${i}] is ${x[i]}: values must be finite`);
  }
}

export function describe(x: unknown): string {
  if (x === null) return 'null';
  if (x === undefined) return 'undefined';
  if (typeof x === 'number') return String(x);
  if (typeof x === 'string') return JSON.stringify(x.length > 40 ? x.slice(0, 40) + '…' : x);
  if (ArrayBuffer.isView(x)) return `${x.constructor.name}(${(x as unknown as { length?: number }).length ?? x.byteLength})`;
  if (Array.isArray(x)) return `array(${x.length})`;
  return typeof x === 'object' ? (x.constructor?.name ?? 'object') : typeof x;
}
