/**
 * `xopd distill` as a process: SIGKILL while a checkpoint is being written, then --resume from
 * the last complete checkpoint (nothing corrupted, every step's metrics exactly once); Ctrl-C
 * (SIGINT) saves a checkpoint and exits 130, and --resume finishes the run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, watch } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckpointStore, verifyCheckpoint } from '../src/run/checkpoint.js';
import { MetricsLog } from '../src/run/metrics.js';
import { Model } from '../src/model/model.js';
import { CLI, ensureBuilt } from './helpers/built.js';
import { DEFAULT_TEACHER } from '../src/run/job.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'xopd-proc-'));
const children = new Set<ChildProcess>();
beforeAll(() => ensureBuilt(), 180_000);
afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(tmp, { recursive: true, force: true });
});

const SMALL = ['--batch-size', '2', '--eval-size', '0', '--max-tokens', '24', '--seed', '3', '--threads', '1', '--no-progress'];

function xopd(args: string[]): { child: ChildProcess; done: Promise<{ code: number | null; signal: string | null; out: string; err: string }> } {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, XOPD_THREADS: '1' } });
  children.add(child);
  let out = '', err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const done = new Promise<{ code: number | null; signal: string | null; out: string; err: string }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal, out, err })));
  return { child, done };
}

function stepsIn(metricsFile: string): number[] {
  return MetricsLog.read(metricsFile).filter((r) => r.kind === 'step').map((r) => r.step);
}

// Each test runs xopd distill as processes, several in a row: minutes on a loaded 2-core machine.
describe('xopd distill under kill and interrupt', { timeout: 240_000 }, () => {
  it('SIGKILL while a checkpoint is being written: --resume continues from the last complete one', async () => {
    // Kill the moment a checkpoint's temp folder appears (the write has begun, the rename has not
    // happened). A kill that lands after the rename is retried with a fresh run.
    let run = '', killedMidWrite = false;
    for (let attempt = 0; attempt < 4 && !killedMidWrite; attempt++) {
      run = path.join(tmp, `kill-${attempt}`);
      const ckdir = path.join(run, 'checkpoints');
      const p = xopd(['distill', ...SMALL, '--steps', '8', '--checkpoint-every', '1', '--out', run]);
      // wait for the folder, then watch for the second checkpoint's temp folder
      while (!existsSync(ckdir)) {
        if (p.child.exitCode !== null) break;
        await new Promise((r) => setTimeout(r, 5));
      }
      await new Promise<void>((resolve) => {
        const w = watch(ckdir, (_e, name) => {
          if (name && String(name).startsWith('.tmp-step-00000002')) {
            p.child.kill('SIGKILL');
            w.close();
            resolve();
          }
        });
        p.done.then(() => { w.close(); resolve(); });
      });
      const r = await p.done;
      expect(r.signal).toBe('SIGKILL');
      killedMidWrite = readdirSync(ckdir).some((n) => n.startsWith('.tmp-step-00000002')) && !existsSync(path.join(ckdir, 'step-00000002'));
    }
    expect(killedMidWrite).toBe(true);
    const ckdir = path.join(run, 'checkpoints');
    // The last complete checkpoint is step 1 and it verifies; step 2 never became visible.
    const latest = new CheckpointStore(ckdir).latest();
    expect(latest!.step).toBe(1);
    expect(verifyCheckpoint(latest!.dir)).toBeNull();
    Model.load(path.join(latest!.dir, 'student')); // loads: weights intact
    // Resume: the run continues at step 2 and completes; every step is in the metrics once.
    const r = await xopd(['distill', '--resume', run, '--no-progress']).done;
    expect(r.err).toMatch(/resuming .* from checkpoint step 1/);
    expect(r.code).toBe(0);
    expect(stepsIn(path.join(run, 'metrics.jsonl'))).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(readdirSync(ckdir).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
    const summary = JSON.parse(readFileSync(path.join(run, 'summary.json'), 'utf8'));
    expect(summary.steps).toBe(8);
    Model.load(path.join(run, 'student'));
  });

  it('a run stopped and resumed ends with the same student as one run straight through', async () => {
    // Checkpoints keep AdamW's moments and step count (the warm-up position too), and prompts and
    // samples are a function of (seed, step): the continuation is exact, weight for weight.
    const straight = path.join(tmp, 'straight'), split = path.join(tmp, 'split');
    const a = await xopd(['distill', ...SMALL, '--steps', '6', '--checkpoint-every', '3', '--out', straight]).done;
    expect(a.code).toBe(0);
    const b1 = await xopd(['distill', ...SMALL, '--steps', '3', '--checkpoint-every', '3', '--out', split]).done;
    expect(b1.code).toBe(0);
    expect(existsSync(path.join(split, 'checkpoints', 'step-00000003', 'student', 'optimizer.safetensors'))).toBe(true);
    const b2 = await xopd(['distill', '--resume', split, '--steps', '6', '--no-progress']).done;
    expect(b2.code).toBe(0);
    expect(b2.err).not.toMatch(/optimizer state/);
    const wa = Model.load(path.join(straight, 'student')).getParams();
    const wb = Model.load(path.join(split, 'student')).getParams();
    const w0 = Model.load(path.join(split, 'checkpoints', 'step-00000003', 'student')).getParams();
    expect(wb).toEqual(wa);
    expect(w0).not.toEqual(wa); // the last three steps did move the weights
    // the final student folder is a model, not a checkpoint: no optimizer state in it
    expect(existsSync(path.join(straight, 'student', 'optimizer.safetensors'))).toBe(false);
  });

  it('SIGINT saves a checkpoint and exits 130; --resume finishes the run', async () => {
    const run = path.join(tmp, 'interrupt');
    const p = xopd(['distill', ...SMALL, '--steps', '1000000', '--checkpoint-every', '0', '--out', run]);
    const metrics = path.join(run, 'metrics.jsonl');
    while (!(existsSync(metrics) && stepsIn(metrics).length >= 2)) {
      if (p.child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    p.child.kill('SIGINT');
    const r = await p.done;
    expect(r.code).toBe(130);
    expect(r.err).toMatch(/SIGINT: finishing this step, then saving a checkpoint/);
    expect(r.out).toMatch(/interrupted after step (\d+); resume with: xopd distill --resume/);
    const stopped = Number(/interrupted after step (\d+)/.exec(r.out)![1]);
    expect(stopped).toBeGreaterThanOrEqual(2);
    expect(stopped).toBeLessThan(1000000);
    const ck = new CheckpointStore(path.join(run, 'checkpoints')).latest();
    expect(ck!.step).toBe(stopped);
    expect(stepsIn(metrics)).toEqual(Array.from({ length: stopped }, (_, i) => i + 1));
    // --steps may change on resume: finish two steps later
    const r2 = await xopd(['distill', '--resume', run, '--steps', String(stopped + 2), '--no-progress', '--json']).done;
    expect(r2.code).toBe(0);
    const result = JSON.parse(r2.out.trim().split('\n').pop()!);
    expect(result.steps).toBe(stopped + 2);
    expect(result.interrupted).toBe(false);
    expect(stepsIn(metrics)).toEqual(Array.from({ length: stopped + 2 }, (_, i) => i + 1));
  });

  it('xopd serve-teacher serves the shipped teacher; xopd distill --teacher-url trains through it; SIGTERM stops the server', async () => {
    const srv = xopd(['serve-teacher', '--model', DEFAULT_TEACHER, '--port', '0', '--quiet']);
    let url = '';
    while (!url) {
      if (srv.child.exitCode !== null) throw new Error(`serve-teacher exited: ${(await srv.done).err}`);
      const m = /serving teacher-qwen3 \(.*\) on (http:\/\/127\.0\.0\.1:\d+)/.exec(await new Promise<string>((r) => srv.child.stdout!.once('data', (d) => r(String(d)))));
      if (m) url = m[1]!;
    }
    const models = (await (await fetch(`${url}/v1/models`)).json()) as { data: Array<{ id: string }> };
    expect(models.data[0]!.id).toBe('teacher-qwen3');
    const run = path.join(tmp, 'served');
    const r = await xopd(['distill', ...SMALL, '--steps', '2', '--loss', 'chunk-pg=1,span-kl=1', '--teacher-url', url, '--teacher-tokenizer', 'qwen3', '--out', run, '--json']).done;
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(r.out.trim().split('\n').pop()!).steps).toBe(2);
    const steps = MetricsLog.read(path.join(run, 'metrics.jsonl')).filter((x) => x.kind === 'step');
    expect(steps.map((x) => x.step)).toEqual([1, 2]);
    for (const x of steps) {
      expect(Number.isFinite(x.lossChunkPg)).toBe(true);
      expect(Number.isFinite(x.lossSpanKl)).toBe(true);
    }
    srv.child.kill('SIGTERM');
    expect((await srv.done).code).toBe(0);
    // the server is gone: a distill against it fails with a teacher error naming it, exit 1
    const down = await xopd(['distill', ...SMALL, '--steps', '1', '--teacher-url', url, '--teacher-tokenizer', 'qwen3', '--teacher-retries', '1', '--out', path.join(tmp, 'down')]).done;
    expect(down.code).toBe(1);
    expect(down.err).toContain(`E_TEACHER_UNREACHABLE: teacher server ${url}/v1 failed (unreachable) after 2 attempts`);
  });
});
