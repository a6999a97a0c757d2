// The bytes a checkpoint of `step` holds in the kill test (pure function of the step).
export function content(step) {
  const weights = Buffer.alloc(1 << 20);
  const optimizer = Buffer.alloc(300_000);
  let x = step * 2654435761 >>> 0;
  for (const b of [weights, optimizer]) {
    for (let i = 0; i < b.length; i += 4) {
      x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
      b.writeUInt32LE(x, i);
    }
  }
  return { weights, optimizer };
}
