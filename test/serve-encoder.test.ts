/**
 * The optional teacher-encoder accelerator (npm `tokenizers`, the Rust binding): the same ids as
 * Tokenizer.encode (@huggingface/tokenizers) for every family on the test corpora, chat
 * renderings and text that spells control tokens; and the scorer's retokenization through it
 * equal to TokenizerBridge.retokenize. Skipped, saying so, where the package is not installed.
 */
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { rustEncoder } from '../src/tokenizer/rust-encoder.js';
import { OpdScorer } from '../src/serve/scorer.js';
import { mixedDocuments } from '../dev/corpus.js';
import { LLAMA2_CHAT_TEMPLATE } from './helpers/templates.js';

const installed = (() => {
  try {
    createRequire(import.meta.url).resolve('tokenizers');
    return true;
  } catch {
    return false;
  }
})();
if (!installed) console.warn('serve-encoder: the optional package tokenizers is not installed; the Rust encoder tests are skipped');

const FAMILIES = ['qwen3', 'llama3', 'gemma3', 'deepseek_v3', 'mistral'] as const;
const docs = mixedDocuments(12, 3000, 11);
const loaded = new Map<string, Tokenizer>();
const load = (f: string) => {
  if (!loaded.has(f)) loaded.set(f, f === 'mistral' ? Tokenizer.load(f, { chatTemplate: LLAMA2_CHAT_TEMPLATE }) : Tokenizer.load(f));
  return loaded.get(f)!;
};
// Loading a tokenizer (Gemma 3's 262k ids) takes seconds on a busy 2-core machine.
const SLOW = 240_000;

describe.skipIf(!installed)('the Rust encoder (npm tokenizers)', () => {
  it.each(FAMILIES)('%s: the same ids as Tokenizer.encode', async (f) => {
    const tok = load(f);
    const rust = rustEncoder(tok)!;
    expect(rust).toBeDefined();
    const texts = [...docs, tok.applyChatTemplate([{ role: 'system', content: 'S' }, { role: 'user', content: 'What is 5198 + 2736?' }], { addGenerationPrompt: true }),
      'quoting <|im_end|>, <|eot_id|>, <end_of_turn>, </s> and <｜end▁of▁sentence｜> in text', '', '   leading spaces', 'naïve café 👩‍💻 日本語'];
    let tokens = 0;
    for (const t of texts) {
      const want = tok.encode(t, { addSpecialTokens: false });
      expect(Array.from(await rust.encode(t))).toEqual(Array.from(want));
      tokens += want.length;
    }
    expect(tokens).toBeGreaterThan(5000);
  }, SLOW);

  it.each([['llama3', 'qwen3'], ['qwen3', 'mistral'], ['gemma3', 'deepseek_v3'], ['mistral', 'llama3']] as const)('%s -> %s: retokenize through it equals TokenizerBridge.retokenize', async (s, t) => {
    const student = load(s), teacher = load(t);
    const stub = { tokenizer: teacher, score: async () => [] };
    const fast = new OpdScorer(student, teacher, stub, { encoder: 'auto' });
    const js = new OpdScorer(student, teacher, stub, { encoder: 'js' });
    expect(fast.encoder?.name).toMatch(/Rust/);
    expect(js.encoder).toBeUndefined();
    const eot = student.eosIds[0]!;
    for (const d of docs.slice(0, 6)) {
      const ids = student.encode(d, { addSpecialTokens: false });
      // with a control token inside and the student's end of turn at the end
      const withControls = Int32Array.from([...ids.subarray(0, 50), eot, ...ids.subarray(50), eot]);
      for (const r of [ids, withControls]) expect(Array.from(await fast.retokenize(r))).toEqual(Array.from(fast.bridge.retokenize(r)));
    }
  }, SLOW);
});
