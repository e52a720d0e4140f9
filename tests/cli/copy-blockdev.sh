#!/usr/bin/env bash
# bmapkit copy to loop block devices (root only): copy and read-back, capacity, mounted partitions and devices, --removable-device, interruption, I/O tuning restored.
source "$TESTS_DIR/lib.sh"

require_tools losetup blockdev sfdisk mkfs.ext4
[ "$(id -u)" -eq 0 ] || skip "loop devices need root"
require_sparse_support "$WORK"
cd "$WORK"
[ "$BS" -eq 4096 ] || skip "the test images assume 4096-byte blocks, $WORK has $BS"
MiB=$((1024 * 1024))

# pattern FILE SIZE: FILE holds SIZE bytes of 0xA5.
pattern() {
    rm -f "$1"
    head -c "$2" /dev/zero | tr '\0' '\245' >"$1"
}

truncate -s 1M probe.img
attach_loop probe.img || skip "losetup cannot attach a loop device here: $(cat .losetup.err)"
PROBE=$LOOP

# The image: partial last block (1024 bytes), data in and after the first MiB.
new_sparse img $((8 * MiB + 1024))
put_blocks img 0 4
put_blocks img 100 60
put_blocks img 700 300
put_random img $((2048 * 4096)) 1024
gen_bmap 2.0 img img.bmap
SIZE=$(stat -c %s img)

name_of() { basename "$(readlink -f "$1")"; }
sched_of() { cat "/sys/block/$(name_of "$1")/queue/scheduler" 2>/dev/null || echo none-available; }
ratio_of() { cat "/sys/block/$(name_of "$1")/bdi/max_ratio" 2>/dev/null || echo none-available; }

# prepare_tuning DEV: pick a scheduler other than "none" when the device offers one, so
# that a copy which sets "none" and forgets to restore it is noticed.
prepare_tuning() {
    local f="/sys/block/$(name_of "$1")/queue/scheduler"
    if [ -w "$f" ] && grep -q 'mq-deadline' "$f"; then
        echo mq-deadline >"$f" 2>/dev/null || true
    fi
}

# mapped_only IMAGE BMAP DEV OLD: on DEV the bmap's ranges hold the image's bytes and
# every other byte still equals OLD (a copy of the device before the copy).
mapped_only() {
    python3 - "$@" "$(bmap_ranges_only "$2")" <<'PYEOF'
import sys
image, bmap, dev, old, ranges = sys.argv[1:6]
bs = 4096
img = open(image, "rb").read()
with open(dev, "rb") as f:
    got = f.read(len(open(old, "rb").read()))
was = open(old, "rb").read()
want = bytearray(was)
for r in ranges.split():
    a, b = (int(x) for x in r.split("-"))
    lo, hi = a * bs, min((b + 1) * bs, len(img))
    want[lo:hi] = img[lo:hi]
if bytes(want) != got:
    i = next(i for i in range(len(got)) if got[i] != want[i])
    sys.exit("%s: byte %d is %d, expected %d" % (dev, i, got[i], want[i]))
PYEOF
}

# --- exact size and larger devices, with read-back
new_sparse exact.back "$SIZE"
attach_loop exact.back || fail "cannot attach exact.back"
EXACT=$LOOP
[ "$(blockdev --getsize64 "$EXACT")" -eq "$SIZE" ] || fail "$EXACT is not $SIZE bytes"
new_sparse large.back $((32 * MiB))
head -c $((32 * MiB - SIZE)) /dev/zero | tr '\0' '\245' |
    dd of=large.back bs=1M oflag=seek_bytes seek="$SIZE" conv=notrunc status=none
attach_loop large.back || fail "cannot attach large.back"
LARGE=$LOOP
cp large.back large.saved
for dev in "$EXACT" "$LARGE"; do
    prepare_tuning "$dev"
    s0=$(sched_of "$dev")
    r0=$(ratio_of "$dev")
    run_ok "$BMAPKIT" copy --readback --bmap img.bmap img "$dev"
    cmp -n "$SIZE" img "$dev" || fail "$dev: the first $SIZE bytes differ from the image"
    grep -q "^bmapkit: read back 4 range(s) from $dev" .err || { cat .err; fail "$dev: no read-back report"; }
    [ "$(sched_of "$dev")" = "$s0" ] || fail "$dev: queue/scheduler was '$s0', is '$(sched_of "$dev")' after the copy"
    [ "$(ratio_of "$dev")" = "$r0" ] || fail "$dev: bdi/max_ratio was '$r0', is '$(ratio_of "$dev")' after the copy"
    pass "$dev ($(blockdev --getsize64 "$dev") bytes): copy + --readback equal; scheduler '$s0' and max_ratio kept"
