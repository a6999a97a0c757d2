// Removes compiled output whose TypeScript source no longer exists (a moved or deleted module), so
// a package packed from a working checkout ships no stale module. Runs before every tsc build
// (`npm run prepare`); it deletes only orphans, so a test run using dist/ meanwhile is unaffected.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const dist = path.join(root, 'dist');
let removed = 0;

function walk(dir) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      walk(p);
      if (fs.readdirSync(p).length === 0) fs.rmdirSync(p);
      continue;
    }
    const m = /^(.*)\.(js|d\.ts|js\.map|d\.ts\.map)$/.exec(path.relative(dist, p));
    if (!m) continue;
    if (!fs.existsSync(path.join(root, `${m[1]}.ts`))) {
      fs.rmSync(p, { force: true });
      removed++;
    }
  }
}

if (fs.existsSync(dist)) walk(dist);
if (removed > 0) console.log(`prune-dist: removed ${removed} compiled file(s) of deleted sources`);
