/**
 * Loss kernels: effective bandwidth of the fused forward+backward divergence (and policy gradient)
 * over the logits, against the float64 reference, an unfused two-kernel baseline (softmax written
 * out, then a gradient pass) and this machine's memcpy bandwidth, all measured in the same run.
 * At V = 128,256 (Llama 3) the divergence also runs on targets with prefix groups (DESIGN 5,
 * revision 2): real Llama 3 groups, projected from the shipped Qwen 3 teacher's top-8 on the
 * task's responses, timed in the same rounds as the single-id targets and memcpy.
 *
 * Effective GB/s = (logits bytes read once + gradient bytes written once) / time: the least traffic
 * any implementation needs. memcpy GB/s = (bytes read + bytes written) / time of a parallel memcpy
 * of the same size, so the ratio of the two is the share of copy bandwidth the kernel reaches.
 */
import os from 'node:os';
import { info } from '../src/core/native.js';
import { devAddon, setThreads } from '../dev/addon.js';
import { sparseDivergence } from '../src/loss/sparse-divergence.js';
import { policyGradientLoss } from '../src/loss/policy-gradient.js';
import { rng } from '../dev/corpus.js';
import { concatTargets, type SparseTargets } from '../src/project/targets.js';
import { spanProjection } from '../src/project/span-projection.js';
import { TokenizerBridge } from '../src/align/bridge.js';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { Model } from '../src/model/model.js';
import { packageRoot } from '../src/core/native.js';
import { generateProblems, responseIds } from '../src/tasks/arithmetic.js';
import { timeIt, type Row, type Suite } from './harness.js';
import path from 'node:path';

/** The dev addon's bench kernels (native/loss/loss_bench.*, native/dev/loss.cc). */
interface BenchNative {
  copyParallel(dst: ArrayBufferView, src: ArrayBufferView): void;
  sparseDivergenceUnfused(a: Record<string, unknown>): number;
  sparseDivergenceReference(a: Record<string, unknown>): { loss: number };
  lossCudaBench(a: { rows: number; vocab: number; dtype: 'f32' | 'bf16'; support: number; iters: number }):
    { fusedSeconds: number; unfusedSeconds: number; copySeconds: number; device: string };
}

const GB = 1e9;
/** Logits + gradient + the unfused baseline's softmax buffer stay within ~6 GB: logits <= 2 GiB. */
const MAX_LOGITS_BYTES = 2 ** 31;
const SUPPORT = 32; // target ids per row (top-k 20 over a few teacher positions, roughly)
const REFERENCE_ROWS = 4; // the float64 reference runs on a few rows; its time is scaled per row

function targetsFor(rows: number, vocab: number): SparseTargets {
  const r = rng(rows ^ vocab);
  const rowPtr = new Int32Array(rows + 1), ids = new Int32Array(rows * SUPPORT), probs = new Float32Array(rows * SUPPORT).fill(0.8 / SUPPORT);
  for (let j = 0; j < rows; j++) {
    rowPtr[j + 1] = (j + 1) * SUPPORT;
    const seen = new Set<number>();
    for (let k = 0; k < SUPPORT; k++) {
      let id;
      do id = Math.floor(r() * vocab); while (seen.has(id));
      seen.add(id);
      ids[j * SUPPORT + k] = id;
    }
  }
  return { rowPtr, ids, probs, tail: new Float32Array(rows).fill(0.2) };
}

/** The vocabulary the grouped case runs at: Llama 3's. */
const GROUPED_VOCAB = 128256;
const GROUPED_PROBLEMS = 32;

/**
 * Revision-2 targets over the full Llama 3 vocabulary from real data: the task's responses (train
 * split) as the Llama 3 student writes them, scored by the shipped Qwen 3 teacher (top-8),
 * projected with prefix groups; rows repeated to `rows`. Also what the groups hold.
 */
