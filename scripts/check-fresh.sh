#!/bin/sh
# The README's quick start on a truly fresh machine: a minimal Debian 12 made with
# debootstrap --variant=minbase, holding nothing but a clone of this repository's
# current commit, where `sh scripts/demo.sh` and `sh scripts/test.sh` run as root in a
# chroot. Reports the demo's exit status and the test command's last line. Needs root.
# Everything it makes is removed at the end, also on failure or Ctrl-C.
#
# Usage: check-fresh.sh [--quick] [--keep]
#   --quick  only the install step and the demo (the form CI runs)
#   --keep   keep the root folder for inspection (its path is printed)
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)

usage() { sed -n '8,10s/^# \{0,1\}//p' "$0"; }
quick=0 keep=0
for arg in "$@"; do
    case $arg in
    --quick) quick=1 ;;
    --keep) keep=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
    esac
done

say() { printf '\n== check-fresh: %s\n' "$*"; }
die() { echo "check-fresh: error: $*" >&2; exit 1; }
now() { date +%s; }

if [ "$(id -u)" -ne 0 ]; then
    echo "check-fresh: must run as root: debootstrap, mount and chroot need it" \
        "(try: sudo sh scripts/check-fresh.sh)" >&2
    exit 1
fi

# ---------------------------------------------------------------- the host

# The Debian mirror this machine's apt uses for bookworm: the first URI of a "deb"
# entry for that suite, in one-line (.list) or deb822 (.sources) form.
debian_mirror() {
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        awk '$1 == "deb" {
                i = 2
                if ($i ~ /^\[/) { while (i < NF && $i !~ /\]$/) i++; i++ }
                if ($(i + 1) == "bookworm") { print $i; exit }
            }' "$f"
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk 'BEGIN { RS = "" }
            {
                types = uris = suites = ""; enabled = "yes"
                n = split($0, lines, "\n")
                for (i = 1; i <= n; i++) {
                    if (lines[i] ~ /^#/ || lines[i] !~ /:/) continue
                    key = tolower(substr(lines[i], 1, index(lines[i], ":") - 1))
                    value = " " substr(lines[i], index(lines[i], ":") + 1) " "
                    if (key == "types") types = value
                    else if (key == "uris") uris = value
                    else if (key == "suites") suites = value
                    else if (key == "enabled") enabled = tolower(value)
                }
                if (enabled !~ /no/ && types ~ /[ \t]deb[ \t]/ &&
                    suites ~ /[ \t]bookworm[ \t]/ && split(uris, u, " ") > 0) {
                    print u[1]
                    exit
                }
            }' "$f"
    done
}
mirror=$(debian_mirror | head -n 1)
[ -n "$mirror" ] || die "no Debian bookworm entry in /etc/apt/sources.list(.d)"

# debootstrap and git (for the clone) come from Debian packages too; install-deps.sh
# installs them, but this script may run before it.
missing=""
command -v debootstrap >/dev/null || missing="$missing debootstrap"
command -v git >/dev/null || missing="$missing git"
if [ -n "$missing" ]; then
    echo "check-fresh: installing on this machine:$missing"
    apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
commit=$(git -C "$top" rev-parse HEAD) || die "$top is not a git repository"
if [ -n "$(git -C "$top" status --porcelain --untracked-files=no)" ]; then
    echo "check-fresh: note: uncommitted changes are not checked, only commit $commit"
fi

# apt's proxy settings reach debootstrap through the environment and apt in the
# chroot through its configuration, as do relaxed date checks (a snapshot mirror).
eval "$(apt-config shell apt_http_proxy Acquire::http::Proxy apt_https_proxy Acquire::https::Proxy)"
if [ -n "${apt_http_proxy:-}" ] && [ -z "${http_proxy:-}" ]; then export http_proxy="$apt_http_proxy"; fi
if [ -n "${apt_https_proxy:-}" ] && [ -z "${https_proxy:-}" ]; then export https_proxy="$apt_https_proxy"; fi

# ---------------------------------------------------------------- cleaning up

work=$(mktemp -d "${TMPDIR:-/var/tmp}/bmapkit-fresh.XXXXXX")
work=$(cd "$work" && pwd -P)
root=$work/root

# Mount points at or under the root, deepest first (mountinfo's 5th field).
mounts_under_root() {
    awk -v r="$root" '$5 == r || index($5, r "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r
}

