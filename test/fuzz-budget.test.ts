// The fuzz budget bites: a property stopped by its time bound before its base runs fails.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { budgetVerdict, fuzzParams } from './helpers/fuzz.js';

describe('fuzzParams', () => {
  it('a time-bounded run with fewer than the base runs fails; with enough, or finished, it passes', () => {
    expect(budgetVerdict({ failed: false, interrupted: true, numRuns: 3 }, 40)).toMatch(/after 3 of the 40 runs/);
    expect(budgetVerdict({ failed: false, interrupted: true, numRuns: 40 }, 40)).toBeNull();
    expect(budgetVerdict({ failed: false, interrupted: false, numRuns: 40 }, 40)).toBeNull();
    expect(budgetVerdict({ failed: true, interrupted: false, numRuns: 1 }, 40)).toBe('failed');
  });

  it('through fast-check: a property too slow for its bound is reported, not passed', () => {
    const slow = fc.property(fc.integer(), () => {
      const until = Date.now() + 30;
      while (Date.now() < until) { /* 30 ms a case */ }
    });
    const params = { ...fuzzParams(1000), interruptAfterTimeLimit: 100 };
    expect(() => fc.assert(slow, params)).toThrow(/stopped by its time bound/);
  });
});
