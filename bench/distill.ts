/**
 * The OPD step on the shipped models: where a step's time goes (student, teacher, alignment, loss)
 * for chunk-pg and span-kl, with the teacher in process and served over loopback HTTP (the vLLM
 * protocol); and the served teacher's scoring throughput against the in-process one, same data.
 */
import { Distiller } from '../src/train/distiller.js';
import type { DistillOptions } from '../src/train/options.js';
import { DEFAULT_STUDENT, DEFAULT_TEACHER } from '../src/run/job.js';
import { arithmeticDistillTask } from '../src/tasks/distill-task.js';
import { serveTeacher } from '../src/serve/teacher-server.js';
import { VllmTeacher } from '../src/serve/vllm-teacher.js';
import type { ScoreRequest, Teacher } from '../src/model/roles.js';
import { TokenizerBridge } from '../src/align/bridge.js';
import { Model } from '../src/model/model.js';
import { timeItAsync, type Row, type Suite } from './harness.js';

export const distillSuite: Suite = {
  name: 'distill',
  summary: 'OPD step time breakdown (chunk-pg, span-kl; teacher in process vs served on loopback) and served-teacher scoring throughput',
  async run({ quick }) {
    const steps = quick ? 3 : 10;
    const batchSize = 16;
    const task = arithmeticDistillTask();
    const teacherModel = Model.load(DEFAULT_TEACHER);
    const server = await serveTeacher(teacherModel, { modelName: 'teacher' });
    const served = new VllmTeacher({ baseUrls: server.url, tokenizer: teacherModel.tokenizer, retries: 0 });
    const rows: Row[] = [];
    try {
      for (const loss of ['chunk-pg', 'span-kl'] as const) {
        for (const [where, teacher] of [['in-process', teacherModel], ['served', served]] as Array<[string, Teacher]>) {
          const student = Model.load(DEFAULT_STUDENT);
          const opts: DistillOptions = { loss, batchSize, steps, evalSize: 0, seed: 1 };
          const d = new Distiller({ student, teacher, task }, opts);
          await d.step(1); // warm-up (byte tries, caches)
          const sum = { student: 0, teacher: 0, align: 0, loss: 0, total: 0 };
          let tokens = 0;
          for (let s = 2; s < 2 + steps; s++) {
            const r = await d.step(s);
            for (const k of Object.keys(sum) as Array<keyof typeof sum>) sum[k] += r.seconds[k];
            tokens += r.studentTokens;
          }
          rows.push({
            bench: 'step', loss, teacher: where, batch: batchSize, steps,
            step_ms: (sum.total / steps) * 1000, student_ms: (sum.student / steps) * 1000, teacher_ms: (sum.teacher / steps) * 1000,
            align_ms: (sum.align / steps) * 1000, loss_ms: (sum.loss / steps) * 1000, student_tok_s: tokens / sum.total,
          });
        }
      }
      // Scoring throughput on the same requests: student rollouts retokenized to the teacher.
      const student = Model.load(DEFAULT_STUDENT);
      const bridge = new TokenizerBridge(student.tokenizer, teacherModel.tokenizer);
      const prompts = task.trainPrompts(64, 3).map((m) => bridge.renderPrompts(m));
      const rollouts = await student.generate(prompts.map((p) => p.student), { maxTokens: 48, seed: 1 });
      const requests: ScoreRequest[] = rollouts.map((r, i) => {
        const resp = bridge.retokenize(r.ids);
        const ids = new Int32Array(prompts[i]!.teacher.length + resp.length);
        ids.set(prompts[i]!.teacher);
        ids.set(resp, prompts[i]!.teacher.length);
        return { ids, start: prompts[i]!.teacher.length };
      });
      // A served teacher scores every prompt position; count those (what the server computes).
      const positions = requests.reduce((a, r) => a + r.ids.length - 1, 0);
      for (const k of [0, 8, 20]) {
        const tLocal = await timeItAsync(async () => { await teacherModel.score(requests.map((r) => ({ ids: r.ids, start: 1 })), { topK: k }); }, quick ? 0.3 : 1, 2);
        const tServed = await timeItAsync(async () => { await served.score(requests, { topK: k }); }, quick ? 0.3 : 1, 2);
        rows.push({ bench: 'score', loss: null, teacher: `k=${k}`, batch: requests.length, positions, local_pos_s: positions / tLocal, served_pos_s: positions / tServed, served_vs_local: tLocal / tServed });
      }
    } finally {
      await served.close();
      await server.close();
    }
    return { suite: 'distill', rows, notes: ['step times are means over the measured steps after one warm-up step', 'score: in-process scores the same positions the server does (from position 1)'] };
  },
};
