/**
 * Loads the native addon once. Each stage declares the slice of the addon it uses
 * (`addon<AlignNative>()`), so modules never edit a shared interface.
 */
import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ErrorCode, XopdError, callNative } from './errors.js';

/** The package root (holds package.json), from src/ or dist/src/ alike. */
export const packageRoot: string = (() => {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pj = path.join(dir, 'package.json');
    if (existsSync(pj)) {
      try {
        if (JSON.parse(readFileSync(pj, 'utf8')).name === 'xopd') return dir;
      } catch {
        /* keep walking */
      }
    }
    const up = path.dirname(dir);
    if (up === dir) throw new XopdError(ErrorCode.NATIVE_UNAVAILABLE, 'cannot find the xopd package root');
    dir = up;
  }
})();

export const version: string = JSON.parse(readFileSync(path.join(packageRoot, 'package.json'), 'utf8')).version;

/** What every build of the addon exports (native/addon.cc). */
export interface BaseNative {
  info(): { napi: number; threads: number; cuda: CudaInfo; modules: string[] };
  setThreads(n: number): void;
  releaseCudaMemory(): number;
  setCudaWorkspaceLimit(bytes: number): void;
}

/** CUDA as the addon sees it: compiled in, devices found (error: why none), the workspace cap. */
export interface CudaInfo {
  compiled: boolean;
  devices: number;
  error?: string;
  /** bytes of device memory one op's CUDA path may keep between calls (XOPD_CUDA_WORKSPACE_MB) */
  workspaceLimit?: number;
}

let loaded: BaseNative | undefined;

/** XOPD_ADDON overrides the addon path (the sanitizer build, a node-gyp build elsewhere). */
export function addonPath(): string {
  if (process.env.XOPD_ADDON) return path.resolve(process.env.XOPD_ADDON);
  return path.join(packageRoot, 'build', 'Release', 'xopd.node');
}

/**
 * Loads a compiled addon file; a missing or unloadable file is E_NATIVE_UNAVAILABLE saying how to
 * rebuild it (`build`: the command). Used for xopd.node here and for the dev addon by dev/addon.ts.
 */
export function loadAddonFile<T>(file: string, build = "'npm install' or 'npm run build:native'"): T {
  if (!existsSync(file)) {
    throw new XopdError(ErrorCode.NATIVE_UNAVAILABLE, `the native addon is not built (${file} is missing): run ${build}`);
  }
  const require = createRequire(import.meta.url);
  try {
    return require(file) as T;
  } catch (err) {
    // A truncated or foreign file, or one built for another Node-API / platform.
    throw new XopdError(ErrorCode.NATIVE_UNAVAILABLE,
      `the native addon ${file} cannot be loaded (${(err as Error).message.split('\n')[0]}): rebuild it with ${build}`, { cause: err });
  }
}

export function addon<T = unknown>(): BaseNative & T {
  if (!loaded) loaded = loadAddonFile<BaseNative>(addonPath());
  return loaded as BaseNative & T;
}

export interface NativeInfo {
  version: string;
  napi: number;
  threads: number;
  cuda: CudaInfo;
  modules: string[];
}

/** What the addon was built with and what this machine offers it. */
export function info(): NativeInfo {
  const i = addon().info();
  return { version, ...i };
}

/** Sets the CPU worker threads the native kernels use (default: XOPD_THREADS or all cores). */
export function setThreads(n: number): void {
  callNative(() => addon().setThreads(n));
}

export type Device = 'cpu' | 'cuda' | 'auto';

/**
 * What device 'auto' may pick: 'self-check' (the default) uses CUDA once the CUDA path reproduced
 * the CPU on this machine; 'cuda' opts in without the check; 'cpu' never uses CUDA.
 * XOPD_AUTO_DEVICE sets it for a process; setAutoDevice() at run time.
 */
export type AutoDevice = 'self-check' | 'cuda' | 'cpu';
const AUTO_DEVICES: readonly AutoDevice[] = ['self-check', 'cuda', 'cpu'];

/** What a DevicePolicy asks of the addon (a stand-in in tests). */
export interface CudaProbe {
  info(): CudaInfo;
  /** both losses on a few rows on CUDA and on the CPU: ok when they agree to float rounding */
  selfCheck(): { ok: boolean; detail: string };
}

/** Where 'auto' stands: the policy, and what is known of the CUDA path on this machine. */
export interface CudaStatus {
  auto: AutoDevice;
  /** unavailable: not compiled or no device; unchecked: no 'auto' call wanted CUDA yet */
  cuda: 'unavailable' | 'unchecked' | 'passed' | 'failed';
  detail: string;
}

/**
 * Resolves a kernel's device and runs it there. 'auto' is the CPU until the CUDA path has passed
 * the self-check on this machine (run once, by the first call that would use CUDA) or CUDA was
 * opted into, so a first GPU host never switches silently to kernels it has not run. A CUDA fault
 * (E_CUDA) in an 'auto' call warns once, redoes the call on the CPU and keeps 'auto' on the CPU for
 * the rest of the process; with device 'cuda' the coded error is thrown.
 */
export class DevicePolicy {
  private state: 'unchecked' | 'passed' | 'failed' = 'unchecked';
  private detail = '';

  constructor(private readonly probe: CudaProbe, private auto: AutoDevice = 'self-check',
    private readonly warn: (message: string) => void = (m) => process.emitWarning(m, { code: 'XOPD_CUDA' })) {}

