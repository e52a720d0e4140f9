#!/usr/bin/env bash
# bmapkit copy --zero-unmapped: the image's unmapped ranges read as zeros afterwards on a
# regular file, on NBD exports (with and without the zero command) and on loop devices
# (root), with the mapped data equal to the image and the bytes past its end untouched.
source "$TESTS_DIR/lib.sh"
source "$TESTS_DIR/nbdkit_lib.sh"
require_tools nbdkit python3 losetup cmp
cd "$WORK"
MiB=$((1024 * 1024))

# The image: mapped data in the first MiB (around unmapped blocks), at 3 MiB, and a
# partial last block; unmapped space in between and up to the unaligned end.
SIZE=$((8 * MiB + 1536))
new_sparse img $SIZE
put_random img 0 8192
put_random img 65536 4096
put_random img $((3 * MiB)) $((256 * 1024))
put_random img $((5 * MiB)) 512
$BMAPKIT -q create -o img.bmap img
[ "$(bmap_range_count img.bmap)" -ge 3 ] || fail "the test image should have several ranges"

# prefill FILE SIZE: SIZE random bytes, and a copy of them in FILE.orig.
prefill() {
    head -c "$2" /dev/urandom >"$1.orig"
    cp "$1.orig" "$1"
}

# zeros_where_unmapped DEV: DEV's first SIZE bytes equal the image (whose unmapped
# blocks are holes, read as zeros) and its bytes past the image equal DEV.orig's.
zeros_where_unmapped() {
    cmp -n $SIZE img "$1" || fail "$1 differs from the image with zeros where unmapped"
    cmp -i $SIZE "$2" "$1" || fail "$1 changed past the image's end"
}

# stale_where_unmapped DEV ORIG: the control without the option, the test's premise.
stale_where_unmapped() {
    if cmp -s -n $SIZE img "$1"; then
        fail "without --zero-unmapped $1 should keep its old bytes in unmapped ranges"
    fi
}

# summary_says WHAT: the summary line names the zeroed total and WHAT.
summary_says() {
    local total
    total=$(grep 'unmapped space reads as zeros' .err) || fail "no summary line: $(cat .err)"
    grep -Eq -- "$1" <<<"$total" || fail "summary '$total' does not match /$1/"
}

# A regular file: truncated and sized first, so unmapped blocks are holes.
prefill out.img $((16 * MiB))
run_ok $BMAPKIT copy --zero-unmapped --json-events ev img out.img
cmp img out.img || fail "out.img differs from the image"
[ "$(done_field ev zeroed_bytes)" -gt 0 ] &&
    [ "$(done_field ev zeroed_released)" = "$(done_field ev zeroed_bytes)" ] &&
    [ "$(done_field ev zeroed_written)" = 0 ] || fail "done event: $(tail -n 1 ev)"
same_as_image img img.bmap out.img
summary_says "released"
pass "a regular file: data equal, unmapped ranges holes, a summary line"

# NBD exports on Unix sockets: with the zero command, and without it (nozero filter).
prefill export.img $((16 * MiB))
serve zero file export.img
run_ok $BMAPKIT copy --zero-unmapped img "$(uri zero)"
stop zero
zeros_where_unmapped export.img export.img.orig
summary_says "0 bytes released \\(holes or unmapped blocks\\), [1-9][^,]* zeroed by the device"
pass "an NBD export with the zero command: unmapped ranges zeros, past the end kept"

prefill export.img $((16 * MiB))
serve nozero --filter=nozero file export.img zeromode=none
run_ok $BMAPKIT copy --zero-unmapped --json-events ev img "$(uri nozero)"
stop nozero
[ "$(done_field ev zeroed_written)" -gt 0 ] &&
    [ "$(done_field ev zeroed_written)" = "$(done_field ev zeroed_bytes)" ] &&
    [ "$(done_field ev zeroed_offloaded)" = 0 ] || fail "done event: $(tail -n 1 ev)"
zeros_where_unmapped export.img export.img.orig
summary_says "0 bytes zeroed by the device, [1-9][^,]* written as zeros"
pass "an NBD export without the zero command: zeros written"

prefill export.img $((16 * MiB))
serve plain file export.img
run_ok $BMAPKIT copy img "$(uri plain)"
stop plain
stale_where_unmapped export.img
pass "without --zero-unmapped the unmapped ranges keep their old bytes"

# Loop devices (root): zeroing that may unmap, then a device with 4096-byte sectors.
require_loop_devices "the file and NBD cases passed"

prefill disk.img $((16 * MiB))
attach_loop disk.img || fail "losetup: $(cat .losetup.err)"
run_ok $BMAPKIT copy img "$LOOP"
stale_where_unmapped "$LOOP"
run_ok $BMAPKIT copy --zero-unmapped img "$LOOP"
zeros_where_unmapped "$LOOP" disk.img.orig
summary_says "of which [1-9][^,]* released"
pass "a loop device: unmapped ranges read as zeros, the mapped data and the rest kept"

prefill disk4k.img $((16 * MiB))
attach_loop disk4k.img --sector-size 4096 || fail "losetup: $(cat .losetup.err)"
run_ok $BMAPKIT copy --zero-unmapped --readback img "$LOOP"
zeros_where_unmapped "$LOOP" disk4k.img.orig
pass "a loop device with 4096-byte sectors and --readback"
