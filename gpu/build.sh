#!/usr/bin/env bash
# Builds the GPU check (gpu/check.cu with the real native sources: the .cu kernels and host code,
# the CPU paths, the float64 references) in one of three flavours, into OUT/xopd-gpu-check:
#   gpu/build.sh cuda     OUT   nvcc for a device: CUDAARCHS (default 90) SASS, -lineinfo for
#                               compute-sanitizer
#   gpu/build.sh emulated OUT   g++ only: the .cu files as host C++ under gpu/emulation/ (no GPU)
#   gpu/build.sh tsan     OUT   as emulated, with ThreadSanitizer (the emulation itself is left
#                               uninstrumented: it tells TSan where its barriers order memory)
# Objects are kept in OUT and rebuilt when a source they include changed. XOPD_GPU_OVERLAY=DIR:
# files in DIR replace the same paths under native/ (the mutation check builds from such copies);
# XOPD_GPU_OPT=-O0 overrides the emulated builds' optimisation.
set -euo pipefail
mode=${1:?usage: gpu/build.sh cuda|emulated|tsan OUT} out=${2:?usage: gpu/build.sh cuda|emulated|tsan OUT}
root=$(cd "$(dirname "$0")/.." && pwd)
overlay=${XOPD_GPU_OVERLAY:-}
mkdir -p "$out/obj"

cc_sources="native/common/threads.cc native/common/cuda_info.cc native/tokenizer/token_table.cc
  native/loss/sparse_divergence.cc native/loss/policy_gradient.cc native/loss/row_ops.cc
  native/loss/sparse_divergence_reference.cc native/loss/policy_gradient_reference.cc
  native/project/span_projection.cc native/project/byte_trie.cc native/project/span_projection_reference.cc"
cu_sources="native/loss/sparse_divergence.cu native/loss/policy_gradient.cu native/project/span_projection.cu gpu/check.cu"
# The bench kernels run on a device only (xopd-gpu-check --bench).
[ "$mode" = cuda ] && cu_sources="$cu_sources native/loss/sparse_divergence_bench.cu"

inc=(-I"$root/native" -I"$root/gpu" -I"$root/gpu/emulation")
[ -n "$overlay" ] && inc=(-I"$overlay" "${inc[@]}")
common=(-std=c++17 -DXOPD_WITH_CUDA=1 -Wall -Wno-unknown-pragmas -Wno-unused-function)
case "$mode" in
  cuda)
    command -v nvcc >/dev/null || { echo "gpu/build.sh: nvcc not found" >&2; exit 1; }
    archs=${CUDAARCHS:-90}
    gencode=()
    for a in ${archs//;/ }; do a=${a%-real}; gencode+=(-gencode "arch=compute_$a,code=sm_$a"); done
    # (the .cc files through nvcc too: it hands them to the host compiler with the CUDA headers' path)
    cxx=(nvcc -std=c++17 -DXOPD_WITH_CUDA=1 -O3 -x c++ -Xcompiler -Wall,-Wno-unknown-pragmas,-Wno-unused-function)
    cu=(nvcc -std=c++17 -DXOPD_WITH_CUDA=1 -O3 -lineinfo "${gencode[@]}" -Xcompiler -Wall,-Wno-unknown-pragmas,-Wno-unused-function)
    link=(nvcc "${gencode[@]}" -lpthread)
    ;;
  emulated|tsan)
    opt=${XOPD_GPU_OPT:-}  # the mutation check builds its throw-away copies with -O0 (faster to compile)
    flags=(${opt:--O2} -g -DXOPD_CUDA_EMULATION)
    [ "$mode" = tsan ] && flags=(${opt:--O1} -g -DXOPD_CUDA_EMULATION -fsanitize=thread)
    cxx=(g++ "${common[@]}" "${flags[@]}")
    cu=(g++ "${common[@]}" "${flags[@]}" -x c++)
    link=(g++ -pthread)
    [ "$mode" = tsan ] && link+=(-fsanitize=thread)
    # The emulation: never instrumented; under TSan it reports fibers and barriers to the runtime.
    emu=(g++ -std=c++17 -O2 -g -Wall -I"$root/gpu/emulation")
    [ "$mode" = tsan ] && emu+=(-DXOPD_EMU_TSAN)
    ;;
  *) echo "gpu/build.sh: mode must be cuda, emulated or tsan" >&2; exit 2 ;;
esac

# True when obj must be (re)built: missing, a dependency newer, or a dependency overlaid.
stale() {
  local obj=$1 dep=${1%.o}.d f
  [ -f "$obj" ] && [ -f "$dep" ] || return 0
  for f in $(sed -e 's/^[^:]*://' -e 's/\\$//' "$dep"); do
    [ "$f" -nt "$obj" ] && return 0
    if [ -n "$overlay" ] && [[ $f == "$root/native/"* ]] && [ -f "$overlay/${f#"$root"/native/}" ]; then return 0; fi
  done
  return 1
}

jobs=$(nproc 2>/dev/null || echo 2)
pids=()
compile() {  # compile OBJ CMD...
  local obj=$1; shift
  if stale "$obj"; then
    ( "$@" -o "$obj" > "$obj.log" 2>&1 || { cat "$obj.log" >&2; echo "gpu/build.sh: failed: $*" >&2; exit 1; } ) &
    pids+=($!)
    if [ "${#pids[@]}" -ge "$jobs" ]; then wait "${pids[0]}" || exit 1; pids=("${pids[@]:1}"); fi
  fi
}
src_of() {  # the overlaid copy of a native/ source when there is one
  local s=$1
  if [ -n "$overlay" ] && [[ $s == native/* ]] && [ -f "$overlay/${s#native/}" ]; then echo "$overlay/${s#native/}"; else echo "$root/$s"; fi
}
objs=()
for s in $cc_sources; do
  o="$out/obj/$(echo "$s" | tr / _).o"; objs+=("$o")
  compile "$o" "${cxx[@]}" "${inc[@]}" -MMD -MF "${o%.o}.d" -c "$(src_of "$s")"
done
for s in $cu_sources; do
  o="$out/obj/$(echo "$s" | tr / _).o"; objs+=("$o")
  if [ "$mode" = cuda ]; then compile "$o" "${cu[@]}" "${inc[@]}" -MMD -MF "${o%.o}.d" -c "$(src_of "$s")"
  else compile "$o" "${cu[@]}" "${inc[@]}" -MMD -c "$(src_of "$s")"; fi
done
if [ "$mode" != cuda ]; then
  o="$out/obj/cuda_emulation.o"; objs+=("$o")
  compile "$o" "${emu[@]}" -MMD -c "$root/gpu/emulation/cuda_emulation.cc"
fi
for p in "${pids[@]}"; do wait "$p" || exit 1; done
"${link[@]}" "${objs[@]}" -o "$out/xopd-gpu-check"
