// The source tree reads as the data flow (docs/ARCHITECTURE.md): each folder of src/ is one stage or
// one outer layer, and a module imports only from its own folder or from stages before it. This test
// reads every import (static, type-only, dynamic, re-export) of every source file and fails on one
// that runs upward, on a folder missing from the order, and on shipped code reaching dev/, bench/
// or test/.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '..');

/** The data flow, first to last. A folder may import from itself and from folders before it. */
export const LAYERS = ['core', 'tokenizer', 'align', 'project', 'loss', 'model', 'tasks', 'train', 'serve', 'run', 'report', 'experiment', 'cli'] as const;

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...sources(p));
    else if (/\.(ts|mts|cts)$/.test(e.name) && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Relative import specifiers of a file, resolved to paths under the repository. */
export function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const re = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(['"])(\.{1,2}\/[^'"]+)\1/g;
  const out: string[] = [];
  for (const m of text.matchAll(re)) out.push(path.resolve(path.dirname(file), m[2]!));
  return out;
}

/** The layer of a path under <repo>/src/ ('index' for src/index.ts and other top-level entry files). */
function layerOf(p: string, repo = root): string {
  const rel = path.relative(path.join(repo, 'src'), p).split(path.sep);
  return rel.length === 1 ? 'index' : rel[0]!;
}

/** Every import under <repo>/src that breaks the layering, one line each. */
function violations(repo = root): string[] {
  const bad: string[] = [];
  const rank = (l: string) => (l === 'index' ? LAYERS.length : LAYERS.indexOf(l as (typeof LAYERS)[number]));
  const layerOf_ = (p: string) => layerOf(p, repo);
  for (const file of sources(path.join(repo, 'src'))) {
    const from = layerOf_(file);
    if (rank(from) < 0) bad.push(`${path.relative(repo, file)}: folder src/${from} is not in the layer order`);
    for (const target of importsOf(file)) {
      const relTarget = path.relative(repo, target);
      if (!relTarget.startsWith(`src${path.sep}`)) {
        bad.push(`${path.relative(repo, file)} imports ${relTarget}: shipped code reaches outside src/`);
        continue;
      }
      const to = layerOf_(target);
      if (rank(to) > rank(from)) bad.push(`${path.relative(repo, file)} (${from}) imports ${relTarget} (${to}): upward`);
    }
  }
  return bad;
}

describe('layering', () => {
  it('every import in src/ runs down the data flow, and shipped code never reaches dev/, bench/ or test/', () => {
    const files = sources(path.join(root, 'src'));
    expect(files.length).toBeGreaterThan(40);
    expect(violations()).toEqual([]);
  });

  it('the check bites: a made-up tree with each kind of bad import has each one reported, and nothing else', () => {
    const repo = mkdtempSync(path.join(os.tmpdir(), 'xopd-layering-'));
    const put = (rel: string, text: string) => {
      mkdirSync(path.dirname(path.join(repo, rel)), { recursive: true });
      writeFileSync(path.join(repo, rel), text);
    };
    try {
      put('src/core/errors.ts', 'export const x = 1;\n');
      put('src/align/ok.ts', "import { x } from '../core/errors.js';\nexport { x };\n");  // downward: fine
      put('src/project/static.ts', "import { y } from '../loss/kernel.js';\n");            // static, upward
      put('src/project/typeonly.ts', "import type { Y } from '../train/options.js';\n");   // type-only, upward
      put('src/align/dynamic.ts', "const m = await import('../serve/server.js');\n");     // dynamic, upward
      put('src/tokenizer/reexport.ts', "export * from '../cli/main.js';\n");               // re-export, upward
      put('src/loss/dev.ts', "import { ref } from '../../dev/reference.js';\n");          // shipped code reaching dev/
      put('src/misc/stray.ts', 'export {};\n');                                              // a folder in no layer
      put('src/index.ts', "export * from './cli/main.js';\n");                                // the entry may import anything
      expect(violations(repo).sort()).toEqual([
        'src/align/dynamic.ts (align) imports src/serve/server.js (serve): upward',
        'src/loss/dev.ts imports dev/reference.js: shipped code reaches outside src/',
        'src/misc/stray.ts: folder src/misc is not in the layer order',
        'src/project/static.ts (project) imports src/loss/kernel.js (loss): upward',
        'src/project/typeonly.ts (project) imports src/train/options.js (train): upward',
        'src/tokenizer/reexport.ts (tokenizer) imports src/cli/main.js (cli): upward',
      ]);
    } finally {
      rmSync(repo, { recursive: true, force: true });
    }
  });
});