function groupedTargetsFor(rows: number): { targets: SparseTargets; stats: string } {
  const student = Tokenizer.load('llama3');
  const teacher = Model.load(path.join(packageRoot, 'models', 'teacher-qwen3'));
  if (student.vocabSize !== GROUPED_VOCAB) throw new Error(`llama3 has ${student.vocabSize} ids, expected ${GROUPED_VOCAB}`);
  const bridge = new TokenizerBridge(student, teacher.tokenizer);
  const parts = generateProblems({ split: 'train', count: GROUPED_PROBLEMS, seed: 3 }).map((p) => {
    const prompt = bridge.renderPrompts([{ role: 'user', content: p.question }]).teacher;
    const s = responseIds(student, p), t = bridge.retokenize(s);
    const ids = new Int32Array(prompt.length + t.length);
    ids.set(prompt);
    ids.set(t, prompt.length);
    const sc = teacher.scoreSync([{ ids, start: prompt.length }], { topK: 8 })[0]!;
    return spanProjection(bridge, bridge.align(s, t), s, { ids: t, logprobs: sc.logprobs, topkIds: sc.topkIds, topkLogprobs: sc.topkLogprobs, k: sc.k });
  });
  const base = concatTargets(parts), n = base.tail.length, g = base.groups!;
  let rowsWithGroups = 0, members = 0, widest = 0;
  for (let j = 0; j < n; j++) {
    const r = base.row(j);
    let m = 0;
    r.buckets.forEach((b, k) => { if (base.ids[base.rowPtr[j]! + k] === -1) { m += b.ids.length; widest = Math.max(widest, b.ids.length); } });
    rowsWithGroups += m > 0 ? 1 : 0;
    members += m;
  }
  // rows repeated to the row count asked for
  const rowPtr = new Int32Array(rows + 1), tail = new Float32Array(rows);
  let nnz = 0;
  for (let r = 0; r < rows; r++) nnz += base.rowPtr[(r % n) + 1]! - base.rowPtr[r % n]!;
  const ids = new Int32Array(nnz), probs = new Float32Array(nnz), lo = new Int32Array(nnz), hi = new Int32Array(nnz);
  for (let r = 0, at = 0; r < rows; r++) {
    const j = r % n, a = base.rowPtr[j]!, e = base.rowPtr[j + 1]!;
    ids.set(base.ids.subarray(a, e), at);
    probs.set(base.probs.subarray(a, e), at);
    lo.set(g.lo.subarray(a, e), at);
    hi.set(g.hi.subarray(a, e), at);
    tail[r] = base.tail[j]!;
    at += e - a;
    rowPtr[r + 1] = at;
  }
  const stats = `grouped targets: ${n} rows of ${GROUPED_PROBLEMS} task responses (llama3 student, shipped qwen3 teacher top-8, projection 'prefix'), ` +
    `repeated: ${(100 * rowsWithGroups / n).toFixed(1)}% of rows hold a group, ${(members / n).toFixed(0)} group ids per row on average, the widest group ${widest} ids`;
  return { targets: { rowPtr, ids, probs, tail, groups: { lo, hi, byteOrder: g.byteOrder } }, stats };
}

function fillLogits(x: Float32Array, seed: number): void {
  const r = rng(seed);
  // A cheap pattern with the spread of real logits (filling GiBs with rng() would take longer than the bench).
  const pattern = new Float32Array(4099);
  for (let i = 0; i < pattern.length; i++) pattern[i] = (r() - 0.5) * 8 + (r() < 0.01 ? 10 : 0);
  for (let i = 0; i < x.length; i += pattern.length) x.set(pattern.subarray(0, Math.min(pattern.length, x.length - i)), i);
}

/**
 * Median wall time and median process CPU time (user + system, all threads) per call of each fn,
 * in seconds. The fns take turns, one call each per round, so background load on a shared machine
 * falls on all of them alike and their ratios stay comparable.
 */
function timeRounds(fns: Array<() => void>, minSeconds: number, min = 3): Array<{ wall: number; cpu: number }> {
  for (const fn of fns) fn();
  const wall: number[][] = fns.map(() => []), cpu: number[][] = fns.map(() => []);
  const start = performance.now();
  while (wall[0]!.length < min || (performance.now() - start) / 1000 < minSeconds * fns.length) {
    fns.forEach((fn, i) => {
      const c = process.cpuUsage(), t = performance.now();
      fn();
      wall[i]!.push((performance.now() - t) / 1000);
      const d = process.cpuUsage(c);
      cpu[i]!.push((d.user + d.system) / 1e6);
    });
    if (wall[0]!.length > 200) break;
  }
  const med = (x: number[]) => x.sort((a, b) => a - b)[Math.floor(x.length / 2)]!;
  return fns.map((_, i) => ({ wall: med(wall[i]!), cpu: med(cpu[i]!) }));
}

