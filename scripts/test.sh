#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs every test
# (unit, raft and integration) with ctest.
#
#   scripts/test.sh              normal build in build/
#   scripts/test.sh --sanitize   ASan + UBSan build in build-sanitize/
#   scripts/test.sh -R REGEX     only the tests whose names match
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cmake_args=()
ctest_args=()
build=${BUILD_DIR:-$here/build}
while [ $# -gt 0 ]; do
    case "$1" in
    --sanitize)
        cmake_args+=(-DRAFTMQ_SANITIZE=ON)
        build=${BUILD_DIR:-$here/build-sanitize}
        export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
        export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
        ;;
    *) ctest_args+=("$1") ;;
    esac
    shift
done
BUILD_DIR=$build "$here/scripts/build.sh" "${cmake_args[@]}"
cd "$build"
ctest --output-on-failure --timeout 900 "${ctest_args[@]}"
