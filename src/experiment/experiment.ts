/**
 * The compute-efficiency experiment (arXiv 2606.09456's claim, at small scale): every arm starts
 * from the same student and the same teacher and trains to the same FLOP budget, for each seed;
 * test accuracy is recorded against cumulative FLOPs and wall time, then written as a report.
 */
import os from 'node:os';
import path from 'node:path';
import { ErrorCode, XopdError } from '../core/errors.js';
import { Model } from '../model/model.js';
import { arithmeticDistillTask } from '../tasks/distill-task.js';
import { distillOptimizer } from '../run/job.js';
import type { ArmRun, CurvePoint } from '../report/curves.js';
import { writeReport, type AlignmentStats, type ExperimentReport } from '../report/html.js';
import { ARMS, makeArm, type Arm } from './arms.js';
import { MeteredModel } from './metered.js';

export interface ExperimentOptions {
  studentDir: string;
  teacherDir: string;
  arms: Arm[];
  seeds: number[];
  /** FLOP budget per run; 0: the FLOPs of `steps` steps of the first OPD arm's first seed */
  budget: number;
  steps: number;
  evalEvery: number;
  evalN: number;
  batchSize: number;
  maxTokens: number;
  topK: number;
  lr: number;
  outDir: string;
  command: string;
  log?: (line: string) => void;
}

export interface ExperimentResult {
  report: ExperimentReport;
  reportFile: string;
  budget: number;
}

function machine(): string {
  const cpus = os.cpus();
  return `${cpus[0]?.model ?? 'cpu'} × ${cpus.length} (${os.totalmem() / 2 ** 30 | 0} GiB), ${process.platform}-${process.arch}, Node ${process.version}`;
}

export async function runExperiment(o: ExperimentOptions): Promise<ExperimentResult> {
  for (const a of o.arms) if (!ARMS.includes(a)) throw new XopdError(ErrorCode.ARG_VALUE, `unknown arm '${a}'; arms: ${ARMS.join(', ')}`);
  if (o.arms.length === 0 || o.seeds.length === 0) throw new XopdError(ErrorCode.ARG_VALUE, 'give at least one arm and one seed');
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const task = arithmeticDistillTask();
  const teacherModel = Model.load(o.teacherDir);
  // The budget comes from an OPD arm when not given: run that arm first.
  const order = [...o.arms].sort((a, b) => Number(b === 'chunk-pg') - Number(a === 'chunk-pg'));
  let budget = o.budget;
  const runs: ArmRun[] = [];
  const align = new Map<Arm, { chunks: number; oneToOne: number; studentTokens: number; teacherTokens: number; masked: number }>();
  for (const arm of order) {
    for (const seed of o.seeds) {
      const studentModel = Model.load(o.studentDir);
      studentModel.setOptimizer(distillOptimizer(o.lr));
      const student = new MeteredModel(studentModel);
      const teacher = new MeteredModel(teacherModel);
      const stepper = makeArm(arm, student, teacher, task, { batchSize: o.batchSize, maxTokens: o.maxTokens, topK: o.topK, seed });
      const evaluate = async (step: number, seconds: number): Promise<CurvePoint> => {
        const r = await task.evaluate(studentModel, o.evalN, 12345); // the same test problems for every arm and seed
        return { step, flops: student.flops + teacher.flops, seconds, accuracy: r.accuracy };
      };
      const points: CurvePoint[] = [await evaluate(0, 0)];
      const stats = align.get(arm) ?? { chunks: 0, oneToOne: 0, studentTokens: 0, teacherTokens: 0, masked: 0 };
      let seconds = 0;
      let step = 0;
      const budgetFromSteps = budget === 0;
      while (budgetFromSteps ? step < o.steps : student.flops + teacher.flops < budget) {
        const t0 = performance.now();
        const r = await stepper.step(step);
        seconds += (performance.now() - t0) / 1000;
        step++;
        stats.chunks += r.chunks;
        stats.oneToOne += r.oneToOne;
        stats.studentTokens += r.studentTokens;
        stats.teacherTokens += r.teacherTokens;
        stats.masked += r.maskedTokens;
        if (step % o.evalEvery === 0) points.push(await evaluate(step, seconds));
        if (step > 100_000) throw new XopdError(ErrorCode.ARG_VALUE, `arm ${arm} spent no FLOPs in 100000 steps: check the budget`);
      }
      if (points[points.length - 1]!.step !== step) points.push(await evaluate(step, seconds));
      if (budgetFromSteps) budget = student.flops + teacher.flops;
      align.set(arm, stats);
      runs.push({ arm, seed, points });
      const last = points[points.length - 1]!;
      log(`[experiment] ${arm} seed ${seed}: ${step} steps, ${last.flops.toExponential(3)} FLOPs, ${seconds.toFixed(1)} s, accuracy ${(100 * points[0]!.accuracy).toFixed(1)}% -> ${(100 * last.accuracy).toFixed(1)}%`);
    }
  }
  const alignment: AlignmentStats[] = [...align.entries()].filter(([, s]) => s.chunks > 0).map(([arm, s]) => ({
    arm, chunks: s.chunks, oneToOneShare: s.oneToOne / s.chunks, maskedShare: s.studentTokens ? s.masked / s.studentTokens : 0,
    meanStudentPerChunk: s.studentTokens / s.chunks, meanTeacherPerChunk: s.teacherTokens / s.chunks,
  }));
  const report: ExperimentReport = {
    title: 'xopd: cross-tokenizer OPD against SFT at equal compute',
    command: o.command, machine: machine(), date: new Date().toISOString(), baseline: 'sft',
    runs: runs.sort((a, b) => ARMS.indexOf(a.arm as Arm) - ARMS.indexOf(b.arm as Arm) || a.seed - b.seed),
    alignment,
    notes: [
      `student ${path.basename(o.studentDir)}, teacher ${path.basename(o.teacherDir)}; budget ${budget.toExponential(3)} FLOPs per run; batch ${o.batchSize}, lr ${o.lr}, top-k ${o.topK}, responses up to ${o.maxTokens} tokens; accuracy on ${o.evalN} test problems (greedy), every ${o.evalEvery} steps`,
      'FLOPs: 2 per multiply-add of weights, causal attention and the logits layer, counted from model shapes; backward = 2x forward; SFT is charged for the teacher sampling its answers, OPD for student sampling and teacher scoring',
      'sft: sequence-level KD on teacher samples (temperature 1); chunk-pg: the paper\'s chunk credit; span-fkl / span-rkl / span-jsd: span projection of the teacher top-k with forward KL / reverse KL / JSD(0.5); uld: sorted-probability L1 at 1:1 chunks',
    ],
  };
  const reportFile = writeReport(o.outDir, report);
  return { report, reportFile, budget };
}
