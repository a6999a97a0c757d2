// Property-test budgets: small and time-bounded in `npm test`, large under `npm run fuzz`
// (XOPD_FUZZ=1 multiplies the runs and lifts the time bound to XOPD_FUZZ_SECONDS per property,
// default 600). XOPD_FUZZ_LOG=<file> appends one line per property (test name, runs, outcome) so a
// fuzz run can report how many cases it tried.
import { appendFileSync } from 'node:fs';
import fc from 'fast-check';
import { expect } from 'vitest';

const FUZZ = process.env.XOPD_FUZZ === '1';
const FUZZ_SECONDS = Number(process.env.XOPD_FUZZ_SECONDS ?? 600);
const LOG = process.env.XOPD_FUZZ_LOG;

interface FuzzParams {
  numRuns: number;
  interruptAfterTimeLimit: number;
  markInterruptAsFailure: false;
  reporter?: (details: fc.RunDetails<unknown>) => void;
}

/** fast-check parameters for one property: numRuns scaled for fuzzing, and a time bound. */
export function fuzzParams(runs: number, seconds = 10): FuzzParams {
  const p: FuzzParams = { numRuns: FUZZ ? runs * 50 : runs, interruptAfterTimeLimit: (FUZZ ? FUZZ_SECONDS : seconds) * 1000, markInterruptAsFailure: false };
  if (LOG) {
    const name = expect.getState().currentTestName ?? '?';
    // Same outcome as fast-check's default reporter (throw the report on failure), plus one log line.
    p.reporter = (d) => {
      appendFileSync(LOG, `${name}\t${d.numRuns}\t${d.failed ? 'FAILED' : d.interrupted ? 'time-bounded' : 'ok'}\n`);
      if (d.failed) throw new Error(fc.defaultReportMessage(d));
    };
  }
  return p;
}

export const fuzzing = FUZZ;