function measureCpu(n: BenchNative, vocab: number, R: number, threads: number, quick: boolean, grouped?: SparseTargets): Row {
  const logits = new Float32Array(R * vocab);
  fillLogits(logits, vocab + R);
  const grad = new Float32Array(R * vocab);
  const targets = targetsFor(R, vocab);
  const bytes = logits.byteLength * 2;
  const minS = quick ? 0.3 : 0.5;
  const mask = new Uint8Array(R).fill(1);
  const actions = targets.ids.filter((_, k) => k % SUPPORT === 0);
  const adv = new Float32Array(R).fill(0.5);
  const [copy, fused, pg, group] = timeRounds([
    () => n.copyParallel(grad, logits),
    () => { sparseDivergence(logits, { rows: R, vocab }, targets, { divergence: 'forward-kl', device: 'cpu', out: grad }); },
    () => { policyGradientLoss(logits, { rows: R, vocab }, actions, adv, mask, { device: 'cpu', out: grad }); },
    ...(grouped ? [() => { sparseDivergence(logits, { rows: R, vocab }, grouped, { divergence: 'forward-kl', device: 'cpu', out: grad }); }] : []),
  ], minS);
  const tCopy = copy!.wall, tFused = fused!.wall, tPg = pg!.wall;
  let softmax: Float32Array | undefined = new Float32Array(R * vocab);
  const tUnfused = timeIt(() => {
    n.sparseDivergenceUnfused({ logits, rows: R, vocab, rowPtr: targets.rowPtr, ids: targets.ids, probs: targets.probs, tail: targets.tail, softmax, out: grad });
  }, minS, 2);
  softmax = undefined;
  const k = REFERENCE_ROWS;
  const refArgs = {
    logits: Float64Array.from(logits.subarray(0, k * vocab)), rows: k, vocab, rowPtr: targets.rowPtr.subarray(0, k + 1),
    ids: targets.ids, probs: Float64Array.from(targets.probs), tail: Float64Array.from(targets.tail.subarray(0, k)),
    mask: new Uint8Array(k).fill(1), divergence: 'forward-kl', beta: 0.5, temperature: 1, epsilon: 1e-8,
  };
  const tRef = (timeIt(() => { n.sparseDivergenceReference(refArgs); }, 0.2, 2) * R) / k;
  const memcpyGBs = bytes / tCopy / GB;
  const fusedGBs = bytes / tFused / GB;
  console.log(`  cpu vocab ${vocab} rows ${R} threads ${threads}: fused ${fusedGBs.toFixed(2)} GB/s, memcpy ${memcpyGBs.toFixed(2)} GB/s`);
  const groupedGBs = group ? bytes / group.wall / GB : null;
  if (groupedGBs !== null) console.log(`  cpu vocab ${vocab} rows ${R} threads ${threads}: grouped ${groupedGBs.toFixed(2)} GB/s`);
  return {
    device: 'cpu', threads, dtype: 'f32', vocab, rows: R, memcpy_GBs: memcpyGBs, fused_kl_GBs: fusedGBs,
    fused_vs_memcpy: fusedGBs / memcpyGBs,
    grouped_kl_GBs: groupedGBs, grouped_vs_memcpy: groupedGBs === null ? null : groupedGBs / memcpyGBs,
    grouped_vs_memcpy_cpu: group ? copy!.cpu / group.cpu : null,
    // per second of CPU time actually received: what dedicated cores give (meaningful with threads = 1)
    memcpy_cpu_GBs: bytes / copy!.cpu / GB, fused_cpu_GBs: bytes / fused!.cpu / GB, fused_vs_memcpy_cpu: copy!.cpu / fused!.cpu, pg_GBs: bytes / tPg / GB, pg_vs_memcpy: bytes / tPg / GB / memcpyGBs,
    unfused_GBs: bytes / tUnfused / GB, fused_vs_unfused: tUnfused / tFused, reference_GBs: bytes / tRef / GB,
    fused_vs_reference: tRef / tFused, fused_ms: tFused * 1e3,
  };
}

