/**
 * Metrics as JSON lines: one object per line, appended and flushed as each step ends, so a killed
 * run keeps every line it finished. On resume, lines past the checkpoint's step are dropped first
 * (they belong to work the resumed run repeats).
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../core/files.js';

export type MetricRecord = { kind: string; step: number } & Record<string, unknown>;

export class MetricsLog {
  private fd: number | undefined;

  constructor(readonly file: string) {}

  /** Keeps only the records with step <= `step` (atomic rewrite); later records are from lost work. */
  truncateAfter(step: number): void {
    if (!existsSync(this.file)) return;
    const kept = readFileSync(this.file, 'utf8').split('\n').filter((line) => {
      if (!line.trim()) return false;
      try {
        const r = JSON.parse(line) as { step?: unknown };
        return typeof r.step === 'number' && r.step <= step;
      } catch {
        return false; // a line cut by a kill
      }
    });
    writeFileAtomic(this.file, kept.map((l) => l + '\n').join(''));
  }

  write(record: MetricRecord): void {
    if (this.fd === undefined) {
      mkdirSync(path.dirname(this.file), { recursive: true });
      this.fd = openSync(this.file, 'a');
    }
    writeSync(this.fd, JSON.stringify({ ...record, time: new Date().toISOString() }, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v)) + '\n');
  }

  /** Every record in the file (for tests and reports). */
  static read(file: string): MetricRecord[] {
    if (!existsSync(file)) return [];
    return readFileSync(file, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as MetricRecord);
  }

  close(): void {
    if (this.fd !== undefined) {
      try {
        fsyncSync(this.fd);
      } catch {
        /* best effort */
      }
      closeSync(this.fd);
      this.fd = undefined;
    }
  }
}
