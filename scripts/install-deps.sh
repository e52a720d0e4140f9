#!/bin/sh
# Install, from Debian 12 packages, what bmapkit needs to build, test and benchmark.
# Installs only what is missing; needs root (or sudo) when something is.
set -eu

build_pkgs="gcc meson ninja-build pkg-config libexpat1-dev libssl-dev libisal-dev zlib1g-dev
libbz2-dev liblzma-dev libzstd-dev liblz4-dev libxxhash-dev liblzo2-dev libarchive-dev
libgpgme-dev libnbd-dev libcurl4-openssl-dev"
# Everything the tests, the demo and the fuzz targets run, by what runs it. A minimal
# Debian (debootstrap --variant=minbase) lacks most of it; scripts/check-fresh.sh
# checks that nothing is missing.
# - unit tests; api-headers compiles the headers as C++ (g++), api-symbols reads them (nm)
# - fuzz targets: clang with libFuzzer
# - the reference bmaptool
# - disk images: file systems, partition tables, FAT files, loop devices and mounts,
#   setpriv, taskset, fallocate, blockdev (util-linux), script (bsdutils)
# - a block device whose I/O fails on command (copy-dest-faults): an nbdkit server,
#   nbdfuse (libnbd-bin) to show it as a file, FUSE's fusermount3 (fuse3)
# - compressors and archivers of the decoder tests and the fuzz seed corpora
# - the tests' helpers (python3, cmp) and the benchmark's GNU time
# - signed bmaps (copy-signature): gpg, gpg-agent and gpgconf make keys and signatures;
#   api-install-prefix formats bmapkit(3) with groff and links statically (libarchive's
#   static libraries need -lacl, and libcurl's name nghttp2, rtmp, ssh2, psl, krb5, ldap)
# - NBD destinations and their fallback over ssh: nbdkit (above), sshd and ssh on 127.0.0.1
# - images from URLs (copy-http, copy-https, copy-ftp): an nginx and a vsftpd on 127.0.0.1
# - the packaging and integration tests: debhelper, lintian, labgrid (and the rsync it
#   copies images to an exporter with), udev, bash-completion,
#   tmux for the terminal width of the progress line
# - scripts/check-fresh.sh, which scripts/test.sh runs as root: debootstrap, git
test_pkgs="libcmocka-dev g++ binutils
clang libclang-rt-14-dev
bmap-tools
e2fsprogs dosfstools mtools fdisk gdisk util-linux mount bsdutils
nbdkit libnbd-bin fuse3
xz-utils zstd lz4 bzip2 gzip pigz pbzip2 lzop tar zip unzip
python3 diffutils time
gnupg groff-base libacl1-dev
openssh-server openssh-client nginx-light vsftpd
debhelper dpkg-dev fakeroot lintian python3-labgrid rsync udev bash-completion tmux
libnghttp2-dev librtmp-dev libssh2-1-dev libpsl-dev libkrb5-dev libldap2-dev
debootstrap git"

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

# The tests start their own sshd, nginx and vsftpd on 127.0.0.1, on ports of their own. The
# packages would also start (and enable) system-wide servers on ports 22, 80 and 21, which
# this machine did not have before: keep them from starting while installing (a
# policy-rc.d, unless one exists), and disable the services they newly bring.
servers=""
for p in openssh-server nginx-light vsftpd; do
    case " $missing " in *" $p "*) servers="$servers $p" ;; esac
done
policy=/usr/sbin/policy-rc.d
own_policy=""
if [ -n "$servers" ] && [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# bmapkit install-deps: no service starts while it installs.\nexit 101\n' |
        $sudo tee "$policy" >/dev/null && $sudo chmod 755 "$policy" && own_policy=1
fi
rc=0
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null || rc=$?
[ -z "$own_policy" ] || $sudo rm -f "$policy"
for p in $servers; do
    case $p in openssh-server) unit=ssh ;; nginx-light) unit=nginx ;; vsftpd) unit=vsftpd ;; esac
    if command -v systemctl >/dev/null 2>&1; then
        $sudo systemctl disable --quiet "$unit.service" 2>/dev/null || true
    fi
    if command -v update-rc.d >/dev/null 2>&1; then
        $sudo update-rc.d "$unit" disable >/dev/null 2>&1 || true
    fi
    echo "installed $p for the tests; its system service $unit is left disabled" >&2
done
exit $rc
