/** `npm run bench -- [suite ...] [--quick] [--out dir]`: runs suites, prints tables, writes JSON. */
import path from 'node:path';
import { info } from '../src/core/native.js';
import { printTable, writeJson } from './harness.js';
import { SUITES } from './suites.js';

async function main(argv: string[]): Promise<number> {
  const quick = argv.includes('--quick');
  const outAt = argv.indexOf('--out');
  const out = outAt >= 0 ? argv[outAt + 1]! : path.join(process.cwd(), 'bench', 'results');
  const names = argv.filter((a, i) => !a.startsWith('--') && !(outAt >= 0 && i === outAt + 1));
  if (argv.includes('--help')) {
    console.log('Usage: npm run bench -- [suite ...] [--quick] [--out dir]\n\nSuites:');
    for (const s of SUITES) console.log(`  ${s.name.padEnd(12)} ${s.summary}`);
    return 0;
  }
  const unknown = names.filter((n) => !SUITES.some((s) => s.name === n));
  if (unknown.length) {
    console.error(`unknown suite(s): ${unknown.join(', ')}; known: ${SUITES.map((s) => s.name).join(', ')}`);
    return 2;
  }
  const run = names.length ? SUITES.filter((s) => names.includes(s.name)) : SUITES;
  const i = info();
  console.log(`xopd ${i.version}, threads ${i.threads}, CUDA ${i.cuda.compiled ? 'compiled' : 'not compiled'} (${i.cuda.devices} devices)`);
  for (const suite of run) {
    const result = await suite.run({ quick, args: argv });
    printTable(result);
    console.log(`json: ${writeJson(out, result)}`);
  }
  return 0;
}

main(process.argv.slice(2)).then((c) => { process.exitCode = c; }, (e) => { console.error(e); process.exitCode = 1; });
