/**
 * The exact bytes each token id contributes to decoded text (DESIGN section 2).
 * byte-level BPE: each vocab char maps back through the GPT-2 bytes-to-unicode table;
 * SentencePiece-style: '▁' is a space and '<0xNN>' is byte NN; added tokens are their content.
 */
import { ErrorCode, XopdError } from '../core/errors.js';

export type TokenizerKind = 'byte-level' | 'sentencepiece';

/** GPT-2's reversible map: printable bytes stand for themselves, the rest shift to U+0100.. */
function unicodeToByte(): Map<number, number> {
  const keep: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) keep.push(b);
  for (let b = 0xa1; b <= 0xac; b++) keep.push(b);
  for (let b = 0xae; b <= 0xff; b++) keep.push(b);
  const kept = new Set(keep);
  const map = new Map<number, number>();
  for (const b of keep) map.set(b, b);
  let n = 0;
  for (let b = 0; b < 256; b++) if (!kept.has(b)) map.set(256 + n++, b);
  return map;
}
const U2B = unicodeToByte();

const utf8 = new TextEncoder();

function byteLevelBytes(piece: string): Uint8Array {
  const out: number[] = [];
  for (const ch of piece) {
    const b = U2B.get(ch.codePointAt(0)!);
    if (b === undefined) {
      // Not a byte-level symbol (should not occur in a byte-level vocab): keep its UTF-8.
      for (const x of utf8.encode(ch)) out.push(x);
    } else out.push(b);
  }
  return Uint8Array.from(out);
}

const BYTE_PIECE = /^<0x([0-9A-Fa-f]{2})>$/;

function sentencePieceBytes(piece: string, byteFallback: boolean): Uint8Array {
  if (byteFallback) {
    const m = BYTE_PIECE.exec(piece);
    if (m) return Uint8Array.of(parseInt(m[1]!, 16));
  }
  return utf8.encode(piece.replaceAll('\u2581', ' '));
}

interface DecoderJson {
  type?: string;
  decoders?: DecoderJson[];
  pattern?: { String?: string };
  content?: string;
}

function decoderTypes(d: DecoderJson | null | undefined): DecoderJson[] {
  if (!d) return [];
  if (d.type === 'Sequence') return (d.decoders ?? []).flatMap(decoderTypes);
  return [d];
}

/** Decides how ids map to bytes from the tokenizer's decoder. */
export function tokenizerKind(tokenizerJson: Record<string, unknown>): TokenizerKind {
  const decs = decoderTypes(tokenizerJson.decoder as DecoderJson);
  if (decs.some((d) => d.type === 'ByteLevel')) return 'byte-level';
  if (decs.some((d) => d.type === 'ByteFallback' || d.type === 'Metaspace' ||
      (d.type === 'Replace' && d.pattern?.String === '\u2581'))) return 'sentencepiece';
  throw new XopdError(ErrorCode.TOKENIZER_INVALID,
    `unsupported tokenizer decoder ${JSON.stringify(tokenizerJson.decoder)?.slice(0, 120)}: xopd maps ids to bytes for byte-level BPE and SentencePiece-style (▁, <0xNN>) tokenizers`);
}

export interface ByteTable {
  kind: TokenizerKind;
  vocabSize: number;
  bytes: Uint8Array;
  offsets: Uint32Array; // [vocabSize + 1]
  special: Uint8Array; // [vocabSize]
  added: Uint8Array; // [vocabSize]: 1 for added tokens (split out before the model, special or not)
  pieces: string[]; // vocab string of each id ('' for holes)
}

interface AddedTokenJson { id: number; content: string; special: boolean }

/** Builds the byte table of every id from tokenizer.json (model vocab + added tokens). */
export function buildByteTable(tokenizerJson: Record<string, unknown>): ByteTable {
  const model = tokenizerJson.model as { type?: string; vocab?: unknown; byte_fallback?: boolean } | undefined;
  if (!model || typeof model !== 'object' || model.vocab === undefined)
    throw new XopdError(ErrorCode.TOKENIZER_INVALID, 'tokenizer.json has no model.vocab');
  const kind = tokenizerKind(tokenizerJson);
  const byteFallback = model.byte_fallback === true;
  const pieces: string[] = [];
  const isAdded: boolean[] = [];
  const special: number[] = [];
  // BPE/WordPiece vocab is {piece: id}; Unigram vocab is [[piece, score], ...] with the index as id.
  if (Array.isArray(model.vocab)) {
    (model.vocab as Array<[string, number]>).forEach(([p], i) => { pieces[i] = p; });
  } else if (typeof model.vocab === 'object' && model.vocab) {
    for (const [p, id] of Object.entries(model.vocab as Record<string, number>)) {
      if (!Number.isInteger(id) || id < 0) throw new XopdError(ErrorCode.TOKENIZER_INVALID, `tokenizer.json vocab id of ${JSON.stringify(p)} is not a non-negative integer`);
      pieces[id] = p;
    }
  } else throw new XopdError(ErrorCode.TOKENIZER_INVALID, 'tokenizer.json model.vocab is neither an object nor an array');
  const added = (tokenizerJson.added_tokens ?? []) as AddedTokenJson[];
  if (!Array.isArray(added)) throw new XopdError(ErrorCode.TOKENIZER_INVALID, 'tokenizer.json added_tokens must be an array');
  for (const a of added) {
    if (!a || !Number.isInteger(a.id) || a.id < 0 || typeof a.content !== 'string')
      throw new XopdError(ErrorCode.TOKENIZER_INVALID, `tokenizer.json has a malformed added token ${JSON.stringify(a)?.slice(0, 80)}`);
    pieces[a.id] = a.content;
    isAdded[a.id] = true;
    if (a.special) special[a.id] = 1;
  }
  const vocabSize = pieces.length;
  const chunks: Uint8Array[] = new Array(vocabSize);
  const offsets = new Uint32Array(vocabSize + 1);
  let total = 0;
  for (let id = 0; id < vocabSize; id++) {
    const p = pieces[id];
    let b: Uint8Array;
    if (p === undefined) b = new Uint8Array(0);
    else if (isAdded[id]) b = special[id] || kind === 'byte-level' ? utf8.encode(p) : utf8.encode(p.replaceAll('\u2581', ' '));
    else b = kind === 'byte-level' ? byteLevelBytes(p) : sentencePieceBytes(p, byteFallback);
    chunks[id] = b;
    total += b.length;
    offsets[id + 1] = total;
  }
  const bytes = new Uint8Array(total);
  for (let id = 0; id < vocabSize; id++) bytes.set(chunks[id]!, offsets[id]!);
  const specialArr = new Uint8Array(vocabSize);
  const addedArr = new Uint8Array(vocabSize);
  for (let id = 0; id < vocabSize; id++) {
    specialArr[id] = special[id] ? 1 : 0;
    addedArr[id] = isAdded[id] ? 1 : 0;
  }
  return { kind, vocabSize, bytes, offsets, special: specialArr, added: addedArr, pieces: pieces.map((p) => p ?? '') };
}
