#!/usr/bin/env bash
# fsm/ is the deterministic state machine: it may include only the C
# library's pure headers, msgpack-c and its own headers. No clock, no I/O,
# no libuv, no raft, no sockets: a file that includes anything else fails
# this test (it would compile, since those headers are installed).
set -euo pipefail
dir=${1:-$(cd "$(dirname "$0")/.." && pwd)}/fsm
allowed='^(stdbool|stddef|stdint|stdlib|string|limits|assert|msgpack)\.h$'
bad=0
for f in "$dir"/*.c "$dir"/*.h; do
    while IFS= read -r line; do
        hdr=$(printf '%s\n' "$line" | sed -E 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]([^>"]+)[>"].*/\1/')
        case "$hdr" in
        fsm/*.h | fsm.h | fsm_int.h | codec.h) continue ;;
        esac
        if ! printf '%s\n' "$hdr" | grep -Eq "$allowed"; then
            echo "$(basename "$f"): #include <$hdr> is not allowed in fsm/ (pure: libc, msgpack, own headers)"
            bad=1
        fi
    done < <(grep -E '^[[:space:]]*#[[:space:]]*include' "$f")
done
if [ "$bad" -ne 0 ]; then
    echo "1 failed"
    exit 1
fi
echo "fsm/ includes: only libc, msgpack and its own headers"
