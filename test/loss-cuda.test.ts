// The CUDA loss kernels against the float64 reference (fp32 and bf16 logits). They run only where
// the addon was built with CUDA and a device is present (scripts/gpu-check.sh); elsewhere they are
// reported as skipped.
import { describe, expect, it } from 'vitest';
import { addon, DevicePolicy, info, releaseCudaMemory, setCudaWorkspaceLimit, type CudaInfo } from '../src/core/native.js';
import { ErrorCode, XopdError, callNative } from '../src/core/errors.js';
import type { SparseDivergenceNative } from '../src/loss/sparse-divergence.js';
import { policyGradientLoss } from '../src/loss/policy-gradient.js';
import { sparseDivergence, type Divergence } from '../src/loss/sparse-divergence.js';
import { policyGradientLossReference, sparseDivergenceReference } from '../dev/loss-reference.js';
import { fromBf16, toBf16 } from '../src/loss/logits.js';
import { rng } from '../dev/corpus.js';
import { errCode, randomLogits, randomTargets } from './helpers/loss.js';
import { TOL, expectAllClose, expectClose } from './helpers/tolerances.js';

const cuda = info().cuda;
const hasDevice = cuda.devices > 0;
if (!hasDevice) console.log(`loss-cuda: skipped, no CUDA device (compiled: ${cuda.compiled}${cuda.error ? `, ${cuda.error}` : ''})`);

describe.skipIf(!hasDevice)('CUDA loss kernels (device present)', () => {
  // 4099: rows not 16-byte aligned (scalar loads); 32000 and 151936: vector loads;
  // 400000: the support bitmask needs more than 48 KiB of shared memory (opt-in path).
  const cases: Array<[number, number]> = [[4099, 13], [32000, 9], [151936, 5], [400000, 3]];
  for (const [vocab, rows] of cases) {
    for (const bf16 of [false, true]) {
      it(`sparseDivergence vocab ${vocab} ${bf16 ? 'bf16' : 'fp32'}: every divergence, temperature, mask`, () => {
        const l32 = randomLogits(rows, vocab, vocab + 1, 8);
        const logits = bf16 ? toBf16(l32) : l32;
        const asF32 = bf16 ? fromBf16(logits as Uint16Array) : l32;
        const targets = randomTargets(rows, vocab, vocab + 2, 40);
        const mask = Uint8Array.from({ length: rows }, (_, i) => (i % 3 === 1 ? 0 : 1));
        for (const divergence of ['forward-kl', 'reverse-kl', 'jsd'] as Divergence[]) {
          const opts = { divergence, beta: 0.4, temperature: 0.8, mask };
          const got = sparseDivergence(logits, { rows, vocab }, targets, { ...opts, device: 'cuda' });
          const ref = sparseDivergenceReference(asF32, { rows, vocab }, targets, opts);
          expectClose(got.loss, ref.loss, TOL.cudaLoss, 'loss');
          const g = got.grad instanceof Uint16Array ? fromBf16(got.grad) : got.grad;
          expectAllClose(g, ref.grad, bf16 ? TOL.bf16Grad : TOL.lossGrad, 'grad');
          for (let v = 0; v < vocab; v += 97) expect(g[vocab + v]).toBe(0);  // masked row 1
        }
      });

      it(`policyGradientLoss vocab ${vocab} ${bf16 ? 'bf16' : 'fp32'}: plain and PPO-clipped`, () => {
        const r = rng(vocab);
        const l32 = randomLogits(rows, vocab, vocab + 3, 8);
        const logits = bf16 ? toBf16(l32) : l32;
        const asF32 = bf16 ? fromBf16(logits as Uint16Array) : l32;
        const actions = Int32Array.from({ length: rows }, () => Math.floor(r() * vocab));
        const adv = Float32Array.from({ length: rows }, () => (r() - 0.5) * 4);
        const mask = Uint8Array.from({ length: rows }, (_, i) => (i % 4 === 2 ? 0 : 1));
        const old = Float32Array.from({ length: rows }, () => -Math.log(vocab) + (r() - 0.5) * 2);
        for (const opts of [{}, { oldLogprobs: old }]) {
          const got = policyGradientLoss(logits, { rows, vocab }, actions, adv, mask, { ...opts, device: 'cuda' });
          const ref = policyGradientLossReference(asF32, { rows, vocab }, actions, adv, mask, opts);
          expectClose(got.loss, ref.loss, TOL.cudaLoss, 'loss');
          const g = got.grad instanceof Uint16Array ? fromBf16(got.grad) : got.grad;
          expectAllClose(g, ref.grad, bf16 ? TOL.bf16Grad : TOL.lossGrad, 'grad');
          expect(got.stats.clippedFraction).toBe(ref.clippedFraction);
        }
      });
    }
  }

  it('CUDA and CPU agree to float rounding on a real-size batch', () => {
    const rows = 64, vocab = 128256;
    const logits = randomLogits(rows, vocab, 5, 10);
    const targets = randomTargets(rows, vocab, 6, 64);
    const a = sparseDivergence(logits, { rows, vocab }, targets, { divergence: 'jsd', device: 'cuda' });
    const b = sparseDivergence(logits, { rows, vocab }, targets, { divergence: 'jsd', device: 'cpu' });
    expectClose(a.loss, b.loss, TOL.cudaVsCpuLoss, 'loss');
    expectAllClose(a.grad, b.grad, TOL.cudaVsCpuGrad, 'grad');
  });

  it('support tokens 150 logits above the rest (float32 exp underflow) meet the CPU path on the device', () => {
    const rows = 8, vocab = 32000;
    const logits = randomLogits(rows, vocab, 9);
    for (let i = 0; i < logits.length; i++) logits[i] = logits[i]! - 150;
    const targets = randomTargets(rows, vocab, 10, 4);
    for (let j = 0; j < rows; j++)
      for (let k = targets.rowPtr[j]!; k < targets.rowPtr[j + 1]!; k++) logits[j * vocab + targets.ids[k]!] = -(k % 3);
    for (const divergence of ['forward-kl', 'reverse-kl', 'jsd'] as const) {
      const a = sparseDivergence(logits, { rows, vocab }, targets, { divergence, device: 'cuda' });
      const b = sparseDivergence(logits, { rows, vocab }, targets, { divergence, device: 'cpu' });
      expectClose(a.loss, b.loss, TOL.cudaVsCpuLoss, 'loss');
      expectAllClose(a.grad, b.grad, TOL.cudaVsCpuGrad, 'grad');
    }
  });

  it('NaN logits are an XopdError on the device too', () => {
    const rows = 4, vocab = 32000;
    const logits = randomLogits(rows, vocab, 7);
    logits[2 * vocab + 17] = NaN;
    const targets = randomTargets(rows, vocab, 8);
    expect(() => sparseDivergence(logits, { rows, vocab }, targets, { divergence: 'forward-kl', device: 'cuda' }))
      .toThrow(expect.objectContaining(errCode('E_ARG_VALUE')));
    expect(() => policyGradientLoss(logits, { rows, vocab }, new Int32Array(rows), new Float32Array(rows), new Uint8Array(rows).fill(1), { device: 'cuda' }))
      .toThrow(expect.objectContaining(errCode('E_ARG_VALUE')));
  });
});

