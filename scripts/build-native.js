#!/usr/bin/env node
// Builds the native addon on `npm install`: cmake-js when cmake exists (CUDA kernels when nvcc is
// found and XOPD_CUDA is not 0), otherwise node-gyp (CPU only). Nothing is downloaded either way.
// In a checkout, cmake-js also builds the dev addon (build/Release/xopd_dev.node: references, bench
// kernels, test hooks) from the sources the package leaves out; XOPD_DEV=0 skips it.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import os from 'node:os';
import { existsSync } from 'node:fs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
const run = (cmd, args) => {
  console.log(`[xopd] ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
};
// node-gyp must use the headers of the running Node (never download them): <prefix>/include/node.
function nodedirArgs() {
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  return existsSync(path.join(prefix, 'include', 'node', 'node_api.h')) ? [`--nodedir=${prefix}`] : [];
}
const bin = (name) => path.join(root, 'node_modules', '.bin', name);
const cuda = process.env.XOPD_CUDA !== '0';
const sanitize = process.env.XOPD_SANITIZE === '1';
const dev = process.env.XOPD_DEV !== '0' && existsSync(path.join(root, 'native', 'dev'));
const jobs = String(Math.max(1, os.availableParallelism?.() ?? os.cpus().length));

if (has('cmake') && process.env.XOPD_BUILDER !== 'gyp') {
  const args = ['build', '--parallel', jobs, '--CDXOPD_CUDA=' + (cuda ? 'ON' : 'OFF'),
    '--CDXOPD_SANITIZE=' + (sanitize ? 'ON' : 'OFF'), '--CDXOPD_DEV=' + (dev ? 'ON' : 'OFF')];
  if (process.env.XOPD_BUILD_DIR) args.push('--out', process.env.XOPD_BUILD_DIR);
  if (!has('nvcc') && cuda) console.log('[xopd] nvcc not found: building the CPU addon only');
  if (dev) console.log('[xopd] a checkout: the dev addon (xopd_dev.node) is built too');
  run(bin('cmake-js'), args);
} else {
  console.log('[xopd] building the CPU addon with node-gyp (no dev addon: tests and benches need cmake)');
  run(bin('node-gyp'), ['rebuild', '-j', jobs, ...nodedirArgs()]);
}
