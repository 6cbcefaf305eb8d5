#!/usr/bin/env bash
# Runs `raftmq-bench all` against a local 3-node cluster, in one command.
#
#   bench/run-local.sh [raftmq-bench options...]     e.g. --json, --runs 1
#
# Builds the project when raftmq-bench or raftmq-node is missing (into build/,
# or $RAFTMQ_BIN_DIR). When no cluster answers on 127.0.0.1:7001-7003, it starts
# one in a temporary directory and brings it down (SIGTERM by pid) at the end;
# a cluster that was already running is used as it is, and W6-W8 then need
# --pid-dir DIR (its data dir) to kill and restart nodes. Extra arguments go to
# raftmq-bench; RAFTMQ_BENCH_WORKLOAD (default "all") picks the workload, e.g.
# RAFTMQ_BENCH_WORKLOAD="sweep size" bench/run-local.sh --runs 1
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
export RAFTMQ_BIN_DIR=${RAFTMQ_BIN_DIR:-$here/build}
bench=$RAFTMQ_BIN_DIR/bench/raftmq-bench
cli=$RAFTMQ_BIN_DIR/client/raftmq
cluster=$here/deploy/local-cluster.sh
servers=127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003

if [ ! -x "$bench" ] || [ ! -x "$RAFTMQ_BIN_DIR/node/raftmq-node" ] ||
    [ ! -x "$cli" ]; then
    BUILD_DIR=$RAFTMQ_BIN_DIR "$here/scripts/build.sh"
fi

dir=""
cleanup() {
    if [ -n "$dir" ]; then
        "$cluster" down --dir "$dir" >&2 || true
        rm -rf "$dir"
    fi
}
trap cleanup EXIT INT TERM

extra=()
if timeout 10 "$cli" -s "$servers" cluster status 2>/dev/null |
    grep -q '^leader: [0-9]'; then
    echo "run-local: using the cluster already running on $servers" >&2
else
    dir=$(mktemp -d /tmp/raftmq-bench.XXXXXX)
    "$cluster" up --dir "$dir" >&2
    # `up` returns once some node reports a role; wait for a real leader.
    for _ in $(seq 100); do
        if "$cli" -s "$servers" cluster status 2>/dev/null |
            grep -q '^leader: [0-9]'; then
            break
        fi
        sleep 0.2
    done
    extra=(--pid-dir "$dir" --script "$cluster")
fi

read -r -a work <<<"${RAFTMQ_BENCH_WORKLOAD:-all}"
"$bench" -s "$servers" "${work[@]}" "${extra[@]}" "$@"
