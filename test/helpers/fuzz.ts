// Property-test budgets: small and time-bounded in `npm test`, large under `npm run fuzz`
// (XOPD_FUZZ=1 multiplies the runs and lifts the time bound).
const FUZZ = process.env.XOPD_FUZZ === '1';

/** fast-check parameters for one property: numRuns scaled for fuzzing, and a time bound. */
export function fuzzParams(runs: number, seconds = 10): { numRuns: number; interruptAfterTimeLimit: number; markInterruptAsFailure: false } {
  return { numRuns: FUZZ ? runs * 50 : runs, interruptAfterTimeLimit: (FUZZ ? 600 : seconds) * 1000, markInterruptAsFailure: false };
}

export const fuzzing = FUZZ;
