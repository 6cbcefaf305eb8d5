#!/usr/bin/env bash
# Installs what building and testing raftmq needs, only where it is missing:
# Debian's -dev packages, and raft >= 0.22.1 built from Debian trixie's source
# package into a local prefix (bookworm's libraft-dev 0.15 has Raft safety
# bugs and must not be used; see docs/raft.md).
#
# Usage: scripts/deps.sh [--prefix DIR]     (default prefix: .deps/raft)
# Prints the prefix on its last line. Safe to run again: it does nothing when
# everything is there.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
prefix="$here/.deps/raft"
if [ "${1:-}" = "--prefix" ]; then prefix=$2; fi

log() { printf 'deps: %s\n' "$*" >&2; }

sudo_() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

pkgs=(build-essential cmake pkg-config libuv1-dev libmsgpack-dev libcmocka-dev
      autoconf automake libtool python3 procps
      iproute2 iptables faketime)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    sudo_ apt-get update -qq
    sudo_ apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --atleast-version=0.22.1 raft 2>/dev/null; then
    log "raft $(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --modversion raft) in $prefix"
    echo "$prefix"
    exit 0
fi

log "building raft 0.22.1 from Debian trixie's source package into $prefix"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo 'deb-src http://deb.debian.org/debian trixie main' > "$work/trixie-src.list"
mkdir -p "$work/lists/partial"
o=(-o "Dir::Etc::SourceList=$work/trixie-src.list" -o Dir::Etc::SourceParts=/nonexistent
   -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache")
mkdir -p "$work/cache/archives/partial"
apt-get "${o[@]}" update -qq >/dev/null
(cd "$work" && apt-get "${o[@]}" source --download-only raft=0.22.1-1 >/dev/null)
sha=$(sha256sum "$work/raft_0.22.1.orig.tar.gz" | cut -d' ' -f1)
log "raft_0.22.1.orig.tar.gz sha256 $sha (checked by apt against the signed index)"
(cd "$work" && tar xzf raft_0.22.1.orig.tar.gz && cd raft-0.22.1 && autoreconf -i >/dev/null 2>&1 &&
    ./configure --prefix="$prefix" --disable-shared --without-lz4 --disable-example \
        --enable-fixture >/dev/null &&
    make -j"$(nproc)" >/dev/null 2>&1 && make install >/dev/null)
PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --atleast-version=0.22.1 raft
log "raft installed in $prefix"
echo "$prefix"
