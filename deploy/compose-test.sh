#!/usr/bin/env bash
# End-to-end test of deploy/docker-compose.yml: build the image, start the
# 3-node cluster, kill the leader's container during a consume, restart
# everything, and check that no confirmed message is lost.
#
# Usage: deploy/compose-test.sh
# Environment:
#   N=2000 M=500 EXTRA=1000   messages before the kill, unconsumed ones kept
#                             across `restart`, published after the kill
#   PORT_BASE=27400           host ports PORT_BASE+1..3 on 127.0.0.1 (not
#                             7001-7003, which deploy/local-cluster.sh uses)
#   RAFTMQ_CLI                the raftmq CLI (default build/client/raftmq,
#                             built with scripts/build.sh when missing)
#   CONSUME_VIA=leader        consume through the leader (default n3), so
#                             that the kill cuts the consumer's connection
#   KEEP=1                    leave the cluster up on failure, for inspection
#   CI=true                   never skip: fail when Docker is not usable
# Without root or apt-get (and no working Docker) it prints "skipped" and
# exits 77 (ctest's "skipped"), except under CI. Everything it starts is bounded in time; it
# removes only its own compose project (containers, network, volumes) and
# stops dockerd only if it started it. The raftmq:local image is kept.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
N=${N:-2000}
M=${M:-500}
EXTRA=${EXTRA:-1000}
PORT_BASE=${PORT_BASE:-27400}
P1=$((PORT_BASE + 1)) P2=$((PORT_BASE + 2)) P3=$((PORT_BASE + 3))
ALL=127.0.0.1:$P1,127.0.0.1:$P2,127.0.0.1:$P3
project=raftmq-test-$$
work=$(mktemp -d /tmp/raftmq-compose-test.XXXXXX)
t_start=$(date +%s)
passed=0
failed=0
dockerd_pid=""
project_up=0
consumer_pid=""
skipped=0

log() { printf 'compose-test: %s\n' "$*"; }
pass() { passed=$((passed + 1)); log "PASS $*"; }
fail() { failed=$((failed + 1)); log "FAIL $*"; }

# Fatal failure: show the nodes' logs, then exit through the cleanup trap.
die() {
	fail "$*"
	if [ "$project_up" = 1 ]; then
		log "last log lines of every node:"
		dc logs --no-color --tail 40 2>&1 | sed 's/^/    /' || true
	fi
	exit 1
}

skip() {
	if [ "${CI:-}" = true ]; then
		die "docker not usable under CI: $*"
	fi
	log "skipped: docker not usable ($*)"
	skipped=1
	exit 77
}

cleanup() {
	local rc=$?
	set +e
	if [ -n "$consumer_pid" ] && kill -0 "$consumer_pid" 2>/dev/null; then
		kill "$consumer_pid"
	fi
	if [ "$project_up" = 1 ]; then
		if [ "$rc" != 0 ] && [ "${KEEP:-}" = 1 ]; then
			log "KEEP=1: project $project left up; remove it with:"
			log "  docker-compose -p $project -f deploy/docker-compose.yml down -v"
		else
			dc down -v --remove-orphans >/dev/null 2>&1 ||
				log "warning: 'down -v' of $project failed"
		fi
	fi
	if [ -n "$dockerd_pid" ]; then
		kill "$dockerd_pid" 2>/dev/null
		for _ in $(seq 100); do
			kill -0 "$dockerd_pid" 2>/dev/null || break
			sleep 0.2
		done
	fi
	rm -rf "$work"
	[ "$skipped" = 1 ] && exit 77
	log "$passed passed, $failed failed ($(($(date +%s) - t_start)) s)"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# ---- Docker, Compose, base image, CLI --------------------------------------

sudo_ok() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; }

need=()
command -v docker >/dev/null || need+=(docker.io)
command -v dockerd >/dev/null || docker info >/dev/null 2>&1 || need+=(docker.io)
command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 ||
	need+=(docker-compose)
docker image inspect debian:bookworm-slim >/dev/null 2>&1 ||
	command -v debootstrap >/dev/null || need+=(debootstrap)
