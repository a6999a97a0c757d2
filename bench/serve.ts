/**
 * `xopd serve` under load on loopback: a Llama 3 student, a Qwen 3 teacher tokenizer, and a stub
 * teacher that answers at once (its own thread), so what is measured is xopd's host work. The
 * server runs as its own process (`xopd serve`, worker threads on every core); N clients on this
 * process's event loop each send TRL-shaped requests (one sequence of 1k-4k student response
 * tokens, binary format) back to back.
 *
 * Rows:
 *   load   student response tokens/s and p50/p99 latency at concurrency 1, 8, 32 (top_logprobs 1:
 *          the teacher asked for its realised tokens), and at 8 with top_logprobs 8 (20 teacher
 *          candidates); with the Rust teacher encoder (npm tokenizers) and, where it is installed,
 *          again with --teacher-encoder js
 *   stage  where one request's time goes, every stage run on this thread on the same sequences:
 *          the profile that says which stage bounds the throughput
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';
import { mixedCorpus, rng } from '../dev/corpus.js';
import { packageRoot } from '../src/core/native.js';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { TokenizerBridge } from '../src/align/bridge.js';
import { ChunkFlags } from '../src/align/types.js';
import { spanProjection } from '../src/project/span-projection.js';
import { readCompletion } from '../src/serve/vllm-protocol.js';
import { PromptParser } from '../src/tokenizer/prompt-parse.js';
import { OpdScorer } from '../src/serve/scorer.js';
import { formatTrlResponse } from '../src/serve/trl-protocol.js';
import type { Row, Suite } from './harness.js';

const CLI = path.join(packageRoot, 'dist', 'src', 'cli', 'main.js');
const STUB = path.join(packageRoot, 'dist', 'src', 'serve', 'stub-teacher.js');

interface Sequence { prompt: number[]; response: number[] }

/** Student sequences: a chat prompt and a response of 1k-4k tokens of mixed text. */
function sequences(llama: Tokenizer, count: number): Sequence[] {
  const r = rng(7);
  const ids = llama.encode(mixedCorpus(count * 12_000, 3), { addSpecialTokens: false });
  const out: Sequence[] = [];
  let at = 0;
  for (let i = 0; i < count; i++) {
    const n = 1024 + Math.floor(r() * 3072);
    if (at + n > ids.length) at = 0;
    const prompt = llama.encode(llama.applyChatTemplate([{ role: 'user', content: `Continue the text, part ${i}.` }], { addGenerationPrompt: true }), { addSpecialTokens: false });
    out.push({ prompt: Array.from(prompt), response: Array.from(ids.subarray(at, at + n)) });
    at += n;
  }
  return out;
}

const body = (s: Sequence, topLogprobs: number) =>
  JSON.stringify({ sequences: [[...s.prompt, ...s.response]], prompt_lengths: [s.prompt.length], top_logprobs: topLogprobs, temperature: 1.0, response_format: 'binary' });

function post(agent: http.Agent, url: string, text: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(text);
  });
}

async function startStub(vocab: number): Promise<{ url: string; worker: Worker }> {
  const worker = new Worker(`
    const { parentPort, workerData } = require('node:worker_threads');
    import(workerData.stub).then(async (m) => { const s = await m.serveStubTeacher({ vocab: workerData.vocab }); parentPort.postMessage(s.url); });
  `, { eval: true, workerData: { stub: STUB, vocab } });
  const url = await new Promise<string>((resolve) => worker.once('message', resolve));
  return { url, worker };
}

async function startServe(teacherUrl: string, encoder: 'auto' | 'js'): Promise<{ url: string; stop: () => void }> {
  const proc = spawn(process.execPath, [CLI, 'serve', '--student-tokenizer', 'llama3', '--teacher-tokenizer', 'qwen3', '--teacher-url', teacherUrl,
    '--port', '0', '--quiet', '--per-worker', '8', '--queue-size', '256', '--teacher-encoder', encoder], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    proc.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    proc.once('exit', (code) => reject(new Error(`xopd serve exited with ${code}`)));
  });
  return { url, stop: () => proc.kill('SIGTERM') };
}

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;

