// Lists the shipped addon's CPU sources (native/**/*.cc) for binding.gyp, which has no glob of its
// own. What verifies the kernels (native/dev/, *_reference.cc, *_bench.cc) goes only into the dev
// addon, which CMakeLists.txt builds; the node-gyp path (machines without cmake) builds xopd.node.
const fs = require('node:fs');
const path = require('node:path');
const DEV = /(^native\/dev\/|_reference\.cc$|_bench\.cc$)/;
const out = [];
(function walk(dir) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const p = path.join(dir, e.name);
    const rel = p.split(path.sep).join('/');
    if (e.isDirectory()) walk(p);
    else if (e.name.endsWith('.cc') && !DEV.test(rel)) out.push(rel);
  }
})('native');
process.stdout.write(out.join(' '));
