// Model folders: safetensors round trip, atomic save, and every way a folder or call can be wrong.
import { mkdtempSync, readFileSync, writeFileSync, existsSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Model } from '../src/model/model.js';
import { digitEmbeddings } from '../src/model/init.js';
import { readSafetensors } from '../src/model/safetensors.js';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { taskVocabIds, generateProblems, promptIds, responseIds } from '../src/tasks/arithmetic.js';

const tok = Tokenizer.load('llama3');
const vocabIds = taskVocabIds(tok);
const tmp = mkdtempSync(path.join(os.tmpdir(), 'xopd-model-io-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const make = (seed = 1) => Model.create({ tokenizer: 'llama3', vocabIds, hiddenSize: 16, numLayers: 2, numHeads: 2, intermediateSize: 24, mlp: 'gelu', maxSeqLen: 160, task: 'arith-v2' }, { seed, tokenizer: tok });
const problems = generateProblems({ split: 'test', count: 3, seed: 1 });
const pairs = problems.map((p) => ({ prompt: promptIds(tok, p), response: responseIds(tok, p) }));
const code = (f: () => unknown, c: string) => expect(f).toThrow(expect.objectContaining({ name: 'XopdError', code: c }));

function saved(name: string): string {
  const dir = path.join(tmp, name);
  make(3).save(dir);
  return dir;
}

describe('save and load', () => {
  it('round-trips weights, config and outputs exactly', () => {
    const m = make(4);
    const dir = path.join(tmp, 'rt');
    m.save(dir, { training: { note: 'test' } });
    expect(readdirSync(dir).sort()).toEqual(['config.json', 'model.safetensors']);
    const cfg = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8'));
    expect(cfg).toMatchObject({ model_type: 'xopd_decoder', hidden_size: 16, num_hidden_layers: 2, hidden_act: 'gelu_pytorch_tanh', tokenizer: 'llama3', vocab_size: vocabIds.length, training: { note: 'test' } });
    const st = readSafetensors(path.join(dir, 'model.safetensors'));
    expect(st.tensors.get('model.embed_tokens.weight')).toMatchObject({ dtype: 'F32', shape: [vocabIds.length, 16] });
    expect(st.tensors.get('model.layers.1.mlp.down_proj.weight')?.shape).toEqual([16, 24]);
    const back = Model.load(dir);
    expect(Buffer.from(back.getParams().buffer).equals(Buffer.from(m.getParams().buffer))).toBe(true);
    expect(Array.from(back.vocabIds)).toEqual(Array.from(vocabIds));
    expect(back.config).toMatchObject({ hiddenSize: 16, mlp: 'gelu', task: 'arith-v2' });
    expect(Array.from(back.forwardSync(pairs).logits)).toEqual(Array.from(m.forwardSync(pairs).logits));
  });

  it('optimizer state: saved with the weights, restored, training continues exactly', () => {
    const train = (m: Model, steps: number) => {
      for (let s = 0; s < steps; s++) {
        const { logits } = m.forwardSync(pairs);
        m.backwardSync(logits.map((x, i) => (i % 7 === 0 ? 0.01 : -0.001) * (1 + Math.tanh(x))));
        m.stepSync();
      }
    };
    const opt = { lr: 3e-3, warmup: 5, totalSteps: 20, weightDecay: 0.1 };
    const a = make(7);
    a.setOptimizer(opt);
    train(a, 3);
    const dir = path.join(tmp, 'opt');
    a.save(dir, { optimizer: true });
    expect(readdirSync(dir).sort()).toEqual(['config.json', 'model.safetensors', 'optimizer.safetensors']);
    const b = Model.load(dir);
    b.setOptimizer(opt);
    expect(b.loadOptimizerState(dir)).toBe(true);
    expect(b.stepCount).toBe(3);
    train(a, 4);
    train(b, 4);
    expect(b.getParams()).toEqual(a.getParams());
    // A fresh optimizer (moments 0, warm-up from step 0) would not have given the same weights.
    const c = Model.load(dir);
    c.setOptimizer(opt);
    train(c, 4);
    expect(c.getParams()).not.toEqual(a.getParams());
    // No state in a plain save; a state of another model's size is refused.
    expect(Model.load(saved('noopt')).loadOptimizerState(path.join(tmp, 'noopt'))).toBe(false);
    const other = Model.create({ tokenizer: 'llama3', vocabIds, hiddenSize: 8, numLayers: 1, numHeads: 2, intermediateSize: 8, mlp: 'gelu', maxSeqLen: 160 }, { seed: 1, tokenizer: tok });
    code(() => other.loadOptimizerState(dir), 'E_MODEL_FORMAT');
  });

  it('replaces an existing folder and leaves no temporary folders', () => {
    const dir = path.join(tmp, 'replace');
    make(5).save(dir);
    const second = make(6);
    second.save(dir);
    expect(Array.from(Model.load(dir).getParams().subarray(0, 50))).toEqual(Array.from(second.getParams().subarray(0, 50)));
    expect(readdirSync(tmp).filter((f) => f.includes('.tmp-') || f.includes('.old-'))).toEqual([]);
  });
});

describe('bad model folders', () => {
  it('missing folder or files', () => {
    code(() => Model.load(path.join(tmp, 'nope')), 'E_MODEL_NOT_FOUND');
    const dir = saved('nofile');
    rmSync(path.join(dir, 'model.safetensors'));
    code(() => Model.load(dir), 'E_MODEL_NOT_FOUND');
  });

  it('a truncated safetensors file', () => {
    const dir = saved('trunc');
    const f = path.join(dir, 'model.safetensors');
    const buf = readFileSync(f);
    writeFileSync(f, buf.subarray(0, buf.length - 100));
    code(() => Model.load(dir), 'E_MODEL_FORMAT');
    writeFileSync(f, buf.subarray(0, 5));
    code(() => Model.load(dir), 'E_MODEL_FORMAT');
    writeFileSync(f, buf.subarray(0, 40)); // cut inside the header
    code(() => Model.load(dir), 'E_MODEL_FORMAT');
  });

  it('a lying header: length, offsets, sizes, dtype', () => {
    const dir = saved('lie');
    const f = path.join(dir, 'model.safetensors');
    const buf = readFileSync(f);
    const n = Number(buf.readBigUInt64LE(0));
    const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
    const rewrite = (h: unknown, data = buf.subarray(8 + n)) => {
      const json = Buffer.from(JSON.stringify(h));
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(json.length));
      writeFileSync(f, Buffer.concat([len, json, data]));
    };
    const big = Buffer.from(buf);
    big.writeBigUInt64LE(BigInt(buf.length * 10), 0); // header length past the end
    writeFileSync(f, big);
    code(() => Model.load(dir), 'E_MODEL_FORMAT');
    const e = 'model.embed_tokens.weight';
    rewrite({ ...header, [e]: { ...header[e], data_offsets: [header[e].data_offsets[0], header[e].data_offsets[1] + 1e9] } });
    code(() => Model.load(dir), 'E_MODEL_FORMAT');
    rewrite({ ...header, [e]: { ...header[e], shape: [vocabIds.length, 15] } }); // size no longer matches the span
    code(() => Model.load(dir), 'E_MODEL_FORMAT');
    rewrite({ ...header, [e]: { ...header[e], dtype: 'I32' } }); // consistent, right shape, but not F32
    expect(() => Model.load(dir)).toThrow(/I32/);
    rewrite(header, Buffer.concat([buf.subarray(8 + n), Buffer.alloc(12)])); // trailing bytes nobody owns
    code(() => Model.load(dir), 'E_MODEL_FORMAT');
    writeFileSync(f, Buffer.concat([buf.subarray(0, 8), Buffer.from('{not json'.padEnd(n, ' ')), buf.subarray(8 + n)]));
    code(() => Model.load(dir), 'E_MODEL_FORMAT');
    rewrite(header); // the honest header again loads
    expect(Model.load(dir).paramCount).toBeGreaterThan(0);
  });

  it('a config that does not match the weights', () => {
    const dir = saved('mismatch');
    const cf = path.join(dir, 'config.json');
    const cfg = JSON.parse(readFileSync(cf, 'utf8'));
    const write = (c: unknown) => writeFileSync(cf, JSON.stringify(c));
    write({ ...cfg, hidden_size: 32, num_attention_heads: 2 });
    code(() => Model.load(dir), 'E_MODEL_FORMAT');
    write({ ...cfg, num_hidden_layers: 3 });
    code(() => Model.load(dir), 'E_MODEL_FORMAT');
    write({ ...cfg, hidden_act: 'silu' }); // SwiGLU expects gate_proj
    code(() => Model.load(dir), 'E_MODEL_FORMAT');
    write({ ...cfg, vocab_ids: cfg.vocab_ids.slice(1), vocab_size: cfg.vocab_size - 1 });
    code(() => Model.load(dir), 'E_MODEL_FORMAT');
    write({ ...cfg, vocab_size: 7 });
    code(() => Model.load(dir), 'E_MODEL_CONFIG');
    write({ ...cfg, hidden_size: 15 });
    code(() => Model.load(dir), 'E_MODEL_CONFIG');
    write({ ...cfg, vocab_ids: [...cfg.vocab_ids.slice(0, -1), 999999999] });
    code(() => Model.load(dir), 'E_MODEL_CONFIG');
    write({ ...cfg, model_type: 'llama' });
    code(() => Model.load(dir), 'E_MODEL_CONFIG');
    writeFileSync(cf, '{');
    code(() => Model.load(dir), 'E_MODEL_CONFIG');
    write(cfg);
    expect(Model.load(dir).vocabIds.length).toBe(vocabIds.length);
  });
});

describe('bad calls', () => {
  const m = make(7);
  it('ids outside the list, wrong types, too long', () => {
    const outside = tok.encode(' photosynthesis', { addSpecialTokens: false });
    code(() => m.forwardSync([{ prompt: outside, response: pairs[0]!.response }]), 'E_TOKEN_ID');
    code(() => m.forwardSync([{ prompt: pairs[0]!.prompt, response: outside }]), 'E_TOKEN_ID');
    code(() => m.forwardSync([{ prompt: new Int32Array(0), response: pairs[0]!.response }]), 'E_ARG_SHAPE');
    code(() => m.forwardSync([{ prompt: Array.from(pairs[0]!.prompt) as unknown as Int32Array, response: pairs[0]!.response }]), 'E_ARG_TYPE');
    code(() => m.forwardSync([{ prompt: Int32Array.from({ length: 161 }, () => vocabIds[2]!), response: pairs[0]!.response }]), 'E_TOO_LONG');
    code(() => m.scoreSync([{ ids: Int32Array.from([...outside, ...pairs[0]!.response]), start: outside.length }], { topK: 3 }), 'E_TOKEN_ID');
    code(() => m.scoreSync([{ ids: pairs[0]!.prompt, start: 0 }], { topK: 3 }), 'E_ARG_RANGE');
  });
  it('backward without its forward, with a wrong-sized or non-finite gradient', () => {
    const fresh = make(8);
    code(() => fresh.backwardSync(new Float32Array(4)), 'E_MODEL_STATE');
    const f = fresh.forwardSync(pairs);
    code(() => fresh.backwardSync(new Float32Array(f.logits.length + 1)), 'E_ARG_SHAPE');
    const nan = new Float32Array(f.logits.length);
    nan[3] = Number.NaN;
    code(() => fresh.backwardSync(nan), 'E_ARG_VALUE');
    fresh.backwardSync(new Float32Array(f.logits.length));
    code(() => fresh.backwardSync(new Float32Array(f.logits.length)), 'E_MODEL_STATE'); // once per forward
  });
  it('bad configs at create', () => {
    code(() => Model.create({ tokenizer: 'llama3', vocabIds, hiddenSize: 10, numHeads: 3 }, { tokenizer: tok }), 'E_MODEL_CONFIG');
    code(() => Model.create({ tokenizer: 'llama3', vocabIds: [1, 1, 2] }, { tokenizer: tok }), 'E_MODEL_CONFIG');
    code(() => Model.create({ tokenizer: 'llama3', vocabIds: [1, -2] }, { tokenizer: tok }), 'E_MODEL_CONFIG');
    code(() => Model.create({ tokenizer: 'llama3', vocabIds: [1, 2], mlp: 'relu' as 'gelu' }, { tokenizer: tok }), 'E_MODEL_CONFIG');
  });
  it('the saves above, and a refused one, left no .tmp- or .old- folder anywhere', () => {
    writeFileSync(path.join(tmp, 'a-file'), 'x');
    code(() => make(1).save(path.join(tmp, 'a-file', 'model')), 'E_WRITE'); // a path through a file
    const leftovers: string[] = [];
    const walk = (dir: string) => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        if (e.name.includes('.tmp-') || e.name.includes('.old-')) leftovers.push(path.join(dir, e.name));
        if (e.isDirectory()) walk(path.join(dir, e.name));
      }
    };
    walk(tmp);
    expect(readdirSync(tmp).length).toBeGreaterThan(3); // the saves above did write here
    expect(leftovers).toEqual([]);
  });
});

