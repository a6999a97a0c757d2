// `xopd pretrain` and `xopd eval` through the CLI entry point: a tiny run saves a loadable folder,
// re-running it reproduces the weights byte for byte (on another thread count too), eval --json
// prints one object.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from './helpers/cli.js';
import { info, setThreads } from '../src/core/native.js';
import { Model } from '../src/model/model.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'xopd-cli-model-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const run = runCli;

const tiny = ['--tokenizer', 'llama3', '--dim', '16', '--layers', '1', '--heads', '2', '--hidden', '32', '--max-seq', '160',
  '--steps', '4', '--batch', '4', '--lr', '0.01', '--eval-every', '0', '--test-n', '4', '--seed', '3'];

describe('xopd pretrain / eval', () => {
  it('trains, saves atomically, and reproduces the same bytes on another thread count', async () => {
    const before = info().threads;
    const a = path.join(tmp, 'a'), b = path.join(tmp, 'b');
    try {
      const r1 = await run(['pretrain', ...tiny, '--out', a, '--threads', '1']);
      expect(r1.code).toBe(0);
      expect(r1.err).toMatch(/step 4\/4/);
      expect(r1.err).toMatch(/test accuracy/);
      const r2 = await run(['pretrain', ...tiny, '--out', b, '--threads', '2']);
      expect(r2.code).toBe(0);
    } finally {
      setThreads(before);
    }
    const wa = readFileSync(path.join(a, 'model.safetensors')), wb = readFileSync(path.join(b, 'model.safetensors'));
    expect(wa.equals(wb)).toBe(true);
    const cfg = JSON.parse(readFileSync(path.join(a, 'config.json'), 'utf8'));
    expect(cfg.training).toMatchObject({ steps: 4, seed: 3, stepsDone: 4 });
    expect(cfg.training.command).toContain('pretrain');
    const m = Model.load(a);
    expect(m.config).toMatchObject({ hiddenSize: 16, numLayers: 1, task: 'arith-v2' });
    expect(m.stepCount).toBe(0); // optimizer state is not part of a model folder
  });

  it('--init continues from a saved model (its shape and tokenizer)', async () => {
    const c = path.join(tmp, 'c');
    const r = await run(['pretrain', '--init', path.join(tmp, 'a'), '--steps', '2', '--batch', '2', '--eval-every', '0', '--test-n', '2', '--dim', '32', '--out', c]);
    expect(r.code).toBe(0);
    const m = Model.load(c);
    expect(m.config).toMatchObject({ hiddenSize: 16, numLayers: 1, tokenizer: 'llama3' });
    const t = JSON.parse(readFileSync(path.join(c, 'config.json'), 'utf8')).training;
    expect(t.command).toMatch(/--init .*--tokenizer llama3 --dim 16 /);
    expect(t.initTraining).toMatchObject({ steps: 4, seed: 3 }); // the whole history travels along
    expect(Buffer.from(m.getParams().buffer).equals(Buffer.from(Model.load(path.join(tmp, 'a')).getParams().buffer))).toBe(false);
  });

  it('eval --json prints one object with accuracy and n', async () => {
    const dir = path.join(tmp, 'a');
    const r = await run(['eval', '--model', dir, '--n', '6', '--seed', '2', '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j).toMatchObject({ n: 6, seed: 2, split: 'test' });
    expect(j.accuracy).toBeGreaterThanOrEqual(0);
    expect(j.accuracy).toBeLessThanOrEqual(1);
    const text = await run(['eval', '--model', dir, '--n', '3']);
    expect(text.out).toMatch(/accuracy \d+\.\d% \(\d\/3\)/);
  });

  it('eval --samples reports how varied and how right the samples are', async () => {
    const r = await run(['eval', '--model', path.join(tmp, 'a'), '--n', '3', '--samples', '2', '--max-tokens', '8', '--json']);
    expect(r.code, r.err).toBe(0);
    const s = JSON.parse(r.out).sampling;
    expect(s).toMatchObject({ samples: 2, temperature: 1 });
    expect(s.distinctPerProblem).toBeGreaterThanOrEqual(1);
    expect(s.distinctPerProblem).toBeLessThanOrEqual(2);
    expect(s.nllPerToken).toBeGreaterThan(0); // an untrained model's samples are far from certain
    expect(s.tokensPerAnswer).toBeGreaterThan(0);
    expect(s.tokensPerAnswer).toBeLessThanOrEqual(8);
  });

  it('refuses bad usage and bad folders', async () => {
    expect((await run(['pretrain', '--steps', '0', '--out', path.join(tmp, 'x')])).code).toBe(2);
    expect((await run(['pretrain', ...tiny])).code).toBe(2); // no --out
    const past = await run(['pretrain', '--steps', '10', '--stop-after', '11', '--out', path.join(tmp, 'x')]);
    expect(past.code).toBe(2);
    expect(past.err).toMatch(/--stop-after 11 is past the end of the schedule \(--steps 10\)/);
    expect((await run(['eval', '--model', path.join(tmp, 'missing')])).code).toBe(1);
    expect((await run(['eval', '--model', path.join(tmp, 'a'), '--split', 'dev'])).code).toBe(2);
  });
});
