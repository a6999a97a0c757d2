/**
 * Runs the experiment's jobs on worker processes (worker.ts), one job at a time each. The models
 * are small, so one CPU thread per run and one run per core use the cores better than one run on
 * all of them. Every job is seeded, so where it runs does not change its numbers. With one worker,
 * or where the compiled worker is absent (running from the TypeScript sources), jobs run in this
 * process.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { ErrorCode, XopdError } from '../core/errors.js';

export interface WorkerRequest<J> {
  id: number;
  job: J;
}

export interface WorkerReply<R> {
  id: number;
  result?: R;
  error?: { message: string; code?: string };
}

const workerFile = fileURLToPath(new URL('./worker.js', import.meta.url));

/** Runs `jobs` on up to `workers` processes; `done(k, result)` is called as each job k finishes. */
export async function runPool<J, R>(jobs: J[], workers: number, done: (k: number, result: R) => void, inProcess: (job: J) => Promise<R>): Promise<void> {
  if (jobs.length === 0) return;
  const n = Math.max(1, Math.min(workers, jobs.length));
  if (n === 1 || !existsSync(workerFile)) {
    for (let k = 0; k < jobs.length; k++) done(k, await inProcess(jobs[k]!));
    return;
  }
  // The cores are shared out: XOPD_THREADS (or all of them) over the workers, at least one each.
  const threads = Math.max(1, Math.floor((Number(process.env.XOPD_THREADS) || os.cpus().length) / n));
  let next = 0;
  const children: ChildProcess[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      let running = 0, failed = false;
      const feed = (child: ChildProcess) => {
        if (failed) return;
        if (next >= jobs.length) {
          child.disconnect();
          if (running === 0) resolve();
          return;
        }
        running++;
        child.send({ id: next, job: jobs[next] } satisfies WorkerRequest<J>);
        next++;
      };
      for (let w = 0; w < n; w++) {
        const child = fork(workerFile, [], { env: { ...process.env, XOPD_THREADS: String(threads) }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
        children.push(child);
        child.on('message', (m: WorkerReply<R>) => {
          running--;
          if (m.error) {
            failed = true;
            reject(new XopdError((m.error.code as ErrorCode) ?? ErrorCode.NATIVE, `an experiment run failed in a worker: ${m.error.message}`));
            return;
          }
          try {
            done(m.id, m.result!);
          } catch (err) {
            failed = true;
            reject(err);
            return;
          }
          feed(child);
          if (next >= jobs.length && running === 0) resolve();
        });
        child.on('exit', (code, signal) => {
          if (!failed && (code !== 0 || signal) && next <= jobs.length && running > 0) {
            failed = true;
            reject(new XopdError(ErrorCode.NATIVE, `an experiment worker exited (${signal ?? `code ${code}`}) before its run finished`));
          }
        });
        feed(child);
      }
    });
  } finally {
    for (const c of children) if (c.connected) c.disconnect();
  }
}