/** Per-stage time of the request path, on this thread, for the same sequences. */
async function stages(llama: Tokenizer, qwen: Tokenizer, seqs: Sequence[], stubUrl: string): Promise<Row[]> {
  const bridge = new TokenizerBridge(llama, qwen);
  const parser = new PromptParser(llama);
  const tokens = seqs.reduce((a, s) => a + s.response.length, 0);
  const rows: Row[] = [];
  const time = (stage: string, fn: () => void) => {
    fn();  // warm-up
    const t0 = performance.now();
    fn();
    const s = (performance.now() - t0) / 1000;
    rows.push({ bench: 'stage', stage, student_tok_s: Math.round(tokens / s), us_per_student_token: (s * 1e6) / tokens });
  };
  const bodies = seqs.map((s) => body(s, 1));
  time('parse the request JSON', () => { for (const b of bodies) JSON.parse(b); });
  time('recover the prompt (uncached)', () => { for (const s of seqs) parser.parse(Int32Array.from(s.prompt)); });
  const resp = seqs.map((s) => Int32Array.from(s.response));
  let teacherIds: Int32Array[] = [];
  time('retokenize (teacher encode, JS)', () => { teacherIds = resp.map((r) => bridge.retokenize(r)); });
  // The encoder alone, JavaScript and Rust in turns (the median of three each, so load changes fall on both).
  const texts = resp.map((r) => new TextDecoder().decode(llama.bytesOf(r)));
  const js: number[] = [], rs: number[] = [];
  let rust: { encode(t: string, p: null, o: object): Promise<unknown> } | undefined;
  try {
    const { Tokenizer: Rust } = createRequire(import.meta.url)('tokenizers') as { Tokenizer: { fromFile(f: string): NonNullable<typeof rust> } };
    rust = Rust.fromFile(path.join(qwen.dir!, 'tokenizer.json'));
  } catch {
    rows.push({ bench: 'stage', stage: 'teacher encode (npm tokenizers): not installed', student_tok_s: null, us_per_student_token: null });
  }
  for (let rep = 0; rep < 4; rep++) {
    let t0 = performance.now();
    for (const t of texts) qwen.encode(t, { addSpecialTokens: false });
    if (rep > 0) js.push(performance.now() - t0);
    if (!rust) continue;
    t0 = performance.now();
    for (const t of texts) await rust.encode(t, null, { addSpecialTokens: false });  // one at a time: the cost on one thread
    if (rep > 0) rs.push(performance.now() - t0);
  }
  const med = (a: number[]) => a.sort((x, y) => x - y)[a.length >> 1]!;
  const row = (stage: string, ms: number) => rows.push({ bench: 'stage', stage, student_tok_s: Math.round(tokens / (ms / 1000)), us_per_student_token: (ms * 1000) / tokens });
  row('teacher encode alone (JS, @huggingface/tokenizers)', med(js));
  if (rust) row('teacher encode alone (Rust, npm tokenizers)', med(rs));
  // The teacher exchange: the request body, and reading the stub's prompt_logprobs answer.
  const scorer = new OpdScorer(llama, qwen, { tokenizer: qwen, score: async () => [] });
  const prompts = seqs.map((s) => scorer.teacherPrompt({ promptIds: Int32Array.from(s.prompt) }));
  const full = teacherIds.map((t, i) => { const ids = new Int32Array(prompts[i]!.length + t.length); ids.set(prompts[i]!); ids.set(t, prompts[i]!.length); return ids; });
  // One completion request per sequence to the stub teacher, the answer's text back.
  const askStub = (ids: Int32Array, promptLogprobs: number) => new Promise<string>((resolve, reject) => {
    const text = `{"model":"stub-teacher","prompt":[${ids.join(',')}],"max_tokens":1,"temperature":0,"prompt_logprobs":${promptLogprobs}}`;
    const req = http.request(`${stubUrl}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    });
    req.on('error', reject);
    req.end(text);
  });
  const answers = await Promise.all(full.map((ids) => askStub(ids, 0)));
  time('teacher request body', () => { for (const ids of full) `{"prompt":[${ids.join(',')}],"prompt_logprobs":0}`.length; });
  const answers20 = await Promise.all(full.map((ids) => askStub(ids, 20)));
  let scores20 = full.map((ids, i) => readCompletion(JSON.parse(answers20[i]!), ids, prompts[i]!.length, 20));
  time('read the teacher answer (JSON), 20 candidates', () => { scores20 = full.map((ids, i) => readCompletion(JSON.parse(answers20[i]!), ids, prompts[i]!.length, 20)); });
  let scores = full.map((ids, i) => readCompletion(JSON.parse(answers[i]!), ids, prompts[i]!.length, 0));
  time('read the teacher answer (JSON)', () => { scores = full.map((ids, i) => readCompletion(JSON.parse(answers[i]!), ids, prompts[i]!.length, 0)); });
  let aligned = bridge.alignBatch(resp.map((r, i) => [r, teacherIds[i]!]));
  time('align', () => { aligned = bridge.alignBatch(resp.map((r, i) => [r, teacherIds[i]!])); });
  let targets = resp.map(() => undefined as unknown as ReturnType<typeof spanProjection>);
  time('span projection', () => {
    targets = resp.map((r, i) => spanProjection(bridge, aligned[i]!, r, { ids: teacherIds[i]!, logprobs: scores[i]!.logprobs, topkIds: scores[i]!.topkIds, topkLogprobs: scores[i]!.topkLogprobs, k: 0 }, { includeFlags: ChunkFlags.OVERSIZE }));
  });
  time('span projection, 20 candidates', () => {
    resp.forEach((r, i) => spanProjection(bridge, aligned[i]!, r, { ids: teacherIds[i]!, logprobs: scores20[i]!.logprobs, topkIds: scores20[i]!.topkIds, topkLogprobs: scores20[i]!.topkLogprobs, k: 20 }, { includeFlags: ChunkFlags.OVERSIZE }));
  });
  const scored = resp.map((r, i) => {
    const logprob = new Float32Array(r.length).fill(NaN);
    for (let j = 0; j < r.length; j++) for (let e = targets[i]!.rowPtr[j]!; e < targets[i]!.rowPtr[j + 1]!; e++) if (targets[i]!.ids[e] === r[j]) logprob[j] = Math.log(targets[i]!.probs[e]!);
    return { responseIds: r, teacherIds: teacherIds[i]!, teacherCut: 0, teacherPromptLength: prompts[i]!.length, alignment: aligned[i]!, teacher: scores[i]!, targets: targets[i]!, logprob, mask: new Uint8Array(r.length) };
  });
  time('format the answer (binary)', () => { for (const s of scored) formatTrlResponse([s], 1, 'binary'); });
  return rows;
}

export const serveSuite: Suite = {
  name: 'serve',
  summary: 'xopd serve on loopback with an instant stub teacher: student tokens/s and p50/p99 latency at concurrency 1, 8, 32; per-stage profile',
  async run({ quick }) {
    const llama = Tokenizer.load('llama3');
    const qwen = Tokenizer.load('qwen3');
    const seqs = sequences(llama, quick ? 24 : 64);
    const stub = await startStub(qwen.vocabSize);
    const rows: Row[] = [];
    const seconds = quick ? 3 : 10;
    const rustPresent = (() => { try { createRequire(import.meta.url).resolve('tokenizers'); return true; } catch { return false; } })();
    // Both encoders' servers run side by side and take turns run by run, so a change in the
    // machine's load falls on both alike.
    const encoders: Array<'auto' | 'js'> = rustPresent ? ['auto', 'js'] : ['auto'];
    const servers: Array<{ url: string; stop: () => void }> = [];
    try {
      for (const e of encoders) servers.push(await startServe(stub.url, e));
      for (const [concurrency, topLogprobs] of [[1, 1], [8, 1], [32, 1], [8, 8]] as const) {
        for (let e = 0; e < encoders.length; e++) {
          if (topLogprobs > 1 && encoders[e] === 'js') continue;  // candidates: the encoder is not what bounds it
          const encoderName = encoders[e] === 'js' || !rustPresent ? 'js' : 'rust';
          const bodies = seqs.map((s) => body(s, topLogprobs));
          const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
          const url = `${servers[e]!.url}/get_sequence_logprobs/`;
          for (let i = 0; i < Math.min(concurrency, bodies.length); i++) await post(agent, url, bodies[i]!);  // warm-up (prompt caches, tries)
          const latencies: number[] = [];
          let tokens = 0, next = 0, failed = 0;
          const t0 = performance.now();
          const until = t0 + seconds * 1000;
          await Promise.all(Array.from({ length: concurrency }, async () => {
            while (performance.now() < until) {
              const i = next++ % bodies.length;
              const t = performance.now();
              const status = await post(agent, url, bodies[i]!);
              latencies.push(performance.now() - t);
              if (status === 200) tokens += seqs[i]!.response.length;
              else failed++;
            }
          }));
          const elapsed = (performance.now() - t0) / 1000;
          agent.destroy();
          latencies.sort((x, y) => x - y);
          rows.push({ bench: 'load', encoder: encoderName, concurrency, top_logprobs: topLogprobs, requests: latencies.length, failed, student_tok_s: Math.round(tokens / elapsed),
            p50_ms: quantile(latencies, 0.5), p99_ms: quantile(latencies, 0.99) });
        }
      }
      rows.push(...await stages(llama, qwen, seqs.slice(0, quick ? 8 : 24), stub.url));
    } finally {
      for (const sv of servers) sv.stop();
      await stub.worker.terminate();
    }
    return {
      suite: 'serve', rows,
      notes: [
        `one sequence per request, responses of 1024-4095 Llama 3 tokens of mixed text (mean ${Math.round(seqs.reduce((a, s) => a + s.response.length, 0) / seqs.length)}); load rows run ${seconds} s each after a warm-up`,
        'everything shares this machine: the xopd serve process (main thread + one worker per core), the stub teacher thread, and the clients',
        'stage rows: each stage alone on one thread over the same sequences; the slowest stage bounds a worker',
      ],
    };
  },
};