  setAuto(auto: AutoDevice): void {
    if (!AUTO_DEVICES.includes(auto)) throw new XopdError(ErrorCode.ARG_VALUE, `the auto device must be one of ${AUTO_DEVICES.join(', ')}, got ${String(auto)}`);
    this.auto = auto;
  }

  status(): CudaStatus {
    const c = this.probe.info();
    if (!c.compiled || c.devices === 0) return { auto: this.auto, cuda: 'unavailable', detail: c.compiled ? `no usable CUDA device (${c.error ?? 'none found'})` : 'the addon was built without CUDA' };
    return { auto: this.auto, cuda: this.state, detail: this.detail };
  }

  /** 'cpu' or 'cuda' for a call asking for device; 'cuda' without a usable device is E_CUDA_UNAVAILABLE. */
  resolve(device: Device = 'auto'): 'cpu' | 'cuda' {
    if (device === 'cpu') return 'cpu';
    if (device !== 'cuda' && device !== 'auto') throw new XopdError(ErrorCode.ARG_VALUE, `device must be 'cpu', 'cuda' or 'auto', got ${String(device)}`);
    const cuda = this.probe.info();
    if (device === 'cuda') {
      if (!cuda.compiled) throw new XopdError(ErrorCode.CUDA_UNAVAILABLE, "device 'cuda' asked for, but the addon was built without CUDA (nvcc was not found, or XOPD_CUDA=0)");
      if (cuda.devices === 0) throw new XopdError(ErrorCode.CUDA_UNAVAILABLE, `device 'cuda' asked for, but there is no usable CUDA device${cuda.error ? ` (${cuda.error})` : ''}: use device 'cpu' or 'auto'`);
      return 'cuda';
    }
    if (!cuda.compiled || cuda.devices === 0 || this.auto === 'cpu' || this.state === 'failed') return 'cpu';
    if (this.auto === 'cuda' || this.state === 'passed') return 'cuda';
    let check: { ok: boolean; detail: string };
    try {
      check = this.probe.selfCheck();
    } catch (err) {
      check = { ok: false, detail: (err as Error).message };
    }
    this.state = check.ok ? 'passed' : 'failed';
    this.detail = check.detail;
    if (!check.ok) this.warn(`xopd: device 'auto' stays on the CPU: the CUDA self-check failed (${check.detail})`);
    return check.ok ? 'cuda' : 'cpu';
  }

  /**
   * Runs call on the resolved device. retryOnCpu false: the call wrote over its inputs (a gradient
   * in place of the logits), so a CUDA fault cannot be redone on the CPU and is thrown.
   */
  run<R>(device: Device, call: (device: 'cpu' | 'cuda') => R, opts: { retryOnCpu?: boolean } = {}): R {
    const d = this.resolve(device);
    if (d === 'cpu') return call('cpu');
    try {
      return call('cuda');
    } catch (err) {
      if (device !== 'auto' || !(err instanceof XopdError) || err.code !== ErrorCode.CUDA) throw err;
      this.state = 'failed';
      this.detail = err.message;
      if (opts.retryOnCpu === false) {
        throw new XopdError(ErrorCode.CUDA, `${err.message}; the gradient was being written over the logits, so the CPU cannot redo this call (device 'auto' now stays on the CPU)`, { cause: err });
      }
      this.warn(`xopd: a CUDA call failed (${err.message}); it ran on the CPU, and device 'auto' stays on the CPU`);
      return call('cpu');
    }
  }
}

function envAutoDevice(): AutoDevice {
  const v = process.env.XOPD_AUTO_DEVICE;
  return v === 'cuda' || v === 'cpu' ? v : 'self-check';
}

/** The process's policy, on the loaded addon. */
export const devicePolicy = new DevicePolicy({
  info: () => addon().info().cuda,
  selfCheck: () => addon<{ cudaSelfCheck(): { ok: boolean; detail: string } }>().cudaSelfCheck(),
}, envAutoDevice());

/** Resolves a device for a kernel call (devicePolicy.resolve). */
export function resolveDevice(device: Device = 'auto'): 'cpu' | 'cuda' {
  return devicePolicy.resolve(device);
}

/** Runs a kernel call on its device, with the CPU fallback of device 'auto' (devicePolicy.run). */
export function runOnDevice<R>(device: Device, call: (device: 'cpu' | 'cuda') => R, opts?: { retryOnCpu?: boolean }): R {
  return devicePolicy.run(device, call, opts);
}

/** What device 'auto' may pick for the rest of the process (see AutoDevice). */
export function setAutoDevice(auto: AutoDevice): void {
  devicePolicy.setAuto(auto);
}

/** Where device 'auto' stands on this machine. */
export function cudaStatus(): CudaStatus {
  return devicePolicy.status();
}

/**
 * Frees the device and pinned memory the CUDA paths keep between calls (they allocate again on
 * their next call); returns the bytes freed.
 */
export function releaseCudaMemory(): number {
  return callNative(() => addon().releaseCudaMemory());
}

/**
 * Caps the device memory one op's CUDA path keeps (MiB; 0: XOPD_CUDA_WORKSPACE_MB, else 1024; the pinned host staging is about as large).
 * A batch that needs more runs in chunks of rows that fit.
 */
export function setCudaWorkspaceLimit(mib: number): void {
  if (!Number.isFinite(mib) || mib < 0 || (mib > 0 && mib < 1)) throw new XopdError(ErrorCode.ARG_RANGE, `the CUDA workspace limit is in MiB: 0 (the default) or at least 1, got ${mib}`);
  callNative(() => addon().setCudaWorkspaceLimit(Math.floor(mib) * 1024 * 1024));
}
