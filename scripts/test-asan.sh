#!/usr/bin/env bash
# Builds both addons with AddressSanitizer + UndefinedBehaviorSanitizer (CPU only, build-asan/):
# xopd.node, and xopd_dev.node, whose references the tests compare against (an unsanitized reference
# would hide its own faults and those of the kernels it shares objects with). Then runs the test
# suite against them: every test file, since any of them may reach native code through the facade,
# except test/package.test.ts, which installs the packed package and builds its own (unsanitized)
# addon with compilers that the preloaded ASan runtime would only slow down. XOPD_SANITIZED tells
# the property tests (test/helpers/fuzz.ts) to run a fifth of their cases: native calls run several
# times slower here.
# Node itself is not instrumented, so the ASan runtime is preloaded (child processes the tests start
# inherit it); leak checking is off (V8 owns memory the addon never frees by design).
set -euo pipefail
cd "$(dirname "$0")/.."
XOPD_SANITIZE=1 XOPD_CUDA=0 XOPD_DEV=1 XOPD_BUILD_DIR=build-asan node scripts/build-native.js >/dev/null
addon=build-asan/Release/xopd.node dev=build-asan/Release/xopd_dev.node
for f in "$addon" "$dev"; do
  # (no `grep -q` in a pipe: under pipefail its early exit would fail nm with SIGPIPE)
  case "$(nm -D "$f")" in *__asan_report*) ;; *) echo "$f is not instrumented" >&2; exit 1 ;; esac
done
export LD_PRELOAD="$(gcc -print-file-name=libasan.so)"
export ASAN_OPTIONS=detect_leaks=0:halt_on_error=1:abort_on_error=0:detect_stack_use_after_return=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export XOPD_ADDON="$addon" XOPD_DEV_ADDON="$dev" XOPD_SANITIZED=1
npx vitest run --exclude test/package.test.ts "$@"
