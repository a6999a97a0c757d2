#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: builds the addon with CUDA, runs the CUDA tests (they must run,
# not skip: XOPD_REQUIRE_CUDA=1) and the loss bench (--quick; CPU and device-resident CUDA rows).
# Ends in well under 5 minutes on one H100. Results: bench/results/loss.json.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v nvcc >/dev/null || { echo "gpu-check: nvcc not found" >&2; exit 1; }
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
start=$(date +%s)
XOPD_CUDA=1 node scripts/build-native.js > build-native.log 2>&1 || { tail -40 build-native.log >&2; exit 1; }
npx tsc -p tsconfig.json
node -e "import('./dist/src/core/native.js').then(({ info }) => { const c = info().cuda; console.log('CUDA', JSON.stringify(c)); if (!c.compiled || c.devices < 1) process.exit(3); })" \
  || { echo "gpu-check: the addon sees no CUDA device" >&2; exit 1; }
echo "build: $(( $(date +%s) - start )) s"
XOPD_REQUIRE_CUDA=1 npx vitest run test/loss-cuda.test.ts
XOPD_REQUIRE_CUDA=1 npx vitest run test/project-span.test.ts -t 'CUDA'
echo "tests: $(( $(date +%s) - start )) s"
npm run bench -- loss --quick
echo "gpu-check: done in $(( $(date +%s) - start )) s"
