import type { Command } from '../command.js';
import { Tokenizer } from '../../tokenizer/tokenizer.js';

/**
 * `npm start`: the main job. Until the distillation loop lands this runs the most complete real
 * pipeline that exists: render one conversation with the teacher's (Qwen 3) and the student's
 * (Llama 3) own chat templates, encode both, and check each side's token bytes reproduce the text.
 */
export const startCommand: Command = {
  spec: {
    name: 'start',
    summary: 'The main job (npm start). Currently: render, encode and byte-check a conversation on Qwen 3 and Llama 3.',
    usage: 'xopd start',
    options: {},
  },
  async run() {
    console.log('xopd start: the distillation loop is not built yet; running the tokenizer pipeline (chat template -> encode -> exact token bytes).');
    const messages = [
      { role: 'user', content: 'What is 48213 + 9377?' },
      { role: 'assistant', content: '48213 + 9377 = 57590. The answer is 57590.' },
      { role: 'user', content: 'And 57590 - 12345?' },
    ];
    for (const name of ['qwen3', 'llama3']) {
      const tok = Tokenizer.load(name);
      const text = tok.applyChatTemplate(messages, { addGenerationPrompt: true });
      const ids = tok.encode(text, { addSpecialTokens: false });
      const bytesMatch = Buffer.from(tok.bytesOf(ids)).equals(Buffer.from(text, 'utf8'));
      console.log(`\n${tok.name}: ${ids.length} tokens, token bytes ${bytesMatch ? 'reproduce' : 'DO NOT reproduce'} the rendered text`);
      console.log(text);
      if (!bytesMatch) return 1;
    }
    return 0;
  },
};
