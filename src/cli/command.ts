/** The shape every CLI command module exports; main.ts dispatches on `spec.name`. */
import type { CommandSpec, ParsedArgs } from './args.js';

export interface Command {
  spec: CommandSpec;
  /** Returns the process exit code (see EXIT in main.ts). */
  run(args: ParsedArgs): Promise<number>;
}

/** Exit codes scripts can rely on. */
export const EXIT = {
  OK: 0,
  FAILURE: 1, // the work ran and failed (an XopdError not about usage)
  USAGE: 2, // bad command line
  INTERRUPTED: 130, // SIGINT, after saving what can be saved
} as const;
