#!/usr/bin/env bash
# bmapkit copy --readback reads the medium, not a cache: on a block device that
# acknowledges writes to one region and keeps its old bytes there (an nbdkit sh plugin
# behind nbdfuse and a direct-I/O loop device), the page cache still holds what was
# written, and only a read that bypasses it sees the loss. Read-back must fail with
# status 3 and leave no image head; an honest device passes. Root, loop devices and
# FUSE are needed.
source "$TESTS_DIR/lib.sh"

require_tools nbdkit nbdfuse fusermount3 losetup cmp
[ "$(id -u)" -eq 0 ] || skip "loop devices need root"
[ -c /dev/fuse ] || skip "no /dev/fuse: FUSE is not available here"
cd "$WORK"
MiB=$((1024 * 1024))

new_sparse img $((4 * MiB))
put_random img 0 $((4 * MiB))
gen_bmap 2.0 img img.bmap

# The device: a 16 MiB store that drops writes overlapping [LOSE_FROM, LOSE_TO).
cat >device.sh <<'EOF'
#!/bin/bash
case "$1" in
get_size) stat -c %s "$STORE" ;;
pread) dd if="$STORE" skip="$4" count="$3" iflag=skip_bytes,count_bytes status=none ;;
pwrite)
    if [ "$4" -lt "$LOSE_TO" ] && [ $(($4 + $3)) -gt "$LOSE_FROM" ]; then
        cat >/dev/null
        exit 0
    fi
    dd of="$STORE" seek="$4" oflag=seek_bytes conv=notrunc status=none
    ;;
can_write | can_flush | flush) exit 0 ;;
*) exit 2 ;;
esac
EOF
chmod +x device.sh

# device LOSE_FROM LOSE_TO: start the device with a store of "Z" bytes; its loop
# device is left in $DEV and torn down at exit (or by stop_device).
device() {
    head -c $((16 * MiB)) /dev/zero | tr '\0' 'Z' >store
    STORE=$WORK/store LOSE_FROM=$1 LOSE_TO=$2 nbdkit -U "$WORK/sock" --pidfile "$WORK/nbdkit.pid" \
        sh "$WORK/device.sh" || fail "nbdkit did not start"
    for _ in $(seq 50); do [ -s nbdkit.pid ] && [ -S sock ] && break; sleep 0.1; done
    : >fuse.file
    nbdfuse "$WORK/fuse.file" --unix "$WORK/sock" 2>nbdfuse.err &
    for _ in $(seq 50); do [ "$(stat -c %s fuse.file)" -eq $((16 * MiB)) ] && break; sleep 0.1; done
    [ "$(stat -c %s fuse.file)" -eq $((16 * MiB)) ] || {
        cat nbdfuse.err
        stop_device
        skip "nbdfuse cannot mount here"
    }
    DEV=$(losetup -f --show --direct-io=on fuse.file 2>losetup.err) || {
        cat losetup.err
        stop_device
        skip "losetup cannot attach a loop device here"
    }
}
stop_device() {
    # At exit the current folder is no longer $WORK: every path here is absolute.
    [ -n "${DEV:-}" ] && losetup -d "$DEV" 2>/dev/null
    DEV=
    fusermount3 -u "$WORK/fuse.file" 2>/dev/null
    if [ -s "$WORK/nbdkit.pid" ]; then
        local pid
        pid=$(cat "$WORK/nbdkit.pid")
        kill "$pid" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$WORK/nbdkit.pid" "$WORK/sock"
}
at_exit stop_device

# expect_readback_fail PATTERN CMD...: CMD exits with status 3 and one error line
# matching PATTERN; the other stderr lines are read-back warnings.
expect_readback_fail() {
    local pattern=$1 rc=0
    shift
    "$@" >.rb.out 2>.rb.err || rc=$?
    [ "$rc" -eq 3 ] || { cat .rb.err; fail "expected status 3, got $rc: $*"; }
    [ "$(grep -c '^bmapkit: error: ' .rb.err)" -eq 1 ] || { cat .rb.err; fail "not one error line: $*"; }
    grep -Eq "^bmapkit: error: .*$pattern" .rb.err || { cat .rb.err; fail "no error matching /$pattern/"; }
    grep -q '^bmapkit: warning: read-back of .* differ' .rb.err || { cat .rb.err; fail "no warning"; }
    if grep -v -e '^bmapkit: error: ' -e '^bmapkit: warning: read-back of ' .rb.err; then
        fail "unexpected stderr lines from: $*"
    fi
}

# head_absent: the image's first MiB is not on the device.
head_absent() {
    ! cmp -s -n "$MiB" img "$DEV" || fail "$1: the image's first MiB is on the device"
}

# --- an honest device: the stack itself works
device 0 0
run_ok "$BMAPKIT" copy --readback --bmap img.bmap img "$DEV"
grep -q "read back 1 range(s) from $DEV: all match" .err || { cat .err; fail "honest: no read-back"; }
cmp -n $((4 * MiB)) img "$DEV" || fail "honest device: content differs"
pass "honest device: copy with --readback succeeds and the content is the image's"
stop_device

# --- writes to 2-3 MiB are lost; what was written is still in the page cache
device $((2 * MiB)) $((3 * MiB))
expect_readback_fail "read-back of $DEV: 1 range\\(s\\) differ.*without the image's first MiB" \
    "$BMAPKIT" copy -q --readback --bmap img.bmap img "$DEV"
head_absent "lost writes"
pass "writes lost in the middle: read-back fails with status 3, no image head"
expect_readback_fail "read-back of $DEV: 1 range\\(s\\) differ" \
    "$BMAPKIT" copy -q --readback-retries 2 --bmap img.bmap img "$DEV"
head_absent "lost writes, retries"
pass "the same with --readback-retries 2: the rewrites are lost too, status 3"
stop_device

# --- writes to the first MiB are lost
device 0 4096
expect_readback_fail "read-back of $DEV" "$BMAPKIT" copy -q --readback --bmap img.bmap img "$DEV"
head_absent "lost head"
pass "the first block lost: read-back fails with status 3"
stop_device
! pgrep -f "nbdkit -U $WORK/sock" >/dev/null || fail "an nbdkit server of this test is still running"
