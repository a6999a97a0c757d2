#!/usr/bin/env node
// Builds the native addon on `npm install`: cmake-js when cmake exists (CUDA kernels when nvcc is
// found and XOPD_CUDA is not 0), otherwise node-gyp (CPU only). Nothing is downloaded either way.
// In a checkout, cmake-js also builds the dev addon (build/Release/xopd_dev.node: references, bench
// kernels, test hooks) from the sources the package leaves out; XOPD_DEV=0 skips it.
//
// The build tools are found through Node's module resolution, not at a fixed node_modules/.bin path:
// when xopd is installed into another project npm hoists cmake-js to that project's node_modules.
// node-gyp is a devDependency here; an installing project uses the node-gyp npm ships with
// (npm_config_node_gyp), so the fallback works there too.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import os from 'node:os';
import { existsSync, readFileSync } from 'node:fs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(path.join(root, 'package.json'));

function fail(message) {
  console.error(`[xopd] native build failed: ${message}`);
  process.exit(1);
}

const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;

/** The JS file of a package's command (its package.json "bin"), or undefined when the package is not installed. */
function packageBin(pkg, name) {
  let manifest;
  try {
    manifest = require.resolve(`${pkg}/package.json`);
  } catch {
    return undefined;
  }
  const bin = JSON.parse(readFileSync(manifest, 'utf8')).bin;
  const rel = typeof bin === 'string' ? bin : bin?.[name];
  return rel ? path.join(path.dirname(manifest), rel) : undefined;
}

/** Runs a Node script with this Node; any failure says what ran and why it failed. */
function runNode(script, args, what) {
  console.log(`[xopd] ${what}: ${path.relative(root, script) || script} ${args.join(' ')}`);
  const r = spawnSync(process.execPath, [script, ...args], { cwd: root, stdio: 'inherit' });
  if (r.error) fail(`${what} could not start (${r.error.message})`);
  if (r.signal) fail(`${what} was killed by ${r.signal}`);
  if (r.status !== 0) fail(`${what} exited with status ${r.status}; its output above says why (a C++17 compiler, CMake >= 3.18 or, without CMake, Python 3 and make are needed)`);
}

// node-gyp must use the headers of the running Node (never download them): <prefix>/include/node.
function nodedirArgs() {
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  return existsSync(path.join(prefix, 'include', 'node', 'node_api.h')) ? [`--nodedir=${prefix}`] : [];
}

const cuda = process.env.XOPD_CUDA !== '0';
const sanitize = process.env.XOPD_SANITIZE === '1';
const dev = process.env.XOPD_DEV !== '0' && existsSync(path.join(root, 'native', 'dev'));
const jobs = String(Math.max(1, os.availableParallelism?.() ?? os.cpus().length));

if (has('cmake') && process.env.XOPD_BUILDER !== 'gyp') {
  const cmakeJs = packageBin('cmake-js', 'cmake-js');
  if (!cmakeJs) fail("cmake-js is not installed (it is a dependency of xopd: reinstall, or run 'npm install cmake-js')");
  const args = ['build', '--parallel', jobs, '--CDXOPD_CUDA=' + (cuda ? 'ON' : 'OFF'),
    '--CDXOPD_SANITIZE=' + (sanitize ? 'ON' : 'OFF'), '--CDXOPD_DEV=' + (dev ? 'ON' : 'OFF')];
  if (process.env.XOPD_BUILD_DIR) args.push('--out', process.env.XOPD_BUILD_DIR);
  if (!has('nvcc') && cuda) console.log('[xopd] nvcc not found: building the CPU addon only');
  if (dev) console.log('[xopd] a checkout: the dev addon (xopd_dev.node) is built too');
  runNode(cmakeJs, args, 'cmake-js');
} else {
  const nodeGyp = packageBin('node-gyp', 'node-gyp') ?? process.env.npm_config_node_gyp;
  if (!nodeGyp || !existsSync(nodeGyp)) fail('neither CMake nor node-gyp was found: install CMake >= 3.18 (recommended), or run the install through npm, which ships node-gyp');
  console.log('[xopd] CMake not found: building the CPU addon with node-gyp (no CUDA, no dev addon)');
  runNode(nodeGyp, ['rebuild', '-j', jobs, ...nodedirArgs()], 'node-gyp');
}
