/**
 * Benchmark harness: a suite returns rows of measurements; the harness prints them side by side
 * (with ratios a suite computes in the same run) and writes JSON. Speed is measured here, never in tests.
 */
import { mkdirSync, writeFileSync, renameSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export type Row = Record<string, string | number | boolean | null>;

export interface SuiteResult {
  suite: string;
  rows: Row[];
  notes?: string[];
}

export interface SuiteOptions {
  quick: boolean; // smaller sizes (CI smoke, laptops)
  args: string[];
}

export interface Suite {
  name: string;
  summary: string;
  run(opts: SuiteOptions): Promise<SuiteResult>;
}

/** Median wall time (s) of fn over enough repetitions to fill minSeconds (at least `min` runs). */
export function timeIt(fn: () => void, minSeconds = 0.5, min = 3): number {
  fn(); // warm-up
  const times: number[] = [];
  const start = performance.now();
  while (times.length < min || (performance.now() - start) / 1000 < minSeconds) {
    const t = performance.now();
    fn();
    times.push((performance.now() - t) / 1000);
    if (times.length > 1000) break;
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

export async function timeItAsync(fn: () => Promise<void>, minSeconds = 0.5, min = 3): Promise<number> {
  await fn();
  const times: number[] = [];
  const start = performance.now();
  while (times.length < min || (performance.now() - start) / 1000 < minSeconds) {
    const t = performance.now();
    await fn();
    times.push((performance.now() - t) / 1000);
    if (times.length > 1000) break;
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

export function machine(): Row {
  return { cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, node: process.version, platform: `${process.platform}-${process.arch}` };
}

function fmt(v: Row[string]): string {
  if (typeof v === 'number') {
    if (Number.isInteger(v)) return String(v);
    const a = Math.abs(v);
    return a >= 1e6 || (a < 1e-3 && a > 0) ? v.toExponential(3) : v.toFixed(a >= 100 ? 1 : 3);
  }
  return v === null ? '-' : String(v);
}

export function printTable(result: SuiteResult): void {
  const cols = [...new Set(result.rows.flatMap((r) => Object.keys(r)))];
  const cells = result.rows.map((r) => cols.map((c) => fmt(r[c] ?? null)));
  const widths = cols.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]!.length)));
  console.log(`\n== ${result.suite}`);
  console.log(cols.map((c, i) => c.padStart(widths[i]!)).join('  '));
  for (const row of cells) console.log(row.map((c, i) => c.padStart(widths[i]!)).join('  '));
  for (const n of result.notes ?? []) console.log(`note: ${n}`);
}

/** Writes the results atomically to dir/<suite>.json. */
export function writeJson(dir: string, result: SuiteResult): string {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${result.suite}.json`);
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify({ ...result, machine: machine(), date: new Date().toISOString() }, null, 2));
  renameSync(tmp, file);
  return file;
}
