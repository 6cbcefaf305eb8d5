#!/usr/bin/env bash
# Builds raftmq into build/ (or $BUILD_DIR), installing missing build
# dependencies first. Extra arguments go to CMake's configure step, e.g.
#   scripts/build.sh -DRAFTMQ_SANITIZE=ON
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$here/build}
"$here/scripts/deps.sh" >/dev/null
cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo} "$@" >/dev/null
cmake --build "$build" -j"$(nproc)"
