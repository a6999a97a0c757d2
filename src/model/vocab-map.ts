/**
 * The embedded model's output layer covers a list of tokenizer ids (config.vocabIds): logit column c
 * is tokenizer id vocabIds[c]. VocabMap converts between the two index spaces.
 */
import * as check from '../core/check.js';
import { ErrorCode, XopdError } from '../core/errors.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';

export class VocabMap {
  /** tokenizer id -> logit column, -1 when the id is not in the list */
  private readonly column: Int32Array;

  /** `what` names the model in messages (its tokenizer and task). */
  constructor(readonly ids: Int32Array, readonly tokenizer: Tokenizer, private readonly what: string) {
    this.column = new Int32Array(tokenizer.vocabSize).fill(-1);
    ids.forEach((id, c) => {
      if (id >= tokenizer.vocabSize)
        throw new XopdError(ErrorCode.MODEL_CONFIG, `vocab id ${id} (column ${c}) is outside the vocabulary [0, ${tokenizer.vocabSize}) of tokenizer ${tokenizer.name}`);
      this.column[id] = c;
    });
  }

  get size(): number {
    return this.ids.length;
  }

  /** The logit column of a tokenizer id, or -1 when the list lacks it (or it is no id at all). */
  indexOf(id: number): number {
    return check.isInt(id) && id >= 0 && id < this.column.length ? this.column[id]! : -1;
  }

  /** The logit column of an in-vocabulary id (-1 when the list lacks it). */
  columnOf(id: number): number {
    return this.column[id]!;
  }

  /** Tokenizer ids -> logit columns; an id outside the list is an E_TOKEN_ID naming its position. */
  toColumns(ids: Int32Array, name: string, minLength: number): Int32Array {
    if (ids.length < minLength) throw new XopdError(ErrorCode.ARG_SHAPE, `${name} must hold at least ${minLength} token(s)`);
    const out = new Int32Array(ids.length);
    for (let i = 0; i < ids.length; i++) {
      const c = this.indexOf(ids[i]!);
      if (c < 0)
        throw new XopdError(ErrorCode.TOKEN_ID, `${name}[${i}] = ${ids[i]} is not in this model's id list (${this.ids.length} ids of ${this.what}): the model cannot read it`);
      out[i] = c;
    }
    return out;
  }

  /** Logit columns -> tokenizer ids. */
  toIds(columns: ArrayLike<number>, from = 0, to = columns.length): Int32Array {
    const out = new Int32Array(to - from);
    for (let i = from; i < to; i++) out[i - from] = this.ids[columns[i]!]!;
    return out;
  }
}
