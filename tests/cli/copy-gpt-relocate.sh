#!/usr/bin/env bash
# bmapkit copy --relocate-gpt: a GPT image copied to a larger NBD export or loop device
# (root; also with 4096-byte sectors) gets its backup header and table at the end, and
# sfdisk --verify and sgdisk -v find nothing wrong; without the option a one-line note
# says so and the bytes equal the image. No GPT, a hybrid MBR, a damaged backup and a
# GPT for other sectors are each refused with one error line, before anything is
# written when the image is a file.
source "$TESTS_DIR/lib.sh"
source "$TESTS_DIR/nbdkit_lib.sh"
require_tools sfdisk sgdisk nbdkit python3 losetup cmp
cd "$WORK"
MiB=$((1024 * 1024))
SIZE=$((8 * MiB))

# gpt_image FILE: an 8 MiB image with a GPT of two partitions (512-byte sectors).
gpt_image() {
    rm -f "$1"
    truncate -s $SIZE "$1"
    printf 'label: gpt\n,2M\n,2M\n' | sfdisk -q "$1" >/dev/null
    head -c 65536 /dev/urandom | dd of="$1" bs=64K seek=16 conv=notrunc status=none
    $BMAPKIT -q create -o "$1.bmap" "$1"
}

# backup_at DEV SECTOR: the GPT header in DEV's last sector names itself and LBA 1, and
# the primary header at LBA 1 names that last sector as its alternate.
backup_at() {
    python3 - "$1" "$2" <<'PY' || fail "$1: the backup GPT is not at its end"
import os, struct, sys
dev, ss = sys.argv[1], int(sys.argv[2])
fd = os.open(dev, os.O_RDONLY)
size = os.lseek(fd, 0, os.SEEK_END)
last = size // ss - 1
backup = os.pread(fd, ss, last * ss)
primary = os.pread(fd, ss, ss)
assert backup[:8] == b"EFI PART", "no header in the last sector"
my, alt = struct.unpack_from("<QQ", backup, 24)
assert (my, alt) == (last, 1), (my, alt, last)
assert struct.unpack_from("<Q", primary, 32)[0] == last
PY
}

# verified DEV [SECTOR]: sfdisk and sgdisk agree the GPT is sound, and the partitions
# are those of the image.
verified() {
    sfdisk --verify "$1" >.sfdisk 2>&1 || fail "sfdisk --verify $1: $(cat .sfdisk)"
    grep -q "No errors detected" .sfdisk || fail "sfdisk --verify $1: $(cat .sfdisk)"
    sgdisk -v "$1" >.sgdisk 2>&1 || fail "sgdisk -v $1: $(cat .sgdisk)"
    grep -q "No problems found" .sgdisk || fail "sgdisk -v $1: $(cat .sgdisk)"
    [ "$(sfdisk -d "$1" | sed -n 's/^[^:]*:.*start=/start=/p')" = \
        "$(sfdisk -d "$2" | sed -n 's/^[^:]*:.*start=/start=/p')" ] ||
        fail "$1 does not have the partitions of $2"
    backup_at "$1" "${3:-512}"
}

# Only LBA 0 and 1 and the old backup header's sector differ from the image.
rest_equals_image() {
    local ss=${3:-512}
    cmp -n $((SIZE - 3 * ss)) -i $((2 * ss)):$((2 * ss)) "$2" "$1" ||
        fail "$1 differs from $2 outside the GPT headers"
}

gpt_image img

# A file takes the image's size: its backup is at the end already.
run_ok $BMAPKIT copy --relocate-gpt --json-events ev img out.img
cmp img out.img || fail "out.img differs from the image"
[ "$(done_field ev gpt)" = at-end ] || fail "done event: $(tail -n 1 ev)"
grep -q "the backup GPT is at the end of out.img already" .err || fail "$(cat .err)"
pass "a file: the backup is at its end already"

# export_copy NAME ARGS...: copy to a 32 MiB export of zeros in NAME (so that the image's
# holes read the same there).
export_copy() {
    local name=$1
    shift
    rm -f "$name"
    truncate -s $((32 * MiB)) "$name"
    serve "$name" file "$name"
    "$@" "$(uri "$name")"
    local rc=$?
    stop "$name"
    return $rc
}

export_copy plain.exp run_ok $BMAPKIT copy --json-events ev img
[ "$(done_field ev gpt)" = movable ] || fail "done event: $(tail -n 1 ev)"
grep -Eq "note: the backup GPT is at LBA 16383, the image's end; .* ends at LBA 65535; --relocate-gpt moves it there" .err ||
    fail "no note about the GPT: $(cat .err)"
[ "$(grep -c 'relocate-gpt' .err)" -eq 1 ] || fail "one note line expected: $(cat .err)"
cmp -n $SIZE img plain.exp || fail "without --relocate-gpt the export must hold the image as it is"
run_ok $BMAPKIT copy -q img out.img
[ ! -s .err ] || fail "no note for a destination of the image's size: $(cat .err)"
pass "without the option: one note line, the image's bytes unchanged"

