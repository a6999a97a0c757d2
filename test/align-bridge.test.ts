// TokenizerBridge on real tokenizer pairs: chat-template prompts and response boundaries, the
// end-of-turn chunk, retokenization, and differing bytes (NFC, a prepended space, a BOS) that mask
// only their own chunk.
import { beforeAll, describe, expect, it } from 'vitest';
import { Tokenizer, TokenizerBridge, ChunkFlags, type AlignmentDetails } from '../src/index.js';
import { mixedCorpus } from '../dev/corpus.js';
import { chunksOf, partitionProblem } from './helpers/definition.js';

const tok: Record<string, Tokenizer> = {};
beforeAll(() => {
  for (const n of ['qwen3', 'llama3', 'deepseek_v3', 'mistral', 'gemma3']) tok[n] = Tokenizer.load(n);
});

const utf8 = new TextDecoder();
const text = (t: Tokenizer, ids: Int32Array) => utf8.decode(t.bytesOf(ids));

const CONVERSATION = [
  { role: 'system', content: 'You answer in one line.' },
  { role: 'user', content: 'What is 17 × 23?' },
  { role: 'assistant', content: '17 × 23 = 391.' },
  { role: 'user', content: 'And in Roman numerals? Explain « briefly », café-style.' },
];

/** A long response with nothing any of these tokenizers normalizes (NFC text, no '▁', no <s>/</s>/<unk>). */
function cleanText(bytes: number, seed: number): string {
  return mixedCorpus(bytes, seed).normalize('NFC').replace(/<\/?s>|<unk>|\u2581/g, '_');
}

function masked(a: AlignmentDetails): number {
  let n = 0;
  for (let c = 0; c < a.chunkCount; c++) if (a.flags[c]! & (ChunkFlags.APPROX | ChunkFlags.TAIL)) n += a.studentEnd[c]! - a.studentStart[c]!;
  return n;
}

function approxChunks(a: AlignmentDetails): number[] {
  return Array.from({ length: a.chunkCount }, (_, c) => c).filter((c) => a.flags[c]! & ChunkFlags.APPROX);
}

describe('renderPrompts', () => {
  it.each([['qwen3', 'llama3'], ['llama3', 'qwen3'], ['deepseek_v3', 'llama3'], ['qwen3', 'deepseek_v3']])(
    '%s -> %s: a multi-turn conversation through each side\'s own template', (sName, tName) => {
      const bridge = new TokenizerBridge(tok[sName]!, tok[tName]!);
      const p = bridge.renderPrompts(CONVERSATION);
      for (const [side, ids] of [[bridge.student, p.student], [bridge.teacher, p.teacher]] as const) {
        const rendered = side.applyChatTemplate(CONVERSATION, { addGenerationPrompt: true });
        expect(text(side, ids)).toBe(rendered);
        // Every turn, in order.
        let at = 0;
        for (const m of CONVERSATION) {
          const i = rendered.indexOf(m.content, at);
          expect(i).toBeGreaterThanOrEqual(at);
          at = i + m.content.length;
        }
        // The prompt's ids are exactly where the whole conversation (with the answer) splits: the
        // response boundary is the prompt length.
        const answer = 'MDCCCXCI, i.e. 391.';
        const full = side.encode(side.applyChatTemplate([...CONVERSATION, { role: 'assistant', content: answer }], { addGenerationPrompt: false }), { addSpecialTokens: false });
        expect(Array.from(full.subarray(0, ids.length))).toEqual(Array.from(ids));
        expect(text(side, full.subarray(ids.length))).toContain(answer);
      }
      // The two sides differ (their own templates), and each starts with its own markers.
      expect(text(bridge.student, p.student)).not.toBe(text(bridge.teacher, p.teacher));
    });

  it('refuses a tokenizer without a chat template and empty messages', () => {
    const bridge = new TokenizerBridge(tok.qwen3!, tok.mistral!);
    expect(() => bridge.renderPrompts(CONVERSATION)).toThrow(expect.objectContaining({ code: 'E_CHAT_TEMPLATE' }));
    expect(() => bridge.renderPrompts([])).toThrow(expect.objectContaining({ code: 'E_ARG_VALUE' }));
  });
});

