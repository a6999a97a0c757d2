/**
 * A small, strict flag parser for the CLI: every option is declared with its type and help, unknown
 * options and bad values are refused with an XopdError (E_CLI_USAGE), and --help text is generated
 * from the same declarations so it cannot drift from what is accepted.
 */
import { ErrorCode, XopdError } from '../core/errors.js';
import { flagName, showDefault, type OptionTable } from '../core/options.js';

export type OptionType = 'string' | 'int' | 'number' | 'boolean' | 'string[]';

export interface OptionSpec {
  type: OptionType;
  help: string;
  default?: string | number | boolean | string[];
  /** the default --help shows when the parser leaves the option unset (it is filled later, e.g. after --config) */
  shownDefault?: string;
  choices?: readonly string[];
  min?: number;
  max?: number;
  short?: string;
  valueName?: string;
}

export interface CommandSpec {
  name: string;
  summary: string;
  usage: string; // e.g. 'xopd align [options] [text]'
  options: Record<string, OptionSpec>;
  positionals?: { name: string; help: string; variadic?: boolean; optional?: boolean }[];
  examples?: string[];
}

export type ParsedArgs = { _: string[] } & Record<string, unknown>;

function usageError(cmd: CommandSpec, msg: string): never {
  throw new XopdError(ErrorCode.CLI_USAGE, `xopd ${cmd.name}: ${msg} (see 'xopd ${cmd.name} --help')`);
}

function convert(cmd: CommandSpec, name: string, spec: OptionSpec, raw: string): unknown {
  switch (spec.type) {
    case 'string':
    case 'string[]':
      if (spec.choices && !spec.choices.includes(raw))
        usageError(cmd, `--${name} must be one of ${spec.choices.join(', ')}, got '${raw}'`);
      return raw;
    case 'int':
    case 'number': {
      const v = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(v) || (spec.type === 'int' && !Number.isInteger(v)))
        usageError(cmd, `--${name} must be ${spec.type === 'int' ? 'an integer' : 'a number'}, got '${raw}'`);
      if (spec.min !== undefined && v < spec.min) usageError(cmd, `--${name} must be at least ${spec.min}, got ${v}`);
      if (spec.max !== undefined && v > spec.max) usageError(cmd, `--${name} must be at most ${spec.max}, got ${v}`);
      return v;
    }
    case 'boolean':
      if (raw === 'true' || raw === '1') return true;
      if (raw === 'false' || raw === '0') return false;
      return usageError(cmd, `--${name} takes no value or true/false, got '${raw}'`);
  }
}

export function parseArgs(cmd: CommandSpec, argv: string[]): ParsedArgs {
  const out: ParsedArgs = { _: [] };
  const byShort = new Map<string, string>();
  for (const [name, spec] of Object.entries(cmd.options)) {
    if (spec.short) byShort.set(spec.short, name);
    if (spec.default !== undefined) out[name] = Array.isArray(spec.default) ? [...spec.default] : spec.default;
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      out._.push(...argv.slice(i + 1));
      break;
    }
    if (!a.startsWith('-') || a === '-') {
      out._.push(a);
      continue;
    }
    let name: string;
    let value: string | undefined;
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      name = eq >= 0 ? a.slice(2, eq) : a.slice(2);
      value = eq >= 0 ? a.slice(eq + 1) : undefined;
      if (name.startsWith('no-') && cmd.options[name.slice(3)]?.type === 'boolean' && value === undefined) {
        out[name.slice(3)] = false;
        continue;
      }
    } else {
      const s = byShort.get(a.slice(1));
      if (!s) usageError(cmd, `unknown option ${a}`);
      name = s;
    }
    const spec = cmd.options[name];
    if (!spec) usageError(cmd, `unknown option --${name}`);
    if (spec.type === 'boolean') {
      out[name] = value === undefined ? true : convert(cmd, name, spec, value);
      continue;
    }
    if (value === undefined) {
      if (i + 1 >= argv.length) usageError(cmd, `--${name} needs a value`);
      value = argv[++i]!;
    }
    const v = convert(cmd, name, spec, value);
    if (spec.type === 'string[]') {
      const prev = out[name];
      // A repeated list option appends; the first use replaces the default.
      out[name] = Array.isArray(prev) && prev !== spec.default && (out as Record<string, unknown>)[`__set_${name}`] ? [...prev, v] : [v];
      (out as Record<string, unknown>)[`__set_${name}`] = true;
    } else out[name] = v;
  }
  for (const k of Object.keys(out)) if (k.startsWith('__set_')) delete out[k];
  const pos = cmd.positionals ?? [];
  const required = pos.filter((p) => !p.optional).length;
  if (out._.length < required) usageError(cmd, `missing ${pos[out._.length]!.name}`);
  if (!pos.some((p) => p.variadic) && out._.length > pos.length) usageError(cmd, `unexpected argument '${out._[pos.length]}'`);
  return out;
}

export function helpText(cmd: CommandSpec): string {
  const lines = [`Usage: ${cmd.usage}`, '', cmd.summary, ''];
  if (cmd.positionals?.length) {
    lines.push('Arguments:');
    for (const p of cmd.positionals) lines.push(`  ${p.name.padEnd(24)} ${p.help}`);
    lines.push('');
  }
  lines.push('Options:');
  const entries = Object.entries(cmd.options);
  entries.push(['help', { type: 'boolean', help: 'show this help and exit', short: 'h' }]);
  for (const [name, spec] of entries) {
    const val = spec.type === 'boolean' ? '' : ` <${spec.valueName ?? (spec.choices ? spec.choices.join('|') : spec.type)}>`;
    const flag = `${spec.short ? `-${spec.short}, ` : ''}--${name}${val}`;
    const shown = spec.shownDefault ?? (spec.default !== undefined && spec.type !== 'boolean' ? (Array.isArray(spec.default) ? spec.default.join(',') : String(spec.default)) : undefined);
    const def = shown !== undefined ? ` (default: ${shown})` : '';
    const bound = (n: number | undefined) => (n === undefined ? '' : n >= 1e6 && Number.isInteger(Math.log10(n)) ? `1e${Math.log10(n)}` : String(n));
    const range = spec.min !== undefined || spec.max !== undefined ? ` [${bound(spec.min)}..${bound(spec.max)}]` : '';
    lines.push(`  ${flag.padEnd(34)} ${spec.help}${range}${def}`);
  }
  if (cmd.examples?.length) {
    lines.push('', 'Examples:');
    for (const e of cmd.examples) lines.push(`  ${e}`);
  }
  return lines.join('\n');
}

/** Flags for every option of a table (batchSize -> --batch-size), with the table's ranges, choices and defaults. */
export function flagsOf(table: OptionTable): Record<string, OptionSpec> {
  const out: Record<string, OptionSpec> = {};
  for (const [key, def] of Object.entries(table)) {
    const spec: OptionSpec = { type: def.kind === 'int' || def.kind === 'number' ? def.kind : 'string', help: def.help, shownDefault: showDefault(def) };
    if (def.kind === 'int' || def.kind === 'number') Object.assign(spec, { min: def.min, max: def.max, valueName: def.valueName });
    if (def.kind === 'choice') spec.choices = def.choices;
    if (def.kind === 'parsed') spec.valueName = def.valueName;
    out[flagName(key)] = spec;
  }
  return out;
}

/** The options of a table that the parsed command line sets, under the table's keys. */
export function optionsFromFlags(table: OptionTable, args: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(table)) if (args[flagName(key)] !== undefined) out[key] = args[flagName(key)];
  return out;
}
