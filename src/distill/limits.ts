/** Context limits of the roles (DESIGN section 1: both sides must fit their sequences). */

/**
 * The context limit of a role: its maxSequenceLength, else (the embedded Model until it exposes
 * that) config.maxSeqLen, else none.
 */
export function sequenceLimit(role: { maxSequenceLength?: number }): number {
  if (typeof role.maxSequenceLength === 'number') return role.maxSequenceLength;
  const cfg = (role as { config?: { maxSeqLen?: unknown } }).config;
  return typeof cfg?.maxSeqLen === 'number' ? cfg.maxSeqLen : Infinity;
}
