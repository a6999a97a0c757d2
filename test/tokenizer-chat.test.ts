// Chat templates render with each tokenizer's own template; special-token strings become single ids.
import { beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Tokenizer } from '../src/index.js';

const CONVERSATION = [
  { role: 'system', content: 'You are a careful calculator.' },
  { role: 'user', content: 'What is 48213 + 9377?' },
  { role: 'assistant', content: '48213 + 9377 = 57590. The answer is 57590.' },
  { role: 'user', content: 'And 57590 − 12345? Answer in café style 👩‍💻.' },
];

/** Every added-token string in the text, longest first at each position (as the tokenizer splits them out). */
function specialOccurrences(tok: Tokenizer, text: string): number[] {
  const specials = Array.from(tok.addedIds, (id) => ({ id, s: Buffer.from(tok.tokenBytes(id)).toString() }))
    .filter((x) => x.s.length > 0)
    .sort((a, b) => b.s.length - a.s.length);
  const found: number[] = [];
  for (let i = 0; i < text.length; ) {
    const hit = specials.find((x) => text.startsWith(x.s, i));
    if (hit) {
      found.push(hit.id);
      i += hit.s.length;
    } else i++;
  }
  return found;
}

describe.each(['llama3', 'qwen3', 'gemma3', 'deepseek_v3'])('%s chat template', (name) => {
  let tok: Tokenizer;
  beforeAll(() => {
    tok = Tokenizer.load(name);
  });

  it('renders a two-turn conversation that holds every message', () => {
    expect(tok.hasChatTemplate).toBe(true);
    // Gemma's template has no system role of its own; it folds the system text into the first turn.
    const text = tok.applyChatTemplate(CONVERSATION, { addGenerationPrompt: true });
    for (const m of CONVERSATION) expect(text).toContain(m.content);
    const i1 = text.indexOf(CONVERSATION[1]!.content);
    const i2 = text.indexOf(CONVERSATION[2]!.content);
    const i3 = text.indexOf(CONVERSATION[3]!.content);
    expect(i1).toBeLessThan(i2);
    expect(i2).toBeLessThan(i3);
  });

  it('the generation prompt is what add_generation_prompt appends (where the template honours it)', () => {
    const withGen = tok.applyChatTemplate(CONVERSATION, { addGenerationPrompt: true });
    const without = tok.applyChatTemplate(CONVERSATION, { addGenerationPrompt: false });
    expect(withGen.startsWith(without)).toBe(true);
    if (name === 'llama3') expect(withGen).toBe(without); // this template always ends with the assistant header
    else expect(withGen.length).toBeGreaterThan(without.length);
  });

  it('encodes special (added) token strings as their single ids, and the bytes reproduce the text', () => {
    const text = tok.applyChatTemplate(CONVERSATION, { addGenerationPrompt: true });
    const ids = tok.encode(text, { addSpecialTokens: false });
    const specialSet = new Set(tok.addedIds);
    const specialInIds = Array.from(ids).filter((id) => specialSet.has(id));
    const expected = specialOccurrences(tok, text);
    expect(expected.length).toBeGreaterThanOrEqual(4);
    expect(specialInIds).toEqual(expected);
    expect(Buffer.from(tok.bytesOf(ids)).equals(Buffer.from(text, 'utf8'))).toBe(true);
    // End-of-turn tokens of the template are EOS ids.
    expect(specialInIds.some((id) => tok.eosIds.includes(id))).toBe(true);
  });
});

describe('templates that refuse', () => {
  it('Mistral (llama2 package) has no chat template: XopdError', () => {
    const tok = Tokenizer.load('mistral');
    expect(tok.hasChatTemplate).toBe(false);
    expect(() => tok.applyChatTemplate(CONVERSATION)).toThrow(expect.objectContaining({ code: 'E_CHAT_TEMPLATE' }));
  });
  it("Gemma's raise_exception on alternating roles becomes E_CHAT_TEMPLATE", () => {
    const tok = Tokenizer.load('gemma3');
    const bad = [{ role: 'user', content: 'a' }, { role: 'user', content: 'b' }];
    expect(() => tok.applyChatTemplate(bad)).toThrow(expect.objectContaining({ code: 'E_CHAT_TEMPLATE' }));
  });
  it('malformed messages: E_ARG_TYPE', () => {
    const tok = Tokenizer.load('qwen3');
    expect(() => tok.applyChatTemplate([{ role: 'user' }] as never)).toThrow(expect.objectContaining({ code: 'E_ARG_TYPE' }));
  });
});

describe('endOfTurnId: the one id each template closes an assistant turn with', () => {
  it.each([
    ['qwen3', '<|im_end|>'], ['llama3', '<|eot_id|>'], ['gemma3', '<end_of_turn>'],
    ['deepseek_v3', '<｜end▁of▁sentence｜>'], ['mistral', '</s>'],
  ])('%s ends a turn with %s, one of its EOS ids', (name, marker) => {
    const tok = Tokenizer.load(name);
    expect(tok.endOfTurnId).toBe(tok.id(marker));
    expect(Array.from(tok.eosIds)).toContain(tok.endOfTurnId);
    if (!tok.hasChatTemplate) return; // the llama2 package (Mistral's vocabulary) ships no template: its EOS id
    // The rendered exchange holds it right after the assistant's text.
    const text = tok.applyChatTemplate([{ role: 'user', content: 'q' }, { role: 'assistant', content: 'answer' }], { addGenerationPrompt: false });
    expect(text.slice(text.indexOf('answer') + 'answer'.length).startsWith(marker)).toBe(true);
  });

  it('without a chat template: the first EOS id, or null when there is none', () => {
    const json = (pkg: string) => JSON.parse(readFileSync(path.join(import.meta.dirname, '..', 'node_modules', '@lenml', pkg, 'models', 'tokenizer.json'), 'utf8'));
    const noTemplate = Tokenizer.fromJSON(json('tokenizer-llama3'), { eos_token: '<|end_of_text|>' }, 'llama3-bare');
    expect(noTemplate.hasChatTemplate).toBe(false);
    // With no template every end-of-turn marker of the vocabulary counts as EOS; the first (lowest) id wins.
    expect(noTemplate.endOfTurnId).toBe(noTemplate.eosIds[0]);
    expect(noTemplate.endOfTurnId).toBe(noTemplate.id('<|end_of_text|>'));
    // The Mistral vocabulary without its config: no EOS id at all.
    expect(Tokenizer.fromJSON(json('tokenizer-llama2'), {}, 'mistral-no-config').endOfTurnId).toBeNull();
  });
});
