import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Command } from '../command.js';
import { ErrorCode, XopdError } from '../../core/errors.js';
import { packageRoot } from '../../core/native.js';

/** `xopd bench` runs the benchmark harness (the same as `npm run bench --`). */
export const benchCommand: Command = {
  spec: {
    name: 'bench',
    summary: 'Run benchmark suites (tables on stdout, JSON in bench/results); the same as npm run bench, from a checkout of the repository.',
    usage: 'xopd bench [suite ...] [--quick] [--out dir]',
    options: {
      quick: { type: 'boolean', help: 'smaller sizes (a quick smoke run)' },
      out: { type: 'string', valueName: 'dir', help: 'where the JSON results go (default: bench/results)' },
      list: { type: 'boolean', help: 'list the suites and exit' },
    },
    positionals: [{ name: 'suite', help: 'suites to run (default: all)', optional: true, variadic: true }],
    examples: ['xopd bench --list', 'xopd bench loss --quick'],
  },
  async run(args) {
    const main = path.join(packageRoot, 'dist', 'bench', 'main.js');
    // Benches compare the shipped kernels with references and baselines that only a checkout builds
    // (the dev addon), so the npm package carries neither the harness nor what it measures against.
    if (!existsSync(main))
      throw new XopdError(ErrorCode.NATIVE_UNAVAILABLE, `benchmarks run from a checkout of the xopd repository, not from the npm package (${main} is missing): in the checkout, 'npm install' then 'npm run bench'`);
    const argv = [...args._];
    if (args.quick) argv.push('--quick');
    if (args.out !== undefined) argv.push('--out', String(args.out));
    if (args.list) argv.push('--help');
    const child = spawn(process.execPath, [main, ...argv], { stdio: 'inherit' });
    return new Promise<number>((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal === 'SIGINT' ? 130 : 1))));
  },
};
