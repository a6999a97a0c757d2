/**
 * The dev addon (build/Release/xopd_dev.node): the shipped addon's exports plus what verifies them
 * (float64 references, bench kernels, test hooks: native/dev/ and native/<stage>/*_reference.cc,
 * *_bench.cc, *_bench.cu). Built by `npm install` / `npm run build:native` in the repository, never
 * shipped; only tests and benches load it. XOPD_DEV_ADDON overrides its path (the sanitizer build).
 *
 * It is a separate library: its kernels, thread pool and CPU-path switch are its own copies (the
 * same compiled objects as the shipped addon's), and native objects (TokenTable, TinyModel) do not
 * cross between the two.
 */
import path from 'node:path';
import { loadAddonFile, packageRoot, setThreads as setShippedThreads, type BaseNative } from '../src/core/native.js';
import { callNative } from '../src/core/errors.js';
import type { NativeTokenTable, Tokenizer } from '../src/tokenizer/tokenizer.js';

let loaded: BaseNative | undefined;

export function devAddonPath(): string {
  if (process.env.XOPD_DEV_ADDON) return path.resolve(process.env.XOPD_DEV_ADDON);
  return path.join(packageRoot, 'build', 'Release', 'xopd_dev.node');
}

export function devAddon<T = unknown>(): BaseNative & T {
  if (!loaded) loaded = loadAddonFile<BaseNative>(devAddonPath(), "'npm run build:native' in the repository (the dev addon is built only from a checkout)");
  return loaded as BaseNative & T;
}

/** Worker threads of both addons (benches time shipped kernels against dev baselines). */
export function setThreads(n: number): void {
  setShippedThreads(n);
  callNative(() => devAddon().setThreads(n));
}

interface TokenTableNative {
  TokenTable: new (bytes: Uint8Array, offsets: Uint32Array, special: Uint8Array) => NativeTokenTable;
}

const devTables = new WeakMap<Tokenizer, NativeTokenTable>();

/** The dev addon's own token table of a tokenizer (the shipped addon's objects do not cross addons). */
export function devTokenTable(tok: Tokenizer): NativeTokenTable {
  let t = devTables.get(tok);
  if (!t) {
    const { bytes, offsets, special } = tok.byteTable;
    t = callNative(() => new (devAddon<TokenTableNative>().TokenTable)(bytes, offsets, special));
    devTables.set(tok, t);
  }
  return t;
}