export const lossSuite: Suite = {
  name: 'loss',
  summary: 'fused divergence / policy-gradient GB/s vs reference, unfused baseline and memcpy (CPU; CUDA when present)',
  async run({ quick }) {
    const n = devAddon<BenchNative>();
    const vocabs = quick ? [32000, GROUPED_VOCAB] : [32000, GROUPED_VOCAB, 151936, 262144];
    const rowCounts = quick ? [1024] : [1024, 2048, 4096, 8192];
    const rows: Row[] = [];
    const threads = info().threads;
    const notes: string[] = [
      `CPU threads: ${threads}; ${SUPPORT} target ids per row; fp32 logits; load average at start ${os.loadavg().map((x) => x.toFixed(2)).join(' ')} ` +
        `(other processes on the cores lower the compute-bound kernel more than memcpy)`,
      `rows with threads = 1 (first row count of each vocab) compare one core of kernel to one core of memcpy; ` +
        `*_cpu_GBs divide by the process CPU time received instead of wall time (what a dedicated core gives)`,
      `row counts are capped so logits <= 2 GiB (logits + gradient + the baseline's softmax fit in ~6 GB): ` +
        vocabs.map((v) => `${v}: <= ${Math.floor(MAX_LOGITS_BYTES / (4 * v))} rows`).join(', '),
      `effective GB/s = (logits + gradient bytes) / time; memcpy GB/s = 2 * bytes / time of a parallel memcpy of the logits; ` +
        `memcpy, fused divergence (single-id targets, ${SUPPORT} ids per row; at V = ${GROUPED_VOCAB} also grouped targets) and policy gradient take turns call by call (medians), so their ratios share the machine's load; ` +
        `reference = float64 C++ on ${REFERENCE_ROWS} rows, scaled per row`,
    ];
    for (const vocab of vocabs) {
      for (const R of rowCounts) {
        if (R * vocab * 4 > MAX_LOGITS_BYTES) continue;
        let grouped: SparseTargets | undefined;
        if (vocab === GROUPED_VOCAB) {
          const g = groupedTargetsFor(R);
          grouped = g.targets;
          if (R === rowCounts[0]) notes.push(g.stats);
        }
        for (const t of R === rowCounts[0] && threads > 1 ? [threads, 1] : [threads]) {
          setThreads(t);
          rows.push(measureCpu(n, vocab, R, t, quick, grouped));
        }
        setThreads(threads);
      }
    }
    const cuda = info().cuda;
    if (cuda.devices > 0) {
      for (const vocab of vocabs) {
        for (const R of quick ? [1024, 4096] : rowCounts) {
          for (const dtype of ['f32', 'bf16'] as const) {
            const t = n.lossCudaBench({ rows: R, vocab, dtype, support: SUPPORT, iters: quick ? 5 : 10 });
            const bytes = R * vocab * (dtype === 'f32' ? 4 : 2) * 2;
            const copyGBs = bytes / t.copySeconds / GB;
            rows.push({
              device: `cuda ${t.device}`, dtype, vocab, rows: R, memcpy_GBs: copyGBs, fused_kl_GBs: bytes / t.fusedSeconds / GB,
              fused_vs_memcpy: t.copySeconds / t.fusedSeconds, unfused_GBs: bytes / t.unfusedSeconds / GB,
              fused_vs_unfused: t.unfusedSeconds / t.fusedSeconds, fused_ms: t.fusedSeconds * 1e3,
            });
          }
        }
      }
      notes.push('CUDA rows: device-resident data (no host transfers), timed with CUDA events; memcpy = cudaMemcpy device-to-device of the logits');
    } else {
      notes.push(`CUDA: not measured (${cuda.compiled ? 'compiled, no device' : 'not compiled'})`);
    }
    return { suite: 'loss', rows, notes };
  },
};
