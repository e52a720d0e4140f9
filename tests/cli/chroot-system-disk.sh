#!/usr/bin/env bash
# In a chroot whose root is a folder of a mounted file system (so that no mount table the process reads names "/"), list still marks the disk holding it as the system's and copy refuses it, even with --force (root only; a loop device stands in for the disk).
source "$TESTS_DIR/lib.sh"
[ "$(id -u)" -eq 0 ] || skip "chroot, mount and loop devices need root"
require_tools python3 losetup mkfs.ext4 chroot ldd
cd "$WORK"

truncate -s 96M fs.img
LOOP=$(losetup -f --show fs.img 2>/dev/null) || skip "cannot attach a loop device here"
at_exit "losetup -d '$LOOP' 2>/dev/null"
NAME=${LOOP#/dev/}
mkfs.ext4 -q -F "$LOOP" >/dev/null 2>&1 || fail "mkfs.ext4 failed on $LOOP"
mkdir mnt
mount "$LOOP" mnt || skip "cannot mount $LOOP here"
at_exit "umount -l '$WORK/mnt' 2>/dev/null"

# The chroot: a folder on the loop device's file system, with the command and the
# libraries it loads copied in at the same paths.
R=$WORK/mnt/root
mkdir -p "$R"/{proc,sys,dev,tmp,bin,bk/programs,bk/lib}
# install_in_chroot PROGRAM PATH: PROGRAM at PATH inside, with the libraries it loads.
install_in_chroot() {
    local lib
    cp "$1" "$R$2"
    for lib in $(ldd "$1" | grep -o '/[^ ]*'); do
        mkdir -p "$R$(dirname "$lib")"
        cp -L "$lib" "$R$lib"
    done
}
install_in_chroot "$BMAPKIT" /bk/programs/bmapkit
install_in_chroot "$(command -v cat)" /bin/cat
# A build directory's command finds its library through $ORIGIN/../lib.
built_lib=$(ldd "$BMAPKIT" | awk '/libbmapkit/ {print $3}')
[ -z "$built_lib" ] || cp -L "$built_lib" "$R/bk/lib/"
mount -t proc proc "$R/proc" || skip "cannot mount /proc in the chroot"
at_exit "umount -l '$R/proc' 2>/dev/null"
mount --bind /sys "$R/sys" && at_exit "umount -l '$R/sys' 2>/dev/null"
mount --bind /dev "$R/dev" && at_exit "umount -l '$R/dev' 2>/dev/null"
in_chroot() { chroot "$R" /bk/programs/bmapkit "$@"; }

in_chroot --version >/dev/null 2>.err || fail "the command does not run in the chroot: $(cat .err)"
# The case to cover: inside, the loop device's file system is mounted above the root,
# so the process's own mount table does not show it at all, let alone on "/".
maj_min=$(cat "/sys/class/block/$NAME/dev")
chroot "$R" /bin/cat /proc/self/mountinfo >mountinfo || fail "cannot read the chroot's mount table"
if grep -q " $maj_min " mountinfo; then
    cat mountinfo
    fail "the chroot's own mount table shows $LOOP: not the case this test is about"
fi
pass "chroot on a folder of $LOOP's file system, whose mount table does not show it"

# --- list: the loop device is the system's disk
in_chroot list --json --all >.out 2>.err || { cat .err; fail "list in the chroot"; }
python3 - .out "$LOOP" <<'PY' || { cat .out; fail "list in the chroot: $LOOP not marked system"; }
import json, sys
d = {x["path"]: x for x in json.load(open(sys.argv[1]))}[sys.argv[2]]
assert d["system"] and d["mounted"], d
assert "holds the running system" in d["usage"], d
PY
grep -q "cannot tell which disk" .err && fail "list in the chroot says it cannot tell: $(cat .err)"
pass "list in the chroot: $LOOP marked system and mounted"

# --- copy: refused, also with --force, and the disk is untouched
head -c 1M /dev/urandom >"$R/tmp/img"
for force in "" --force; do
    # shellcheck disable=SC2086 # an empty option is no option
    expect_fail 1 "refusing to write to $LOOP: .*holds the running system" \
        in_chroot copy -q $force --nobmap /tmp/img "$LOOP"
done
# The file system lives on (its superblock changes), but none of the image is there.
cmp -s -n 1048576 "$R/tmp/img" "$LOOP" && fail "the image was written to $LOOP"
[ "$(od -An -tx2 -j 1080 -N 2 "$LOOP" | tr -d ' ')" = ef53 ] || fail "$LOOP lost its ext4 superblock"
pass "copy in the chroot to $LOOP: refused (also with --force), nothing written"

# --- outside the chroot the same disk is only mounted, not the system's
run_ok "$BMAPKIT" list --json --all
python3 - .out "$LOOP" <<'PY' || fail "list outside the chroot: $LOOP"
import json, sys
d = {x["path"]: x for x in json.load(open(sys.argv[1]))}[sys.argv[2]]
assert d["mounted"] and not d["system"], d
PY
pass "outside the chroot: $LOOP mounted, not marked system"
