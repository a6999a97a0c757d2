/**
 * Prompt recovery (DESIGN 9): student-template prompt ids back to messages, then the teacher's own
 * template, for every ordered pair of the five families; system, user and assistant turns,
 * multi-turn; and a clear E_PROMPT_PARSE for ids no conversation renders to.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { PromptParser } from '../src/tokenizer/prompt-parse.js';
import type { ChatMessage } from '../src/tokenizer/chat-template.js';
import { XopdError } from '../src/core/errors.js';
import { LLAMA2_CHAT_TEMPLATE } from './helpers/templates.js';

const FAMILIES = ['qwen3', 'llama3', 'gemma3', 'deepseek_v3', 'mistral'] as const;
type Family = (typeof FAMILIES)[number];

const CONVERSATIONS: Record<string, ChatMessage[]> = {
  'one user turn': [{ role: 'user', content: 'What is 48213 + 9377?' }],
  'system and user': [
    { role: 'system', content: 'You are a careful calculator. Show the column working.' },
    { role: 'user', content: 'Tom has 7204 apples and buys 389 more.\n\nHow many now?' },
  ],
  'multi-turn': [
    { role: 'user', content: 'Naïve café: 3.75% of $2,415.50?' },
    { role: 'assistant', content: '3.75% of 2415.50 is 90.58125, about $90.58.' },
    { role: 'user', content: 'And per month, over 12 months — 👩‍💻 style?' },
  ],
  'system, then three exchanges': [
    { role: 'system', content: 'Answer in one line.' },
    { role: 'user', content: '5198 - 2736 =' },
    { role: 'assistant', content: '2462' },
    { role: 'user', content: 'times 3?' },
    { role: 'assistant', content: '7386' },
    { role: 'user', content: '日本語で答えて: 7386 + 1?' },
  ],
};

/**
 * What the messages look like read back from the student's ids: templates that fold the system
 * text into the first user turn (Gemma 3) cannot tell the two apart, so the reading is one user turn
 * holding both texts, as the student saw them.
 */
function asStudentSaw(family: Family, messages: ChatMessage[]): ChatMessage[] {
  if (family !== 'gemma3' || messages[0]?.role !== 'system') return messages;
  const [sys, first, ...rest] = messages;
  return [{ role: 'user', content: `${sys!.content}\n\n${first!.content}` }, ...rest];
}

const tok = {} as Record<Family, Tokenizer>;
const parser = {} as Record<Family, PromptParser>;
const render = (t: Tokenizer, m: ChatMessage[]) => t.encode(t.applyChatTemplate(m, { addGenerationPrompt: true }), { addSpecialTokens: false });

beforeAll(() => {
  for (const f of FAMILIES) {
    // The llama2 package (our Mistral-family SentencePiece tokenizer) ships no chat template: give it
    // the Llama 2 chat format, whose markers are plain text rather than control tokens.
    tok[f] = f === 'mistral' ? Tokenizer.load(f, { chatTemplate: LLAMA2_CHAT_TEMPLATE }) : Tokenizer.load(f);
    parser[f] = new PromptParser(tok[f]);
  }
});

describe('prompt recovery, every ordered pair of the five families', () => {
  const pairs = FAMILIES.flatMap((s) => FAMILIES.filter((t) => t !== s).map((t) => [s, t] as const));
  it('covers 20 ordered pairs', () => expect(pairs.length).toBe(20));

  it.each(pairs)('%s student -> %s teacher', (s, t) => {
    for (const [what, messages] of Object.entries(CONVERSATIONS)) {
      const ids = render(tok[s], messages);
      const recovered = parser[s].parse(ids);
      const expected = asStudentSaw(s, messages);
      expect(recovered, `${what}: messages read back`).toEqual(expected);
      // The teacher prompt is the teacher's own template over the same messages.
      expect(Array.from(render(tok[t], recovered)), `${what}: teacher prompt`).toEqual(Array.from(render(tok[t], expected)));
    }
  });
});

describe('long conversations', () => {
  // Forty turns whose contents hold blank lines and marker-like text: every family reads them back.
  const long: ChatMessage[] = [{ role: 'system', content: 'Be brief.\n\nUse digits.' }];
  for (let t = 0; t < 20; t++) {
    long.push({ role: 'user', content: `Turn ${t}: what is ${t} * 7?\n\n(answer with a number; "<<SYS>>" is just text)` });
    long.push({ role: 'assistant', content: `${t * 7}\n\nThat is ${t} * 7.` });
  }
  long.push({ role: 'user', content: 'And 21 * 7?' });

  it.each(FAMILIES)('%s', (f) => {
    const ids = render(tok[f], long);
    const recovered = parser[f].parse(ids);
    expect(recovered).toEqual(asStudentSaw(f, long));
    expect(Array.from(render(tok[f], recovered))).toEqual(Array.from(ids));
  });
});

describe('what the parser reads and refuses', () => {
  it('reads what a template normalises (Llama 3 trims contents) as the student saw it', () => {
    const ids = render(tok.llama3, [{ role: 'user', content: '  padded question  ' }]);
    expect(parser.llama3.parse(ids)).toEqual([{ role: 'user', content: 'padded question' }]);
  });

  it('keeps contents that spell another family\'s markers, and empty contents', () => {
    const messages = [{ role: 'user', content: 'quote: <|im_start|>user and [INST] and <start_of_turn>' }, { role: 'assistant', content: '' }, { role: 'user', content: 'next' }];
    for (const f of ['llama3', 'deepseek_v3'] as const) expect(parser[f].parse(render(tok[f], messages))).toEqual(messages);
  });

  it('refuses ids that are no rendering of the template, saying where it stopped', () => {
    const q = tok.qwen3;
    const plain = q.encode('What is 2 + 2?', { addSpecialTokens: false });
    expect(() => parser.qwen3.parse(plain)).toThrow(XopdError);
    try {
      parser.qwen3.parse(plain);
    } catch (e) {
      expect((e as XopdError).code).toBe('E_PROMPT_PARSE');
      expect((e as XopdError).message).toMatch(/not a rendering of .*qwen3.*chat template: it begins "What is 2 \+ 2\?", not with "<\|im_start\|>user\\n"/);
    }
    // A prompt cut before its generation prompt.
    const full = render(q, CONVERSATIONS['multi-turn']!);
    const cut = full.subarray(0, full.length - 3);
    expect(() => parser.qwen3.parse(cut)).toThrow(/E_PROMPT_PARSE|generation prompt/);
    try {
      parser.qwen3.parse(cut);
    } catch (e) {
      expect((e as XopdError).code).toBe('E_PROMPT_PARSE');
      expect((e as XopdError).message).toMatch(/was expected to end the turn/);
    }
    // Ids of another tokenizer: a parse error where the ids exist in this vocabulary, E_TOKEN_ID where they do not.
    expect(() => parser.qwen3.parse(render(tok.llama3, CONVERSATIONS['one user turn']!))).toThrow(/not a rendering of .*qwen3/);
    expect(() => parser.llama3.parse(render(tok.qwen3, CONVERSATIONS['one user turn']!))).toThrow(/outside the vocabulary/);
  });

  it('needs a chat template', () => {
    expect(() => new PromptParser(Tokenizer.load('mistral'))).toThrow(/no chat template/);
  });
});
