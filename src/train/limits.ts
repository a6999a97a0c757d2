/** Context limits of the roles (DESIGN section 1: both sides must fit their sequences). */

/** The context limit of a role: its maxSequenceLength, else none. */
export function sequenceLimit(role: { maxSequenceLength?: number }): number {
  return typeof role.maxSequenceLength === 'number' ? role.maxSequenceLength : Infinity;
}

/** Response tokens that fit after the longest of `prompts` in a context of `limit`, at most `want` (below 1 when none fit). */
export function responseRoom(limit: number, prompts: Int32Array[], want: number): number {
  return Math.min(want, limit - prompts.reduce((a, p) => Math.max(a, p.length), 0));
}

/** `ids` cut to what fits after a prompt of `promptLength` tokens in a context of `limit`. */
export function cutToFit(ids: Int32Array, limit: number, promptLength: number): Int32Array {
  const room = Math.max(0, limit - promptLength);
  return ids.length > room ? ids.subarray(0, room) : ids;
}
