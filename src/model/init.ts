/**
 * Structured initialisation of number-token embeddings. A pretrained LLM knows that Llama 3's
 * token "482" means the digits 4, 8, 2; a tiny model trained from scratch must discover it for each
 * of ~1000 such tokens, and in our runs it barely does. With `digitEmbeddings`, every token whose
 * bytes are 1 to 3 ASCII digits gets, on top of its random init, a code: one unit per (place,
 * digit) (place 0 = the token's last digit) and one per length, in the first 33 dimensions, scaled
 * so number embeddings have about the norm of the others. The embeddings being tied, the output
 * layer then scores a number token as a sum of per-place digit scores. Other tokens are untouched.
 */
import type { Model } from './model.js';

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
    changed++;
  });
  model.setParams(params);
  return changed;
}
