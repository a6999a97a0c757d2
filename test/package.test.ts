// What a user does with the package: `npm pack`, install the tarball into an empty project with
// npm's defaults, then use it from there — require() and import() give the same API, the CLI runs,
// and a shipped model evaluates through the installed package. The install builds the addon from the
// packed sources (CPU only here, XOPD_CUDA=0, to keep CI short; the CUDA build is the same CMake
// the repository's own `npm ci` runs).
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '..');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'xopd-package-'));
const project = path.join(tmp, 'project');
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function sh(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, ...env }, timeout: 15 * 60_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status} (${r.signal ?? 'no signal'}):\n${r.stdout}\n${r.stderr}`);
  return r;
}

let tarball = '';
beforeAll(() => {
  sh('npm', ['pack', '--pack-destination', tmp, '--loglevel=warn'], root);
  tarball = path.join(tmp, readdirSync(tmp).find((f) => f.endsWith('.tgz'))!);
  mkdirSync(project);
  writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }));
  // npm's defaults: hoisted node_modules, install scripts run.
  sh('npm', ['install', tarball, '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=warn'], project, { XOPD_CUDA: '0' });
}, 15 * 60_000);

describe('the packed package, installed into an empty project', () => {
  it('require("xopd") and import("xopd") give the same API, and the addon loads', () => {
    const script = `
      const viaRequire = require('xopd');
      import('xopd').then((viaImport) => {
        const names = Object.keys(viaImport).filter((k) => k !== 'default').sort();
        const same = names.every((k) => viaImport[k] === viaRequire[k]);
        const info = viaRequire.info();
        console.log(JSON.stringify({ names: names.length, same, requireNames: Object.keys(viaRequire).length, napi: info.napi, tok: viaRequire.Tokenizer.load('qwen3').encode('12+3', { addSpecialTokens: false }).length }));
      });`;
    const out = JSON.parse(sh(process.execPath, ['-e', script], project).stdout);
    expect(out.names).toBeGreaterThan(40);
    expect(out.same).toBe(true);
    expect(out.napi).toBe(8);
    expect(out.tok).toBe(4); // Qwen 3 writes every digit as a token
  });

  it('the internals subpath resolves for both module systems', () => {
    const out = sh(process.execPath, ['-e', "const i = require('xopd/internal'); import('xopd/internal').then((m) => console.log(typeof i.byteDiff, m.byteDiff === i.byteDiff))"], project).stdout;
    expect(out.trim()).toBe('function true');
  });

  it('npx xopd info and npx xopd eval on a shipped model, through the installed package', () => {
    expect(sh('npx', ['xopd', 'info'], project).stdout).toMatch(/Node-API 8/);
    const r = JSON.parse(sh('npx', ['xopd', 'eval', '--model', path.join('node_modules', 'xopd', 'models', 'student-llama3'), '--n', '20', '--json'], project).stdout);
    expect(r.n).toBe(20);
    expect(r.accuracy).toBeGreaterThan(0.1); // the shipped student solves about a third of the test problems
  });

  it('the package holds no dev addon, reference, bench or test file, and the models and docs it needs', () => {
    const listed = sh('tar', ['-tzf', tarball], tmp).stdout.split('\n').filter(Boolean);
    expect(listed).toContain('package/models/student-llama3/model.safetensors');
    expect(listed).toContain('package/models/teacher-qwen3/model.safetensors');
    expect(listed).toContain('package/docs/DESIGN.md');
    expect(listed).toContain('package/LICENSE');
    expect(listed.filter((f) => /_reference\.|_bench\.|native\/dev\/|\/dev\/|dist\/bench|(^|\/)test\//.test(f))).toEqual([]);
  });
});
