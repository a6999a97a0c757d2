/**
 * A worker process of the experiment (pool.ts forks it): receives jobs over IPC, runs each, replies
 * with its result. It exits when the parent disconnects.
 */
import { runJob, type Job, type JobResult } from './jobs.js';
import type { WorkerReply, WorkerRequest } from './pool.js';

process.on('message', (m: WorkerRequest<Job>) => {
  runJob(m.job).then(
    (result) => process.send!({ id: m.id, result } satisfies WorkerReply<JobResult>),
    (err: unknown) => process.send!({ id: m.id, error: { message: err instanceof Error ? err.message : String(err), code: (err as { code?: string })?.code } } satisfies WorkerReply<JobResult>),
  );
});
process.on('disconnect', () => process.exit(0));
