/** Every CLI command, in the order `xopd --help` lists them. Add one line per new command. */
import type { Command } from '../command.js';
import { infoCommand } from './info.js';
import { tokenizeCommand } from './tokenize.js';
import { startCommand } from './start.js';
import { alignCommand } from './align.js';
import { distillCommand } from './distill.js';
import { serveTeacherCommand } from './serve-teacher.js';
import { serveCommand } from './serve.js';
import { benchCommand } from './bench.js';
import { experimentCommand } from './experiment.js';
import { pretrainCommand } from './pretrain.js';
import { evalCommand } from './eval.js';

export const COMMANDS: Command[] = [startCommand, tokenizeCommand, alignCommand, infoCommand, pretrainCommand, evalCommand, distillCommand, serveTeacherCommand, serveCommand, experimentCommand, benchCommand];
