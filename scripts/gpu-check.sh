#!/usr/bin/env bash
# The GPU check, on a machine with an NVIDIA GPU and the CUDA toolkit; no Node, no node_modules:
#   1. builds gpu/check.cu with the real native sources for the device (gpu/build.sh cuda;
#      CUDAARCHS, default 90 = H100/H200)
#   2. runs every case against the float64 references (tolerances from test/helpers/tolerances.ts)
#   3. runs the quick cases under compute-sanitizer memcheck, racecheck and synccheck
#   4. the bench: fused vs unfused vs a device copy (device-resident), and end to end with the
#      transfers (host logits in, host gradient out) against the CPU path
#   5. lists the SASS and PTX of build/Release/xopd.node when the addon was built (cuobjdump)
# Every step has a time limit, and a step that would start after 6 minutes is skipped (and counted
# as failed), so the whole check ends within 8 minutes on one H200.
# Output: stdout, and build-gpu/gpu-check.log. Exit status: 0 when every step passed.
#   scripts/gpu-check.sh --emulated   the same harness on the CPU emulation (a dry run, no GPU:
#                                     what CI runs through test/cuda-emulation.test.ts)
set -uo pipefail
cd "$(dirname "$0")/.."
mode=cuda
[ "${1:-}" = "--emulated" ] && mode=emulated
out=build-gpu
mkdir -p "$out"
exec > >(tee "$out/gpu-check.log") 2>&1
start=$(date +%s)
failed=()
step() { echo; echo "== [$(( $(date +%s) - start ))s] $*"; }
run() {  # run LIMIT_SECONDS NAME CMD...: records NAME when CMD fails or times out
  local limit=$1 name=$2 left; shift 2
  left=$(( 460 - ($(date +%s) - start) ))
  if [ "$left" -lt 30 ]; then failed+=("$name (skipped: out of time)"); echo "gpu-check: $name skipped, out of time"; return 0; fi
  [ "$limit" -gt "$left" ] && limit=$left
  timeout "$limit" "$@"
  local rc=$?
  [ $rc -eq 0 ] || { failed+=("$name (exit $rc)"); echo "gpu-check: $name failed (exit $rc)"; }
  return 0
}

if [ $mode = cuda ]; then
  command -v nvcc >/dev/null || { echo "gpu-check: nvcc not found" >&2; exit 1; }
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
  nvcc --version | tail -1
fi
step "build ($mode)"
run 240 build bash gpu/build.sh "$mode" "$out/$mode" || true
bin="$out/$mode/xopd-gpu-check"
[ -x "$bin" ] || { echo "gpu-check: no binary, stopping"; exit 1; }

step "cases"
run 120 cases "$bin"

if [ $mode = cuda ]; then
  quick='vocab 4099 (scalar loads) fp32 jsd|vocab 32000 bf16 jsd|support 1500 > block jsd|vocab 100 < block|all rows masked|policy gradient vocab 4099 fp32 PPO|in-place|span projection 1500|determinism'
  if command -v compute-sanitizer >/dev/null; then
    for tool in memcheck racecheck synccheck; do
      step "compute-sanitizer --tool $tool"
      run 90 "compute-sanitizer $tool" compute-sanitizer --tool "$tool" --error-exitcode 9 --print-limit 20 "$bin" --quick --only "$quick"
    done
  else
    echo "gpu-check: compute-sanitizer not found: sanitizers skipped"
    failed+=("compute-sanitizer missing")
  fi
  step "bench"
  run 90 bench "$bin" --bench
  if [ -f build/Release/xopd.node ] && command -v cuobjdump >/dev/null; then
    step "the addon's CUDA code (build/Release/xopd.node)"
    cuobjdump --list-elf build/Release/xopd.node | sed 's/.*\.\(sm_[0-9]*\)\.cubin/\1/' | sort | uniq -c
    cuobjdump --list-ptx build/Release/xopd.node | sed 's/.*\.sm_\([0-9]*\)\.ptx/compute_\1/' | sort | uniq -c
  fi
fi

step "done"
if [ ${#failed[@]} -gt 0 ]; then
  printf 'gpu-check FAILED: %s\n' "${failed[@]}"
  exit 1
fi
echo "gpu-check: every step passed in $(( $(date +%s) - start )) s"
