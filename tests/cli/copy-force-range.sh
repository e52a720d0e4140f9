#!/usr/bin/env bash
# bmapkit copy --force-range: image bytes the bmap leaves out are written too, from a
# file, an .xz stream and standard input, to a file and a loop device (root), checked by
# --readback; bad ranges are refused with one line before anything is written.
source "$TESTS_DIR/lib.sh"
require_tools python3 xz losetup cmp
cd "$WORK"
[ "$BS" -eq 4096 ] || skip "the test bmap assumes 4096-byte blocks, $WORK has $BS"
KiB=1024
MiB=$((1024 * KiB))

# An image with random bytes everywhere, and a bmap that maps only blocks 0-3 and
# 300-349 (bytes 1200 KiB to 1400 KiB): the rest is what a bmap would leave as zeros.
SIZE=$((8 * MiB))
head -c $SIZE /dev/urandom >img
gen_bmap 2.0 img img.bmap sha256 "0-3 300-349"
xz -T1 -k -c img >img.xz

# The forced ranges: 64 KiB at 1 MiB (unmapped), and 1180-1220 KiB, which overlaps
# the start of the mapped range 300-349 (only its first 20 KiB are unmapped).
FORCE=(--force-range 0x100000+64K --force-range 1180K-1220K)

# image_bytes DEST FROM LEN: DEST holds the image's LEN bytes at FROM.
image_bytes() {
    cmp -n "$3" -i "$2:$2" img "$1" || fail "$1 lacks the image's $3 bytes at $2"
}
# zero_bytes DEST FROM LEN: DEST holds zeros there.
zero_bytes() {
    cmp -n "$3" -i "0:$2" /dev/zero "$1" || fail "$1 should hold zeros at $2 ($3 bytes)"
}
check_forced() {
    image_bytes "$1" 0 $((16 * KiB))
    image_bytes "$1" $MiB $((64 * KiB))
    image_bytes "$1" $((1180 * KiB)) $((220 * KiB))
}

run_ok $BMAPKIT copy "${FORCE[@]}" --json-events ev img out.img
check_forced out.img
[ "$(done_field ev ranges_forced)" = 2 ] && [ "$(done_field ev forced_bytes)" = $((84 * KiB)) ] ||
    fail "done event: $(tail -n 1 ev)"
zero_bytes out.img $((16 * KiB)) $((MiB - 16 * KiB))
zero_bytes out.img $((1088 * KiB)) $((92 * KiB))
zero_bytes out.img $((1400 * KiB)) $((SIZE - 1400 * KiB))
grep -q "wrote 84.0 KiB the bmap leaves out, in 2 forced range(s) (not verified" .err ||
    fail "summary: $(cat .err)"
pass "a file: the forced ranges written, the rest of the unmapped space left out"

run_ok $BMAPKIT copy "${FORCE[@]}" img plain.img
run_ok $BMAPKIT copy img plain.img
if cmp -s -n $((64 * KiB)) -i $MiB:$MiB img plain.img; then
    fail "without --force-range the unmapped bytes at 1 MiB should not be written"
fi
pass "without --force-range those bytes stay out"

run_ok $BMAPKIT copy --bmap img.bmap "${FORCE[@]}" --readback img.xz xz.img
check_forced xz.img
grep -q "read back and checked" .err || fail "summary: $(cat .err)"
run_ok $BMAPKIT copy --bmap img.bmap "${FORCE[@]}" --readback - stdin.img <img
check_forced stdin.img
pass "an .xz stream and standard input, read back"

# Bad ranges: one line each, exit 2 (syntax) or 1 (past the image), nothing created.
for bad in abc 5-3 1M+0 1Q+4K 4K- +4K 0x+1 1M-1M 4K+1K+1K; do
    expect_fail 2 "^bmapkit: error: --force-range '.*' is not START-END or START\+LENGTH" \
        $BMAPKIT copy --force-range "$bad" img bad.img
done
expect_fail 1 "--force-range 8M-9M: bytes 8388608-9437183 reach past the end of the image" \
    $BMAPKIT copy -q --force-range 8M-9M img bad.img
expect_fail 1 "--force-range 0\+8388609: bytes 0-8388608 reach past the end" \
    $BMAPKIT copy -q --force-range 0+8388609 img bad.img
[ ! -e bad.img ] || fail "a refused range must leave the destination alone"
expect_fail 2 "--force-range writes image bytes the bmap leaves out, and --nobmap" \
    $BMAPKIT copy --nobmap --force-range 0+4K img bad.img
pass "malformed ranges and ranges past the image refused with one line"

# A loop device full of random bytes (root).
require_loop_devices "the file cases passed"
head -c $((16 * MiB)) /dev/urandom >disk.img
attach_loop disk.img || fail "losetup: $(cat .losetup.err)"
run_ok $BMAPKIT copy "${FORCE[@]}" --readback img "$LOOP"
check_forced "$LOOP"
grep -q "read back 4 range(s)" .err || fail "the forced ranges should be read back: $(cat .err)"
run_ok $BMAPKIT copy --bmap img.bmap "${FORCE[@]}" --zero-unmapped --readback - "$LOOP" <img
check_forced "$LOOP"
zero_bytes "$LOOP" $((1088 * KiB)) $((92 * KiB))
zero_bytes "$LOOP" $((1400 * KiB)) $((SIZE - 1400 * KiB))
pass "a loop device: forced ranges read back, with --zero-unmapped from standard input"
