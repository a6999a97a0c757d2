#!/usr/bin/env bash
# Builds the addon with AddressSanitizer + UndefinedBehaviorSanitizer (CPU only, build-asan/) and runs
# the tests that exercise native code against it. Node itself is not instrumented, so the ASan
# runtime is preloaded; leak checking is off (V8 owns memory the addon never frees by design).
set -euo pipefail
cd "$(dirname "$0")/.."
XOPD_SANITIZE=1 XOPD_CUDA=0 XOPD_BUILD_DIR=build-asan node scripts/build-native.js >/dev/null
addon=build-asan/Release/xopd.node
# (no `grep -q` in a pipe: under pipefail its early exit would fail nm with SIGPIPE)
case "$(nm -D "$addon")" in *__asan_report*) ;; *) echo "build-asan is not instrumented" >&2; exit 1 ;; esac
export LD_PRELOAD="$(gcc -print-file-name=libasan.so)"
export ASAN_OPTIONS=detect_leaks=0:halt_on_error=1:abort_on_error=0:detect_stack_use_after_return=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export XOPD_ADDON="$addon" XOPD_SANITIZED=1
# Every test file that reaches native code; XOPD_SANITIZED lets slow end-to-end tests shrink.
files=$(ls test/*.test.ts | grep -vE '(report|cli-help)' || true)
npx vitest run $files "$@"
