/**
 * Option tables: each option of a job written once — its kind, range or choices, default and help.
 * `resolveOptions` checks an options object against a table (unknown keys, types, ranges) and fills
 * the defaults; the CLI builds its flags and --help from the same table (src/cli/args.ts
 * `flagsOf`), so what the API accepts, what the command line accepts and what --help says agree.
 */
import * as check from './check.js';
import { ErrorCode } from './errors.js';

export type OptionDef =
  | { kind: 'int' | 'number'; min: number; max: number; default: number; help: string; valueName?: string }
  | { kind: 'choice'; choices: readonly string[]; default: string; help: string }
  /** a value with its own syntax: `parse` checks it (from the API or from the command line's text) */
  | { kind: 'parsed'; default: unknown; help: string; valueName: string; parse: (x: unknown) => unknown; show: (x: never) => string };

export type OptionTable = Readonly<Record<string, OptionDef>>;

/** The value type of one option. */
export type OptionValue<D> =
  D extends { kind: 'choice'; choices: readonly (infer C)[] } ? C
    : D extends { kind: 'parsed'; parse: (x: unknown) => infer R } ? R
      : number;

/** An options object of a table: every key optional. */
export type OptionsOf<T extends OptionTable> = { -readonly [K in keyof T]?: OptionValue<T[K]> };
/** The same with every default filled in. */
export type ResolvedOf<T extends OptionTable> = { -readonly [K in keyof T]: OptionValue<T[K]> };

/** The defaults of a table. */
export function defaultsOf<T extends OptionTable>(table: T): ResolvedOf<T> {
  const out: Record<string, unknown> = {};
  for (const [k, d] of Object.entries(table)) out[k] = d.default;
  return out as ResolvedOf<T>;
}

/** Checks one value against its definition; the message names the option. */
export function checkOption(def: OptionDef, value: unknown, name: string): unknown {
  switch (def.kind) {
    case 'int': return check.int(value, name, def.min, def.max);
    case 'number': return check.num(value, name, def.min, def.max);
    case 'choice': return check.oneOf(value, name, def.choices);
    case 'parsed': return def.parse(value);
  }
}

/** Checks `given` against the table and fills the defaults; every problem is an XopdError naming the option. */
export function resolveOptions<T extends OptionTable>(table: T, given: unknown, what: string): ResolvedOf<T> {
  if (given === undefined) given = {};
  if (!given || typeof given !== 'object' || Array.isArray(given)) check.fail(ErrorCode.ARG_TYPE, `${what} options must be an object, got ${check.describe(given)}`);
  const out = defaultsOf(table) as Record<string, unknown>;
  for (const [k, v] of Object.entries(given)) {
    const def = table[k];
    if (!def) check.fail(ErrorCode.ARG_VALUE, `unknown ${what} option '${k}'; known: ${Object.keys(table).join(', ')}`);
    if (v !== undefined) out[k] = v;
  }
  for (const [k, def] of Object.entries(table)) out[k] = checkOption(def, out[k], k);
  return out as ResolvedOf<T>;
}

/** The command-line spelling of an option key: batchSize -> batch-size. */
export function flagName(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** How --help shows an option's default. */
export function showDefault(def: OptionDef): string {
  return def.kind === 'parsed' ? def.show(def.default as never) : String(def.default);
}