describe('end of turn', () => {
  it.each([['qwen3', 'llama3', '<|eot_id|>'], ['llama3', 'qwen3', '<|im_end|>'], ['deepseek_v3', 'qwen3', '<|im_end|>'], ['qwen3', 'deepseek_v3', '<｜end▁of▁sentence｜>'], ['qwen3', 'mistral', '</s>']])(
    '%s -> %s: the student\'s end-of-turn and the teacher\'s form the last 1:1 chunk', (sName, tName, teacherEot) => {
      const student = tok[sName]!, teacher = tok[tName]!;
      const bridge = new TokenizerBridge(student, teacher);
      expect(teacher.token(bridge.teacherEndOfTurn!)).toBe(teacherEot);
      expect(student.eosIds).toContain(bridge.studentEndOfTurn);
      const body = student.encode('The answer is 391 (CCCXCI). Done!', { addSpecialTokens: false });
      for (const eos of student.eosIds) {
        const s = Int32Array.from([...body, eos]);
        const t = bridge.retokenize(s);
        expect(t[t.length - 1]).toBe(bridge.teacherEndOfTurn);
        const a = bridge.align(s, t);
        expect(partitionProblem(a, s.length, t.length)).toBeNull();
        const last = a.chunkCount - 1;
        expect(chunksOf(a)[last]).toEqual({ s0: s.length - 1, s1: s.length, t0: t.length - 1, t1: t.length });
        expect(a.flags[last]).toBe(0);
        // Without the end-of-turn pair the rest aligns as before.
        const plain = bridge.align(body, t.subarray(0, t.length - 1));
        expect(chunksOf(a).slice(0, last)).toEqual(chunksOf(plain));
        // A teacher cut before its end-of-turn leaves the student's end-of-turn a TAIL token.
        const cut = bridge.align(s, t.subarray(0, t.length - 1));
        expect(cut.flags[cut.chunkCount - 1]).toBe(ChunkFlags.TAIL);
        expect(cut.studentChunk[s.length - 1]).toBe(cut.chunkCount - 1);
      }
    });
});