cleanup() {
    rc=$?
    trap - EXIT INT TERM HUP
    set +e
    # What still runs inside (after Ctrl-C) would keep the mounts busy.
    pids=""
    for p in /proc/[0-9]*; do
        case $(readlink "$p/root" 2>/dev/null) in
        "$root" | "$root"/*) pids="$pids ${p#/proc/}" ;;
        esac
    done
    if [ -n "$pids" ]; then
        # shellcheck disable=SC2086
        kill -TERM $pids 2>/dev/null
        sleep 2
        # shellcheck disable=SC2086
        kill -KILL $pids 2>/dev/null
    fi
    # Loop devices a test inside left attached to a file in the root.
    losetup -l -n -O NAME,BACK-FILE 2>/dev/null | while read -r dev file; do
        case $file in "$root"/*) losetup -d "$dev" ;; esac
    done
    for _ in 1 2 3; do
        for m in $(mounts_under_root); do
            umount "$m" 2>/dev/null || umount -l "$m"
        done
        [ -z "$(mounts_under_root)" ] && break
        sleep 1
    done
    if [ -n "$(mounts_under_root)" ]; then
        # Removing the folder now would reach into what is still mounted there.
        echo "check-fresh: error: still mounted, $work left in place:" >&2
        mounts_under_root >&2
        rc=1
    elif [ "$keep" -eq 1 ]; then
        echo "check-fresh: kept the root: $root (remove it with: rm -rf $work)"
    else
        rm -rf --one-file-system "$work"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'echo "check-fresh: interrupted" >&2; exit 130' INT
trap 'echo "check-fresh: terminated" >&2; exit 143' TERM
trap 'echo "check-fresh: hung up" >&2; exit 129' HUP

# ---------------------------------------------------------------- the fresh root

t0=$(now)
say "debootstrap --variant=minbase bookworm $root $mirror"
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
    tail -n 30 "$work/debootstrap.log"
    die "debootstrap failed (with --keep its whole log stays in $work)"
}
t_debootstrap=$(($(now) - t0))
echo "done in $t_debootstrap s"

cp -L /etc/resolv.conf "$root/etc/resolv.conf"
apt-config dump | grep -E '^Acquire::((https?|ftp)::Proxy|Check-Valid-Until|Check-Date)' \
    >"$root/etc/apt/apt.conf.d/00check-fresh" || rm -f "$root/etc/apt/apt.conf.d/00check-fresh"

say "clone of commit $commit"
git -c advice.detachedHead=false clone --quiet --no-hardlinks "$top" "$root/root/bmapkit"
git -C "$root/root/bmapkit" -c advice.detachedHead=false checkout --quiet --detach "$commit"

# The root bound onto itself is a mount point, as a container's root is, so that a
# test can give itself a private mount namespace there (copy-tuning-recovery does; a
# plain folder as root refuses that). The plain-chroot case of the safety checks is
# tested by chroot-system-disk.
mount --bind "$root" "$root"
mount -t proc proc "$root/proc"
# With their submounts (/dev/pts, /dev/shm), as on a booted machine; as slaves, so
# that unmounting them here never reaches the host's.
for d in sys dev; do
    mount --rbind "/$d" "$root/$d"
    mount --make-rslave "$root/$d"
done

# in_chroot CMD: run the shell command CMD in the clone, as root with a login's
# environment.
in_chroot() {
    chroot "$root" /usr/bin/env -i HOME=/root TERM="${TERM:-dumb}" \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        ${http_proxy:+http_proxy="$http_proxy"} ${https_proxy:+https_proxy="$https_proxy"} \
        ${no_proxy:+no_proxy="$no_proxy"} ${FUZZ_SECONDS:+FUZZ_SECONDS="$FUZZ_SECONDS"} \
        /bin/sh -c "cd /root/bmapkit && $1"
}

# ---------------------------------------------------------------- the two commands

say "sh scripts/demo.sh"
t0=$(now)
# The demo installs what is missing first and prints "all present" when done: that
# moment is the install step's time.
{
    rc=0
    in_chroot "sh scripts/demo.sh" || rc=$?
    echo "$rc" >"$work/demo.status"
} 2>&1 | while IFS= read -r line; do
    printf '%s\n' "$line"
    [ "$line" != "all present" ] || now >"$work/installed"
done
demo_rc=$(cat "$work/demo.status")
t_demo=$(($(now) - t0))
t_install="?"
[ ! -s "$work/installed" ] || t_install=$(($(cat "$work/installed") - t0))

tests_line="not run (--quick)"
tests_rc=0
t_tests=""
if [ "$quick" -eq 0 ]; then
    say "sh scripts/test.sh"
    t0=$(now)
    {
        rc=0
        in_chroot "sh scripts/test.sh" || rc=$?
        echo "$rc" >"$work/tests.status"
    } 2>&1 | tee "$work/tests.log"
    tests_rc=$(cat "$work/tests.status")
    t_tests=$(($(now) - t0))
    tests_line="\"$(tail -n 1 "$work/tests.log")\", exit $tests_rc, $t_tests s"
fi

say "results (commit $commit, Debian 12 minbase from $mirror)"
echo "  debootstrap:              $t_debootstrap s"
echo "  install (in the demo):    $t_install s"
echo "  sh scripts/demo.sh:       exit $demo_rc, $t_demo s"
echo "  sh scripts/test.sh:       $tests_line"
[ "$demo_rc" -eq 0 ] && [ "$tests_rc" -eq 0 ]
