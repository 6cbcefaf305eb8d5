#!/usr/bin/env bash
# Creates the debian:bookworm-slim base image locally (debootstrap + docker
# import) when Docker has no image of that name, so deploy/Dockerfile stays a
# standard Dockerfile on machines without an image registry.
#
# Usage: deploy/base-image.sh [IMAGE]   (default: debian:bookworm-slim)
# Needs root, debootstrap and a running Docker daemon. Does nothing when the
# image is already there (pulled or imported earlier).
set -euo pipefail

image=${1:-debian:bookworm-slim}
suite=${BASE_SUITE:-bookworm}
mirror=${BASE_MIRROR:-http://deb.debian.org/debian}

log() { printf 'base-image: %s\n' "$*" >&2; }

if docker image inspect "$image" >/dev/null 2>&1; then
	log "$image already present"
	exit 0
fi
command -v debootstrap >/dev/null || {
	log "debootstrap is missing (apt-get install debootstrap)"
	exit 1
}

dir=$(mktemp -d /tmp/raftmq-rootfs.XXXXXX)
trap 'rm -rf "$dir"' EXIT
log "debootstrap --variant=minbase $suite into $dir (about 30 s)"
debootstrap --variant=minbase "$suite" "$dir" "$mirror" >"$dir.log" 2>&1 || {
	tail -20 "$dir.log" >&2
	rm -f "$dir.log"
	log "debootstrap failed"
	exit 1
}
rm -f "$dir.log"
# Keep the image close to the official slim one: no package caches or lists,
# no manuals, documentation or translations, now or in later apt installs.
# Every path below is inside the fresh rootfs; never run these with $dir empty.
[ -d "$dir/usr/share" ] || exit 1
rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
printf '%s\n' 'path-exclude /usr/share/doc/*' \
	'path-include /usr/share/doc/*/copyright' \
	'path-exclude /usr/share/man/*' 'path-exclude /usr/share/info/*' \
	'path-exclude /usr/share/locale/*' 'path-exclude /usr/share/lintian/*' \
	>"$dir/etc/dpkg/dpkg.cfg.d/docker-slim"
find "$dir/usr/share/doc" -mindepth 2 ! -name copyright -type f -delete
rm -rf "$dir"/usr/share/man/* "$dir"/usr/share/info/* \
	"$dir"/usr/share/locale/* "$dir"/usr/share/lintian/*
tar -C "$dir" -c . | docker import \
	-c 'CMD ["bash"]' \
	-c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
	- "$image" >/dev/null
log "$image imported ($(docker image inspect -f '{{.Size}}' "$image") bytes)"
