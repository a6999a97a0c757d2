import { readFileSync } from 'node:fs';
import os from 'node:os';
import type { Command } from '../command.js';
import { EXIT } from '../command.js';
import { ErrorCode, XopdError } from '../../core/errors.js';
import { serveOpd } from '../../serve/server.js';
import type { PromptFormat } from '../../serve/scorer.js';

function readTemplate(file: unknown, what: string): string | undefined {
  if (file === undefined) return undefined;
  try {
    return readFileSync(String(file), 'utf8');
  } catch (err) {
    throw new XopdError(ErrorCode.CLI_USAGE, `xopd serve: cannot read ${what} ${String(file)}: ${(err as Error).message}`);
  }
}

/** The cross-tokenizer teacher service: TRL's teacher-server protocol and /v1/opd/score in front of vLLM teachers. */
export const serveCommand: Command = {
  spec: {
    name: 'serve',
    summary: "Serve the cross-tokenizer teacher signal over HTTP (TRL's teacher-server protocol, POST /v1/opd/score) in front of vLLM-protocol teachers.",
    usage: 'xopd serve --student-tokenizer <name|dir> --teacher-tokenizer <name|dir> --teacher-url <url> [--teacher-url <url> ...] [options]',
    options: {
      'student-tokenizer': { type: 'string', valueName: 'name|dir', help: "the student's tokenizer: a folder with tokenizer.json (+ tokenizer_config.json), or qwen3, llama3, gemma3, deepseek_v3, mistral" },
      'teacher-tokenizer': { type: 'string', valueName: 'name|dir', help: "the teacher's tokenizer (the one its vLLM server uses)" },
      'student-chat-template': { type: 'string', valueName: 'file', help: "a jinja chat template replacing (or supplying) the student tokenizer's" },
      'teacher-chat-template': { type: 'string', valueName: 'file', help: "a jinja chat template replacing (or supplying) the teacher tokenizer's" },
      'teacher-url': { type: 'string[]', valueName: 'url', help: 'a vLLM (or xopd serve-teacher) server, e.g. http://127.0.0.1:8000; repeat for several (requests rotate)' },
      'teacher-model': { type: 'string', help: 'the served model name (default: the first one /v1/models lists)' },
      'teacher-api-key': { type: 'string', valueName: 'key', help: 'sent to the teachers as Authorization: Bearer (default: XOPD_TEACHER_API_KEY)' },
      'teacher-timeout': { type: 'int', min: 1, default: 60_000, valueName: 'ms', help: 'time allowed for one teacher request' },
      'teacher-retries': { type: 'int', min: 0, max: 100, default: 3, help: 'retries of a failed teacher request (with backoff; a retry goes to the next URL)' },
      'teacher-concurrency': { type: 'int', min: 1, max: 65536, help: 'teacher requests in flight at once, over all workers (default: 8 per teacher URL)' },
      'teacher-top-k': { type: 'int', min: 1, max: 4096, default: 20, help: "teacher candidates per position when more than the realised token is asked for (within the teacher's --max-logprobs)" },
      'max-top-logprobs': { type: 'int', min: 1, max: 4096, default: 100, help: 'largest top_logprobs (TRL) or top_k (/v1/opd/score) a request may ask for' },
      prompts: { type: 'string', choices: ['chat', 'text'], default: 'chat', help: "chat: prompts are the student chat template's rendering (messages recovered, the teacher's template applied); text: plain text, given to the teacher as it is" },
      'teacher-encoder': { type: 'string', choices: ['auto', 'js'], default: 'auto', help: "how responses are encoded for the teacher: auto uses the npm package tokenizers (Rust, same ids, faster) where installed; js always @huggingface/tokenizers" },
      'max-chunk-tokens': { type: 'int', min: 1, max: 65536, default: 6, help: 'tokens per chunk side before a chunk is flagged OVERSIZE' },
      port: { type: 'int', min: 0, max: 65535, default: 8100, help: 'TCP port (0: any free port; the chosen one is printed)' },
      host: { type: 'string', default: '127.0.0.1', help: 'address to listen on (0.0.0.0 for every interface: set --api-key then)' },
      'api-key': { type: 'string', valueName: 'key', help: 'require Authorization: Bearer <key> on every route but /health (default: XOPD_API_KEY)' },
      workers: { type: 'int', min: 0, max: 256, help: 'worker threads for the host work (default: the cores available; 0: on the event loop)' },
      'per-worker': { type: 'int', min: 1, max: 4096, default: 4, help: 'requests one worker works on at once' },
      'queue-size': { type: 'int', min: 0, max: 1 << 20, default: 64, help: 'requests waiting for a worker before new ones get 429' },
      'max-body-bytes': { type: 'int', min: 1024, default: 32 << 20, help: 'largest request body (413 beyond)' },
      'request-timeout': { type: 'int', min: 1, default: 300_000, valueName: 'ms', help: 'a request not answered within this gets 504' },
      'drain-timeout': { type: 'int', min: 0, default: 60_000, valueName: 'ms', help: 'on SIGTERM, how long in-flight requests may take before the server exits anyway' },
      quiet: { type: 'boolean', help: 'do not log each request on stderr' },
    },
    examples: [
      'xopd serve --student-tokenizer llama3 --teacher-tokenizer qwen3 --teacher-url http://127.0.0.1:8000 --port 8100',
      'XOPD_API_KEY=secret xopd serve --student-tokenizer ./llama --teacher-tokenizer ./qwen --teacher-url http://gpu1:8000 --teacher-url http://gpu2:8000 --host 0.0.0.0',
    ],
  },
  async run(args) {
    for (const need of ['student-tokenizer', 'teacher-tokenizer', 'teacher-url'])
      if (args[need] === undefined) throw new XopdError(ErrorCode.CLI_USAGE, `xopd serve: --${need} is required (see 'xopd serve --help')`);
    const urls = args['teacher-url'] as string[];
    const workers = args.workers === undefined ? os.availableParallelism() : (args.workers as number);
    const total = (args['teacher-concurrency'] as number | undefined) ?? 8 * urls.length;
    const server = await serveOpd({
      config: {
        studentTokenizer: String(args['student-tokenizer']), teacherTokenizer: String(args['teacher-tokenizer']),
        studentChatTemplate: readTemplate(args['student-chat-template'], 'the student chat template'),
        teacherChatTemplate: readTemplate(args['teacher-chat-template'], 'the teacher chat template'),
        teacherUrls: urls, teacherModel: args['teacher-model'] as string | undefined,
        teacherApiKey: (args['teacher-api-key'] as string | undefined) ?? (process.env.XOPD_TEACHER_API_KEY || undefined),
        teacherTimeoutMs: args['teacher-timeout'] as number, teacherRetries: args['teacher-retries'] as number,
        // Each worker has a teacher client of its own: they share the total.
        teacherConcurrency: Math.max(1, Math.ceil(total / Math.max(1, workers))),
        teacherTopK: args['teacher-top-k'] as number, maxTopLogprobs: args['max-top-logprobs'] as number,
        prompts: args.prompts as PromptFormat, maxChunkTokens: args['max-chunk-tokens'] as number,
        teacherEncoder: args['teacher-encoder'] as 'auto' | 'js',
      },
      port: args.port as number, host: args.host as string, workers,
      perWorker: args['per-worker'] as number, queueSize: args['queue-size'] as number,
      maxBodyBytes: args['max-body-bytes'] as number, requestTimeoutMs: args['request-timeout'] as number,
      apiKey: (args['api-key'] as string | undefined) ?? (process.env.XOPD_API_KEY || undefined),
      log: args.quiet ? undefined : (l) => process.stderr.write(l + '\n'),
    });
    const apiKeySet = Boolean((args['api-key'] as string | undefined) ?? process.env.XOPD_API_KEY);
    if (!apiKeySet && !/^(127\.|localhost$|::1$|\[::1\]$)/.test(String(args.host)))
      process.stderr.write(`xopd serve: warning: listening on ${args.host} with no --api-key: anyone who reaches this address can use the teachers\n`);
    // The first stdout line is machine-readable, so scripts can pick up the port.
    console.log(`serving ${args['student-tokenizer']} <- ${args['teacher-tokenizer']} on ${server.url} (${server.pool.workers || 'no'} workers; teachers ${urls.join(', ')})`);
    const code = await new Promise<number>((resolve) => {
      process.once('SIGINT', () => resolve(EXIT.INTERRUPTED));
      process.once('SIGTERM', () => resolve(EXIT.OK));
    });
    await server.drain(args['drain-timeout'] as number);
    return code;
  },
};