describe('retokenize', () => {
  it('the teacher ids spell the student text (no special tokens added), and the same vocabulary keeps the ids', () => {
    const bridge = new TokenizerBridge(tok.qwen3!, tok.llama3!);
    const s = tok.qwen3!.encode('Hello, world: 12345 你好 👩‍💻', { addSpecialTokens: false });
    const t = bridge.retokenize(s);
    expect(t[0]).not.toBe(tok.llama3!.bosId);
    expect(Buffer.from(tok.llama3!.bytesOf(t)).equals(Buffer.from(tok.qwen3!.bytesOf(s)))).toBe(true);
    expect(bridge.sameVocabulary).toBe(false);
    // Two loads of one tokenizer (the small Mistral one): the same vocabulary, so the student's own
    // ids are kept even where the teacher would have split the text differently.
    const same = new TokenizerBridge(tok.mistral!, Tokenizer.load('mistral'));
    expect(same.sameVocabulary).toBe(true);
    expect(new TokenizerBridge(tok.qwen3!, tok.deepseek_v3!).sameVocabulary).toBe(false);
    const nonCanonical = Int32Array.from([...tok.mistral!.encode('Hel', { addSpecialTokens: false }), ...tok.mistral!.encode('lo', { addSpecialTokens: false })]);
    expect(Array.from(same.retokenize(nonCanonical))).toEqual(Array.from(nonCanonical));
    const a = same.align(nonCanonical, same.retokenize(nonCanonical));
    expect(Array.from(a.flags)).toEqual([0, 0]);
    expect(a.chunkCount).toBe(nonCanonical.length);
  });

  it('text that spells a teacher control token reaches the teacher as ordinary tokens', () => {
    // A Qwen 3 response quoting Llama 3's end-of-turn marker: Qwen 3 has no such control token, so
    // these are ordinary ids; Llama 3's encoder alone would turn the text into its <|eot_id|>.
    const bridge = new TokenizerBridge(tok.qwen3!, tok.llama3!);
    const s = tok.qwen3!.encode('Llama 3 ends a turn with <|eot_id|> and starts with <|begin_of_text|>.', { addSpecialTokens: false });
    expect(Array.from(s).some((id) => tok.qwen3!.isSpecial(id))).toBe(false);
    expect(Array.from(tok.llama3!.encode(text(tok.qwen3!, s), { addSpecialTokens: false }))).toContain(128009);
    const t = bridge.retokenize(s);
    expect(Array.from(t).some((id) => tok.llama3!.isSpecial(id))).toBe(false);
    expect(text(tok.llama3!, t)).toBe(text(tok.qwen3!, s));
    const a = bridge.align(s, t);
    expect(a.flags.every((f) => (f & (ChunkFlags.APPROX | ChunkFlags.TAIL)) === 0)).toBe(true);
    // A control token the student did emit becomes ordinary text for a teacher without it.
    const im = tok.qwen3!.id('<|im_start|>')!;
    const withControl = Int32Array.from([...s.subarray(0, 3), im, ...s.subarray(3)]);
    const tc = bridge.retokenize(withControl);
    expect(Array.from(tc).some((id) => tok.llama3!.isSpecial(id))).toBe(false);
    expect(text(tok.llama3!, tc)).toBe(text(tok.qwen3!, withControl));
    const ds = new TokenizerBridge(tok.deepseek_v3!, tok.llama3!);
    const bos = tok.deepseek_v3!.encode('Hi <｜begin▁of▁sentence｜> there', { addSpecialTokens: false });
    expect(Array.from(bos).some((id) => tok.deepseek_v3!.isSpecial(id))).toBe(true);
    expect(Array.from(ds.retokenize(bos)).some((id) => tok.llama3!.isSpecial(id))).toBe(false);
  });

  it('text spelling <s>, </s>, <unk> reaches a SentencePiece teacher as the same bytes (issue 16)', () => {
    // Mistral's encoder splits such a spelling out and starts each piece after it with a space:
    // before, "Use <s>old</s> new price" reached it as " Use <s> old</s>  new price".
    for (const [sName, response] of [['qwen3', 'Use <s>old</s> new price'], ['llama3', 'HTML: <s>strike</s>, <unk>x</s>\n<s>  two  spaces'],
      ['deepseek_v3', '<s>starts with a spelling'], ['gemma3', 'a</s>b c <s>d</s>']] as const) {
      const bridge = new TokenizerBridge(tok[sName]!, tok.mistral!);
      const s = tok[sName]!.encode(response, { addSpecialTokens: false });
      const t = bridge.retokenize(s);
      expect(Array.from(t).some((id) => tok.mistral!.isSpecial(id))).toBe(false);
      // Only the space Mistral puts before a response, where the response starts with text.
      expect(text(tok.mistral!, t)).toBe(response.startsWith('<s>') ? response : ' ' + response);
      const a = bridge.align(s, t);
      expect(approxChunks(a)).toEqual(response.startsWith('<s>') ? [] : [0]);
      expect(masked(a)).toBeLessThanOrEqual(1);
    }
    expect(text(tok.mistral!, new TokenizerBridge(tok.qwen3!, tok.mistral!).retokenize(tok.qwen3!.encode('Use <s>old</s> new price', { addSpecialTokens: false }))))
      .toBe(' Use <s>old</s> new price');
  });

  it('a control token both sides have (Gemma 3 and Mistral <unk>) is followed by the student\'s bytes, no added space', () => {
    const g = tok.gemma3!, m = tok.mistral!;
    const unkG = g.id('<unk>')!, unkM = m.id('<unk>')!;
    expect(g.isSpecial(unkG) && m.isSpecial(unkM)).toBe(true);
    const s = Int32Array.from([...g.encode('Hello', { addSpecialTokens: false }), unkG, ...g.encode('world again', { addSpecialTokens: false }), unkG]);
    const toMistral = new TokenizerBridge(g, m);
    const t = toMistral.retokenize(s);
    expect(Array.from(t).filter((id) => id === unkM).length).toBe(2);
    // Before: " Hello<unk> world again<unk>".
    expect(text(m, t)).toBe(' Hello<unk>world again<unk>');
    const a = toMistral.align(s, t);
    expect(approxChunks(a)).toEqual([0]);
    // And the other way: Gemma 3 puts no space before a text, so the bytes are the student's exactly.
    const ms = Int32Array.from([...m.encode('Hello', { addSpecialTokens: false }), unkM, ...m.encode('world', { addSpecialTokens: false })]);
    const toGemma = new TokenizerBridge(m, g);
    const gt = toGemma.retokenize(ms);
    expect(Array.from(gt)).toContain(unkG);
    expect(text(g, gt)).toBe(text(m, ms));
    expect(toGemma.align(ms, gt).flags.every((f) => (f & (ChunkFlags.APPROX | ChunkFlags.TAIL)) === 0)).toBe(true);
  });

  it('text spelling Gemma 3 control tokens reaches Gemma 3 as the same bytes, as ordinary tokens', () => {
    // Not ending in </s>: for a Mistral student that is its end of turn, which becomes Gemma 3's.
    const spelled = 'Use <bos>x<eos> <start_of_turn>model\n<unk> <end_of_turn>\n\n<pad><mask> <s>old</s> done';
    for (const sName of ['qwen3', 'llama3', 'deepseek_v3', 'mistral']) {
      const bridge = new TokenizerBridge(tok[sName]!, tok.gemma3!);
      const s = tok[sName]!.encode(spelled, { addSpecialTokens: false });
      const shared = new Set(['<unk>', '<s>', '</s>'].filter((c) => tok.gemma3!.id(c) !== undefined && tok.gemma3!.isSpecial(tok.gemma3!.id(c)!)));
      const t = bridge.retokenize(s);
      // Only a control token the student emitted and Gemma 3 has too (Mistral's <unk>) stays one.
      for (const id of t) if (tok.gemma3!.isSpecial(id)) expect(shared.has(tok.gemma3!.token(id))).toBe(true);
      expect(text(tok.gemma3!, t)).toBe(text(tok[sName]!, s));
      expect(bridge.align(s, t).flags.every((f) => (f & (ChunkFlags.APPROX | ChunkFlags.TAIL)) === 0)).toBe(true);
    }
  });

  it('invalid UTF-8 from the student becomes U+FFFD for the teacher, and one APPROX chunk', () => {
    const bridge = new TokenizerBridge(tok.qwen3!, tok.llama3!);
    // Byte-level ids for the first two bytes of '€' (E2 82 AC), then text: an unfinished character.
    const partial = tok.qwen3!.encode('€', { addSpecialTokens: false });
    const pieces = Array.from(partial).flatMap((id) => Array.from(tok.qwen3!.tokenBytes(id)));
    expect(pieces).toEqual([0xe2, 0x82, 0xac]);
    const table = tok.qwen3!.byteTable;
    const byteId = (b: number) => {
      for (let id = 0; id < table.vocabSize; id++) {
        if (table.offsets[id + 1]! - table.offsets[id]! === 1 && table.bytes[table.offsets[id]!] === b) return id;
      }
      throw new Error('no byte token');
    };
    const s = Int32Array.from([...tok.qwen3!.encode('Price: ', { addSpecialTokens: false }), byteId(0xe2), byteId(0x82), ...tok.qwen3!.encode(' only', { addSpecialTokens: false })]);
    const t = bridge.retokenize(s);
    expect(text(tok.llama3!, t)).toBe('Price: \uFFFD only');
    const a = bridge.align(s, t);
    expect(a.bytesEqual).toBe(false);
    // Llama 3 spells ' \uFFFD' as one token, so the minimal chunk also holds the student's space.
    const [c] = approxChunks(a);
    expect(approxChunks(a).length).toBe(1);
    const firstByte = s.indexOf(byteId(0xe2));
    expect(a.studentStart[c!]).toBeLessThanOrEqual(firstByte);
    expect(a.studentEnd[c!]).toBe(firstByte + 2);
    expect(masked(a)).toBe(3);
  });
});

