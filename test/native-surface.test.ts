// What ships and what verifies it, kept apart: the shipped addon exports exactly the names the
// TypeScript facade calls (no reference, bench kernel or test hook); the dev addon adds those; the
// package leaves every dev source out; each native stage reaches Node-API only from its binding;
// every error code native code throws is one the facade knows.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { devAddon, devAddonPath } from '../dev/addon.js';
import { alignPairsOn, byteDiffReference } from '../dev/align-reference.js';
import { alignPairs, alignTables, byteDiff, type AlignNative } from '../src/align/aligner.js';
import { addon, addonPath, packageRoot } from '../src/core/native.js';
import { ErrorCode, XopdError } from '../src/core/errors.js';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';

/** Every export, recursively: objects by key, classes with their prototype's methods and accessors. */
function surface(obj: object, prefix = ''): string[] {
  const out: string[] = [];
  for (const key of Object.keys(obj).sort()) {
    const value = (obj as Record<string, unknown>)[key];
    const name = prefix + key;
    out.push(name);
    if (typeof value === 'function') {
      const proto = (value as { prototype?: object }).prototype;
      if (proto) for (const m of Object.getOwnPropertyNames(proto).filter((m) => m !== 'constructor').sort()) out.push(`${name}#${m}`);
    } else if (value && typeof value === 'object') {
      out.push(...surface(value, `${name}.`));
    }
  }
  return out;
}

/** The shipped addon's whole surface. A new export is added here on purpose, or it is a leak. */
const SHIPPED = [
  'AlignTables', 'AlignTables#sameBytesIds',
  'SpanProjector', 'SpanProjector#byteOrder', 'SpanProjector#outputSize', 'SpanProjector#project', 'SpanProjector#trieBytes', 'SpanProjector#trieNodes',
  'TinyModel', 'TinyModel#backward', 'TinyModel#backwardReady', 'TinyModel#forward', 'TinyModel#generate', 'TinyModel#getGrads',
  'TinyModel#getOptimizerState', 'TinyModel#getParams', 'TinyModel#initParams', 'TinyModel#layout', 'TinyModel#paramCount',
  'TinyModel#setOptimizer', 'TinyModel#setOptimizerState', 'TinyModel#setParams', 'TinyModel#step', 'TinyModel#stepCount',
  'TinyModel#zeroGrads',
  'TokenTable', 'TokenTable#byteOffsets', 'TokenTable#vocab',
  'alignBatch', 'byteDiff', 'cudaSelfCheck', 'info',
  'modelKernels', 'modelKernels.crossEntropy', 'modelKernels.logprobsTopK',
  'policyGradient', 'releaseCudaMemory', 'setCudaWorkspaceLimit', 'setThreads', 'sparseDivergence',
];

/** What only verifies: never a shipped name. */
const DEV_ONLY = /reference|bench|simd|peak|copy|unfused|gemm|dev/i;

const root = packageRoot;
function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? files(p) : [path.relative(root, p).split(path.sep).join('/')];
  });
}
const nativeFiles = files(path.join(root, 'native'));
/** The dev sources (the same rule as CMakeLists.txt, scripts/list-sources.cjs and package.json "files"). */
const isDevSource = (f: string) => /^native\/dev\/|_reference\.[a-z]+$|_bench\.[a-z]+$/.test(f);

