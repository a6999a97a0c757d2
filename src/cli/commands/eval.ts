import type { Command } from '../command.js';
import { setThreads } from '../../core/native.js';
import { Model } from '../../model/model.js';
import { evaluate, sampleStats } from '../../tasks/eval.js';
import { MAX_RESPONSE_TOKENS, type Split } from '../../tasks/arithmetic.js';

/** Accuracy of a model folder on the arithmetic task (greedy decoding, exact grading). */
export const evalCommand: Command = {
  spec: {
    name: 'eval',
    summary: 'Accuracy of a model on arithmetic word problems (greedy, exact grading of the final answer).',
    usage: 'xopd eval --model DIR [--n 200] [--seed S] [--split test|train] [--samples K [--temperature T]] [--json]',
    options: {
      model: { type: 'string', help: 'model folder (config.json + model.safetensors)', valueName: 'dir' },
      n: { type: 'int', help: 'problems', default: 200, min: 1, max: 1_000_000 },
      seed: { type: 'int', help: 'seed of the problem draw', default: 1, min: 0, max: 2 ** 32 - 1 },
      split: { type: 'string', help: 'problem split', default: 'test', choices: ['test', 'train'] },
      'max-tokens': { type: 'int', help: 'most response tokens per problem', default: MAX_RESPONSE_TOKENS, min: 1, max: 4096 },
      samples: { type: 'int', help: 'also draw K samples per problem and report how varied and how right they are (a teacher\'s entropy)', min: 1, max: 1024, valueName: 'k' },
      temperature: { type: 'number', help: 'sampling temperature of --samples', default: 1, min: 1e-6, max: 100 },
      threads: { type: 'int', help: 'CPU threads', min: 1, max: 256 },
      json: { type: 'boolean', help: 'print one JSON object ({ accuracy, n, correct, ... })' },
    },
    examples: ['xopd eval --model models/teacher-qwen3 --n 200 --seed 1 --json', 'xopd eval --model models/teacher-qwen3-styles --n 100 --samples 8'],
  },
  async run(args) {
    if (!args.model) {
      console.error("xopd eval: --model DIR is required (see 'xopd eval --help')");
      return 2;
    }
    if (args.threads !== undefined) setThreads(args.threads as number);
    const model = Model.load(String(args.model));
    const r = evaluate(model, { n: args.n as number, seed: args.seed as number, split: args.split as Split, maxTokens: args['max-tokens'] as number });
    const sampling = args.samples === undefined ? undefined
      : sampleStats(model, { n: args.n as number, seed: args.seed as number, split: args.split as Split, samples: args.samples as number,
        temperature: args.temperature as number, maxTokens: args['max-tokens'] as number });
    if (args.json) {
      console.log(JSON.stringify({ model: String(args.model), accuracy: r.accuracy, n: r.n, correct: r.correct, split: r.split, seed: r.seed,
        byKind: r.byKind, seconds: r.seconds, ...(sampling ? { sampling } : {}) }));
    } else {
      const k = r.byKind;
      console.log(`${args.model}: accuracy ${(100 * r.accuracy).toFixed(1)}% (${r.correct}/${r.n}) on the ${r.split} split, seed ${r.seed}` +
        `  [add ${(100 * k.add.accuracy).toFixed(1)}% of ${k.add.n}, sub ${(100 * k.sub.accuracy).toFixed(1)}% of ${k.sub.n}, add-sub ${(100 * k['add-sub'].accuracy).toFixed(1)}% of ${k['add-sub'].n}]  ${r.seconds.toFixed(1)}s`);
      for (const e of r.examples) console.log(`  ${e.correct ? 'ok ' : 'BAD'} ${e.question}\n      -> ${JSON.stringify(e.response)} (expected ${e.expected})`);
      if (sampling) {
        console.log(`samples: ${sampling.samples} per problem at temperature ${sampling.temperature}: ${(100 * sampling.accuracy).toFixed(1)}% right, ` +
          `${sampling.distinctPerProblem.toFixed(2)} different answers per problem, ${sampling.nllPerToken.toFixed(3)} nats per sampled token, ${sampling.tokensPerAnswer.toFixed(1)} tokens per answer`);
      }
    }
    return 0;
  },
};
