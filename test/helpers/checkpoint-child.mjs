// Child process for the checkpoint kill test. Writes checkpoints whose content is a pure function of
// the step, resuming after the last complete one.
//   node checkpoint-child.mjs <root> loop        : writes steps after the latest, forever
//   node checkpoint-child.mjs <root> pause <n>   : writes steps up to n-1, then stops in the middle of n
import { writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { content } from './checkpoint-content.mjs';

const [root, mode, upto] = process.argv.slice(2);
const dist = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../dist/src/run/checkpoint.js');
const { CheckpointStore } = await import(pathToFileURL(dist).href);
const store = new CheckpointStore(root, 2);
let step = (store.latest()?.step ?? 0) + 1;
for (;;) {
  const pause = mode === 'pause' && step === Number(upto);
  await store.save(step, async (dir) => {
    const c = content(step);
    mkdirSync(path.join(dir, 'student'), { recursive: true });
    writeFileSync(path.join(dir, 'student', 'model.bin'), c.weights);
    if (pause) {
      process.stdout.write(`MID ${step}\n`);
      await new Promise(() => {}); // wait here to be killed
    }
    writeFileSync(path.join(dir, 'optimizer.bin'), c.optimizer);
  }, { note: `step ${step}` });
  process.stdout.write(`SAVED ${step}\n`);
  if (mode === 'pause' && step >= Number(upto)) break;
  step++;
}
