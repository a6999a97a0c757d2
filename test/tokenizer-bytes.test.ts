// Token bytes (DESIGN section 2) on the five real tokenizers over a >100 KB mixed corpus.
import { beforeAll, describe, expect, it } from 'vitest';
import { Tokenizer } from '../src/index.js';
import { mixedCorpus } from '../dev/corpus.js';

const TEXT = mixedCorpus(110_000, 42);
const utf8 = (s: string) => Buffer.from(s, 'utf8');

function concatBytes(tok: Tokenizer, ids: Int32Array): Buffer {
  return Buffer.concat(Array.from(ids, (id) => tok.tokenBytes(id)));
}

/** Splits text around the given special-token strings, keeping them as separate parts. */
function splitOnSpecials(text: string, specials: string[]): { part: string; special: boolean }[] {
  const re = new RegExp(`(${specials.map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|')})`);
  return text.split(re).filter((p) => p !== '').map((part) => ({ part, special: specials.includes(part) }));
}

describe.each([
  ['llama3', 'byte-level'],
  ['qwen3', 'byte-level'],
  ['gemma3', 'sentencepiece'],
  ['deepseek_v3', 'byte-level'],
  ['mistral', 'sentencepiece'],
] as const)('%s token bytes', (name, kind) => {
  let tok: Tokenizer;
  let ids: Int32Array;
  let bytes: Buffer;
  beforeAll(() => {
    tok = Tokenizer.load(name);
    ids = tok.encode(TEXT, { addSpecialTokens: false });
    bytes = concatBytes(tok, ids);
  });

  it('is the expected kind and the corpus is over 100 KB', () => {
    expect(tok.kind).toBe(kind);
    expect(utf8(TEXT).length).toBeGreaterThan(100_000);
    expect(ids.length).toBeGreaterThan(20_000);
  });

  it('byteOffsets (native) are the cumulative tokenBytes lengths', () => {
    const offs = tok.byteOffsets(ids);
    expect(offs.length).toBe(ids.length + 1);
    expect(offs[0]).toBe(0);
    let acc = 0;
    for (let i = 0; i < ids.length; i++) {
      acc += tok.tokenBytes(ids[i]!).length;
      if (offs[i + 1] !== acc) expect.fail(`offset ${i + 1}: ${offs[i + 1]} != ${acc}`);
    }
    expect(Buffer.from(tok.bytesOf(ids)).equals(bytes)).toBe(true);
  });

  it('the token bytes equal the UTF-8 of decode (Mistral: but for the one space its decoder strips)', () => {
    const decoded = utf8(tok.decode(ids));
    if (name === 'mistral') {
      // The Strip decoder removes the space the normalizer prepended to the very first token.
      expect(bytes[0]).toBe(0x20);
      expect(decoded.equals(bytes.subarray(1))).toBe(true);
    } else {
      expect(decoded.equals(bytes)).toBe(true);
    }
    // With special tokens (BOS where the post-processor adds one), bytes still equal decode.
    const withSpecial = tok.encode(TEXT.slice(0, 5000), { addSpecialTokens: true });
    expect(utf8(tok.decode(withSpecial)).equals(concatBytes(tok, withSpecial))).toBe(true);
  });

  it('the token bytes equal the input wherever the tokenizer does not normalize; what differs is pinned', () => {
    let expected: string;
    switch (name) {
      case 'llama3':
      case 'deepseek_v3':
        expected = TEXT; // no normalizer: exact
        break;
      case 'qwen3':
        expected = TEXT.normalize('NFC'); // the NFC normalizer, and nothing else
        expect(TEXT).not.toBe(expected); // the corpus has decomposed accents, so this is a real check
        break;
      case 'gemma3':
        // Its normalizer maps ' ' to '▁', so a literal '▁' in the input comes back as a space.
        expected = TEXT.replaceAll('\u2581', ' ');
        expect(TEXT).toContain('\u2581');
        break;
      case 'mistral':
        // Prepend('▁') + Replace(' ', '▁') run on each piece between special tokens (<s>, </s>, <unk>).
        expected = splitOnSpecials(TEXT, ['<s>', '</s>', '<unk>'])
          .map(({ part, special }) => (special ? part : ' ' + part.replaceAll('\u2581', ' ')))
          .join('');
        break;
    }
    expect(bytes.equals(utf8(expected))).toBe(true);
  });

  it('adds a BOS exactly when the tokenizer post-processor does', () => {
    const plain = tok.encode('hello 12345', { addSpecialTokens: false });
    const withBos = tok.encode('hello 12345', { addSpecialTokens: true });
    if (name === 'gemma3' || name === 'mistral') {
      expect(withBos[0]).toBe(tok.bosId);
      expect(Array.from(withBos.subarray(1))).toEqual(Array.from(plain));
      expect(Buffer.from(tok.tokenBytes(tok.bosId!)).toString()).toBe(name === 'gemma3' ? '<bos>' : '<s>');
    } else {
      expect(Array.from(withBos)).toEqual(Array.from(plain));
    }
  });

  it('partial UTF-8 characters: offsets stay exact when a token holds part of a character', () => {
    // Rare CJK and emoji split into byte tokens on several tokenizers; bytes still concatenate exactly.
    const s = '𠜎𠜱𠝹𠱓 👩‍👩‍👧‍👦 鿕';
    const t = tok.encode(s, { addSpecialTokens: false });
    const b = concatBytes(tok, t);
    const want = name === 'mistral' ? ' ' + s : s;
    expect(b.equals(utf8(want))).toBe(true);
    const hasPartial = Array.from(t).some((id) => {
      const tb = tok.tokenBytes(id);
      return tb.length > 0 && Buffer.from(tb).toString('utf8').includes('\ufffd');
    });
    expect(hasPartial).toBe(true);
  });
});
