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
  info(): { napi: number; threads: number; cuda: { compiled: boolean; devices: number; error?: string }; modules: string[] };
  setThreads(n: number): void;
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
  cuda: { compiled: boolean; devices: number; error?: string };
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

/** Resolves 'auto' to 'cuda' when a device exists; 'cuda' without one is an error. */
export function resolveDevice(device: Device = 'auto'): 'cpu' | 'cuda' {
  if (device === 'cpu') return 'cpu';
  const cuda = addon().info().cuda;
  if (device === 'cuda') {
    if (!cuda.compiled) throw new XopdError(ErrorCode.CUDA_UNAVAILABLE, "device 'cuda' asked for, but the addon was built without CUDA (nvcc was not found, or XOPD_CUDA=0)");
    if (cuda.devices === 0) throw new XopdError(ErrorCode.CUDA_UNAVAILABLE, `device 'cuda' asked for, but no CUDA device is available${cuda.error ? ` (${cuda.error})` : ''}: use device 'cpu' or 'auto'`);
    return 'cuda';
  }
  if (device === 'auto') return cuda.devices > 0 ? 'cuda' : 'cpu';
  throw new XopdError(ErrorCode.ARG_VALUE, `device must be 'cpu', 'cuda' or 'auto', got ${String(device)}`);
}