describe.runIf(process.env.XOPD_REQUIRE_CUDA === '1')('gpu-check asked for a device', () => {
  it('a CUDA device is present', () => { expect(hasDevice).toBe(true); });
});

describe.skipIf(hasDevice)('CUDA absent', () => {
  it("device 'cuda' is an XopdError naming the reason; 'auto' runs on the CPU", () => {
    const logits = randomLogits(2, 10, 1);
    const targets = randomTargets(2, 10, 2);
    expect(() => sparseDivergence(logits, { rows: 2, vocab: 10 }, targets, { divergence: 'jsd', device: 'cuda' }))
      .toThrow(expect.objectContaining(errCode('E_CUDA_UNAVAILABLE')));
    expect(sparseDivergence(logits, { rows: 2, vocab: 10 }, targets, { divergence: 'jsd', device: 'auto' }).rows).toBe(2);
  });

  it('a direct native call on device cuda says there is no usable device, and why', () => {
    const native = addon<SparseDivergenceNative>();
    const t = randomTargets(2, 10, 2);
    let err: unknown;
    try {
      callNative(() => native.sparseDivergence({ logits: randomLogits(2, 10, 1), rows: 2, vocab: 10, ...t, device: 'cuda' }));
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject(errCode('E_CUDA_UNAVAILABLE'));
    const msg = (err as Error).message;
    expect(msg).toMatch(cuda.compiled ? /no usable CUDA device \(.+\)/ : /built without CUDA/);
    expect(msg).not.toMatch(/cudaMalloc|reduce the batch/);
    if (cuda.compiled) expect(msg).toContain(cuda.error!);
  });

  it("the self-check behind 'auto' reports why it cannot pass", () => {
    const r = addon<{ cudaSelfCheck(): { ok: boolean; detail: string } }>().cudaSelfCheck();
    expect(r.ok).toBe(false);
    expect(r.detail).toMatch(/E_CUDA_UNAVAILABLE/);
  });
});

describe('CUDA memory controls', () => {
  it('the workspace limit is set in MiB and read back; releasing frees what the CUDA paths kept', () => {
    setCudaWorkspaceLimit(64);
    expect(info().cuda.workspaceLimit).toBe(64 * 1024 * 1024);
    setCudaWorkspaceLimit(0);
    expect(info().cuda.workspaceLimit).toBe((Number(process.env.XOPD_CUDA_WORKSPACE_MB) || 1024) * 1024 * 1024);
    expect(() => setCudaWorkspaceLimit(0.5)).toThrow(expect.objectContaining(errCode('E_ARG_RANGE')));
    expect(() => setCudaWorkspaceLimit(-1)).toThrow(expect.objectContaining(errCode('E_ARG_RANGE')));
    const freed = releaseCudaMemory();
    expect(freed).toBeGreaterThanOrEqual(0);
    if (!hasDevice) expect(freed).toBe(0);  // nothing ran on a device
  });
});

// The policy behind device 'auto' (src/core/native.ts DevicePolicy) with a stand-in for the addon's
// CUDA probe: this machine has no device, so the probe says what a GPU host would. The calls that
// run are the real CPU kernel; only the CUDA side is the stand-in's.
describe("device 'auto': CPU until the CUDA path proved itself, and the CPU again after a fault", () => {
  const rows = 3, vocab = 50;
  const logits = randomLogits(rows, vocab, 3);
  const targets = randomTargets(rows, vocab, 4);
  const native = addon<SparseDivergenceNative>();
  const cpuLoss = (d: 'cpu' | 'cuda') => callNative(() => native.sparseDivergence({ logits, rows, vocab, ...targets, divergence: 'jsd', device: d })).loss;
  const want = cpuLoss('cpu');
  function policy(probe: Partial<{ info: CudaInfo; check: { ok: boolean; detail: string } }>, auto: 'self-check' | 'cuda' | 'cpu' = 'self-check') {
    const warnings: string[] = [];
    let checks = 0;
    const p = new DevicePolicy({
      info: () => probe.info ?? { compiled: true, devices: 1 },
      selfCheck: () => { checks++; return probe.check ?? { ok: true, detail: 'agree' }; },
    }, auto, (m) => warnings.push(m));
    return { p, warnings, checks: () => checks };
  }
  const faulting = (d: 'cpu' | 'cuda') => {
    if (d === 'cuda') throw new XopdError(ErrorCode.CUDA, 'cudaStreamSynchronize(streams.s[slot]) failed: an illegal memory access was encountered');
    return cpuLoss(d);
  };

  it('runs the self-check once, on the first call that would use CUDA, and then uses CUDA', () => {
    const { p, checks } = policy({});
    expect(p.status().cuda).toBe('unchecked');
    expect(p.resolve('auto')).toBe('cuda');
    expect(p.resolve('auto')).toBe('cuda');
    expect(checks()).toBe(1);
    expect(p.status()).toMatchObject({ auto: 'self-check', cuda: 'passed' });
  });

  it('stays on the CPU, with one warning, when the self-check fails', () => {
    const { p, warnings } = policy({ check: { ok: false, detail: 'divergence 2 fp32 vocab 4099: loss 0.3 on CUDA, 0.2 on the CPU' } });
    expect(p.resolve('auto')).toBe('cpu');
    expect(p.run('auto', cpuLoss)).toBe(want);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/stays on the CPU: the CUDA self-check failed \(divergence 2/);
    expect(p.resolve('cuda')).toBe('cuda');  // asked for explicitly: still allowed
  });

  it('a fault in an auto call warns, redoes the call on the CPU and keeps auto there', () => {
    const { p, warnings } = policy({});
    expect(p.run('auto', faulting)).toBe(want);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/a CUDA call failed \(cudaStreamSynchronize.*illegal memory access.*\); it ran on the CPU/);
    expect(p.resolve('auto')).toBe('cpu');
    expect(p.status()).toMatchObject({ cuda: 'failed' });
  });

  it("a fault with device 'cuda' is the coded error, and an in-place call cannot be redone", () => {
    const { p } = policy({});
    expect(() => p.run('cuda', faulting)).toThrow(expect.objectContaining(errCode('E_CUDA')));
    const q = policy({}).p;
    expect(() => q.run('auto', faulting, { retryOnCpu: false })).toThrow(/written over the logits, so the CPU cannot redo this call/);
    expect(q.resolve('auto')).toBe('cpu');
  });

  it("opting in skips the check; 'cpu' never runs it; no device is the CPU and E_CUDA_UNAVAILABLE", () => {
    const optIn = policy({ check: { ok: false, detail: 'never asked' } }, 'cuda');
    expect(optIn.p.resolve('auto')).toBe('cuda');
    expect(optIn.checks()).toBe(0);
    const never = policy({}, 'cpu');
    expect(never.p.resolve('auto')).toBe('cpu');
    expect(never.checks()).toBe(0);
    const none = policy({ info: { compiled: true, devices: 0, error: 'no CUDA-capable device is detected' } });
    expect(none.p.resolve('auto')).toBe('cpu');
    expect(none.checks()).toBe(0);
    expect(() => none.p.resolve('cuda')).toThrow(/no usable CUDA device \(no CUDA-capable device is detected\)/);
    expect(none.p.status()).toMatchObject({ cuda: 'unavailable' });
    expect(() => none.p.setAuto('gpu' as never)).toThrow(expect.objectContaining(errCode('E_ARG_VALUE')));
  });
});
