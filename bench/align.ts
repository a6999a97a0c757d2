/**
 * Alignment throughput on one real pair (qwen3 -> llama3) and one data set (mixed documents, the
 * teacher ids being the retokenized student responses):
 *   - native alignBatch, all threads and one thread (student tokens/s);
 *   - the decode-and-compare oracle (test/helpers/dpca-oracle.ts) on the same data, and the ratio;
 *   - retokenization (student bytes -> text -> teacher encode), and the whole retokenize + align
 *     pipeline, with where its time goes.
 */
import os from 'node:os';
import { TokenizerBridge, Tokenizer, info, setThreads, alignTables } from '../src/index.js';
import { addon } from '../src/core/native.js';
import type { AlignNative } from '../src/align/aligner.js';
import { mixedDocuments } from '../dev/corpus.js';
import { dpcaOracle } from '../test/helpers/dpca-oracle.js';
import { timeIt, type Row, type Suite } from './harness.js';

export const alignSuite: Suite = {
  name: 'align',
  summary: 'native alignBatch vs the decode-and-compare oracle, retokenization and the whole pipeline (qwen3 -> llama3)',
  async run({ quick, args }) {
    const pairArg = args.find((a) => a.startsWith('--pair='))?.slice(7) ?? 'qwen3:llama3';
    const [sName, tName] = pairArg.split(':') as [string, string];
    const student = Tokenizer.load(sName), teacher = Tokenizer.load(tName);
    const bridge = new TokenizerBridge(student, teacher);
    const docs = mixedDocuments(quick ? 16 : 64, quick ? 4000 : 8000, 42);
    const S = docs.map((d) => student.encode(d, { addSpecialTokens: false }));
    const T = S.map((s) => bridge.retokenize(s));
    const pairs = S.map((s, k) => [s, T[k]!] as [Int32Array, Int32Array]);
    const sTokens = S.reduce((n, s) => n + s.length, 0);
    const tTokens = T.reduce((n, t) => n + t.length, 0);
    const bytes = S.reduce((n, s) => n + student.bytesOf(s).length, 0);
    const threads = info().threads;

    // alignBatch: the median call (harness), and the best of many calls, which is what an unshared
    // core gives (this bench often runs beside other jobs); the native split of the best call.
    const tAlign = timeIt(() => { bridge.alignBatch(pairs); }, 1.0);
    const best = (reps: number) => {
      let wall = Infinity, native = Infinity, output = Infinity;
      const tables = alignTables(student.table, teacher.table);
      const opts = { maxChunkTokens: 6, studentEos: student.eosIds, teacherEos: teacher.eosIds };
      for (let r = 0; r < reps; r++) {
        const w0 = performance.now();
        const o = addon<AlignNative>().alignBatch(tables, S, T, opts) as unknown as { alignSeconds: number; outputSeconds: number };
        wall = Math.min(wall, (performance.now() - w0) / 1000);
        native = Math.min(native, o.alignSeconds);
        output = Math.min(output, o.outputSeconds);
      }
      return { wall, native, output };
    };
    const bestN = best(quick ? 50 : 300);
    setThreads(1);
    const tAlign1 = timeIt(() => { bridge.alignBatch(pairs); }, 1.0);
    const best1 = best(quick ? 50 : 300);
    setThreads(threads);

    // CPU seconds per call, one thread: what a busy machine changes least (this process's CPU time,
    // not the time it waited for a core). Used for the fair oracle ratio.
    const cpuPerCall = (fn: () => void, reps: number) => {
      fn();
      const c0 = process.cpuUsage();
      for (let r = 0; r < reps; r++) fn();
      const c = process.cpuUsage(c0);
      return (c.user + c.system) / 1e6 / reps;
    };
    setThreads(1);
    const cpuAlign1 = cpuPerCall(() => { bridge.alignBatch(pairs); }, quick ? 50 : 300);
    setThreads(threads);

    // The oracle on the same pairs (the faster of two passes: it is slow), wall and CPU time.
    const decS = (ids: Int32Array) => student.decode(ids), decT = (ids: Int32Array) => teacher.decode(ids);
    let decodes = 0, tOracle = Infinity, cpuOracle = Infinity;
    for (let pass = 0; pass < 2; pass++) {
      const o0 = performance.now();
      const c0 = process.cpuUsage();
      decodes = 0;
      for (const [s, t] of pairs) decodes += dpcaOracle(s, t, decS, decT).decodes;
      const c = process.cpuUsage(c0);
      tOracle = Math.min(tOracle, (performance.now() - o0) / 1000);
      cpuOracle = Math.min(cpuOracle, (c.user + c.system) / 1e6);
    }

    // Retokenization and its parts.
    const utf8 = new TextDecoder();
    let texts: string[] = [];
    const tBytes = timeIt(() => { texts = S.map((s) => utf8.decode(student.bytesOf(s))); }, 0.5);
    const tEncode = timeIt(() => { for (const x of texts) teacher.encode(x, { addSpecialTokens: false }); }, 1.0, 2);
    const tRetok = timeIt(() => { for (const s of S) bridge.retokenize(s); }, 1.0, 2);
    const tPipe = timeIt(() => { bridge.alignBatch(S.map((s) => [s, bridge.retokenize(s)] as [Int32Array, Int32Array])); }, 1.0, 2);

    const rows: Row[] = [
      { stage: 'alignBatch (median)', threads, seconds: tAlign, student_tok_s: sTokens / tAlign, vs_oracle: tOracle / tAlign },
      { stage: 'alignBatch (best)', threads, seconds: bestN.wall, student_tok_s: sTokens / bestN.wall, vs_oracle: tOracle / bestN.wall },
      { stage: '  native align part', threads, seconds: bestN.native, student_tok_s: sTokens / bestN.native, vs_oracle: tOracle / bestN.native },
      { stage: 'alignBatch (median)', threads: 1, seconds: tAlign1, student_tok_s: sTokens / tAlign1, vs_oracle: tOracle / tAlign1 },
      { stage: 'alignBatch (best)', threads: 1, seconds: best1.wall, student_tok_s: sTokens / best1.wall, vs_oracle: tOracle / best1.wall },
      { stage: '  native align part', threads: 1, seconds: best1.native, student_tok_s: sTokens / best1.native, vs_oracle: tOracle / best1.native },
      { stage: '  output arrays part', threads: 1, seconds: best1.output, share_of_call: best1.output / best1.wall },
      { stage: 'alignBatch (CPU time)', threads: 1, seconds: cpuAlign1, student_tok_s: sTokens / cpuAlign1, vs_oracle: cpuOracle / cpuAlign1 },
      { stage: 'oracle (CPU time)', threads: 1, seconds: cpuOracle, student_tok_s: sTokens / cpuOracle, vs_oracle: 1 },
      { stage: 'oracle (decode+compare)', threads: 1, seconds: tOracle, student_tok_s: sTokens / tOracle, vs_oracle: 1 },
      { stage: 'retokenize', threads: 1, seconds: tRetok, student_tok_s: sTokens / tRetok, vs_oracle: tOracle / tRetok },
      { stage: '  bytes -> text', threads: 1, seconds: tBytes, student_tok_s: sTokens / tBytes, share_of_pipeline: tBytes / tPipe },
      { stage: '  teacher encode', threads: 1, seconds: tEncode, student_tok_s: sTokens / tEncode, share_of_pipeline: tEncode / tPipe },
      { stage: 'retokenize + align', threads, seconds: tPipe, student_tok_s: sTokens / tPipe, vs_oracle: tOracle / tPipe },
      { stage: '  align share', threads, seconds: tAlign, share_of_pipeline: tAlign / tPipe },
    ];
    return {
      suite: 'align',
      rows,
      notes: [
        `${sName} -> ${tName}: ${docs.length} responses, ${sTokens} student tokens, ${tTokens} teacher tokens, ${bytes} bytes; oracle made ${decodes} decode calls`,
        'threads 1: setThreads(1), i.e. per core; vs_oracle: oracle seconds / stage seconds on the same pairs (wall rows: vs the oracle wall time; CPU rows: vs its CPU time)',
        'best: fastest of many calls (an unshared core); native align part / output arrays part: split measured inside the addon',
        `machine load average at the end: ${os.loadavg().map((x) => x.toFixed(1)).join(' ')} on ${os.cpus().length} cores`,
        'retokenize runs in JS (TextDecoder + @huggingface/tokenizers encode); alignment is native',
      ],
    };
  },
};
