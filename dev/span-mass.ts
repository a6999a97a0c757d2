/**
 * Where the span-kl targets put the teacher's mass, and where the student's is: a measurement for
 * the distillation trials (README, "Distillation"). For one student (a model folder) on its own
 * samples of the task's training prompts, scored by the teacher (top-k) and projected (DESIGN 5),
 * every unmasked row's buckets are split into kinds and the teacher mass q, the student mass p and
 * the forward-KL term q log(q / p) are summed per kind:
 *   sampled      the single id the student sampled (s_j)
 *   alternative  every other single id (first(x) of a path leaving the sampled text)
 *   group        prefix groups (revision 2)
 *   other        every id in no bucket, against the tail r_j
 * and per row class (the student token a digit string inside a number of several student tokens,
 * any other digit string, a word or punctuation, the end of turn). It also counts what the student
 * samples: number tokens shorter than Llama 3 cuts the number (non-canonical); and at rows whose
 * sampled token is a 3-digit piece, where the student's mass on 1- and 2-digit tokens sits (single
 * ids, groups, other) against the targets' mass on single 1- and 2-digit ids.
 *
 *   node dist/dev/span-mass.js --student DIR [--teacher DIR] [--prompts 128] [--seed 7] [--projection prefix|first]
 */
import path from 'node:path';
import { Model } from '../src/model/model.js';
import { TokenizerBridge } from '../src/align/bridge.js';
import { spanProjection, type Projection } from '../src/project/span-projection.js';
import { generateProblems } from '../src/tasks/arithmetic.js';
import { packageRoot } from '../src/core/native.js';
import { MAX_RESPONSE_TOKENS } from '../src/tasks/arithmetic.js';

type Kind = 'sampled' | 'alternative' | 'group' | 'other';
type RowClass = 'number piece' | 'number' | 'text' | 'end of turn';

interface Sums { q: number; p: number; fkl: number; n: number }
const zero = (): Sums => ({ q: 0, p: 0, fkl: 0, n: 0 });

function arg(name: string, dflt?: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
}

