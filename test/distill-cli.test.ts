/**
 * `xopd distill --help` documents every option, and wrong options or values are refused with a
 * message and exit code 2 before any work starts (in-process, through the CLI's own main()).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from './helpers/cli.js';
import { distillCommand, readConfigFile } from '../src/cli/commands/distill.js';
import { serveTeacherCommand } from '../src/cli/commands/serve-teacher.js';
import { DISTILL_OPTIONS, parseLoss, resolveDistillOptions } from '../src/train/options.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'xopd-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const run = (...argv: string[]) => runCli(argv);

describe('xopd distill --help', () => {
  it('documents every option the command accepts, with its default or meaning', async () => {
    const { code, out } = await run('distill', '--help');
    expect(code).toBe(0);
    const options = Object.entries(distillCommand.spec.options);
    expect(options.length).toBeGreaterThan(25);
    for (const [name, spec] of options) {
      const line = out.split('\n').find((l) => l.trimStart().startsWith(`--${name} `) || l.trim() === `--${name}` || l.trimStart().startsWith(`--${name}  `));
      expect(line, `--${name} is not in the help`).toBeDefined();
      expect(line!).toContain(spec.help.slice(0, 30));
    }
    // the defaults shown are the ones the code resolves (one table for both)
    expect(out).toMatch(/--batch-size <int>\s+prompts per step \[1\.\.65536\] \(default: 16\)/);
    for (const [key, def] of Object.entries(DISTILL_OPTIONS)) {
      const flag = key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
      const line = out.split('\n').find((l) => l.trimStart().startsWith(`--${flag} `))!;
      expect(line, `--${flag}`).toContain(`(default: ${def.kind === 'parsed' ? def.show(def.default) : def.default})`);
      expect(resolveDistillOptions({})[key as keyof typeof DISTILL_OPTIONS]).toEqual(def.default);
    }
    expect(out).toMatch(/--loss .* \(default: chunk-pg\)/);
    expect(out).toContain('Examples:');
  });

  it('serve-teacher and bench have help too', async () => {
    const s = await run('serve-teacher', '--help');
    expect(s.code).toBe(0);
    for (const name of Object.keys(serveTeacherCommand.spec.options)) expect(s.out).toContain(`--${name}`);
    expect((await run('bench', '--help')).code).toBe(0);
    expect((await run('--help')).out).toMatch(/distill .*\n(.|\n)*serve-teacher/);
  });
});

describe('wrong options and values are refused (exit 2, a message, no work done)', () => {
  const cases: Array<[string[], RegExp]> = [
    [['--stepz', '3'], /unknown option --stepz/],
    [['--steps', 'three'], /--steps must be an integer, got 'three'/],
    [['--steps', '-1'], /--steps must be at least 0/],
    [['--batch-size', '0'], /--batch-size must be at least 1/],
    [['--divergence', 'kl'], /--divergence must be one of forward-kl, reverse-kl, jsd, got 'kl'/],
    [['--projection', 'longest'], /--projection must be one of first, prefix, got 'longest'/],
    [['--beta', '1.5'], /--beta must be at most 1/],
    [['--credit', 'equal'], /--credit must be one of proportional, uniform/],
    [['--loss', 'ppo'], /loss must be 'chunk-pg', 'span-kl' or weights/],
    [['--loss', 'chunk-pg=1,kl=2'], /names no signal/],
    [['--loss', 'span-kl', '--top-k', '0'], /topK must be at least 1/],
    [['--teacher-url', 'http://127.0.0.1:1'], /--teacher-url needs --teacher-tokenizer/],
    [['--teacher', 'x', '--teacher-url', 'http://h', '--teacher-tokenizer', 'qwen3'], /not both/],
    [['--teacher-retries', '2'], /--teacher-retries applies to a served teacher/],
    [['--steps'], /--steps needs a value/],
    [['extra'], /unexpected argument 'extra'/],
  ];
  for (const [argv, msg] of cases) {
    it(argv.join(' '), async () => {
      const r = await run('distill', '--out', path.join(tmp, 'never'), ...argv);
      expect(r.code).toBe(2);
      expect(r.err).toMatch(msg);
      expect(r.err).toMatch(/^xopd distill: error E_CLI_USAGE|E_ARG/);
    });
  }

  it('--config: a JSON file of the same options, validated the same way', async () => {
    const good = path.join(tmp, 'good.json');
    writeFileSync(good, JSON.stringify({ steps: 7, loss: { chunkPg: 1, spanKl: 0.5 }, 'batch-size': 3, 'teacher-url': ['http://a', 'http://b'] }));
    const a = readConfigFile(good);
    expect(a.steps).toBe(7);
    expect(a['batch-size']).toBe(3);
    expect(a.loss).toBe('chunk-pg=1,span-kl=0.5');
    expect(a['teacher-url']).toEqual(['http://a', 'http://b']);
    const bad: Array<[unknown, RegExp]> = [
      [{ stepz: 3 }, /unknown option 'stepz'/],
      [{ steps: 'many' }, /--steps must be an integer, got 'many' \(in --config/],
      [{ divergence: 'x' }, /--divergence must be one of/],
      [{ steps: [1, 2] }, /'steps' has a value of the wrong type/],
      [{ resume: 'x' }, /only a command-line option/],
      [[1, 2], /must hold a JSON object/],
    ];
    for (const [json, msg] of bad) {
      const f = path.join(tmp, 'bad.json');
      writeFileSync(f, JSON.stringify(json));
      const r = await run('distill', '--config', f);
      expect(r.code, JSON.stringify(json)).toBe(2);
      expect(r.err).toMatch(msg);
    }
    writeFileSync(path.join(tmp, 'broken.json'), '{"steps": ');
    expect((await run('distill', '--config', path.join(tmp, 'broken.json'))).err).toMatch(/--config .*broken\.json: .*JSON/);
  });

  it('--resume refuses options that would change the run, and a folder that is not a run', async () => {
    const r = await run('distill', '--resume', tmp, '--loss', 'span-kl');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/only --steps may change \(remove --loss\)/);
    const r2 = await run('distill', '--resume', path.join(tmp, 'nothing'));
    expect(r2.code).toBe(1);
    expect(r2.err).toMatch(/E_CONFIG: .* is not a distillation run/);
  });

  it('serve-teacher needs --model and refuses a bad port', async () => {
    expect((await run('serve-teacher')).err).toMatch(/--model <dir> is required/);
    expect((await run('serve-teacher', '--model', 'x', '--port', '70000')).code).toBe(2);
  });
});

describe('options in the API', () => {
  it('resolveDistillOptions names the option at fault', () => {
    expect(() => resolveDistillOptions({ batchSize: 0 })).toThrow(/batchSize must be in \[1, 65536\], got 0/);
    expect(() => resolveDistillOptions({ divergence: 'kl' as never })).toThrow(/divergence must be one of/);
    expect(() => resolveDistillOptions({ projection: 'longest' as never })).toThrow(/projection must be one of 'first', 'prefix'/);
    expect(resolveDistillOptions({}).projection).toBe('prefix');
    expect(() => resolveDistillOptions({ stepz: 1 } as never)).toThrow(/unknown distill option 'stepz'/);
    expect(resolveDistillOptions({ loss: { chunkPg: 1, spanKl: 2 } }).loss).toEqual({ chunkPg: 1, spanKl: 2 });
    expect(parseLoss('span-kl=1')).toEqual({ chunkPg: 0, spanKl: 1 });
    expect(() => parseLoss({ chunkPg: 0, spanKl: 0 })).toThrow(/must not all be zero/);
    expect(() => parseLoss({ chunkPg: -1 })).toThrow(/loss.chunkPg must be in/);
  });
});
