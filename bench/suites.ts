/** Every benchmark suite; `npm run bench -- <name>` runs one, no name runs all. Add one line per suite. */
import type { Suite } from './harness.js';
import { distillSuite } from './distill.js';
import { tokenizerSuite } from './tokenizer.js';
import { alignSuite } from './align.js';
import { lossSuite } from './loss.js';
import { modelSuite } from './model.js';
import { serveSuite } from './serve.js';

export const SUITES: Suite[] = [tokenizerSuite, alignSuite, lossSuite, modelSuite, distillSuite, serveSuite];
