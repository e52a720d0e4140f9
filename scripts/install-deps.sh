#!/bin/sh
# Install, from Debian 12 packages, what bmapkit needs to build, test and benchmark.
# Installs only what is missing; needs root (or sudo) when something is.
set -eu

build_pkgs="gcc meson ninja-build pkg-config libexpat1-dev libssl-dev libisal-dev zlib1g-dev
libbz2-dev liblzma-dev libzstd-dev liblz4-dev libxxhash-dev liblzo2-dev libarchive-dev"
test_pkgs="libcmocka-dev clang libclang-rt-14-dev bmap-tools e2fsprogs dosfstools mtools
fdisk util-linux xz-utils zstd lz4 bzip2 gzip pigz pbzip2 lzop python3 diffutils time"

case "${1:-all}" in
build) pkgs="$build_pkgs" ;;
all | test) pkgs="$build_pkgs $test_pkgs" ;;
*) echo "usage: $0 [build|test|all]" >&2; exit 2 ;;
esac

missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
[ -z "$missing" ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
