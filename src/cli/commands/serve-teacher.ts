import path from 'node:path';
import type { Command } from '../command.js';
import { EXIT } from '../command.js';
import { setThreads } from '../../core/native.js';
import { ErrorCode, XopdError } from '../../core/errors.js';
import { serveTeacher } from '../../serve/teacher-server.js';
import { loadTeacher } from '../../run/job.js';

/** Serves an embedded teacher model over vLLM's completions protocol (the subset VllmTeacher uses). */
export const serveTeacherCommand: Command = {
  spec: {
    name: 'serve-teacher',
    summary: "Serve a teacher model over vLLM's OpenAI-compatible protocol (/v1/completions with prompt_logprobs, /v1/models, /health).",
    usage: 'xopd serve-teacher --model <dir> [--port P] [--host H]',
    options: {
      model: { type: 'string', valueName: 'dir', help: 'the teacher model folder (config.json, model.safetensors, tokenizer)' },
      port: { type: 'int', min: 0, max: 65535, default: 8000, help: 'TCP port (0: any free port; the chosen one is printed)' },
      host: { type: 'string', default: '127.0.0.1', help: 'address to listen on (0.0.0.0 for every interface)' },
      'model-name': { type: 'string', help: 'the name /v1/models lists (default: the folder name)' },
      'max-logprobs': { type: 'int', min: 0, max: 65536, default: 20, help: "largest prompt_logprobs accepted (as vLLM's --max-logprobs)" },
      'max-body-bytes': { type: 'int', min: 1024, default: 16 << 20, help: 'largest request body accepted (HTTP 413 beyond)' },
      'max-batch': { type: 'int', min: 1, max: 65536, default: 64, help: 'most sequences scored in one teacher call (concurrent requests are batched)' },
      threads: { type: 'int', min: 1, max: 1024, help: 'CPU threads of the native kernels (default: XOPD_THREADS or all cores)' },
      quiet: { type: 'boolean', help: 'do not log each request on stderr' },
    },
    examples: ['xopd serve-teacher --model models/teacher-qwen3 --port 8000', 'xopd distill --teacher-url http://127.0.0.1:8000 --teacher-tokenizer qwen3'],
  },
  async run(args) {
    if (args.model === undefined) throw new XopdError(ErrorCode.CLI_USAGE, "xopd serve-teacher: --model <dir> is required (see 'xopd serve-teacher --help')");
    if (args.threads !== undefined) setThreads(args.threads as number);
    const dir = String(args.model);
    const teacher = loadTeacher({ dir });
    const name = (args['model-name'] as string | undefined) ?? path.basename(path.resolve(dir));
    const server = await serveTeacher(teacher, {
      port: args.port as number, host: args.host as string, modelName: name,
      maxLogprobs: args['max-logprobs'] as number, maxBodyBytes: args['max-body-bytes'] as number, maxBatch: args['max-batch'] as number,
      log: args.quiet ? undefined : (l) => process.stderr.write(l + '\n'),
    });
    // The first stdout line is machine-readable, so scripts can pick up the port.
    console.log(`serving ${name} (${teacher.tokenizer.name}) on ${server.url}`);
    const code = await new Promise<number>((resolve) => {
      process.once('SIGINT', () => resolve(EXIT.INTERRUPTED));
      process.once('SIGTERM', () => resolve(EXIT.OK));
    });
    await server.close();
    await teacher.close?.();
    return code;
  },
};
