import type { Command } from '../command.js';
import { info } from '../../core/native.js';

export const infoCommand: Command = {
  spec: {
    name: 'info',
    summary: 'Print the addon build: version, Node-API level, CPU threads, CUDA (compiled, devices).',
    usage: 'xopd info [--json]',
    options: { json: { type: 'boolean', help: 'print one JSON object' } },
  },
  async run(args) {
    const i = info();
    if (args.json) console.log(JSON.stringify(i));
    else {
      console.log(`xopd ${i.version}  Node-API ${i.napi}  threads ${i.threads}`);
      console.log(`CUDA: ${i.cuda.compiled ? 'compiled in' : 'not compiled'}, ${i.cuda.devices} device(s)${i.cuda.error ? ` (${i.cuda.error})` : ''}`);
      console.log(`native modules: ${i.modules.join(', ')}`);
    }
    return 0;
  },
};