describe('differing bytes: one APPROX chunk, re-anchored after it', () => {
  const RESPONSE_TOKENS = 2000;

  function longResponse(student: Tokenizer, prefix: string): Int32Array {
    let body = prefix;
    let ids = student.encode(body, { addSpecialTokens: false });
    for (let seed = 1; ids.length < RESPONSE_TOKENS; seed++) {
      body += cleanText(4000, seed);
      ids = student.encode(body, { addSpecialTokens: false });
    }
    // End on a character boundary (a byte-level token may hold part of a character).
    let k = RESPONSE_TOKENS;
    while (k > 0 && (student.tokenBytes(ids[k]!)[0]! & 0xc0) === 0x80) k--;
    return ids.slice(0, k);
  }

  it('Qwen 3 NFC-normalizes a decomposed accent near the start of a 2,000-token response', () => {
    const bridge = new TokenizerBridge(tok.llama3!, tok.qwen3!);
    const s = longResponse(tok.llama3!, 'Voila\u0300 the cafe\u0301 menu. ');
    const t = bridge.retokenize(s);
    const a = bridge.align(s, t);
    expect(a.bytesEqual).toBe(false);
    expect(a.byteEdits).toBe(5 + 5);
    const approx = approxChunks(a);
    // Two decomposed characters, in different words: two regions, each its own chunk.
    expect(approx.length).toBe(2);
    for (const c of approx) {
      const sb = text(tok.llama3!, s.subarray(a.studentStart[c]!, a.studentEnd[c]!));
      expect(sb.normalize('NFC')).toBe(text(tok.qwen3!, t.subarray(a.teacherStart[c]!, a.teacherEnd[c]!)));
      expect(sb).not.toBe(sb.normalize('NFC'));
    }
    expect(masked(a)).toBeLessThanOrEqual(6);
    // Everything after the last difference is exactly the alignment of the same text without it.
    const last = approx[approx.length - 1]!;
    const restS = s.subarray(a.studentEnd[last]!), restT = t.subarray(a.teacherEnd[last]!);
    const rest = bridge.align(restS, restT);
    expect(rest.bytesEqual).toBe(true);
    expect(rest.chunkCount).toBe(a.chunkCount - last - 1);

  });

  it("Mistral's prepended space: one APPROX chunk at the start of a 2,000-token response", () => {
    const bridge = new TokenizerBridge(tok.qwen3!, tok.mistral!);
    const s = longResponse(tok.qwen3!, 'Sure: here it is. ');
    const t = bridge.retokenize(s);
    expect(tok.mistral!.bytesOf(t)[0]).toBe(0x20);
    const a = bridge.align(s, t);
    expect(a.byteEdits).toBe(1);
    expect(approxChunks(a)).toEqual([0]);
    expect(a.studentEnd[0]).toBe(1);
    expect(masked(a)).toBe(1);
    expect(s.length).toBeGreaterThan(RESPONSE_TOKENS - 4);
  });

  it('a BOS on the teacher side is its own chunk and masks no student token', () => {
    const bridge = new TokenizerBridge(tok.qwen3!, tok.llama3!);
    const s = longResponse(tok.qwen3!, 'Sure. ');
    const t0 = bridge.retokenize(s);
    const t = Int32Array.from([tok.llama3!.bosId!, ...t0]);
    const a = bridge.align(s, t);
    expect(chunksOf(a)[0]).toEqual({ s0: 0, s1: 0, t0: 0, t1: 1 });
    expect(a.flags[0]).toBe(ChunkFlags.APPROX);
    expect(approxChunks(a)).toEqual([0]);
    expect(masked(a)).toBe(0);
    const plain = bridge.align(s, t0);
    expect(a.chunkCount).toBe(plain.chunkCount + 1);
  });
});
