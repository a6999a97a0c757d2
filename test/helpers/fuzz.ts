// Property-test budgets: small in `npm test`, large under `npm run fuzz` (XOPD_FUZZ=1 multiplies
// the runs by 50 and bounds each property by XOPD_FUZZ_SECONDS, default 600). A property that hits
// its time bound passes only if it completed at least its base number of runs, so a slow machine
// cannot turn a property into a handful of cases that always pass. XOPD_FUZZ_LOG=<file> appends one
// line per property (test name, runs, outcome) so a fuzz run can report how many cases it tried.
import { appendFileSync } from 'node:fs';
import fc from 'fast-check';
import { expect } from 'vitest';

const FUZZ = process.env.XOPD_FUZZ === '1';
const FUZZ_SECONDS = Number(process.env.XOPD_FUZZ_SECONDS ?? 600);
const LOG = process.env.XOPD_FUZZ_LOG;
// Under AddressSanitizer (scripts/test-asan.sh) native calls run several times slower: a fifth of the cases.
const SANITIZED = process.env.XOPD_SANITIZED === '1';

interface FuzzParams {
  numRuns: number;
  interruptAfterTimeLimit: number;
  markInterruptAsFailure: false;
  reporter: (details: fc.RunDetails<unknown>) => void;
}

/** Fails a time-bounded run that completed fewer than `minRuns` runs; otherwise fast-check's own verdict. */
export function budgetVerdict(d: Pick<fc.RunDetails<unknown>, 'failed' | 'interrupted' | 'numRuns'>, minRuns: number): string | null {
  if (d.failed) return 'failed';
  if (d.interrupted && d.numRuns < minRuns) return `stopped by its time bound after ${d.numRuns} of the ${minRuns} runs it must complete`;
  return null;
}

/**
 * fast-check parameters for one property: `runs` cases (50x under XOPD_FUZZ), time-bounded by
 * `seconds` (XOPD_FUZZ_SECONDS under XOPD_FUZZ); at least `runs` cases must complete either way
 * (a fifth of them under XOPD_SANITIZED).
 */
export function fuzzParams(baseRuns: number, seconds = 10): FuzzParams {
  const name = expect.getState().currentTestName ?? '?';
  const runs = SANITIZED ? Math.max(5, Math.ceil(baseRuns / 5)) : baseRuns;
  return {
    numRuns: FUZZ ? runs * 50 : runs,
    // In `npm test` the bound only catches a hang: the base runs must finish.
    interruptAfterTimeLimit: (FUZZ ? FUZZ_SECONDS : Math.max(seconds, 60)) * 1000,
    markInterruptAsFailure: false,
    reporter: (d) => {
      const verdict = budgetVerdict(d, runs);
      if (LOG) appendFileSync(LOG, `${name}\t${d.numRuns}\t${verdict ? 'FAILED' : d.interrupted ? 'time-bounded' : 'ok'}\n`);
      if (d.failed) throw new Error(fc.defaultReportMessage(d));
      if (verdict) throw new Error(`${name}: ${verdict}`);
    },
  };
}

export const fuzzing = FUZZ;
