/**
 * Structured initialisation of number-token embeddings. A pretrained LLM knows that Llama 3's
 * token "482" means the digits 4, 8, 2; a tiny model trained from scratch must discover it for each
 * of ~1000 such tokens, and in our runs it barely does. With `digitEmbeddings`, every token whose
 * bytes are 1 to 3 ASCII digits gets, on top of its random init, a code: one unit per (place,
 * digit) (place 0 = the token's last digit) and one per length, in the first 33 dimensions, scaled
 * so number embeddings have about the norm of the others. The embeddings being tied, the output
 * layer then scores a number token as a sum of per-place digit scores. Where the model is wide
 * enough (hidden size >= 51), the next 18 dimensions carry the token's value v as a point on
 * circles, cos and sin of 2*pi*f*v/1000 for a few frequencies f: the task writes numbers in
 * 3-digit comma groups, and a group of a sum is (a + b + carry) mod 1000, which on those circles is
 * a rotation (the representation small transformers are known to find for modular addition).
 * Other tokens are untouched.
 */
import type { Model } from './model.js';

const FREQUENCIES = [1, 2, 4, 10, 20, 40, 100, 200, 400];

/** Returns how many embeddings were coded (0 when hiddenSize < 33). */
export function digitEmbeddings(model: Model, scale = 0.1): number {
  const embed = model.tensors().find((t) => t.name === 'model.embed_tokens.weight')!;
  const d = embed.shape[1]!;
  if (d < 33) return 0;
  const params = model.getParams();
  let changed = 0;
  model.vocabIds.forEach((id, c) => {
    const bytes = model.tokenizer.tokenBytes(id);
    if (bytes.length < 1 || bytes.length > 3 || !bytes.every((b) => b >= 0x30 && b <= 0x39)) return;
    const row = params.subarray(embed.offset + c * d, embed.offset + (c + 1) * d);
    bytes.forEach((b, j) => { row[(bytes.length - 1 - j) * 10 + (b - 0x30)]! += scale; });
    row[30 + bytes.length - 1]! += scale;
    if (d >= 33 + 2 * FREQUENCIES.length) {
      const v = Number(String.fromCharCode(...bytes));
      FREQUENCIES.forEach((f, i) => {
        row[33 + 2 * i]! += scale * Math.cos((2 * Math.PI * f * v) / 1000);
        row[34 + 2 * i]! += scale * Math.sin((2 * Math.PI * f * v) / 1000);
      });
    }
    changed++;
  });
  model.setParams(params);
  return changed;
}
