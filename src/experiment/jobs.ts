/** Every kind of job the experiment runs (in this process or on a worker, pool.ts). */
import { runStage1, runStage2, type Stage1Job, type Stage1Result, type Stage2Job, type Stage2Result } from './runs.js';
import { runDiagnosis, type DiagnosisJob } from './diagnose.js';
import type { DiagnosisResult } from '../report/html.js';
import { runBuild, type BuildJob, type BuildResult } from './build.js';

export type Job = BuildJob | Stage1Job | Stage2Job | DiagnosisJob;
export type JobResult = BuildResult | Stage1Result | Stage2Result | DiagnosisResult;

/** Runs a job; its result carries the CPU seconds the process spent on it (all threads), so the run's cost can be told apart from the machine's load. */
export async function runJob(job: Job): Promise<JobResult & { cpuSeconds?: number }> {
  const t0 = process.cpuUsage();
  const run = (): Promise<JobResult> => {
    switch (job.kind) {
      case 'build': return Promise.resolve(runBuild(job));
      case 'stage1': return runStage1(job);
      case 'stage2': return runStage2(job);
      case 'diagnose': return runDiagnosis(job);
    }
  };
  const result = await run();
  const t = process.cpuUsage(t0);
  return { ...result, cpuSeconds: (t.user + t.system) / 1e6 };
}
