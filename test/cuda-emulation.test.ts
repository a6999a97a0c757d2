// The CUDA kernels tested where there is no GPU (CI): gpu/build.sh compiles the real .cu sources
// (kernels and host code) as host C++ under gpu/emulation/ — every CUDA thread a fiber with its own
// threadIdx, __syncthreads a barrier over the block, warp shuffles through per-warp slots, streams
// that run only when the host synchronises — and the GPU check (gpu/check.cu) runs every kernel with
// its real block size against the float64 references, with the tolerances of tolerances.ts.
// Then once under ThreadSanitizer, and with mutated copies of the kernels that must fail.
// The same harness, built with nvcc, is what scripts/gpu-check.sh runs on a device.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { packageRoot } from '../src/core/native.js';
import { tolerancesHeader } from './helpers/tolerances.js';

const root = packageRoot;
const hasCompiler = spawnSync('sh', ['-c', 'command -v g++'], { stdio: 'ignore' }).status === 0;
// Under test:asan every child inherits the ASan preload: the compilers would run instrumented.
const asanRun = (process.env.LD_PRELOAD ?? '').includes('libasan');
if (asanRun) console.log('cuda-emulation: skipped under the ASan preload (npm test runs it)');

function build(mode: 'emulated' | 'tsan', out: string, overlay?: string): void {
  const r = spawnSync('bash', [path.join(root, 'gpu', 'build.sh'), mode, out], {
    cwd: root, encoding: 'utf8', env: { ...process.env, ...(overlay ? { XOPD_GPU_OVERLAY: overlay, XOPD_GPU_OPT: '-O0' } : {}) },
  });
  if (r.status !== 0) throw new Error(`gpu/build.sh ${mode} failed:\n${r.stdout}${r.stderr}`);
}

