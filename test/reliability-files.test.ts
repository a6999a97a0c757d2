// Files a user keeps, under real write faults (docs/RELIABILITY.md, "Files"): a path through a
// file (ENOTDIR, everywhere), a full disk (a tiny tmpfs: ENOSPC) and a read-only file system
// (a tmpfs remounted read-only: EROFS). Each must be an XopdError E_WRITE naming the file and the
// fix, leave no temporary file, and leave what was there byte for byte.
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { XopdError } from '../src/errors.js';
import { writeReport, type ExperimentReport } from '../src/report/html.js';
import { canMount, mountTmpfs } from './helpers/faultfs.js';

const report = (title: string): ExperimentReport => ({
  title, command: 'xopd experiment --quick', machine: 'test', date: '2026-11-27', baseline: 'sft',
  runs: ['sft', 'span-kl'].map((arm, k) => ({ arm, seed: 1, points: Array.from({ length: 5 }, (_, i) => ({ step: i, flops: i * 1e9, seconds: i, accuracy: 0.2 + 0.1 * i * (k + 1) })) })),
  alignment: [], notes: [],
});

function writeError(fn: () => unknown): XopdError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(XopdError);
    return e as XopdError;
  }
  throw new Error('no error');
}

const snapshot = (dir: string) => Object.fromEntries(readdirSync(dir).sort().map((f) => [f, readFileSync(path.join(dir, f), 'utf8')]));

let tried = 0;
afterAll(() => console.log(`reliability-files: ${tried} write faults tried${canMount ? '' : ' (tmpfs faults skipped: mounting needs root with CAP_SYS_ADMIN)'}`));

describe('writeReport under write faults', () => {
  it('a report folder whose parent is a file: E_WRITE "a part of the path is a file"', () => {
    const base = mkdtempSync(path.join(os.tmpdir(), 'xopd-files-'));
    writeFileSync(path.join(base, 'plain-file'), 'x');
    const e = writeError(() => writeReport(path.join(base, 'plain-file', 'report'), report('a')));
    expect(e.code).toBe('E_WRITE');
    expect(e.message).toMatch(/plain-file.*a part of the path is a file/);
    tried++;
  });

  it.runIf(canMount)('a full disk: E_WRITE "the disk is full", the previous report intact, no temporary file', () => {
    const m = mountTmpfs(1024)!;
    try {
      const dir = path.join(m.dir, 'report');
      writeReport(dir, report('first'));
      const before = snapshot(dir);
      m.fill();
      const e = writeError(() => writeReport(dir, report('second, with a different title')));
      expect(e.code).toBe('E_WRITE');
      expect(e.message).toMatch(/the disk is full.*nothing already there was replaced/);
      expect(snapshot(dir)).toEqual(before);
      expect(readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
      tried++;
    } finally {
      m.unmount();
    }
  });

  it.runIf(canMount)('a read-only file system: E_WRITE "read-only", the previous report intact', () => {
    const m = mountTmpfs(2048)!;
    try {
      const dir = path.join(m.dir, 'report');
      writeReport(dir, report('first'));
      const before = snapshot(dir);
      m.readOnly();
      const e = writeError(() => writeReport(dir, report('second')));
      expect(e.code).toBe('E_WRITE');
      expect(e.message).toMatch(/read-only: choose a writable folder/);
      expect(snapshot(dir)).toEqual(before);
      const fresh = writeError(() => writeReport(path.join(m.dir, 'new-report'), report('x')));
      expect(fresh.code).toBe('E_WRITE');
      expect(existsSync(path.join(m.dir, 'new-report'))).toBe(false);
      tried += 2;
    } finally {
      m.unmount();
    }
  });
});