if [ ${#need[@]} -gt 0 ]; then
	sudo_ok || skip "missing ${need[*]} and not root with apt-get"
	log "installing ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	timeout 300 apt-get update -qq >/dev/null
	timeout 600 apt-get install -y -qq "${need[@]}" >/dev/null ||
		die "apt-get install ${need[*]} failed"
fi

if ! docker info >/dev/null 2>&1; then
	sudo_ok || skip "docker info fails and not root"
	log "starting dockerd (log $work/dockerd.log)"
	dockerd >"$work/dockerd.log" 2>&1 &
	dockerd_pid=$!
	for _ in $(seq 60); do
		docker info >/dev/null 2>&1 && break
		kill -0 "$dockerd_pid" 2>/dev/null || break
		sleep 0.5
	done
	docker info >/dev/null 2>&1 || {
		tail -20 "$work/dockerd.log"
		die "dockerd did not come up in 30 s"
	}
fi

# v1 keeps a failed build step's container unless told otherwise.
if command -v docker-compose >/dev/null; then
	compose=(docker-compose)
	build_opts=(--force-rm)
else
	compose=(docker compose)
	build_opts=()
fi
dc() {
	timeout 600 "${compose[@]}" -p "$project" \
		-f "$here/deploy/docker-compose.yml" "$@"
}
# The container of a service, running or not (v2's `ps` hides stopped ones).
cid_of() { dc ps -a -q "$1"; }
export RAFTMQ_PORT_N1=$P1 RAFTMQ_PORT_N2=$P2 RAFTMQ_PORT_N3=$P3

for p in $P1 $P2 $P3; do
	if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
		die "127.0.0.1:$p is already in use (set PORT_BASE)"
	fi
done

"$here/deploy/base-image.sh" || die "base image"

cli=${RAFTMQ_CLI:-$here/build/client/raftmq}
if [ ! -x "$cli" ]; then
	log "building the host CLI with scripts/build.sh"
	timeout 900 "$here/scripts/build.sh" >"$work/build.log" 2>&1 || {
		tail -30 "$work/build.log"
		die "scripts/build.sh failed"
	}
fi
[ -x "$cli" ] || die "no CLI at $cli"
mq() { timeout 60 "$cli" "$@"; }

# ---- helpers -----------------------------------------------------------------

# The leader id as seen through the given servers, or nothing.
leader_of() {
	mq -s "$1" --timeout 2000 cluster status --json 2>/dev/null |
		python3 -c 'import json,sys
try:
    d = json.load(sys.stdin)
except Exception:
    sys.exit(0)
if d.get("leader"):
    print(d["leader"])' || true
}

# Waits up to $1 seconds until every service's container is healthy.
wait_healthy() {
	local deadline=$(($(date +%s) + $1)) s st ok
	while :; do
		ok=1
		for s in n1 n2 n3; do
			st=$(docker inspect -f '{{.State.Health.Status}}' \
				"$(cid_of "$s")" 2>/dev/null || echo none)
			[ "$st" = healthy ] || ok=0
		done
		[ "$ok" = 1 ] && return 0
		[ "$(date +%s)" -ge "$deadline" ] && return 1
		sleep 1
	done
}

# Waits up to $2 seconds for a leader seen through servers $1; prints its id.
wait_leader() {
	local deadline=$(($(date +%s) + $2)) l
	while :; do
		l=$(leader_of "$1")
		[ -n "$l" ] && { echo "$l"; return 0; }
		[ "$(date +%s)" -ge "$deadline" ] && return 1
		sleep 0.2
	done
}

# Publishes the lines of file $3 to queue $2 through server $1; succeeds only
# when every message is confirmed.
publish_file() {
	local out n
	n=$(wc -l <"$3")
	out=$(mq -s "$1" publish "$2" <"$3" 2>"$work/publish.err") || {
		cat "$work/publish.err"
		return 1
	}
	echo "$out" | grep -qx "confirmed $n" || {
		echo "publish printed: $out"
		return 1
	}
}

# ---- build and start -----------------------------------------------------------

t0=$(date +%s)
dc build "${build_opts[@]}" >"$work/compose-build.log" 2>&1 || {
	tail -40 "$work/compose-build.log"
	die "docker-compose build"
}
size=$(docker image inspect -f '{{.Size}}' raftmq:local)
pass "image raftmq:local built in $(($(date +%s) - t0)) s, $((size / 1000000)) MB"

project_up=1
dc up -d >"$work/up.log" 2>&1 || { cat "$work/up.log"; die "docker-compose up -d"; }
t0=$(date +%s)
wait_healthy 120 || die "not all nodes healthy within 120 s"
leader=$(wait_leader "$ALL" 30) || die "no leader within 30 s"
pass "3 nodes healthy with leader n$leader after $(($(date +%s) - t0)) s"

# Inside the network the members reach each other by service name; from the
# host only the client ports are reachable, on loopback.
inside=$(timeout 30 "${compose[@]}" -p "$project" \
	-f "$here/deploy/docker-compose.yml" exec -T n1 \
	raftmq -s n1:7001,n2:7001,n3:7001 cluster status --json 2>&1) || true
echo "$inside" | python3 -c 'import json,sys
d = json.load(sys.stdin)
roles = sorted(n.get("role") for n in d["nodes"])
assert d["leader"] and d["reachable"] == 3, d
assert roles == ["follower", "follower", "leader"], roles' 2>/dev/null ||
	die "cluster status inside the network: $inside"
pass "cluster status from inside n1: 3 members by service name, 1 leader"
ports=$(for s in n1 n2 n3; do docker port "$(cid_of "$s")"; done | sort -u)
if [ "$(echo "$ports" | grep -vc '127\.0\.0\.1:')" = 0 ] &&
	[ "$(echo "$ports" | grep -c '^7001/tcp')" = 3 ]; then
	pass "only client ports published, on 127.0.0.1"
else
	die "published ports: $ports"
fi

# ---- leader kill during a consume ----------------------------------------------

q=ct
mq -s "127.0.0.1:$P1" queue declare "$q" --ack-timeout 5000 >/dev/null ||
	die "queue declare $q"
seq -f 'a-%07g' 1 "$N" >"$work/batch-a"
publish_file "127.0.0.1:$P1" "$q" "$work/batch-a" ||
	die "publish $N through n1"
cp "$work/batch-a" "$work/confirmed"
pass "published $N through n1, all confirmed"

# Container ids up front: `docker-compose ps` is slow, the kill should not be.
declare -A cid_by_id
for i in 1 2 3; do cid_by_id[$i]=$(cid_of "n$i"); done

# One delivery in flight at a time, so that the consumer is still running
# when the leader dies. CONSUME_VIA=leader makes it lose its own node.
cnode=3
if [ "${CONSUME_VIA:-n3}" = leader ]; then
	cnode=$(wait_leader "$ALL" 10) || die "no leader"
fi
log "consumer 1 through n$cnode"
timeout 180 "$cli" -s "127.0.0.1:$((PORT_BASE + cnode))" consume "$q" --timeout 15 \
	--prefetch 1 >"$work/consumed-1" 2>"$work/consumer-1.err" &
consumer_pid=$!
for _ in $(seq 100); do
	[ "$(wc -l <"$work/consumed-1")" -ge $((N / 10)) ] && break
	sleep 0.1
done

leader=$(wait_leader "$ALL" 10) || die "no leader before the kill"
cid=${cid_by_id[$leader]}
got=$(wc -l <"$work/consumed-1")
kill -0 "$consumer_pid" 2>/dev/null ||
	die "the consumer ended before the kill ($got consumed)"
t0=$(date +%s.%N)
docker kill "$cid" >/dev/null || die "docker kill n$leader"
log "killed leader n$leader (container ${cid:0:12}) with $got of $N consumed"
survivors=$(for i in 1 2 3; do
	[ "$i" = "$leader" ] || printf '127.0.0.1:%s,' $((PORT_BASE + i))
done)
survivors=${survivors%,}
new=""
deadline=$(($(date +%s) + 30))
while [ "$(date +%s)" -lt "$deadline" ]; do
	new=$(leader_of "$survivors")
	[ -n "$new" ] && [ "$new" != "$leader" ] && break
	new=""
	sleep 0.1
done
[ -n "$new" ] || die "no new leader among the survivors within 30 s"
pass "new leader n$new elected $(echo "$(date +%s.%N) - $t0" |
	python3 -c 'print("%.1f" % eval(input()))') s after the kill"

seq -f 'b-%07g' 1 "$EXTRA" >"$work/batch-b"
publish_file "127.0.0.1:$((PORT_BASE + new))" "$q" "$work/batch-b" ||
	die "publish $EXTRA through the new leader while n$leader is down"
cat "$work/batch-b" >>"$work/confirmed"
pass "published $EXTRA through n$new with n$leader down, all confirmed"

docker start "$cid" >/dev/null || die "docker start n$leader"
wait_healthy 90 || die "n$leader not healthy again within 90 s"
pass "n$leader restarted and healthy"

seq -f 'c-%07g' 1 "$EXTRA" >"$work/batch-c"
publish_file "127.0.0.1:$P1" "$q" "$work/batch-c" ||
	die "publish $EXTRA after the restart"
cat "$work/batch-c" >>"$work/confirmed"
pass "published $EXTRA more through n1, all confirmed"

# The first consumer ends after 15 s without deliveries, or with an error if
# its connection went down with the leader; drain what is left through n2.
for _ in $(seq 200); do
	kill -0 "$consumer_pid" 2>/dev/null || break
	sleep 1
done
c1rc=0
wait "$consumer_pid" || c1rc=$?
consumer_pid=""
log "consumer 1 (through n$cnode) exited $c1rc after $(wc -l <"$work/consumed-1") messages; its stderr:"
sed 's/^/    /' "$work/consumer-1.err"
total=$(wc -l <"$work/confirmed")
: >"$work/consumed-2"
for round in 1 2 3 4 5 6; do
	missing=$(sort -u "$work/consumed-1" "$work/consumed-2" |
		comm -13 - <(sort "$work/confirmed") | wc -l)
	[ "$missing" = 0 ] && break
	log "drain round $round through n2: $missing missing"
	mq -s "127.0.0.1:$P2" consume "$q" --timeout 8 \
		>>"$work/consumed-2" 2>>"$work/consumer-2.err" ||
		log "drain consumer failed: $(tail -2 "$work/consumer-2.err")"
done
cat "$work/consumed-1" "$work/consumed-2" >"$work/consumed"
sort -u "$work/consumed" >"$work/consumed-set"
missing=$(comm -13 "$work/consumed-set" <(sort "$work/confirmed") | wc -l)
unknown=$(comm -23 "$work/consumed-set" <(sort "$work/confirmed") | wc -l)
dups=$(($(wc -l <"$work/consumed") - $(wc -l <"$work/consumed-set")))
log "confirmed $total, consumed $(wc -l <"$work/consumed") ($dups duplicates), missing $missing, unknown $unknown"
if [ "$missing" = 0 ] && [ "$unknown" = 0 ]; then
	pass "every confirmed message consumed at least once ($dups redelivered)"
else
	comm -13 "$work/consumed-set" <(sort "$work/confirmed") | head -5
	die "$missing confirmed messages never consumed, $unknown unknown"
fi

# ---- durability across a restart of every node --------------------------------

q2=kept
mq -s "127.0.0.1:$P1" queue declare "$q2" >/dev/null || die "queue declare $q2"
seq -f 'k-%07g' 1 "$M" >"$work/batch-k"
publish_file "127.0.0.1:$P1" "$q2" "$work/batch-k" || die "publish $M to $q2"
t0=$(date +%s)
dc restart >"$work/restart.log" 2>&1 || { cat "$work/restart.log"; die "docker-compose restart"; }
wait_healthy 120 || die "not all nodes healthy within 120 s of the restart"
wait_leader "$ALL" 30 >/dev/null || die "no leader after the restart"
pass "docker-compose restart: healthy with a leader after $(($(date +%s) - t0)) s"
mq -s "127.0.0.1:$P2" consume "$q2" --count "$M" --timeout 20 \
	>"$work/consumed-k" 2>"$work/consumer-k.err" || {
	cat "$work/consumer-k.err"
	die "consume $M from $q2 after the restart"
}
if cmp -s <(sort "$work/consumed-k") <(sort "$work/batch-k"); then
	pass "all $M messages of $q2 survived the restart"
else
	die "$q2 after the restart: $(wc -l <"$work/consumed-k") of $M, contents differ"
fi

# ---- clean shutdown -------------------------------------------------------------

dc stop -t 20 >/dev/null 2>&1 || die "docker-compose stop"
codes=""
for s in n1 n2 n3; do
	codes+="$s=$(docker inspect -f '{{.State.ExitCode}}' "$(cid_of "$s")") "
done
if [ "$codes" = "n1=0 n2=0 n3=0 " ]; then
	pass "SIGTERM: every node exited 0"
else
	die "exit codes after SIGTERM: $codes"
fi
