/**
 * The integrations' Python code run by python3 against a live `xopd serve` on loopback (with an
 * API key, a stub teacher behind it): the standard-library client (TRL's protocol decoded from
 * base64 exactly as the server's JSON format gives it, /v1/opd/score, errors as XopdError) and the
 * verl example's token_rewards. Skipped, saying so, where python3 is absent.
 */
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveOpd, type OpdServer } from '../src/serve/server.js';
import { serveStubTeacher, type StubTeacher } from '../src/serve/stub-teacher.js';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { ROOT, ensureBuilt } from './helpers/built.js';
import { llamaQwenConfig, llamaSequence, request } from './helpers/serve-requests.js';

const python = spawnSync('python3', ['--version']).status === 0 ? 'python3' : undefined;
if (!python) console.warn('serve-python: python3 is not on PATH; the Python client tests are skipped');

const KEY = 'py-key-5d1e';
let stub: StubTeacher;
let server: OpdServer;
let llama: Tokenizer;

/**
 * Runs a Python snippet with integrations/python and integrations/verl importable; returns its JSON
 * output. Asynchronously: the server it talks to runs on this process's event loop.
 */
async function py(code: string, env: Record<string, string> = {}): Promise<unknown> {
  // Python gets no sanitizer runtime (the sanitizer build preloads it into node only).
  const { LD_PRELOAD: _, ...base } = process.env;
  const { stdout } = await promisify(execFile)(python!, ['-c', code], {
    env: { ...base, PYTHONPATH: [path.join(ROOT, 'integrations', 'python'), path.join(ROOT, 'integrations', 'verl')].join(path.delimiter), ...env },
    encoding: 'utf8', timeout: 60_000,
  });
  return JSON.parse(stdout);
}

describe.skipIf(!python)('integrations/python against a live xopd serve', () => {
  beforeAll(async () => {
    ensureBuilt();
    llama = Tokenizer.load('llama3');
    stub = await serveStubTeacher({ vocab: Tokenizer.load('qwen3').vocabSize });
    server = await serveOpd({ config: llamaQwenConfig(stub.url), workers: 0, apiKey: KEY });  // requests on the event loop: the --workers 0 path
  }, 300_000);

  afterAll(async () => {
    await server?.close();
    await stub?.close();
  });

  it('get_sequence_logprobs: binary decoded by the client equals the json answer', async () => {
    const seqs = [llamaSequence(llama, 1), llamaSequence(llama, 2)];
    const args = JSON.stringify({ sequences: seqs.map((s) => [...s.prompt, ...s.response]), prompt_lengths: seqs.map((s) => s.prompt.length) });
    const out = await py(`
import json, math
from xopd_client import XopdClient
c = XopdClient(${JSON.stringify(server.url)})
a = json.loads(${JSON.stringify(args)})
b = c.get_sequence_logprobs(a["sequences"], a["prompt_lengths"], top_logprobs=3)
j = c.get_sequence_logprobs(a["sequences"], a["prompt_lengths"], top_logprobs=3, response_format="json")
clean = lambda x: [[[None if (v is None or math.isinf(v)) else v for v in row] for row in seq] for seq in x]
print(json.dumps({"health": c.health(), "binary": {**b, "logprobs": clean(b["logprobs"])}, "json": j}))
`, { XOPD_API_KEY: KEY }) as { health: boolean; binary: Record<string, number[][][]>; json: Record<string, Array<Array<Array<number | null>>>> };
    expect(out.health).toBe(true);
    expect(out.binary.logprob_token_ids).toEqual(out.json.logprob_token_ids);
    expect(out.binary.actual_token_ids).toEqual(out.json.actual_token_ids);
    expect(out.binary.actual_token_ids!.map((s) => s.map((r) => r[0]))).toEqual(seqs.map((s) => s.response));
    // float32 from base64 against the nine-digit JSON text of the same float32
    out.binary.logprobs!.forEach((seq, i) => seq.forEach((row, j) => row.forEach((v, k) => {
      const w = out.json.logprobs![i]![j]![k] ?? null;
      if (v === null) expect(w).toBeNull();
      else expect(Math.abs(v - (w as number))).toBeLessThan(1e-6);
    })));
  });

  it('score() and the verl example\'s token_rewards: the server\'s per-token values, masked tokens 0', async () => {
    const s = llamaSequence(llama, 3);
    const lps = s.response.map((_, j) => -0.1 - 0.05 * j);
    const direct = JSON.parse((await request(`${server.url}/v1/opd/score`, { body: JSON.stringify({ items: [{ prompt_ids: s.prompt, response_ids: s.response, student_logprobs: lps }] }), headers: { authorization: `Bearer ${KEY}` } })).text);
    const out = await py(`
import json
from xopd_client import XopdClient
from xopd_reward import token_rewards
c = XopdClient(${JSON.stringify(server.url)}, api_key=${JSON.stringify(KEY)})
p, r, lp = ${JSON.stringify(s.prompt)}, ${JSON.stringify(s.response)}, ${JSON.stringify(lps)}
print(json.dumps({"score": c.score([{"prompt_ids": p, "response_ids": r, "student_logprobs": lp}]),
                  "adv": token_rewards(c, [p], [r], [lp]), "lq": token_rewards(c, [p], [r], value="logprob")}))
`) as { score: typeof direct; adv: number[][]; lq: number[][] };
    expect(out.score).toEqual(direct);
    const item = direct.items[0] as { advantage: number[]; logprob: Array<number | null>; mask: number[] };
    expect(out.adv[0]).toEqual(item.advantage.map((v, j) => (item.mask[j] ? v : 0)));
    expect(out.lq[0]).toEqual(item.logprob.map((v, j) => (item.mask[j] && v !== null ? v : 0)));
    expect(item.mask.some((m) => m === 1)).toBe(true);
  });

  it('a wrong key is an XopdError with the status and xopd\'s code', async () => {
    const out = await py(`
import json
from xopd_client import XopdClient, XopdError
try:
    XopdClient(${JSON.stringify(server.url)}, api_key="wrong").score([{"prompt_ids": [1], "response_ids": [2]}])
    print(json.dumps(None))
except XopdError as e:
    print(json.dumps({"status": e.status, "code": e.code, "message": e.message}))
`) as { status: number; code: string; message: string };
    expect(out.status).toBe(401);
    expect(out.code).toBe('E_UNAUTHORIZED');
    expect(out.message).toMatch(/Bearer/);
  });
});
