/** How sequences reach the native forward: packed end to end, with offsets. */

/** Sequences concatenated, with offsets [n + 1]. */
export function pack(seqs: Int32Array[]): { tokens: Int32Array; offsets: Int32Array } {
  const offsets = new Int32Array(seqs.length + 1);
  seqs.forEach((s, i) => { offsets[i + 1] = offsets[i]! + s.length; });
  const tokens = new Int32Array(offsets[seqs.length]!);
  seqs.forEach((s, i) => tokens.set(s, offsets[i]!));
  return { tokens, offsets };
}

/**
 * The tokens the model reads to predict every response token (teacher forcing): the prompt, then the
 * response without its last token, which is only a target. `outStart` is the position whose output
 * predicts response token 0. An empty response reads nothing.
 */
export function teacherForced(prompt: Int32Array, response: Int32Array): { seq: Int32Array; outStart: number } {
  if (response.length === 0) return { seq: new Int32Array(0), outStart: 0 };
  const seq = new Int32Array(prompt.length + response.length - 1);
  seq.set(prompt);
  seq.set(response.subarray(0, response.length - 1), prompt.length);
  return { seq, outStart: prompt.length - 1 };
}