export_copy moved.exp run_ok $BMAPKIT copy --relocate-gpt --readback --json-events ev img
grep -q "moved the backup GPT from LBA 16383 to LBA 65535" .err || fail "$(cat .err)"
[ "$(done_field ev gpt)" = moved ] || fail "done event: $(tail -n 1 ev)"
verified moved.exp img
rest_equals_image moved.exp img
pass "an NBD export: backup moved to the end, sfdisk and sgdisk content"

# Refusals. From a file the image is checked first: one error line, exit 1, nothing
# written. From a pipe it can be checked only once written: the same line afterwards.
nothing_written() {
    cmp -n $((32 * MiB)) /dev/zero "$1" || fail "nothing should have been written to $1"
}
truncate -s $SIZE dos.img
printf 'label: dos\n,2M\n' | sfdisk -q dos.img >/dev/null
$BMAPKIT -q create -o dos.img.bmap dos.img
export_copy dos.exp expect_fail 1 "^bmapkit: error: dos.img: its GPT cannot be moved to the end of nbd.*: the image has no GPT header at byte 512 or 4096; nothing was written to" \
    $BMAPKIT copy -q --relocate-gpt dos.img
nothing_written dos.exp
expect_fail 1 "dos.img: its GPT cannot be moved to the end of out.img: the image has no GPT header" \
    $BMAPKIT copy -q --relocate-gpt dos.img out.img
piped() { cat dos.img | "$@"; }
export_copy piped.exp expect_fail 1 "GPT not relocated: the image has no GPT header at byte 512 or 4096; the image itself was written as it is" \
    piped $BMAPKIT copy -q --relocate-gpt --bmap dos.img.bmap -
cmp -n $SIZE dos.img piped.exp || fail "from a pipe the image should be written as it is"

cp img hybrid.img
sgdisk -h 1 hybrid.img >/dev/null
$BMAPKIT -q create -o hybrid.img.bmap hybrid.img
export_copy hybrid.exp expect_fail 1 "hybrid.img: its GPT cannot be moved to the end of .*: the image has a hybrid MBR" \
    $BMAPKIT copy -q --relocate-gpt hybrid.img
nothing_written hybrid.exp

cp img damaged.img
printf '\377' | dd of=damaged.img bs=1 seek=$((SIZE - 512 + 40)) conv=notrunc status=none
$BMAPKIT -q create -o damaged.img.bmap damaged.img
export_copy damaged.exp expect_fail 1 "damaged.img: its GPT cannot be moved to the end of .*: the backup GPT header has a header CRC that does not match" \
    $BMAPKIT copy -q --relocate-gpt damaged.img
nothing_written damaged.exp
pass "no GPT, a hybrid MBR, a damaged backup: one error line each, before writing (after, from a pipe)"

expect_fail 2 "--force-range, --zero-unmapped and --relocate-gpt apply only to a DEST on this host" \
    $BMAPKIT copy --relocate-gpt img ssh://localhost/dev/null
pass "refused for an ssh:// destination"

# Loop devices (root): 512-byte sectors, 4096-byte sectors, and a mismatch.
require_loop_devices "the file and NBD cases passed"

head -c $((32 * MiB)) /dev/urandom >disk.img
attach_loop disk.img || fail "losetup: $(cat .losetup.err)"
run_ok $BMAPKIT copy --relocate-gpt --zero-unmapped img "$LOOP"
verified "$LOOP" img
rest_equals_image "$LOOP" img
pass "a loop device: backup moved, with --zero-unmapped"

# A GPT for 4096-byte sectors, made on a loop device with such sectors.
truncate -s $SIZE img4k
attach_loop img4k --sector-size 4096 || fail "losetup: $(cat .losetup.err)"
printf 'label: gpt\n,2M\n,2M\n' | sfdisk -q "$LOOP" >/dev/null 2>&1
losetup -d "$LOOP"
$BMAPKIT -q create -o img4k.bmap img4k
head -c $((32 * MiB)) /dev/urandom >disk4k.img
attach_loop disk4k.img --sector-size 4096 || fail "losetup: $(cat .losetup.err)"
DISK4K=$LOOP
run_ok $BMAPKIT copy --relocate-gpt img4k "$DISK4K"
grep -q "moved the backup GPT from LBA 2047 to LBA 8191" .err || fail "$(cat .err)"
attach_loop img4k --sector-size 4096 || fail "losetup: $(cat .losetup.err)"
verified "$DISK4K" "$LOOP" 4096
pass "4096-byte sectors: backup moved to the last 4 KiB sector"

expect_fail 1 "img: its GPT cannot be moved to the end of /dev/loop[0-9]+: the image's GPT is laid out for 512-byte sectors, and /dev/loop[0-9]+ has 4096-byte sectors" \
    $BMAPKIT copy -q --relocate-gpt img "$DISK4K"
pass "a 512-byte-sector GPT on a 4096-byte-sector device: left alone"
