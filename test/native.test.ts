// The addon's info and the native token table's own argument checks.
import { describe, expect, it } from 'vitest';
import { info, setThreads } from '../src/index.js';
import { addon } from '../src/core/native.js';

describe('native addon', () => {
  it('info() reports version, Node-API 8, threads and CUDA', () => {
    const i = info();
    expect(i.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(i.napi).toBe(8);
    expect(i.threads).toBeGreaterThanOrEqual(1);
    expect(typeof i.cuda.compiled).toBe('boolean');
    expect(i.cuda.devices).toBeGreaterThanOrEqual(0);
    if (!i.cuda.compiled) expect(i.cuda.devices).toBe(0);
    expect(i.modules).toContain('token_table');
  });
  it('setThreads validates its argument', () => {
    expect(() => setThreads(0)).toThrow(expect.objectContaining({ code: 'E_ARG_RANGE' }));
    expect(() => setThreads(1.5)).toThrow(expect.objectContaining({ code: 'E_ARG_TYPE' }));
    setThreads(info().threads);
  });
  it('TokenTable rejects inconsistent tables without crashing', () => {
    const { TokenTable } = addon<{ TokenTable: new (...a: unknown[]) => unknown }>();
    const bytes = new Uint8Array([1, 2, 3]);
    const expectCode = (f: () => unknown, c: string) => expect(f).toThrow(expect.objectContaining({ code: c }));
    expectCode(() => new TokenTable(bytes, new Uint32Array([0, 2]), new Uint8Array(1)), 'E_TOKEN_TABLE');
    expectCode(() => new TokenTable(bytes, new Uint32Array([0, 3, 2, 3]), new Uint8Array(3)), 'E_TOKEN_TABLE');
    expectCode(() => new TokenTable(bytes, new Uint32Array([0, 3]), new Uint8Array(5)), 'E_TOKEN_TABLE');
    expectCode(() => new TokenTable(bytes, new Int32Array([0, 3]), new Uint8Array(1)), 'E_ARG_TYPE');
    expectCode(() => new TokenTable(), 'E_ARG_TYPE');
  });
});