done
cmp -s -i "$SIZE:$SIZE" "$LARGE" large.saved || fail "$LARGE: bytes past the image were changed"
pass "$LARGE: bytes past the image are untouched"
# Blocks the bmap does not map are left alone on a device.
pattern pat.back $((16 * MiB))
attach_loop pat.back || fail "cannot attach pat.back"
PAT=$LOOP
cp pat.back pat.saved
run_ok "$BMAPKIT" copy --readback --bmap img.bmap img "$PAT"
mapped_only img img.bmap "$PAT" pat.saved || fail "$PAT: not exactly the mapped blocks written"
pass "$PAT (filled with a pattern): mapped blocks written, all others untouched"
run_ok "$BMAPKIT" copy --no-tune --bmap img.bmap img "$EXACT"
cmp -n "$SIZE" img "$EXACT" || fail "--no-tune copy differs"
pass "$EXACT: --no-tune copy"

# --- too small: refused, content untouched
pattern small.back $((4 * MiB))
attach_loop small.back || fail "cannot attach small.back"
SMALL=$LOOP
cp small.back small.saved
expect_fail 1 'too small' "$BMAPKIT" copy -q --bmap img.bmap img "$SMALL"
cmp "$SMALL" small.saved || fail "$SMALL: the too-small device was changed"
expect_fail 1 'too small' "$BMAPKIT" copy -q --nobmap img "$SMALL"
cmp "$SMALL" small.saved || fail "$SMALL: the too-small device was changed by --nobmap"
pass "$SMALL (4 MiB): too small, refused, content untouched"

# --- --removable-device: a loop device is not removable
expect_fail 1 'removable' "$BMAPKIT" copy -q --removable-device --bmap img.bmap img "$SMALL"
cmp "$SMALL" small.saved || fail "$SMALL changed by a refused --removable-device copy"
pass "--removable-device on a loop device: refused"
ln -s "$SMALL" by-id-link
expect_fail 1 'removable' "$BMAPKIT" copy -q --removable-device --bmap img.bmap img by-id-link
pass "--removable-device through a symlink to a loop device: refused"

# --- missing /dev path
devpath=/dev/bmapkit-test-nonexistent-$$
at_exit "rm -f '$devpath'"
expect_fail 1 "$devpath" "$BMAPKIT" copy -q --bmap img.bmap img "$devpath"
[ ! -e "$devpath" ] || fail "$devpath was created"
pass "missing $devpath: refused, not created"

# --- a partitioned device with a mounted partition
pattern parted.back $((64 * MiB))
printf 'label: dos\nstart=2048, size=40960, type=83\n' | sfdisk -q parted.back >/dev/null ||
    fail "sfdisk failed"
attach_loop parted.back -P || fail "cannot attach parted.back with partitions"
PARTED=$LOOP
part=${PARTED}p1
for _ in $(seq 30); do [ -b "$part" ] && break; sleep 0.1; done
psys=/sys/class/block/$(basename "$PARTED")p1/dev
if [ ! -b "$part" ] && [ -r "$psys" ]; then
    # No udev or devtmpfs to make the node: make one here from the sysfs numbers.
    part=$WORK/$(basename "$PARTED")p1
    mknod "$part" b "$(cut -d: -f1 "$psys")" "$(cut -d: -f2 "$psys")" || part=/nonexistent
fi
if [ ! -b "$part" ]; then
    note_skip "no partition node $part appeared (no devtmpfs/udev here)"
else
    expect_fail 1 'partition' "$BMAPKIT" copy -q --removable-device --bmap img.bmap img "$part"
    pass "--removable-device on the partition $part: refused"
    mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$part" >/dev/null 2>&1 || fail "mkfs.ext4 $part failed"
    mkdir mnt
    if mount -o ro "$part" mnt 2>.mount.err; then
        at_exit "umount '$WORK/mnt' 2>/dev/null"
        cp parted.back parted.saved 2>/dev/null || true
        dd if="$PARTED" of=parted.saved bs=1M status=none
        expect_fail 1 'mounted' "$BMAPKIT" copy -q --bmap img.bmap img "$PARTED"
        dd if="$PARTED" bs=1M status=none | cmp - parted.saved || fail "$PARTED changed by a refused copy"
        pass "$PARTED with $part mounted: refused mentioning 'mounted', unchanged"
        expect_fail 1 'mounted|in use|busy' "$BMAPKIT" copy -q --bmap img.bmap img "$part"
        pass "the mounted partition $part itself: refused"
        umount mnt
        run_ok "$BMAPKIT" copy --bmap img.bmap img "$PARTED"
        cmp -n "$SIZE" img "$PARTED" || fail "$PARTED: copy after unmounting differs"
        pass "$PARTED after unmounting: copied"
    else
        note_skip "cannot mount $part here: $(cat .mount.err)"
    fi
