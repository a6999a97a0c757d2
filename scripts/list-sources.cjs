// Lists the addon's CPU sources (native/**/*.cc) for binding.gyp, which has no glob of its own.
const fs = require('node:fs');
const path = require('node:path');
const out = [];
(function walk(dir) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p);
    else if (e.name.endsWith('.cc')) out.push(p.split(path.sep).join('/'));
  }
})('native');
process.stdout.write(out.join(' '));
