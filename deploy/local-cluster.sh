#!/usr/bin/env bash
# The embedded default: three raftmq nodes on 127.0.0.1, no Docker.
#
#   deploy/local-cluster.sh up     [--dir DIR]   build if needed, start, wait for a leader
#   deploy/local-cluster.sh down   [--dir DIR]   SIGTERM each node (SIGKILL after 15 s)
#   deploy/local-cluster.sh status [--dir DIR]   pids and `raftmq cluster status`
#   deploy/local-cluster.sh kill N | start N [--dir DIR]   SIGKILL / restart node N
#
# Node N (1..3) listens for clients on 127.0.0.1:700N and for raft on
# 127.0.0.1:900N; its data, log and pid file live in DIR/nN (default DIR:
# data/local-cluster in the source tree). Environment: RAFTMQ_BIN_DIR (where
# raftmq-node and raftmq are, default build/), RAFTMQ_LOG_LEVEL.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${RAFTMQ_BIN_DIR:-$here/build}
dir=$here/data/local-cluster
cmd=${1:-}
shift || true
arg=""
while [ $# -gt 0 ]; do
    case "$1" in
    --dir) dir=$2; shift 2 ;;
    [1-3]) arg=$1; shift ;;
    *) echo "local-cluster: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
members="1@127.0.0.1:9001/127.0.0.1:7001,2@127.0.0.1:9002/127.0.0.1:7002,3@127.0.0.1:9003/127.0.0.1:7003"
servers="127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003"

node_bin() { echo "$bin/node/raftmq-node"; }
cli_bin() { echo "$bin/client/raftmq"; }

running() { # N -> 0 if node N runs
    local pf=$dir/n$1/pid
    [ -f "$pf" ] && kill -0 "$(cat "$pf")" 2>/dev/null
}

start_node() {
    local n=$1
    if running "$n"; then
        echo "n$n already running (pid $(cat "$dir/n$n/pid"))"
        return
    fi
    mkdir -p "$dir/n$n/data"
    RAFTMQ_ID=$n RAFTMQ_DATA_DIR=$dir/n$n/data RAFTMQ_MEMBERS=$members \
        nohup "$(node_bin)" >>"$dir/n$n/log" 2>&1 </dev/null &
    echo $! >"$dir/n$n/pid"
    echo "n$n started (pid $!, clients 127.0.0.1:700$n, log $dir/n$n/log)"
}

stop_node() { # N SIGNAL
    local n=$1 sig=$2 pf=$dir/n$1/pid
    running "$n" || { rm -f "$pf"; return 0; }
    local pid
    pid=$(cat "$pf")
    kill "-$sig" "$pid"
    for _ in $(seq 150); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "n$n did not stop in 15 s: SIGKILL" >&2
        kill -KILL "$pid"
    fi
    rm -f "$pf"
    echo "n$n stopped"
}

wait_leader() {
    for _ in $(seq 150); do
        if "$(cli_bin)" -s "$servers" cluster status --json 2>/dev/null | grep -q '"leader": [1-9]'; then
            return 0
        fi
        sleep 0.2
    done
    echo "local-cluster: no leader after 30 s; logs in $dir/n*/log" >&2
    return 1
}

case "$cmd" in
up)
    if [ ! -x "$(node_bin)" ] || [ ! -x "$(cli_bin)" ]; then
        "$here/scripts/build.sh"
    fi
    for n in 1 2 3; do start_node "$n"; done
    wait_leader
    "$(cli_bin)" -s "$servers" cluster status
    echo "ready: try  $(cli_bin) queue declare jobs && echo hello | $(cli_bin) publish jobs && $(cli_bin) consume jobs --count 1"
    ;;
down)
    for n in 1 2 3; do stop_node "$n" TERM; done
    ;;
status)
    for n in 1 2 3; do
        if running "$n"; then echo "n$n running (pid $(cat "$dir/n$n/pid"))"; else echo "n$n stopped"; fi
    done
    "$(cli_bin)" -s "$servers" cluster status || true
    ;;
kill)
    [ -n "$arg" ] || { echo "usage: local-cluster.sh kill N" >&2; exit 2; }
    stop_node "$arg" KILL
    ;;
start)
    [ -n "$arg" ] || { echo "usage: local-cluster.sh start N" >&2; exit 2; }
    start_node "$arg"
    ;;
*)
    sed -n '2,14p' "$0" >&2
    exit 2
    ;;
esac
