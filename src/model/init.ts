/**
 * Structured initialisation of number-token embeddings. A pretrained LLM knows that Llama 3's
 * token "482" means the digits 4, 8, 2; a tiny model trained from scratch must discover it for each
 * of ~1000 such tokens and, in our runs, barely does. With `digitEmbeddings`, every token whose
 * bytes are 1 to 3 ASCII digits starts as the sum of one random vector per (place, digit) plus one
 * per length, so numbers share structure from step 0 (and, the embeddings being tied, the output
 * layer scores digit by digit). Other tokens keep their normal(0, 0.02) init.
 */
import { rng } from '../corpus.js';
import type { Model } from './model.js';

export function digitEmbeddings(model: Model, seed: number, std = 0.02): number {
  const embed = model.tensors().find((t) => t.name === 'model.embed_tokens.weight')!;
  const d = embed.shape[1]!;
  const r = rng((seed ^ 0x2545f491) >>> 0);
  const normal = () => {
    const u1 = Math.max(r(), 1e-12), u2 = r();
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2) * std;
  };
  // place (0 = last digit of the token) x digit, and token length 1..3
  const place = Array.from({ length: 3 }, () => Array.from({ length: 10 }, () => Float32Array.from({ length: d }, normal)));
  const length = Array.from({ length: 3 }, () => Float32Array.from({ length: d }, normal));
  const params = model.getParams();
  let changed = 0;
  model.vocabIds.forEach((id, c) => {
    const bytes = model.tokenizer.tokenBytes(id);
    if (bytes.length < 1 || bytes.length > 3 || !bytes.every((b) => b >= 0x30 && b <= 0x39)) return;
    const row = params.subarray(embed.offset + c * d, embed.offset + (c + 1) * d);
    row.set(length[bytes.length - 1]!);
    bytes.forEach((b, j) => {
      const v = place[bytes.length - 1 - j]![b - 0x30]!;
      for (let k = 0; k < d; k++) row[k]! += v[k]!;
    });
    changed++;
  });
  model.setParams(params);
  return changed;
}
