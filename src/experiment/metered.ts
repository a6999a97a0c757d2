/**
 * A Model in either role, with every FLOP it spends counted from its shape (flops.ts). The experiment
 * gives each arm metered models, so SFT and OPD are charged by the same rules; evaluation uses the
 * bare model and is not charged.
 */
import type { Model } from '../model/model.js';
import type { GenerateOptions, PolicyLogits, Rollout, ScoreRequest, StudentPolicy, Teacher, TeacherScores } from '../model/roles.js';
import { forwardFlops, generateFlops, type FlopShape } from './flops.js';

export class MeteredModel implements StudentPolicy, Teacher {
  flops = 0;
  private readonly shape: FlopShape;
  private lastForward = 0;

  constructor(readonly model: Model) {
    this.shape = { ...model.config, vocab: model.vocabIds.length };
  }

  get tokenizer() {
    return this.model.tokenizer;
  }

  get vocabIds() {
    return this.model.vocabIds;
  }

  /** The context, so the Distiller cuts what does not fit (as it does for the bare Model). */
  get maxSequenceLength(): number {
    return this.model.config.maxSeqLen;
  }

  async generate(prompts: Int32Array[], opts: GenerateOptions): Promise<Rollout[]> {
    const out = await this.model.generate(prompts, opts);
    out.forEach((r, i) => { this.flops += generateFlops(this.shape, prompts[i]!.length, r.ids.length); });
    return out;
  }

  async forward(batch: Array<{ prompt: Int32Array; response: Int32Array }>): Promise<PolicyLogits> {
    this.lastForward = 0;
    for (const b of batch) this.lastForward += forwardFlops(this.shape, 0, b.prompt.length + b.response.length, b.response.length);
    this.flops += this.lastForward;
    return this.model.forward(batch);
  }

  async backward(gradLogits: Float32Array): Promise<void> {
    this.flops += 2 * this.lastForward; // backward of the last forward
    return this.model.backward(gradLogits);
  }

  async step(): Promise<void> {
    return this.model.step();
  }

  async score(requests: ScoreRequest[], opts: { topK: number }): Promise<TeacherScores[]> {
    for (const r of requests) this.flops += forwardFlops(this.shape, 0, r.ids.length, r.ids.length - r.start);
    return this.model.score(requests, opts);
  }
}