async function main(): Promise<void> {
  const studentDir = arg('student', path.join(packageRoot, 'models', 'student-llama3'))!;
  const teacherDir = arg('teacher', path.join(packageRoot, 'models', 'teacher-qwen3'))!;
  const prompts = Number(arg('prompts', '128'));
  const seed = Number(arg('seed', '7'));
  const projection = (arg('projection', 'prefix') as Projection);
  const student = Model.load(studentDir), teacher = Model.load(teacherDir);
  const bridge = new TokenizerBridge(student.tokenizer, teacher.tokenizer);
  const tok = student.tokenizer;
  const problems = generateProblems({ split: 'train', count: prompts, seed });
  const rendered = problems.map((p) => bridge.renderPrompts([{ role: 'user', content: p.question }]));
  const rollouts = student.generateSync(rendered.map((r) => r.student), { maxTokens: MAX_RESPONSE_TOKENS, temperature: 1, seed });
  const byKind: Record<Kind, Sums> = { sampled: zero(), alternative: zero(), group: zero(), other: zero() };
  const byClass: Record<RowClass, Sums & { rows: number }> = {
    'number piece': { ...zero(), rows: 0 }, number: { ...zero(), rows: 0 }, text: { ...zero(), rows: 0 }, 'end of turn': { ...zero(), rows: 0 },
  };
  let rows = 0, numberTokens = 0, shortNumberTokens = 0, chunks = 0, oneToOne = 0;
  const isDigits = (id: number) => /^[0-9]+$/.test(tok.decode(Int32Array.of(id)));
  // rows whose sampled token is a 3-digit piece: mass on 1- and 2-digit tokens
  const short = { rows: 0, pSingle: 0, pGroup: 0, pOther: 0, qSingle: 0, qGroup: 0, pGroupAll: 0 };
  const shortCol = new Uint8Array(student.vocabIds.length);
  student.vocabIds.forEach((id, c) => { const x = tok.decode(Int32Array.of(id)); shortCol[c] = /^[0-9]{1,2}$/.test(x) ? 1 : 0; });
  const eot = tok.endOfTurnId;
  for (let i = 0; i < rollouts.length; i++) {
    const s = rollouts[i]!.ids;
    if (s.length === 0) continue;
    const t = bridge.retokenize(s);
    const ids = new Int32Array(rendered[i]!.teacher.length + t.length);
    ids.set(rendered[i]!.teacher);
    ids.set(t, rendered[i]!.teacher.length);
    const sc = teacher.scoreSync([{ ids, start: rendered[i]!.teacher.length }], { topK: 8 })[0]!;
    const a = bridge.align(s, t);
    for (let c = 0; c < a.chunkCount; c++) {
      chunks++;
      if (a.studentEnd[c]! - a.studentStart[c]! === 1 && a.teacherEnd[c]! - a.teacherStart[c]! === 1) oneToOne++;
    }
    const q = spanProjection(bridge, a, s, { ids: t, logprobs: sc.logprobs, topkIds: sc.topkIds, topkLogprobs: sc.topkLogprobs, k: sc.k },
      { studentVocab: student.vocabIds, projection });
    const f = student.forwardSync([{ prompt: rendered[i]!.student, response: s }]);
    const V = f.vocab;
    const col = new Map<number, number>();
    student.vocabIds.forEach((id, c) => col.set(id, c));
    // A number the student cuts into several tokens: its digit tokens other than the last.
    for (let j = 0; j < s.length; j++) {
      if (!isDigits(s[j]!)) continue;
      numberTokens++;
      const len = tok.decode(Int32Array.of(s[j]!)).length;
      const next = j + 1 < s.length && isDigits(s[j + 1]!);
      if (len < 3 && next) shortNumberTokens++;  // Llama 3 cuts digit runs into 3-digit pieces from the left
    }
    for (let j = 0; j < s.length; j++) {
      if (!q.mask[j]) continue;
      rows++;
      const z = f.logits.subarray(j * V, (j + 1) * V);
      let mx = -Infinity;
      for (const v of z) mx = Math.max(mx, v);
      const p = new Float64Array(V);
      let sum = 0;
      for (let v = 0; v < V; v++) sum += p[v] = Math.exp(z[v]! - mx);
      for (let v = 0; v < V; v++) p[v]! /= sum;
      const row = q.row(j);
      const sampledCol = col.get(s[j]!)!;
      const cls: RowClass = s[j] === eot ? 'end of turn'
        : isDigits(s[j]!) ? (a.studentEnd[a.studentChunk[j]!]! - a.studentStart[a.studentChunk[j]!]! > 1 || a.teacherEnd[a.studentChunk[j]!]! - a.teacherStart[a.studentChunk[j]!]! > 1 ? 'number piece' : 'number')
          : 'text';
      const inBucket = new Set<number>();
      const threeDigits = /^[0-9]{3}$/.test(tok.decode(Int32Array.of(s[j]!)));
      if (threeDigits) {
        short.rows++;
        row.buckets.forEach((b, k) => {
          const group = q.ids[q.rowPtr[j]! + k] === -1;
          const ps = b.ids.reduce((acc, v) => acc + (shortCol[v] ? p[v]! : 0), 0);
          if (group) { short.pGroup += ps; short.qGroup += b.q; short.pGroupAll += b.ids.reduce((acc, v) => acc + p[v]!, 0); }
          else { short.pSingle += ps; if (shortCol[b.ids[0]!]) short.qSingle += b.q; }
        });
      }
      const add = (kind: Kind, qb: number, pb: number) => {
        const term = qb > 0 ? qb * Math.log(qb / Math.max(pb, 1e-300)) : 0;
        byKind[kind].q += qb; byKind[kind].p += pb; byKind[kind].fkl += term; byKind[kind].n++;
        byClass[cls].q += qb; byClass[cls].p += pb; byClass[cls].fkl += term; byClass[cls].n++;
      };
      row.buckets.forEach((b, k) => {
        const pb = b.ids.reduce((acc, v) => acc + p[v]!, 0);
        b.ids.forEach((v) => inBucket.add(v));
        const kind: Kind = q.ids[q.rowPtr[j]! + k] === -1 ? 'group' : b.ids[0] === sampledCol ? 'sampled' : 'alternative';
        add(kind, b.q, pb);
      });
      let pOther = 0;
      for (let v = 0; v < V; v++) if (!inBucket.has(v)) {
        pOther += p[v]!;
        if (threeDigits && shortCol[v]) short.pOther += p[v]!;
      }
      add('other', row.tail, pOther);
      byClass[cls].rows++;
    }
  }
  const fmt = (x: number) => x.toFixed(4);
  console.log(`student ${studentDir}, ${prompts} prompts (seed ${seed}), projection ${projection}: ${rows} rows, 1:1 share ${(oneToOne / chunks).toFixed(3)}, ` +
    `number tokens cut shorter than a 3-digit piece inside a number: ${shortNumberTokens} of ${numberTokens}`);
  console.log('per bucket kind (sums over rows):   q       p       forward-KL terms');
  for (const [k, v] of Object.entries(byKind)) console.log(`  ${k.padEnd(12)} ${fmt(v.q / rows)} ${fmt(v.p / rows)} ${fmt(v.fkl / rows)}  (per row; ${v.n} buckets)`);
  const r = short.rows || 1;
  console.log(`rows sampling a 3-digit piece (${short.rows}): student mass on 1-2 digit tokens: in single-id buckets ${fmt(short.pSingle / r)}, ` +
    `in groups ${fmt(short.pGroup / r)} (of the groups' ${fmt(short.pGroupAll / r)}), in other ${fmt(short.pOther / r)}; ` +
    `targets: single 1-2 digit ids ${fmt(short.qSingle / r)}, groups ${fmt(short.qGroup / r)}`);
  console.log('per row class:                       rows  forward KL per row');
  for (const [k, v] of Object.entries(byClass)) console.log(`  ${k.padEnd(14)} ${String(v.rows).padStart(6)}  ${v.rows ? fmt(v.fkl / v.rows) : '-'}  (share of all forward KL ${(100 * v.fkl / Object.values(byClass).reduce((a, b) => a + b.fkl, 0)).toFixed(1)}%)`);
}

main().catch((e) => { console.error(e); process.exitCode = 1; });
