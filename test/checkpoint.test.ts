/**
 * Checkpoints survive SIGKILL at any point of a write: a child process is killed in the middle of
 * writing one (deterministically), and at random instants of a write loop; each time the last
 * complete checkpoint loads, verifies, and holds exactly the bytes written for its step.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckpointStore, verifyCheckpoint } from '../src/run/checkpoint.js';
import { writeFileAtomic } from '../src/core/files.js';
import { MetricsLog } from '../src/run/metrics.js';
import { Progress, formatDuration } from '../src/run/progress.js';
import { ensureBuilt, ROOT } from './helpers/built.js';
// @ts-expect-error plain JS helper shared with the child process
import { content } from './helpers/checkpoint-content.mjs';

const CHILD = path.join(ROOT, 'test', 'helpers', 'checkpoint-child.mjs');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'xopd-ckpt-'));

beforeAll(() => ensureBuilt(), 180_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function startChild(root: string, ...args: string[]): { child: ChildProcess; lines: string[]; waitFor: (re: RegExp) => Promise<string> } {
  const child = spawn(process.execPath, [CHILD, root, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: string[] = [];
  const waiters: Array<[RegExp, (l: string) => void]> = [];
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let at: number;
    while ((at = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, at);
      buf = buf.slice(at + 1);
      lines.push(line);
      for (const [re, fn] of [...waiters]) if (re.test(line)) fn(line);
    }
  });
  return {
    child, lines,
    waitFor: (re) => new Promise((resolve, reject) => {
      const hit = lines.find((l) => re.test(l));
      if (hit) return resolve(hit);
      waiters.push([re, resolve]);
      child.once('exit', (code, sig) => reject(new Error(`child exited (${code ?? sig}) before ${re}`)));
    }),
  };
}

const killed = (c: ChildProcess) => new Promise<void>((r) => { if (c.exitCode !== null || c.signalCode !== null) r(); else c.once('exit', () => r()); });

function expectIntact(root: string, minStep: number): number {
  const store = new CheckpointStore(root, 2);
  const warnings: string[] = [];
  const ck = store.latest((w) => warnings.push(w));
  expect(ck).not.toBeNull();
  expect(ck!.step).toBeGreaterThanOrEqual(minStep);
  const want = content(ck!.step);
  expect(readFileSync(path.join(ck!.dir, 'student', 'model.bin')).equals(want.weights)).toBe(true);
  expect(readFileSync(path.join(ck!.dir, 'optimizer.bin')).equals(want.optimizer)).toBe(true);
  expect((ck!.state as { note: string }).note).toBe(`step ${ck!.step}`);
  // latest() removes what a killed writer left behind
  expect(readdirSync(root).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
  return ck!.step;
}

describe('checkpoints under SIGKILL', () => {
  it('a kill in the middle of writing step 4 leaves step 3 complete, and the run resumes from it', async () => {
    const root = path.join(tmp, 'mid');
    const c = startChild(root, 'pause', '4');
    await c.waitFor(/^MID 4$/);
    expect(c.lines).toContain('SAVED 3');
    // The half-written step 4 is on disk in a temp folder when the kill lands.
    expect(readdirSync(root).some((n) => n.startsWith('.tmp-step-00000004'))).toBe(true);
    c.child.kill('SIGKILL');
    await killed(c.child);
    expect(expectIntact(root, 3)).toBe(3);
    // Resume: the child continues at step 4 and completes it.
    const r = startChild(root, 'pause', '5');
    await r.waitFor(/^MID 5$/);
    expect(r.lines[0]).toBe('SAVED 4');
    r.child.kill('SIGKILL');
    await killed(r.child);
    expect(expectIntact(root, 4)).toBe(4);
    // keep = 2: older complete checkpoints were pruned
    expect(new CheckpointStore(root, 2).steps()).toEqual([3, 4]);
  });

  it('kills at random instants of a write loop never leave a damaged latest checkpoint', async () => {
    const root = path.join(tmp, 'loop');
    let last = 0;
    let seed = 12345;
    for (let round = 0; round < 6; round++) {
      const c = startChild(root, 'loop');
      await c.waitFor(/^SAVED/);
      seed = (seed * 1103515245 + 12345) % 2147483648;
      await new Promise((r) => setTimeout(r, 5 + (seed % 120)));
      c.child.kill('SIGKILL');
      await killed(c.child);
      const step = expectIntact(root, last + 1);
      last = step;
    }
  });
});

describe('checkpoint store', () => {
  it('falls back to the newest checkpoint that verifies when the latest one is damaged', async () => {
    const root = path.join(tmp, 'damaged');
    const store = new CheckpointStore(root, 5);
    for (const step of [10, 20, 30]) await store.save(step, (dir) => writeFileSync(path.join(dir, 'w.bin'), Buffer.alloc(1000, step)), { lr: 0.1 });
    expect(store.steps()).toEqual([10, 20, 30]);
    const f = path.join(root, 'step-00000030', 'w.bin');
    const bytes = readFileSync(f);
    bytes[500] ^= 1;
    writeFileSync(f, bytes);
    expect(verifyCheckpoint(path.join(root, 'step-00000030'))).toMatch(/SHA-256/);
    const warnings: string[] = [];
    const ck = store.latest((w) => warnings.push(w));
    expect(ck!.step).toBe(20);
    expect((ck!.state as { lr: number }).lr).toBe(0.1);
    expect(warnings.join('\n')).toMatch(/skipping checkpoint .*step-00000030: w.bin does not match/);
    // A damaged pointer is ignored too.
    writeFileSync(path.join(root, 'latest'), '{"step": 9');
    expect(store.latest()!.step).toBe(20);
    rmSync(path.join(root, 'step-00000020', 'manifest.json'));
    expect(store.latest()!.step).toBe(10);
    expect(new CheckpointStore(path.join(tmp, 'none')).latest()).toBeNull();
  });

  it('a failing writer leaves no folder behind and reports E_CHECKPOINT', async () => {
    const root = path.join(tmp, 'failing');
    const store = new CheckpointStore(root);
    await expect(store.save(1, () => { throw new Error('disk full'); }, {})).rejects.toMatchObject({ code: 'E_CHECKPOINT', message: expect.stringMatching(/disk full/) });
    expect(readdirSync(root)).toEqual([]);
  });

  it('writeFileAtomic replaces a file whole', () => {
    const f = path.join(tmp, 'atomic', 'a.json');
    writeFileAtomic(f, 'one');
    writeFileAtomic(f, 'two');
    expect(readFileSync(f, 'utf8')).toBe('two');
    expect(readdirSync(path.dirname(f))).toEqual(['a.json']);
  });
});

describe('metrics and progress', () => {
  it('metrics are JSON lines; a resume drops the lines past the checkpoint and any line cut by a kill', () => {
    const f = path.join(tmp, 'metrics.jsonl');
    const m = new MetricsLog(f);
    for (let s = 1; s <= 5; s++) m.write({ kind: 'step', step: s, loss: 1 / s, bad: NaN });
    m.close();
    writeFileSync(f, readFileSync(f, 'utf8') + '{"kind":"step","step":6,"lo');
    const m2 = new MetricsLog(f);
    m2.truncateAfter(3);
    m2.write({ kind: 'eval', step: 3, accuracy: 0.5 });
    m2.close();
    const recs = MetricsLog.read(f);
    expect(recs.map((r) => `${r.kind}${r.step}`)).toEqual(['step1', 'step2', 'step3', 'eval3']);
    expect(recs[0]!.bad).toBeNull();
    expect(existsSync(f)).toBe(true);
  });

  it('draws a bar with ETA on a terminal and plain lines elsewhere', () => {
    const out: string[] = [];
    const tty = new Progress(10, { label: 'distill', stream: { write: (s: string) => out.push(s), isTTY: true, columns: 200 } });
    tty.update(10, 'loss 0.5');
    expect(out.join('')).toMatch(/^\rdistill \[#{24}\] 10\/10 100% .* ETA 00:00 \| loss 0\.5\x1b\[K$/);
    const plain: string[] = [];
    const p = new Progress(4, { stream: { write: (s: string) => plain.push(s) }, plainEverySeconds: 3600 });
    for (let i = 1; i <= 4; i++) p.update(i);
    // one line at the start, none in between (throttled), one at the end
    expect(plain.length).toBe(2);
    expect(plain[1]).toMatch(/^4\/4 100% /);
    expect(plain.join('')).not.toMatch(/\r|\x1b/);
    expect(formatDuration(3725)).toBe('1:02:05');
    expect(formatDuration(NaN)).toBe('--:--');
  });
});
