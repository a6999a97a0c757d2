/**
 * safetensors, read and written by xopd (no dependency): an 8-byte little-endian header length, a
 * JSON header { name: { dtype, shape, data_offsets: [begin, end] }, __metadata__?: {...} }, then the
 * data. Reading validates everything a truncated or lying file can get wrong before any byte of
 * data is trusted.
 */
import { closeSync, openSync, readSync, fstatSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { ErrorCode, XopdError } from '../core/errors.js';

export interface TensorEntry {
  dtype: string;
  shape: number[];
  /** byte offsets into the data section */
  begin: number;
  end: number;
}

export interface SafetensorsFile {
  tensors: Map<string, TensorEntry>;
  metadata: Record<string, string>;
  /** the data section (after the header) */
  data: Buffer;
}

const DTYPE_BYTES: Record<string, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1, U16: 2, U32: 4, U64: 8,
  F8_E4M3: 1, F8_E5M2: 1,
};
const MAX_HEADER = 100 * 1024 * 1024;

function bad(file: string, msg: string): never {
  throw new XopdError(ErrorCode.MODEL_FORMAT, `${file}: ${msg}`);
}

/** Reads and validates a safetensors file (header structure, offsets, sizes, no overlap or holes). */
export function readSafetensors(file: string): SafetensorsFile {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    throw new XopdError(ErrorCode.MODEL_NOT_FOUND, `cannot open ${file}: ${(err as Error).message}`, { cause: err });
  }
  try {
    const size = fstatSync(fd).size;
    if (size < 8) bad(file, `is ${size} bytes: too short for a safetensors header length (truncated?)`);
    const lenBuf = Buffer.alloc(8);
    readSync(fd, lenBuf, 0, 8, 0);
    const n = lenBuf.readBigUInt64LE(0);
    if (n > BigInt(Math.min(MAX_HEADER, size - 8))) bad(file, `header length ${n} exceeds the file (${size} bytes): the file is truncated or the header lies`);
    const headerLen = Number(n);
    const header = Buffer.alloc(headerLen);
    readSync(fd, header, 0, headerLen, 8);
    let json: unknown;
    try {
      json = JSON.parse(header.toString('utf8'));
    } catch (err) {
      bad(file, `header is not valid JSON (${(err as Error).message})`);
    }
    if (!json || typeof json !== 'object' || Array.isArray(json)) bad(file, 'header must be a JSON object');
    const dataLen = size - 8 - headerLen;
    const tensors = new Map<string, TensorEntry>();
    let metadata: Record<string, string> = {};
    for (const [name, raw] of Object.entries(json as Record<string, unknown>)) {
      if (name === '__metadata__') {
        if (!raw || typeof raw !== 'object' || Array.isArray(raw) || Object.values(raw).some((v) => typeof v !== 'string'))
          bad(file, '__metadata__ must map strings to strings');
        metadata = raw as Record<string, string>;
        continue;
      }
      const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      if (!e || typeof e !== 'object') bad(file, `tensor ${name}: entry must be an object`);
      if (typeof e.dtype !== 'string' || !(e.dtype in DTYPE_BYTES)) bad(file, `tensor ${name}: unknown dtype ${JSON.stringify(e.dtype)}`);
      if (!Array.isArray(e.shape) || e.shape.some((d) => !Number.isSafeInteger(d) || d < 0)) bad(file, `tensor ${name}: shape must be an array of non-negative integers`);
      const off = e.data_offsets;
      if (!Array.isArray(off) || off.length !== 2 || off.some((d) => !Number.isSafeInteger(d) || d < 0) || off[0] > off[1])
        bad(file, `tensor ${name}: data_offsets must be [begin, end] with 0 <= begin <= end`);
      if (off[1] > dataLen) bad(file, `tensor ${name}: data_offsets end ${off[1]} is past the data (${dataLen} bytes): truncated file or lying header`);
      const count = (e.shape as number[]).reduce((a, b) => a * b, 1);
      const want = count * DTYPE_BYTES[e.dtype]!;
      if (off[1] - off[0] !== want) bad(file, `tensor ${name}: ${e.dtype} ${JSON.stringify(e.shape)} needs ${want} bytes but data_offsets span ${off[1] - off[0]}`);
      tensors.set(name, { dtype: e.dtype, shape: e.shape as number[], begin: off[0], end: off[1] });
    }
    // The data must be covered exactly: no overlap, no holes (the format's own rule).
    const spans = [...tensors.entries()].sort((a, b) => a[1].begin - b[1].begin || a[1].end - b[1].end);
    let at = 0;
    for (const [name, t] of spans) {
      if (t.begin < at) bad(file, `tensor ${name} overlaps the tensor before it`);
      if (t.begin > at) bad(file, `bytes ${at}..${t.begin} of the data belong to no tensor`);
      at = t.end;
    }
    if (at !== dataLen) bad(file, `the data section is ${dataLen} bytes but the tensors cover ${at}: the header lies or the file has trailing bytes`);
    const data = Buffer.alloc(dataLen);
    if (dataLen > 0 && readSync(fd, data, 0, dataLen, 8 + headerLen) !== dataLen) bad(file, 'short read: the file changed while reading');
    return { tensors, metadata, data };
  } finally {
    closeSync(fd);
  }
}

/** A tensor's data as a Float32Array copy (F32 only). */
export function f32(file: string, st: SafetensorsFile, name: string): Float32Array {
  const t = st.tensors.get(name);
  if (!t) bad(file, `tensor ${name} is missing`);
  if (t.dtype !== 'F32') bad(file, `tensor ${name} is ${t.dtype}; xopd reads F32 weights (convert the checkpoint to float32)`);
  if (os.endianness() !== 'LE') throw new XopdError(ErrorCode.MODEL_FORMAT, 'reading safetensors needs a little-endian machine');
  const out = new Float32Array((t.end - t.begin) / 4);
  new Uint8Array(out.buffer).set(st.data.subarray(t.begin, t.end));
  return out;
}

/**
 * Writes F32 tensors, in the order given, from one flat buffer: each tensor is (name, offset in
 * floats, shape) and they must tile the buffer in order. Not atomic by itself: write into a
 * temporary folder and rename (Model.save does).
 */
export function writeSafetensors(file: string, flat: Float32Array, tensors: Array<{ name: string; offset: number; shape: number[] }>,
  metadata: Record<string, string> = {}): void {
  if (os.endianness() !== 'LE') throw new XopdError(ErrorCode.MODEL_FORMAT, 'writing safetensors needs a little-endian machine');
  const header: Record<string, unknown> = { __metadata__: metadata };
  let at = 0;
  for (const t of tensors) {
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (t.offset !== at) throw new XopdError(ErrorCode.MODEL_FORMAT, `tensor ${t.name} does not follow the previous one in the buffer`);
    header[t.name] = { dtype: 'F32', shape: t.shape, data_offsets: [at * 4, (at + count) * 4] };
    at += count;
  }
  if (at !== flat.length) throw new XopdError(ErrorCode.MODEL_FORMAT, `the tensors cover ${at} floats of a ${flat.length}-float buffer`);
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8); // align the data to 8 bytes, as the reference writer does
  const head = Buffer.from(json, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(head.length));
  writeFileSync(file, Buffer.concat([len, head, Buffer.from(flat.buffer, flat.byteOffset, flat.byteLength)]));
}
