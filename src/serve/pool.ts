/**
 * The worker pool of `xopd serve`: N worker threads, each running up to `perWorker` jobs at once,
 * and a bounded FIFO of jobs waiting for a slot. submit() answers 'full' when the queue is full
 * (the server's 429). A worker that dies fails its jobs with a 500 and is replaced. With zero
 * workers the handler runs on the calling thread (for debugging and small setups).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { ErrorCode, XopdError } from '../core/errors.js';
import { packageRoot } from '../core/native.js';
import { ServeHandler, errorJson, type HandlerResult, type Route, type ServeConfig } from './handler.js';
import type { JobMessage, WorkerReply } from './worker.js';

export interface PoolOptions {
  workers: number;
  perWorker: number;
  queueSize: number;
}

interface Job {
  id: number;
  route: Route;
  body: Uint8Array;
  resolve: (r: HandlerResult) => void;
}

interface Lane {
  worker: Worker;
  jobs: Map<number, Job>;
}

/** The compiled worker script (tests run this module from source: the worker runs from dist/). */
function workerScript(): string {
  const here = fileURLToPath(import.meta.url);
  return here.endsWith('.ts') ? path.join(packageRoot, 'dist', 'src', 'serve', 'worker.js') : path.join(path.dirname(here), 'worker.js');
}

const decoder = new TextDecoder();

export class WorkerPool {
  private lanes: Lane[] = [];
  private readonly queue: Job[] = [];
  private inline: ServeHandler | undefined;
  private inlineBusy = 0;
  private nextId = 1;
  private closing = false;
  /** workers replaced after dying */
  restarts = 0;

  constructor(private readonly config: ServeConfig, private readonly opts: PoolOptions) {}

  /** Starts the workers and waits until every one has loaded the tokenizers. */
  async start(): Promise<void> {
    if (this.opts.workers === 0) {
      this.inline = new ServeHandler(this.config);
      return;
    }
    this.lanes = await Promise.all(Array.from({ length: this.opts.workers }, () => this.spawn()));
  }

  private spawn(): Promise<Lane> {
    return new Promise((resolve, reject) => {
      const worker = new Worker(workerScript(), { workerData: { config: this.config } });
      const lane: Lane = { worker, jobs: new Map() };
      let ready = false;
      worker.on('message', (m: WorkerReply) => {
        if (m.type === 'ready') {
          ready = true;
          resolve(lane);
        } else if (m.type === 'fatal') {
          reject(new XopdError(m.code ?? ErrorCode.ARG_VALUE, m.message));
          void worker.terminate();
        } else {
          const job = lane.jobs.get(m.id);
          if (!job) return;
          lane.jobs.delete(m.id);
          job.resolve({ status: m.status, body: decoder.decode(m.body), studentTokens: m.studentTokens, teacherTokens: m.teacherTokens, teacherFault: m.teacherFault });
          this.pump();
        }
      });
      const died = (why: string) => {
        if (!ready) return reject(new XopdError(ErrorCode.NATIVE, `a serve worker failed to start: ${why}`));
        const jobs = [...lane.jobs.values()];
        lane.jobs.clear();
        for (const j of jobs) j.resolve({ status: 500, body: errorJson(500, `the worker handling this request died (${why})`, 'InternalServerError', 'E_INTERNAL'), studentTokens: 0, teacherTokens: 0 });
        const at = this.lanes.indexOf(lane);
        if (at < 0 || this.closing) return;
        this.restarts++;
        this.spawn().then((fresh) => {
          this.lanes[at] = fresh;
          this.pump();
        }, () => { /* keep serving on the others */ });
      };
      worker.on('error', (e) => died(e.message));
      worker.on('exit', (code) => { if (!this.closing) died(`exit code ${code}`); });
    });
  }

  get inflight(): number {
    return this.inline ? this.inlineBusy : this.lanes.reduce((a, l) => a + l.jobs.size, 0);
  }

  get queued(): number {
    return this.queue.length;
  }

  get workers(): number {
    return this.lanes.length;
  }

  /** Runs a job, or answers 'full' when every slot is busy and the queue holds queueSize jobs. */
  submit(route: Route, body: Uint8Array): Promise<HandlerResult> | 'full' {
    if (this.inline) {
      this.inlineBusy++;
      return this.inline.handle(route, body).finally(() => this.inlineBusy--);
    }
    if (this.queue.length >= this.opts.queueSize && !this.freeLane()) return 'full';
    return new Promise((resolve) => {
      this.queue.push({ id: this.nextId++, route, body, resolve });
      this.pump();
    });
  }

  private freeLane(): Lane | undefined {
    let best: Lane | undefined;
    for (const l of this.lanes) if (l.jobs.size < this.opts.perWorker && (!best || l.jobs.size < best.jobs.size)) best = l;
    return best;
  }

  private pump(): void {
    for (;;) {
      const lane = this.queue.length ? this.freeLane() : undefined;
      if (!lane) return;
      const job = this.queue.shift()!;
      lane.jobs.set(job.id, job);
      const msg: JobMessage = { type: 'job', id: job.id, route: job.route, body: job.body };
      lane.worker.postMessage(msg, [job.body.buffer as ArrayBuffer]);
    }
  }

  async close(): Promise<void> {
    this.closing = true;
    if (this.inline) await this.inline.close();
    await Promise.all(this.lanes.map((l) => new Promise<void>((resolve) => {
      const t = setTimeout(() => void l.worker.terminate().then(() => resolve()), 2000);
      l.worker.once('exit', () => { clearTimeout(t); resolve(); });
      l.worker.postMessage({ type: 'close' });
    })));
  }
}