describe('the shipped addon', () => {
  it('exports exactly the facade\'s names, none of them a reference, bench kernel or test hook', () => {
    const names = surface(addon());
    expect(names.sort()).toEqual([...SHIPPED].sort());
    expect(names.filter((n) => DEV_ONLY.test(n))).toEqual([]);
    expect(addon().info().modules.filter((m) => m.startsWith('dev'))).toEqual([]);
  });

  it('the check bites: the dev addon holds the same names plus the dev ones, which the rule catches', () => {
    const dev = surface(devAddon());
    for (const n of SHIPPED) expect(dev).toContain(n);
    const extra = dev.filter((n) => !SHIPPED.includes(n));
    for (const n of ['policyGradientReference', 'sparseDivergenceReference', 'spanProjectionReference', 'lossSimd', 'copyParallel',
      'sparseDivergenceUnfused', 'lossCudaBench', 'modelDev.referenceForward', 'modelDev.measurePeak', 'modelDev.gemm',
      'alignDev.alignBatchReference', 'alignDev.alignBatchGeneral', 'alignDev.byteDiffReference']) expect(extra).toContain(n);
    // every extra export is caught by the name rule or sits under modelDev / alignDev
    expect(extra.filter((n) => !DEV_ONLY.test(n))).toEqual([]);
  });

  it('alignBatch and byteDiff refuse the aligner\'s test switches (reference, generalPath): E_ARG_VALUE naming the option', () => {
    const qwen = Tokenizer.load('qwen3'), llama = qwen; // one tokenizer on both sides: what is checked is the options
    const s = qwen.encode('Caf\u00e9 cr\u00e8me, 12 + 30 = 42.', { addSpecialTokens: false }), t = s;
    const a = new TextEncoder().encode('abcde'), b = new TextEncoder().encode('abXde');
    const native = addon<AlignNative>();
    const tables = alignTables(qwen.table, llama.table);
    /** The code and message of what f throws (raw native errors carry a code too). */
    const refusal = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return { code: (e as { code?: string }).code, message: (e as Error).message };
      }
      return { code: 'no error', message: '' };
    };
    for (const key of ['reference', 'generalPath']) {
      for (const value of [true, false]) {
        const opts = { maxChunkTokens: 6, [key]: value };
        // the binding itself, and the facades a caller might hand a stale option to
        for (const f of [() => native.alignBatch(tables, [s], [t], opts), () => native.byteDiff(a, b, { [key]: value }),
          () => alignPairs(qwen.table, llama.table, [[s, t]], opts as never), () => byteDiff(a, b, { [key]: value } as never)]) {
          const r = refusal(f);
          expect(r.code).toBe(ErrorCode.ARG_VALUE);
          expect(r.message).toContain(`'${key}'`);
          expect(r.message).toContain('dev/align-reference.ts');
        }
      }
    }
    expect(() => alignPairs(qwen.table, llama.table, [[s, t]], { maxChunkTokens: 6, reference: true } as never)).toThrow(XopdError);
    // Without the switch the same calls answer, and the dev addon answers for the switched ones.
    const [optimised] = alignPairs(qwen.table, llama.table, [[s, t]], { maxChunkTokens: 6 });
    expect(optimised!.bytesEqual).toBe(true);
    for (const path of ['general', 'reference'] as const)
      expect(alignPairsOn(path, qwen, llama, [[s, t]], { maxChunkTokens: 6 })[0]).toEqual(optimised);
    expect(byteDiff(a, b).edits).toBe(2);
    expect(byteDiffReference(a, b).edits).toBe(2);
  });

  it('holds no symbol of a reference kernel (nm), which the dev addon does', () => {
    const symbols = (file: string) => execFileSync('nm', ['-C', file], { encoding: 'utf8', maxBuffer: 256 << 20 });
    const references = (text: string) => text.split('\n').filter((l) => /xopd::(\w+::)*\w*Reference\(/.test(l));
    const shipped = symbols(addonPath()), dev = symbols(devAddonPath());
    expect(references(shipped)).toEqual([]);
    // not vacuous: the shipped addon's symbols are listed (its kernels are there), and the rule finds
    // the references in the dev addon, which links the same kernel objects
    expect(shipped).toContain('xopd::align::ByteDiff(');
    const found = references(dev).join('\n');
    for (const name of ['align::ByteDiffReference(', 'align::SyncCutsReference(', 'align::AlignPairReference(',
      'loss::PolicyGradientReference(', 'project::SpanProjectionReference(']) expect(found).toContain(`xopd::${name}`);
  });
});

describe('the native tree', () => {
  it('Node-API appears only in the bindings: addon.cc, common/binding.h, each stage\'s binding.{cc,h}, native/dev/', () => {
    const napi = nativeFiles.filter((f) => /\.(cc|h|cu|cuh)$/.test(f) && /#include <napi\.h>|\bNapi::/.test(readFileSync(path.join(root, f), 'utf8')));
    const allowed = (f: string) => f === 'native/addon.cc' || f === 'native/common/binding.h' || /^native\/[a-z]+\/binding\.(cc|h)$/.test(f) || f.startsWith('native/dev/');
    expect(napi.filter((f) => !allowed(f))).toEqual([]);
    // and the rule is not vacuous: each stage has its binding
    for (const stage of ['tokenizer', 'align', 'project', 'loss', 'model']) expect(napi).toContain(`native/${stage}/binding.cc`);
    expect(nativeFiles.filter((f) => /binding\.cc$/.test(f) && !f.startsWith('native/dev/')).length).toBe(5);
  });

  it('the node-gyp source list leaves every dev source out', () => {
    const listed = execFileSync(process.execPath, ['scripts/list-sources.cjs'], { cwd: root, encoding: 'utf8' }).split(' ');
    expect(listed.filter(isDevSource)).toEqual([]);
    const shippedCc = nativeFiles.filter((f) => f.endsWith('.cc') && !isDevSource(f));
    expect(listed.sort()).toEqual(shippedCc.sort());
    expect(nativeFiles.filter((f) => f.endsWith('.cc') && isDevSource(f)).length).toBeGreaterThanOrEqual(8);
  });

  it('every error code thrown by native code is an ErrorCode the facade maps', () => {
    const known = new Set<string>(Object.values(ErrorCode));
    const thrown = new Set<string>();
    for (const f of nativeFiles.filter((x) => /\.(cc|h|cu|cuh)$/.test(x)))
      for (const m of readFileSync(path.join(root, f), 'utf8').matchAll(/"(E_[A-Z_]+)"/g)) thrown.add(m[1]!);
    expect(thrown.size).toBeGreaterThan(10);
    expect(thrown).toContain('E_CUDA');
    expect([...thrown].filter((c) => !known.has(c))).toEqual([]);
  });
});

describe('the package', () => {
  it('leaves out every dev source, the dev TypeScript and the benches (npm pack --dry-run)', () => {
    const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const packed: string[] = JSON.parse(out)[0].files.map((f: { path: string }) => f.path);
    expect(packed.filter((f) => isDevSource(f) || /^(dev|bench|test)\/|^dist\/(dev|bench|test)\//.test(f))).toEqual([]);
    // what the install builds from is there
    for (const f of ['CMakeLists.txt', 'binding.gyp', 'scripts/build-native.js', 'scripts/list-sources.cjs', 'native/addon.cc', 'native/loss/binding.cc'])
      expect(packed).toContain(f);
    const nativeShipped = nativeFiles.filter((f) => !isDevSource(f));
    expect(packed.filter((f) => f.startsWith('native/')).sort()).toEqual(nativeShipped.sort());
  });
});
