#!/usr/bin/env bash
# Image sizes around block boundaries (partial last block) and data at unaligned offsets.
. "$TESTS_DIR/lib.sh"

require_tools bmaptool
require_sparse_support "$WORK"
cd "$WORK"

# create_check IMAGE EXPECTED_RANGES: bmap of IMAGE maps exactly these ranges, with
# correct header values and checksums; the reference copies it back exactly.
create_check() {
    local image=$1 ranges=$2 size
    size=$(stat -c %s "$image")
    run_ok "$BMAPKIT" create "$image" -o "$image.bmap"
    expect_ranges "$image.bmap" "$ranges"
    [ "$(bmap_value "$image.bmap" ImageSize)" -eq "$size" ] || fail "$image: ImageSize"
    [ "$(bmap_value "$image.bmap" BlockSize)" -eq "$BS" ] || fail "$image: BlockSize"
    [ "$(bmap_value "$image.bmap" BlocksCount)" -eq $(((size + BS - 1) / BS)) ] ||
        fail "$image: BlocksCount"
    check_bmap "$image.bmap" "$image"
    bmaptool_copy_check "$image" "$image.bmap"
}

# last_range_sum BMAP: the chksum of the last Range.
last_range_sum() {
    local r
    r=$(bmap_ranges "$1" | tail -n 1)
    echo "${r#* }"
}

# --- data at the very end of images of awkward sizes
for size in 1 4095 4096 4097 8191 $((1024 * 1024 + 1)); do
    n=$((size < 10 ? size : 10))
    image=end-$size.img
    new_sparse "$image" "$size"
    put_random "$image" $((size - n)) "$n"
    first=$(((size - n) / BS))
    last=$(((size - 1) / BS))
    create_check "$image" "$first-$last"
    # The last block's checksum covers only the bytes that exist, no padding.
    want=$(tail -c $((size - first * BS)) "$image" | sha256sum)
    [ "$(last_range_sum "$image.bmap")" = "${want%% *}" ] ||
        fail "$image: checksum of the last range is not the hash of its $((size - first * BS)) real bytes"
    pass "size $size, last $n bytes written: blocks $first-$last, last range hashed over real bytes only"
done

# --- data at the start, partial last block left as a hole
for size in 4097 8191 $((1024 * 1024 + 1)); do
    image=start-$size.img
    new_sparse "$image" "$size"
    put_random "$image" 0 100
    create_check "$image" "0-0"
    pass "size $size, data in block 0 only: the partial last block stays a hole"
done

# --- no holes, partial last block: every block mapped
head -c $((2 * BS + 777)) /dev/urandom >full-partial.img
create_check full-partial.img "0-2"
grep -q '^bmapkit: warning: .*no holes' .err || fail "full-partial.img: no warning about missing holes"
want=$(sha256sum <full-partial.img)
[ "$(last_range_sum full-partial.img.bmap)" = "${want%% *}" ] ||
    fail "full-partial.img: the one range's checksum is not the hash of the whole file"
pass "non-sparse image of $((2 * BS + 777)) bytes: 3 blocks mapped with a warning, hashed over real bytes"

# --- unaligned writes: a block holding any written byte is mapped (round outward)
new_sparse one-byte.img $((64 * 1024))
put_byte one-byte.img 6000 5a
blk=$((6000 / BS))
create_check one-byte.img "$blk-$blk"
pass "one byte at offset 6000 of a 64 KiB hole: its block $blk is mapped"

new_sparse straddle.img $((16 * BS))
put_random straddle.img $((5 * BS - 3)) 6
create_check straddle.img "4-5"
pass "6 bytes across the boundary of blocks 4 and 5: both mapped"

new_sparse edges.img $((16 * BS))
put_byte edges.img $((10 * BS - 1)) ff
put_byte edges.img $((12 * BS)) 01
create_check edges.img "9-9 12-12"
pass "last byte of block 9 and first byte of block 12: exactly those blocks mapped"

new_sparse tail.img $((4 * BS + 100))
put_byte tail.img $((4 * BS + 99)) 42
put_byte tail.img 0 42
create_check tail.img "0-0 4-4"
want=$(tail -c 100 tail.img | sha256sum)
[ "$(last_range_sum tail.img.bmap)" = "${want%% *}" ] || fail "tail.img: partial block checksum"
pass "one byte at the very end of a 100-byte last block: that block mapped, hashed over 100 bytes"
