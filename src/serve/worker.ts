/**
 * A worker thread of `xopd serve`: builds a ServeHandler from workerData and answers jobs
 * { id, route, body } with { id, result } (the body bytes transferred, not copied). Several jobs
 * run at once: while one waits for the teacher, another uses the thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { setThreads } from '../core/native.js';
import { ServeHandler, errorResult, type Route, type ServeConfig } from './handler.js';

export interface JobMessage { type: 'job'; id: number; route: Route; body: Uint8Array }
export type WorkerReply =
  | { type: 'ready' }
  | { type: 'fatal'; message: string; code?: string }
  | { type: 'done'; id: number; status: number; body: Uint8Array; studentTokens: number; teacherTokens: number; teacherFault?: { teacher: string; fault: string } };

const port = parentPort!;
const encoder = new TextEncoder();

try {
  // Each worker is one lane of host work: the native kernels run inline on its thread.
  setThreads(1);
  const handler = new ServeHandler((workerData as { config: ServeConfig }).config);
  port.on('message', (m: JobMessage | { type: 'close' }) => {
    if (m.type === 'close') {
      void handler.close().finally(() => port.close());
      return;
    }
    void handler.handle(m.route, m.body).catch(errorResult).then((r) => {
      const body = encoder.encode(r.body);
      const reply: WorkerReply = { type: 'done', id: m.id, status: r.status, body, studentTokens: r.studentTokens, teacherTokens: r.teacherTokens, teacherFault: r.teacherFault };
      port.postMessage(reply, [body.buffer]);
    });
  });
  port.postMessage({ type: 'ready' } satisfies WorkerReply);
} catch (err) {
  const e = err as { message?: string; code?: string };
  port.postMessage({ type: 'fatal', message: String(e?.message ?? err), code: e?.code } satisfies WorkerReply);
}
