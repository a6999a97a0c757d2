#!/usr/bin/env bash
# Proves the node-gyp path (machines without cmake) builds the CPU addon from binding.gyp, then runs
# the native tests against that build (XOPD_ADDON points the loader at it).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/xopd-gyp-XXXXXX")
trap 'rm -rf "$work"' EXIT
cp -r "$root/native" "$root/binding.gyp" "$root/package.json" "$work/"
mkdir -p "$work/scripts" && cp "$root/scripts/list-sources.cjs" "$work/scripts/"
ln -s "$root/node_modules" "$work/node_modules"
# Node's own headers (<prefix>/include/node): node-gyp must not download any.
prefix=$(cd "$(dirname "$(command -v node)")/.." && pwd)
(cd "$work" && "$root/node_modules/.bin/node-gyp" rebuild -j "$(nproc)" --loglevel=warn --nodedir="$prefix")
cd "$root"
XOPD_ADDON="$work/build/Release/xopd.node" node -e "
  const a = require(process.env.XOPD_ADDON); const i = a.info();
  if (i.cuda.compiled) { console.error('node-gyp build unexpectedly has CUDA'); process.exit(1); }
  console.log('node-gyp addon loads:', JSON.stringify(i));"
# native-surface: the node-gyp addon exports exactly the shipped names, like the cmake one.
XOPD_ADDON="$work/build/Release/xopd.node" npx vitest run test/native.test.ts test/native-surface.test.ts test/tokenizer-errors.test.ts
