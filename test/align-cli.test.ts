// `xopd align`: the chunk table (coloured only when asked or on a terminal), the summary, --json,
// --file, tokenizer folders, and usage errors.
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { runCli } from './helpers/cli.js';

const run = runCli;

const ANSI = /\x1b\[[0-9;]*m/;

describe('xopd align', () => {
  afterEach(() => vi.restoreAllMocks());

  it('prints a table and a summary; Mistral as the teacher (a folder) adds one APPROX chunk', async () => {
    const folder = path.join('node_modules', '@lenml', 'tokenizer-llama2', 'models');
    const r = await run(['align', '--student', 'qwen3', '--teacher', folder, '--no-color', 'Sure, 12345 apples.']);
    expect(r.code).toBe(0);
    const lines = r.out.split('\n');
    expect(lines[0]).toMatch(/^#\s+student tokens\s+teacher tokens\s+flags$/);
    expect(lines[1]).toMatch(/^0\s+Sure\s+␣Sure\s+APPROX$/);
    expect(r.out).not.toMatch(ANSI);
    expect(r.out).toMatch(/chunks: \d+; 1:1 chunks: \d+ \(\d+\.\d%\)/);
    expect(r.out).toContain('student tokens masked: 1 (');
    expect(r.out).toContain('byte streams: differ (1 byte edits');
    expect(r.out).toContain('␣ is a space, · separates the tokens of a chunk'); // the marks are explained
    // --color forces colour (the small Mistral tokenizer on both sides: the same vocabulary, all 1:1).
    const colored = await run(['align', '--student', 'mistral', '--teacher', folder, '--color', 'Sure, 12345 apples.']);
    expect(colored.out).toMatch(ANSI);
    expect(colored.out).toContain('1:1 chunks: 11 (100.0%)');
  });

  it('--json with --file and --eos: ids, chunks with flags, and the end-of-turn 1:1 chunk', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'xopd-align-'));
    const file = path.join(dir, 'response.txt');
    writeFileSync(file, 'The total is 1,234,567 (café ☕).');
    const r = await run(['align', '--student', 'qwen3', '--teacher', 'llama3', '--file', file, '--eos', '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.chunks.length).toBe(j.summary.chunks);
    const last = j.chunks[j.chunks.length - 1];
    expect(last.studentTokens).toEqual(['<|im_end|>']);
    expect(last.teacherTokens).toEqual(['<|eot_id|>']);
    expect(last.flags).toEqual([]);
    expect(j.summary.bytesEqual).toBe(true);
    expect(j.summary.maskedStudentTokens).toBe(0);
    // Digits: Qwen 3 spells one per token, Llama 3 up to three: 3:1 chunks.
    expect(j.chunks.some((c: { studentTokens: string[]; teacherTokens: string[] }) => c.studentTokens.join('') === '234' && c.teacherTokens.length === 1)).toBe(true);
    expect(j.studentIds.length).toBe(j.summary.studentTokens);
  });

  it('usage errors exit 2 and say what to fix', async () => {
    const none = await run(['align', '--student', 'qwen3']);
    expect(none.code).toBe(2);
    expect(none.err).toContain('give a text or --file');
    const bad = await run(['align', '--max-chunk-tokens', '0', 'x']);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('--max-chunk-tokens must be at least 1');
    const missing = await run(['align', '--file', '/nonexistent/xopd.txt']);
    expect(missing.code).toBe(2);
    expect(missing.err).toContain('cannot read --file');
  });
});
