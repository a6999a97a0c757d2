/** Tokenizer throughput: encode (JS library) and native byteOffsets, per real tokenizer. */
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { mixedCorpus } from '../dev/corpus.js';
import { timeIt, type Suite } from './harness.js';

export const tokenizerSuite: Suite = {
  name: 'tokenizer',
  summary: 'encode tokens/s (JS) and native byteOffsets tokens/s on the mixed corpus',
  async run({ quick }) {
    const text = mixedCorpus(quick ? 20_000 : 200_000, 1);
    const rows = [];
    for (const name of ['qwen3', 'llama3', 'gemma3', 'deepseek_v3', 'mistral']) {
      const tok = Tokenizer.load(name);
      let ids: Int32Array = new Int32Array(0);
      const tEnc = timeIt(() => { ids = tok.encode(text, { addSpecialTokens: false }); }, 0.5, 1);
      const tOff = timeIt(() => { tok.byteOffsets(ids); }, 0.5);
      rows.push({ tokenizer: name, tokens: ids.length, bytes: Buffer.byteLength(text), encode_tok_s: ids.length / tEnc,
        byteOffsets_tok_s: ids.length / tOff, ratio_offsets_vs_encode: tEnc / tOff });
    }
    return { suite: 'tokenizer', rows };
  },
};