fi

# --- a device holding a mounted file system (no partition table): the same check as
# for partitions, through the mount table; nothing is written.
pattern whole.back $((32 * MiB))
mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 whole.back >/dev/null 2>&1 || fail "mkfs.ext4 whole.back failed"
attach_loop whole.back || fail "cannot attach whole.back"
WHOLE=$LOOP
mkdir -p wmnt
if mount -o ro "$WHOLE" wmnt 2>.wmount.err; then
    at_exit "umount '$WORK/wmnt' 2>/dev/null"
    dd if="$WHOLE" of=whole.saved bs=1M status=none
    expect_fail 1 'mounted on' "$BMAPKIT" copy -q --bmap img.bmap img "$WHOLE"
    expect_fail 1 'mounted|busy' "$BMAPKIT" copy -q --force --bmap img.bmap img "$WHOLE"
    dd if="$WHOLE" bs=1M status=none | cmp - whole.saved || fail "$WHOLE changed by a refused copy"
    pass "$WHOLE with its file system mounted: refused (also with --force), unchanged"
    umount wmnt
else
    note_skip "cannot mount $WHOLE here: $(cat .wmount.err)"
fi

# --- interrupted copy: exit 4, the image's first MiB never reaches the device
# On tmpfs when there is room, so the 512 MiB go at memory speed whatever the disk.
BIGDIR=$WORK
if [ -d /dev/shm ] && [ -w /dev/shm ] &&
    [ "$(df -k --output=avail /dev/shm | tail -n 1)" -gt $((1400 * 1024)) ]; then
    BIGDIR=$(mktemp -d /dev/shm/bmapkit-copy-blockdev.XXXXXX)
    at_exit "rm -rf '$BIGDIR'"
fi
cd "$BIGDIR"
new_sparse big.img $((600 * MiB))
put_random big.img 0 $((512 * MiB))
gen_bmap 2.0 big.img big.bmap
new_sparse big.back $((600 * MiB))
head -c "$MiB" /dev/zero | tr '\0' '\245' | dd of=big.back conv=notrunc status=none
attach_loop big.back || fail "cannot attach big.back"
BIG=$LOOP
head -c "$MiB" big.back >big.head.saved
prepare_tuning "$BIG"
s0=$(sched_of "$BIG")
r0=$(ratio_of "$BIG")
rm -f ev.json
"$BMAPKIT" copy --json-events ev.json --bmap big.bmap big.img "$BIG" >.out 2>.err &
pid=$!
sent=0
for _ in $(seq 200); do
    if grep -Eq '"event":"progress".*"percent":([1-9]|[1-9][0-9])\}' ev.json 2>/dev/null; then
        kill -INT "$pid" 2>/dev/null && sent=1
        break
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.02
done
if [ "$sent" -eq 0 ] && kill -0 "$pid" 2>/dev/null; then
    kill -INT "$pid" 2>/dev/null && sent=1
fi
rc=0
wait "$pid" || rc=$?
if [ "$sent" -eq 0 ] && [ "$rc" -eq 0 ]; then
    note_skip "the 512 MiB copy finished before it could be interrupted"
else
    [ "$rc" -eq 4 ] || { cat .err; fail "interrupted copy: exit $rc, expected 4"; }
    grep -q '^bmapkit: error: ' .err || { cat .err; fail "interrupted copy: no error message"; }
    ! cmp -s -n "$MiB" big.img "$BIG" || fail "$BIG: the interrupted copy holds the image's first MiB"
    # The image maps all of its first MiB: bmapkit cleared it before writing anything
    # else, so neither the old content nor the image's is there.
    cmp -s -n "$MiB" /dev/zero "$BIG" || fail "$BIG: the first MiB was not cleared by an interrupted copy"
    ! cmp -s -n "$MiB" big.head.saved "$BIG" || fail "$BIG: the old first MiB survived an interrupted copy"
    [ "$(sched_of "$BIG")" = "$s0" ] || fail "$BIG: queue/scheduler '$s0' became '$(sched_of "$BIG")'"
    [ "$(ratio_of "$BIG")" = "$r0" ] || fail "$BIG: bdi/max_ratio '$r0' became '$(ratio_of "$BIG")'"
    cp .err "$WORK/.err.int"
    json_events_check ev.json big.bmap failed 4 >/dev/null || fail "interrupted copy: JSON events"
    pass "interrupted copy: exit 4, first MiB cleared (neither old nor new), tuning restored ($(grep '^bmapkit: error' .err | cut -c1-80)...)"
fi
cd "$WORK"
