// The source tree reads as the data flow (docs/ARCHITECTURE.md): each folder of src/ is one stage or
// one outer layer, and a module imports only from its own folder or from stages before it. This test
// reads every import (static, type-only, dynamic, re-export) of every source file and fails on one
// that runs upward, on a folder missing from the order, and on shipped code reaching dev/, bench/
// or test/.
import { readdirSync, readFileSync } from 'node:fs';
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

/** The layer of a path under src/ ('index' for src/index.ts and other top-level entry files). */
function layerOf(p: string): string {
  const rel = path.relative(path.join(root, 'src'), p).split(path.sep);
  return rel.length === 1 ? 'index' : rel[0]!;
}

function violations(): string[] {
  const bad: string[] = [];
  const rank = (l: string) => (l === 'index' ? LAYERS.length : LAYERS.indexOf(l as (typeof LAYERS)[number]));
  for (const file of sources(path.join(root, 'src'))) {
    const from = layerOf(file);
    if (rank(from) < 0) bad.push(`${path.relative(root, file)}: folder src/${from} is not in the layer order`);
    for (const target of importsOf(file)) {
      const relTarget = path.relative(root, target);
      if (!relTarget.startsWith(`src${path.sep}`)) {
        bad.push(`${path.relative(root, file)} imports ${relTarget}: shipped code reaches outside src/`);
        continue;
      }
      const to = layerOf(target);
      if (rank(to) > rank(from)) bad.push(`${path.relative(root, file)} (${from}) imports ${relTarget} (${to}): upward`);
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

  it('the check bites: an upward import and an import of dev/ are both reported', () => {
    // The same rule applied to two made-up edges, so a broken resolver cannot pass silently.
    const rank = (l: string) => LAYERS.indexOf(l as (typeof LAYERS)[number]);
    expect(rank('project')).toBeGreaterThan(rank('align'));
    expect(rank('loss')).toBeGreaterThan(rank('project'));
    const sample = path.join(root, 'src', 'project', 'span-projection.ts');
    const imports = importsOf(sample).map((p) => path.relative(root, p));
    expect(imports.some((p) => p.startsWith(path.join('src', 'align')))).toBe(true);
    expect(layerOf(path.join(root, 'src', 'loss', 'x.ts'))).toBe('loss');
    expect(layerOf(path.join(root, 'src', 'index.ts'))).toBe('index');
  });
});
