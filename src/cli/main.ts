#!/usr/bin/env node
/** The `xopd` command line: dispatches to src/cli/commands/*, maps errors to stable exit codes. */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ErrorCode, XopdError } from '../core/errors.js';
import { version } from '../core/native.js';
import { helpText, parseArgs } from './args.js';
import { EXIT } from './command.js';
import { COMMANDS } from './commands/index.js';

function topHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.spec.name.length)) + 2;
  return [
    `xopd ${version}: cross-tokenizer on-policy distillation`,
    '',
    'Usage: xopd <command> [options]   (xopd <command> --help for its options)',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.spec.name.padEnd(width)} ${c.spec.summary}`),
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(topHelp());
    return name ? EXIT.OK : EXIT.USAGE;
  }
  if (name === '--version' || name === '-v') {
    console.log(version);
    return EXIT.OK;
  }
  const cmd = COMMANDS.find((c) => c.spec.name === name);
  if (!cmd) {
    console.error(`xopd: unknown command '${name}'\n\n${topHelp()}`);
    return EXIT.USAGE;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(helpText(cmd.spec));
    return EXIT.OK;
  }
  try {
    return await cmd.run(parseArgs(cmd.spec, rest));
  } catch (err) {
    if (err instanceof XopdError) {
      // Messages built for the command line may already name the command: say it once.
      const prefix = `xopd ${name}: `;
      console.error(`${prefix}error ${err.code}: ${err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message}`);
      return err.code === ErrorCode.CLI_USAGE ? EXIT.USAGE : EXIT.FAILURE;
    }
    console.error(err);
    return EXIT.FAILURE;
  }
}

const invokedDirectly = (() => {
  try {
    return realpathSync(process.argv[1] ?? '') === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
})();
if (invokedDirectly) {
  main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
}
