// Every CLI command x bad command lines and bad files: the exit code (2 usage, 1 failure) and an
// `error E_...` line that says what to fix (docs/RELIABILITY.md, CLI rows). In-process through
// main(), like the other CLI tests; one case runs the built CLI as a real process to check that
// exit codes and the absence of a signal hold outside the test runner too.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from './helpers/cli.js';

const run = runCli;

const dir = mkdtempSync(path.join(os.tmpdir(), 'xopd-cli-'));
const badJson = path.join(dir, 'bad-json');
mkdirSync(badJson);
writeFileSync(path.join(badJson, 'tokenizer.json'), '{"model": {"type": "BPE", "vocab": ');
const emptyDir = path.join(dir, 'empty');
mkdirSync(emptyDir);
const invalidUtf8 = path.join(dir, 'invalid.txt');
writeFileSync(invalidUtf8, Buffer.from([0x41, 0xff, 0xfe, 0xc3, 0x28, 0x42]));
const mistral = path.join('node_modules', '@lenml', 'tokenizer-llama2', 'models');

/** [what is tried, argv, exit code, what stderr must say (null: stderr empty, exit 0)] */
const CASES: Array<[string, string[], number, RegExp | null]> = [
  ['no command', [], 2, null],
  ['unknown command', ['distil'], 2, /unknown command 'distil'/],
  ['unknown option', ['tokenize', '--tokeniser', 'qwen3', 'x'], 2, /E_CLI_USAGE/],
  ['option without its value', ['tokenize', 'x', '--tokenizer'], 2, /E_CLI_USAGE/],
  ['int option out of range', ['align', '--rows', '-1', 'x'], 2, /E_CLI_USAGE.*--rows/],
  ['int option not a number', ['align', '--max-chunk-tokens', 'six', 'x'], 2, /E_CLI_USAGE.*--max-chunk-tokens/],
  ['tokenize: no text', ['tokenize'], 2, /give a text or --file/],
  ['tokenize: --file missing', ['tokenize', '--file', path.join(dir, 'nope.txt')], 2, /E_CLI_USAGE: cannot read --file/],
  ['tokenize: --file is a folder', ['tokenize', '--file', dir], 2, /E_CLI_USAGE: cannot read --file/],
  ['tokenize: --file and a text', ['tokenize', '--file', invalidUtf8, 'x'], 2, /not both/],
  ['tokenize: unknown tokenizer name', ['tokenize', '--tokenizer', 'gpt5', 'x'], 1, /E_TOKENIZER_NOT_FOUND/],
  ['tokenize: folder without tokenizer.json', ['tokenize', '--tokenizer', emptyDir, 'x'], 1, /E_TOKENIZER_(NOT_FOUND|INVALID).*tokenizer\.json/],
  ['tokenize: truncated tokenizer.json', ['tokenize', '--tokenizer', badJson, 'x'], 1, /E_TOKENIZER_INVALID/],
  ['tokenize: --chat on a tokenizer without a chat template', ['tokenize', '--tokenizer', mistral, '--chat', 'x'], 1, /E_CHAT_TEMPLATE/],
  ['tokenize: a file of invalid UTF-8 (decoded as U+FFFD, not an error)', ['tokenize', '--tokenizer', 'llama3', '--file', invalidUtf8, '--json'], 0, null],
  ['align: unknown teacher', ['align', '--teacher', '/nonexistent/tok', 'x'], 1, /E_TOKENIZER_NOT_FOUND/],
  ['align: truncated teacher tokenizer.json', ['align', '--teacher', badJson, 'x'], 1, /E_TOKENIZER_INVALID/],
  ['align: a file of invalid UTF-8', ['align', '--file', invalidUtf8, '--json'], 0, null],
  ['info: a stray positional', ['info', 'extra'], 2, /E_CLI_USAGE/],
  ['start: a stray option', ['start', '--fast'], 2, /E_CLI_USAGE/],
  ['start: a --student folder that does not exist', ['start', '--student', path.join(dir, 'no-student'), '--out', path.join(dir, 'start-run'), '--no-progress'], 1, /E_MODEL_NOT_FOUND.*no-student/],
  ['experiment: an unknown arm', ['experiment', '--arms', 'x'], 2, /E_CLI_USAGE/],
  ['distill: a --config file that does not exist', ['distill', '--config', path.join(dir, 'none.json')], 2, /^xopd distill: error E_CLI_USAGE: --config .*none\.json/],
  ['bench: an unknown option', ['bench', '--fastest'], 2, /E_CLI_USAGE/],
  ['serve-teacher: a model folder that does not exist', ['serve-teacher', '--model', path.join(dir, 'no-model'), '--port', '0'], 1, /E_MODEL_NOT_FOUND/],
  ['eval: a model folder without config.json', ['eval', '--model', emptyDir], 1, /E_MODEL_NOT_FOUND.*config\.json/],
  ['pretrain: --out below a file (found before training)', ['pretrain', '--steps', '100000', '--out', path.join(invalidUtf8, 'model')], 1, /E_WRITE: cannot write the model folder.*a part of the path is a file/],
];

let tried = 0;
afterAll(() => console.log(`reliability-cli: ${tried} command lines tried, none crashed`));

describe('CLI: bad command lines and files', () => {
  it.each(CASES)('%s', async (_what, argv, code, says) => {
    const r = await run(argv);
    expect(r.code).toBe(code);
    if (says) expect(r.err).toMatch(says);
    if (code === 0) expect(r.err).toBe('');
    // Every failure is an XopdError line (or the usage text), never a raw stack trace.
    expect(r.err).not.toMatch(/^\s+at /m);
    // ... and names the command once.
    if (argv[0]) expect(r.err.split(`xopd ${argv[0]}:`).length - 1).toBeLessThanOrEqual(1);
    tried++;
  });

  const cli = path.join('dist', 'src', 'cli', 'main.js');
  it.runIf(existsSync(cli))('the built CLI as a process: exit codes 2 and 1, no signal', () => {
    const usage = spawnSync(process.execPath, [cli, 'tokenize', '--file', path.join(dir, 'nope.txt')], { encoding: 'utf8', timeout: 60_000 });
    expect(usage.signal).toBeNull();
    expect(usage.status).toBe(2);
    expect(usage.stderr).toMatch(/E_CLI_USAGE: cannot read --file/);
    const failure = spawnSync(process.execPath, [cli, 'tokenize', '--tokenizer', badJson, 'x'], { encoding: 'utf8', timeout: 60_000 });
    expect(failure.signal).toBeNull();
    expect(failure.status).toBe(1);
    expect(failure.stderr).toMatch(/E_TOKENIZER_INVALID/);
    tried += 2;
  });

  it.runIf(existsSync(cli))('a missing or corrupt addon (XOPD_ADDON): E_NATIVE_UNAVAILABLE saying how to rebuild, exit 1, no signal', () => {
    const corrupt = path.join(dir, 'corrupt.node');
    writeFileSync(corrupt, 'not an ELF file');
    for (const [file, says] of [[path.join(dir, 'missing.node'), /not built .*npm run build:native/], [corrupt, /cannot be loaded .*npm run build:native/]] as const) {
      // LD_PRELOAD stays as it is (the sanitizer run preloads ASan for every node it starts).
      const r = spawnSync(process.execPath, [cli, 'info'], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, XOPD_ADDON: file } });
      expect(r.signal).toBeNull();
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/error E_NATIVE_UNAVAILABLE/);
      expect(r.stderr).toMatch(says);
      tried++;
    }
  });
});
