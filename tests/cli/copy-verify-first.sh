#!/usr/bin/env bash
# bmapkit copy checks a range of up to 3 MiB (it fits in half of the copy buffers
# wherever it starts) before writing any of its bytes: a bad one leaves nothing of it
# on the destination, from a file, a pipe and a decoded stream alike.
source "$TESTS_DIR/lib.sh"

require_sparse_support "$WORK"
cd "$WORK"
[ "$BS" -eq 4096 ] || skip "the test image assumes 4096-byte blocks, $WORK has $BS"
MiB=$((1024 * 1024))

# Data in the first MiB, small ranges that share a buffer with the start of a 3 MiB
# range which begins off a buffer boundary, and a long range after it.
SHORT_FIRST=$((4 * 256 + 3))
SHORT_BLOCKS=768
new_sparse good.img $((24 * MiB))
put_blocks good.img 0 10
put_blocks good.img 600 2
put_blocks good.img 900 5
put_blocks good.img "$SHORT_FIRST" "$SHORT_BLOCKS"
put_blocks good.img 2560 3072
run_ok "$BMAPKIT" create -q -o good.bmap good.img
grep -q "> $SHORT_FIRST-$((SHORT_FIRST + SHORT_BLOCKS - 1)) <" good.bmap ||
    fail "the bmap does not list the 3 MiB range as one range"

# short_range FILE: the bytes of the 3 MiB range of FILE.
short_range() {
    dd if="$1" bs=4096 skip="$SHORT_FIRST" count="$SHORT_BLOCKS" status=none
}

# no_short_range WHAT: out.img holds none of the 3 MiB range (zeros, as a new file).
no_short_range() {
    [ -e out.img ] || fail "$1: out.img is gone, so nothing can be checked"
    short_range out.img | cmp -s - <(head -c $((SHORT_BLOCKS * 4096)) /dev/zero) ||
        fail "$1: bytes of the bad range were written before its checksum was compared"
}

short_range good.img | cmp -s - <(head -c $((SHORT_BLOCKS * 4096)) /dev/zero) &&
    fail "the 3 MiB range of the test image is all zeros, the check would prove nothing"

for spot in first middle last; do
    case $spot in
    first) block=$SHORT_FIRST ;;
    middle) block=$((SHORT_FIRST + SHORT_BLOCKS / 2)) ;;
    last) block=$((SHORT_FIRST + SHORT_BLOCKS - 1)) ;;
    esac
    cp --sparse=always good.img bad.img
    put_random bad.img $((block * 4096 + 100)) 16
    cmp -s good.img bad.img && fail "corrupting block $block changed nothing"

    rm -f out.img
    expect_fail 3 "blocks $SHORT_FIRST-$((SHORT_FIRST + SHORT_BLOCKS - 1)) .*do not match" \
        "$BMAPKIT" copy -q --bmap good.bmap bad.img out.img
    no_short_range "file, bad $spot block"

    rm -f out.img
    expect_fail 3 "do not match" "$BMAPKIT" copy -q --bmap good.bmap - out.img < <(cat bad.img)
    no_short_range "pipe, bad $spot block"
    pass "bad $spot block of a 3 MiB range: exit 3, none of the range written (file, pipe)"
done

# A decoded stream: the reader decodes, one hasher fewer runs.
gzip -1 -c bad.img >bad.img.gz
rm -f out.img
expect_fail 3 "do not match" "$BMAPKIT" copy -q --bmap good.bmap bad.img.gz out.img
no_short_range "gzip"
pass "gzip image with a bad 3 MiB range: exit 3, none of the range written"

# The good image still copies exactly, so the checks above are about the bad byte.
rm -f out.img
run_ok "$BMAPKIT" copy -q --bmap good.bmap good.img out.img
same_as_image good.img good.bmap out.img
pass "the good image copies exactly"
