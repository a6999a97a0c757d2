// Bad input to the public API entries no other suite feeds it to (docs/RELIABILITY.md, API rows):
// the pure-JS target and bf16 helpers, byteDiff and alignTables. Each case: an XopdError with a stable code, never a raw TypeError.
import { afterAll, describe, expect, it } from 'vitest';
import { XopdError, alignTables, concatTargets, fromBf16, oneHotTargets, toBf16, Tokenizer } from '../src/index.js';
import { byteDiff } from '../src/internal.js';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof XopdError)) return `not an XopdError: ${String(e)}`;
    return e.code;
  }
  return 'no error';
}

let tried = 0;
afterAll(() => console.log(`reliability-api: ${tried} bad calls tried, none crashed`));
const expectCode = (fn: () => unknown, code: string) => {
  expect(codeOf(fn)).toBe(code);
  tried++;
};

describe('public helpers refuse what they cannot use', () => {
  it('toBf16 / fromBf16: wrong array types', () => {
    expectCode(() => toBf16([1, 2] as never), 'E_ARG_TYPE');
    expectCode(() => toBf16(new Float64Array(2) as never), 'E_ARG_TYPE');
    expectCode(() => fromBf16(new Float32Array(2) as never), 'E_ARG_TYPE');
    expectCode(() => fromBf16(null as never), 'E_ARG_TYPE');
    expect(Array.from(fromBf16(toBf16(Float32Array.from([1, -2, 0.5]))))).toEqual([1, -2, 0.5]);
  });

  it('oneHotTargets / concatTargets: wrong types, a mask of the wrong length, malformed parts', () => {
    expectCode(() => oneHotTargets([0, 1] as never), 'E_ARG_TYPE');
    expectCode(() => oneHotTargets(Int32Array.from([0, 1]), new Uint8Array(3)), 'E_ARG_SHAPE');
    const a = oneHotTargets(Int32Array.from([3, 1]));
    expectCode(() => concatTargets('x' as never), 'E_ARG_TYPE');
    expectCode(() => concatTargets([a, null as never]), 'E_ARG_TYPE');
    expectCode(() => concatTargets([a, { ...a, rowPtr: Int32Array.from([0, 2, 1]) }]), 'E_ARG_VALUE');
    expectCode(() => concatTargets([a, { ...a, probs: Float32Array.from([0.5, 1]) }]), 'E_ARG_VALUE');
    const c = concatTargets([a, a]);
    expect(Array.from(c.rowPtr)).toEqual([0, 1, 2, 3, 4]);
    expect(Array.from(c.ids)).toEqual([3, 1, 3, 1]);
  });

  it('byteDiff: wrong types and limits', () => {
    const x = new TextEncoder().encode('hello');
    expectCode(() => byteDiff('hello' as never, x), 'E_ARG_TYPE');
    expectCode(() => byteDiff(x, [104] as never), 'E_ARG_TYPE');
    expectCode(() => byteDiff(x, x, { maxEdits: -1 }), 'E_ARG_RANGE');
    expectCode(() => byteDiff(x, x, { maxEdits: 1.5 } as never), 'E_ARG_TYPE');
    expect(byteDiff(new Uint8Array(0), new Uint8Array(0)).edits).toBe(0);
  });

  it('alignTables: something that is not a token table', () => {
    const qwen = Tokenizer.load('qwen3');
    expectCode(() => alignTables({} as never, qwen.table), 'E_ARG_TYPE');
    expectCode(() => alignTables(qwen.table, 42 as never), 'E_ARG_TYPE');
  });
});
