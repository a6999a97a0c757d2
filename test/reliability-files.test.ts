// Files a user keeps, under real write faults (docs/RELIABILITY.md, "Files"): a path through a
// file (ENOTDIR, everywhere), a full disk (a tiny tmpfs: ENOSPC) and a read-only file system
// (a tmpfs remounted read-only: EROFS). Each must be an XopdError E_WRITE naming the file and the
// fix, leave no temporary file, and leave what was there byte for byte.
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { XopdError } from '../src/core/errors.js';
import { writeReport, type ExperimentReport } from '../src/report/html.js';
import { CheckpointStore } from '../src/run/checkpoint.js';
import { Model } from '../src/model/model.js';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { taskVocabIds } from '../src/tasks/arithmetic.js';
import { canMount, mountTmpfs } from './helpers/faultfs.js';

const report = (title: string): ExperimentReport => {
  const runs = ['sft', 'span-rkl'].map((arm, k) => ({ arm, seed: 1, points: Array.from({ length: 5 }, (_, i) => ({ step: i, flops: i * 1e9, seconds: i, accuracy: 0.2 + 0.1 * i * (k + 1) })) }));
  const stage1 = { curve: [], steps: 1, flops: 1, seconds: 1, stopped: 'cap' as const, validation: 0.2, test: 0.2, initialTest: 0.1, params: 1, tokenizer: 'llama3' };
  return {
    title, command: 'xopd experiment --quick', machine: 'test', date: '2026-11-27', projection: 'first', armLabels: {}, notes: [],
    regimes: [{ name: 'r', title: 'r', teacher: 't', budget: 4e9, settings: {}, sftFit: null, headline: [], tax: [],
      cross: { role: 'cross', student: 's', stage1, grid: [], chosen: {}, runs, alignment: [] } }],
  };
};

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

async function rejection(p: Promise<unknown>): Promise<XopdError> {
  const e = await p.then(() => null, (err: unknown) => err);
  expect(e).toBeInstanceOf(XopdError);
  return e as XopdError;
}

/** A checkpoint whose writer puts `bytes` of weights in it (like the Distiller's model save). */
const save = (store: CheckpointStore, step: number, bytes: number) =>
  store.save(step, (dir) => writeFileSync(path.join(dir, 'weights.bin'), Buffer.alloc(bytes, step)), { step, note: 'x' });

describe('CheckpointStore under write faults', () => {
  it('a root below a file: E_CHECKPOINT "a part of the path is a file"', async () => {
    const base = mkdtempSync(path.join(os.tmpdir(), 'xopd-files-'));
    writeFileSync(path.join(base, 'plain-file'), 'x');
    const e = await rejection(save(new CheckpointStore(path.join(base, 'plain-file', 'ckpt')), 1, 100));
    expect(e.code).toBe('E_CHECKPOINT');
    expect(e.message).toMatch(/a part of the path is a file.*earlier checkpoints are intact/);
    tried++;
  });

  it.runIf(canMount)('a full disk: E_CHECKPOINT "the disk is full"; the last checkpoint still verifies and resumes; no temp folder', async () => {
    const m = mountTmpfs(512)!;
    try {
      const store = new CheckpointStore(path.join(m.dir, 'ckpt'));
      await save(store, 1, 100_000);
      m.fill();
      const e = await rejection(save(store, 2, 100_000));
      expect(e.code).toBe('E_CHECKPOINT');
      expect(e.message).toMatch(/step-00000002: the disk is full/);
      const last = store.latest();
      expect(last?.step).toBe(1);
      expect(readFileSync(path.join(last!.dir, 'weights.bin')).equals(Buffer.alloc(100_000, 1))).toBe(true);
      expect(readdirSync(store.root).filter((f) => f.startsWith('.tmp-'))).toEqual([]);
      tried++;
    } finally {
      m.unmount();
    }
  });

  it.runIf(canMount)('a read-only file system: E_CHECKPOINT "read-only"; the last checkpoint still resumes', async () => {
    const m = mountTmpfs(1024)!;
    try {
      const store = new CheckpointStore(path.join(m.dir, 'ckpt'));
      await save(store, 1, 1000);
      m.readOnly();
      const e = await rejection(save(store, 2, 1000));
      expect(e.code).toBe('E_CHECKPOINT');
      expect(e.message).toMatch(/read-only: choose a writable folder/);
      expect(store.latest()?.step).toBe(1);
      tried++;
    } finally {
      m.unmount();
    }
  });
});

describe('Model.save under write faults', () => {
  const tok = Tokenizer.load('llama3');
  const make = (seed: number) => Model.create({ tokenizer: 'llama3', vocabIds: taskVocabIds(tok), hiddenSize: 16, numLayers: 1, numHeads: 2, intermediateSize: 24, mlp: 'gelu', maxSeqLen: 40, task: 'arith-v2' }, { seed, tokenizer: tok });

  it('a folder below a file: E_WRITE "a part of the path is a file"', () => {
    const base = mkdtempSync(path.join(os.tmpdir(), 'xopd-files-'));
    writeFileSync(path.join(base, 'plain-file'), 'x');
    const e = writeError(() => make(1).save(path.join(base, 'plain-file', 'model')));
    expect(e.code).toBe('E_WRITE');
    expect(e.message).toMatch(/a part of the path is a file/);
    tried++;
  });

  it.runIf(canMount)('a full disk, then a read-only one: E_WRITE; the saved model loads with its old weights; no temp folder', () => {
    const m = mountTmpfs(1024)!;
    try {
      const dir = path.join(m.dir, 'model');
      const first = make(1);
      first.save(dir);
      m.fill();
      const full = writeError(() => make(2).save(dir));
      expect(full.code).toBe('E_WRITE');
      expect(full.message).toMatch(/the disk is full/);
      expect(Buffer.from(Model.load(dir).getParams().buffer).equals(Buffer.from(first.getParams().buffer))).toBe(true);
      expect(readdirSync(m.dir).filter((f) => f.includes('.tmp-') || f.includes('.old-'))).toEqual([]);
      m.readOnly();
      const ro = writeError(() => make(3).save(dir));
      expect(ro.code).toBe('E_WRITE');
      expect(ro.message).toMatch(/read-only/);
      expect(Buffer.from(Model.load(dir).getParams().buffer).equals(Buffer.from(first.getParams().buffer))).toBe(true);
      tried += 2;
    } finally {
      m.unmount();
    }
  });
});