function check(binary: string, args: string[]): { status: number | null; out: string } {
  const r = spawnSync(binary, args, {
    encoding: 'utf8', env: { ...process.env, TSAN_OPTIONS: 'halt_on_error=1 exitcode=66 report_signal_unsafe=0' },
    maxBuffer: 64 << 20,
  });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe.skipIf(asanRun || !hasCompiler)('CUDA kernels under the emulation (no GPU)', () => {
  const buildDir = path.join(root, 'build-gpu');

  it('gpu/tolerances.h is the tolerance table of tolerances.ts', () => {
    const file = path.join(root, 'gpu', 'tolerances.h');
    if (process.env.XOPD_WRITE_TOLERANCES === '1') writeFileSync(file, tolerancesHeader());
    expect(readFileSync(file, 'utf8')).toBe(tolerancesHeader());
  });

  it('every kernel against the float64 references (gpu/check.cu, emulated)', () => {
    build('emulated', path.join(buildDir, 'emulated'));
    const r = check(path.join(buildDir, 'emulated', 'xopd-gpu-check'), []);
    console.log(r.out);
    expect(r.out).toMatch(/^\d+ passed, 0 failed$/m);
    expect(r.status).toBe(0);
  }, 900_000);

  // ThreadSanitizer sees the fibers as threads that only the emulated barriers and shuffles order.
  const tsanCases = ['vocab 4099 (scalar loads) fp32', 'support 1500', 'vocab 100 < block', 'policy gradient vocab 4099 fp32 PPO', 'span projection 1500'];
  it('under ThreadSanitizer: no race', () => {
    build('tsan', path.join(buildDir, 'tsan'));
    const r = check(path.join(buildDir, 'tsan', 'xopd-gpu-check'), ['--quick', '--only', tsanCases.join('|')]);
    console.log(r.out);
    expect(r.out).not.toMatch(/ThreadSanitizer/);
    for (const only of tsanCases) expect(r.out, only).toMatch(new RegExp(`^[^\n]*${only.replace(/[()]/g, '\\$&')}[^\n]* ok `, 'm'));
    expect(r.out).toMatch(/^[1-9]\d* passed, 0 failed$/m);
    expect(r.status).toBe(0);
  }, 900_000);

  // Each mutation removes one barrier or one mask from a copy of the real source; the emulated
  // check (on one case; a missing barrier under TSan, which reports the race it opens) must then
  // fail, and say why.
  const mutations: Array<{ name: string; file: string; from: string; to: string; only: string; mode: 'tsan' | 'emulated'; expect: RegExp }> = [
    {
      name: 'BlockMaxSum without the barrier between publishing the warp partials and reading them',
      file: 'loss/cuda_common.cuh', from: '    sh[kWarps + warp] = s;\n  }\n  __syncthreads();\n', to: '    sh[kWarps + warp] = s;\n  }\n',
      only: 'vocab 4099 (scalar loads) fp32', mode: 'tsan', expect: /ThreadSanitizer: data race/,
    },
    {
      name: 'the divergence kernel without the barrier after clearing the support bitmask',
      file: 'loss/sparse_divergence.cu', from: 'bits[i] = 0u;\n  __syncthreads();\n', to: 'bits[i] = 0u;\n',
      only: 'vocab 4099 (scalar loads) fp32', mode: 'tsan', expect: /ThreadSanitizer: data race/,
    },
    {
      name: 'a warp shuffle whose mask leaves out half the warp',
      file: 'loss/cuda_common.cuh', from: 'constexpr unsigned kFullWarp = 0xffffffffu;', to: 'constexpr unsigned kFullWarp = 0x0000ffffu;',
      only: 'policy gradient vocab 4099 fp32 PPO', mode: 'emulated', expect: /mask 0x0000ffff leaves it out/,
    },
    {
      name: 'the vector pass without the support mask (support tokens counted in "other")',
      file: 'loss/sparse_divergence.cu', from: 'const uint32_t sel = (bits[i >> 5] >> (i & 31)) & ((1u << N) - 1u);', to: 'const uint32_t sel = 0u;',
      only: 'vocab 32000 fp32 forward-kl', mode: 'emulated', expect: /forward-kl +FAIL/,
    },
    {
      name: 'the divergence kernel without the row mask',
      file: 'loss/sparse_divergence.cu', from: 'if (mask && !mask[r]) {', to: 'if (false) {',
      only: 'vocab 4099 (scalar loads) fp32 forward-kl', mode: 'emulated', expect: /masked row has a nonzero gradient/,
    },
  ];
  it('the tests bite: a copy of the kernels with one barrier or mask removed fails', () => {
    const tmp = mkdtempSync(path.join(os.tmpdir(), 'xopd-mutant-'));
    try {
      for (const [i, m] of mutations.entries()) {
        const overlay = path.join(tmp, `overlay${i}`);
        const original = readFileSync(path.join(root, 'native', m.file), 'utf8');
        expect(original.split(m.from).length - 1, `${m.name}: the text to mutate occurs once`).toBe(1);
        mkdirSync(path.dirname(path.join(overlay, m.file)), { recursive: true });
        writeFileSync(path.join(overlay, m.file), original.replace(m.from, m.to));
        const out = path.join(buildDir, `mutant${i}`);
        cpSync(path.join(buildDir, m.mode), out, { recursive: true });  // rebuild only what includes the mutated file
        build(m.mode, out, overlay);
        const r = check(path.join(out, 'xopd-gpu-check'), ['--quick', '--only', m.only]);
        console.log(`mutation: ${m.name}\n  -> exit ${r.status}; ${(r.out.match(m.expect) ?? ['(no match)'])[0]}\n  ${r.out.split('\n').filter((l) => /FAIL|passed|kernel fault|WARNING/.test(l)).slice(0, 3).join('\n  ')}`);
        expect(r.status, m.name).not.toBe(0);
        expect(r.out, m.name).toMatch(m.expect);
        rmSync(out, { recursive: true, force: true });
      }
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }, 900_000);
});