describe('digit-structured init', () => {
  it('adds a per-place digit code to number tokens and leaves other tokens alone', () => {
    const m = Model.create({ tokenizer: 'llama3', vocabIds, hiddenSize: 40, numLayers: 1, numHeads: 2, intermediateSize: 8 }, { seed: 2, tokenizer: tok });
    const before = m.getParams();
    expect(digitEmbeddings(m)).toBe(1110); // every 1-, 2- and 3-digit string is one Llama 3 token
    const after = m.getParams();
    const d = 40;
    const one = (s: string) => tok.encode(s, { addSpecialTokens: false })[0]!;
    const delta = (s: string) => Array.from({ length: d }, (_, k) => after[m.indexOf(one(s)) * d + k]! - before[m.indexOf(one(s)) * d + k]!);
    const code = delta('482');
    const want = new Array(d).fill(0);
    want[2 * 10 + 4] = want[1 * 10 + 8] = want[0 * 10 + 2] = want[30 + 2] = 0.1;
    code.forEach((v, k) => expect(v).toBeCloseTo(want[k], 6));
    expect(delta('7').filter((v) => Math.abs(v) > 1e-6).length).toBe(2); // place 0 digit 7, length 1
    const eot = tok.id('<|eot_id|>')!;
    expect(delta('<|eot_id|>'.length ? '.' : '')).toEqual(new Array(d).fill(0));
    expect(after[m.indexOf(eot) * d]).toBe(before[m.indexOf(eot) * d]);
    expect(digitEmbeddings(make(1))).toBe(0); // hidden size 16 < 33: nothing to code
  });
});
