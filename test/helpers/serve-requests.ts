/** Request bodies and a keep-alive HTTP client for the xopd serve tests (loopback only). */
import http from 'node:http';
import { Tokenizer } from '../../src/tokenizer/tokenizer.js';
import type { ServeConfig } from '../../src/serve/handler.js';

/** A ServeConfig for a Llama 3 student and a Qwen 3 teacher served at `url`. */
export function llamaQwenConfig(url: string, over: Partial<ServeConfig> = {}): ServeConfig {
  return {
    studentTokenizer: 'llama3', teacherTokenizer: 'qwen3', teacherUrls: [url], teacherTimeoutMs: 5000, teacherRetries: 0, teacherBackoffMs: 10,
    teacherConcurrency: 8, teacherTopK: 8, maxTopLogprobs: 100, prompts: 'chat', maxChunkTokens: 6, ...over,
  };
}

/** Student (Llama 3) prompt and response ids of a small arithmetic exchange; `n` varies the numbers. */
export function llamaSequence(llama: Tokenizer, n: number): { prompt: number[]; response: number[] } {
  const a = 1000 + ((n * 7919) % 9000), b = 100 + ((n * 104729) % 900);
  const prompt = llama.encode(llama.applyChatTemplate([{ role: 'user', content: `What is ${a} + ${b}?` }], { addGenerationPrompt: true }), { addSpecialTokens: false });
  const response = llama.encode(`${a} + ${b} = ${a + b}.`, { addSpecialTokens: false });
  return { prompt: Array.from(prompt), response: [...response, llama.id('<|eot_id|>')!] };
}

/** A TRL-shaped body (the field order of TRL's VLLMClient). */
export function trlBody(seqs: Array<{ prompt: number[]; response: number[] }>, topLogprobs = 1, format: 'binary' | 'json' = 'binary'): string {
  return JSON.stringify({ sequences: seqs.map((s) => [...s.prompt, ...s.response]), prompt_lengths: seqs.map((s) => s.prompt.length), top_logprobs: topLogprobs, temperature: 1.0, response_format: format });
}

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

/** One request over a keep-alive connection. */
export function request(url: string, opts: { method?: string; body?: string | Buffer; headers?: Record<string, string | number> } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: opts.method ?? (opts.body === undefined ? 'GET' : 'POST'), agent, headers: { 'content-type': 'application/json', ...opts.headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** The JSON error body every refusal carries. */
export function errorOf(a: Answer): { message: string; type: string; code: number; xopd_code: string; teacher?: string } {
  const j = JSON.parse(a.text) as { error: { message: string; type: string; code: number; xopd_code: string; teacher?: string } };
  return j.error;
}
