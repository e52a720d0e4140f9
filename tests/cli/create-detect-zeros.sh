#!/usr/bin/env bash
# bmapkit create --detect-zeros: all-zero blocks left out, any non-zero byte keeps its block.
. "$TESTS_DIR/lib.sh"

require_tools bmaptool
require_sparse_support "$WORK"
cd "$WORK"

# zero_image FILE SIZE: SIZE written zero bytes (no holes).
zero_image() {
    rm -f "$1"
    head -c "$2" /dev/zero >"$1"
    sync "$1"
}

# detect_check NAME IMAGE RANGES DROPPED: with --detect-zeros IMAGE maps exactly RANGES,
# DROPPED zero blocks are reported, checksums are correct, and the reference rebuilds
# IMAGE from the bmap both into a new file and over a file full of zeros.
detect_check() {
    local name=$1 image=$2 ranges=$3 dropped=$4 size
    size=$(stat -c %s "$image")
    run_ok "$BMAPKIT" create --detect-zeros -o "$image.bmap" "$image"
    expect_ranges "$image.bmap" "$ranges"
    check_bmap "$image.bmap" "$image"
    grep -q "^bmapkit: left out $dropped zero-filled block" .err ||
        fail "$name: no info line about $dropped dropped blocks: $(cat .err)"
    if grep -q '^bmapkit: warning: .*no holes' .err; then
        fail "$name: 'no holes' warning printed with --detect-zeros"
    fi
    bmaptool_copy_check "$image" "$image.bmap"
    head -c "$size" /dev/zero >zero-filled.copy
    bmaptool -q copy --bmap "$image.bmap" "$image" zero-filled.copy 2>/dev/null ||
        fail "$name: bmaptool copy onto a zero-filled file failed"
    cmp "$image" zero-filled.copy || fail "$name: copy onto a zero-filled file differs"
    rm -f zero-filled.copy
    [ "${#ranges}" -le 40 ] || ranges="$(wc -w <<<"$ranges") ranges"
    pass "$name: ${ranges:-no ranges}, $dropped zero blocks left out and reported, image rebuilt by bmaptool copy"
}

# --- a non-sparse image with zero regions and lone non-zero bytes
zero_image mixed.img $((40 * BS + 500))
put_blocks mixed.img 0 4
put_byte mixed.img $((11 * BS - 1)) 01   # last byte of block 10
put_byte mixed.img $((11 * BS)) 80       # first byte of block 11
put_blocks mixed.img 20 1
put_blocks mixed.img 30 2
put_byte mixed.img $((40 * BS + 250)) 7f # inside the partial last block
run_ok "$BMAPKIT" create -o plain.bmap mixed.img
expect_ranges plain.bmap "0-40"
grep -q '^bmapkit: warning: .*no holes' .err || fail "no 'no holes' warning without --detect-zeros"
pass "without --detect-zeros the image is fully mapped, with a warning"
detect_check "mixed zero regions" mixed.img "0-3 10-11 20-20 30-31 40-40" 31

run_ok "$BMAPKIT" -q create --detect-zeros -o quiet.bmap mixed.img
[ ! -s .err ] || fail "-q --detect-zeros printed: $(cat .err)"
cmp quiet.bmap mixed.img.bmap || fail "-q changed the --detect-zeros bmap"
run_ok "$BMAPKIT" create --detect-zeros --threads 1 -o t1.bmap mixed.img
run_ok "$BMAPKIT" create --detect-zeros --threads 2 -o t2.bmap mixed.img
cmp t1.bmap mixed.img.bmap || fail "--threads 1 changed the --detect-zeros bmap"
cmp t2.bmap mixed.img.bmap || fail "--threads 2 changed the --detect-zeros bmap"
run_ok "$BMAPKIT" create --detect-zeros --no-checksum -o nosum.bmap mixed.img
expect_ranges nosum.bmap "0-3 10-11 20-20 30-31 40-40"
check_bmap nosum.bmap mixed.img none
pass "--detect-zeros with -q (silent), --threads 1/2 (same bmap) and --no-checksum (same ranges)"

# --- a partial last block of zeros is left out too
zero_image tailzero.img $((8 * BS + 100))
put_blocks tailzero.img 0 2
detect_check "zero partial last block" tailzero.img "0-1" 7

# --- a single non-zero byte at the very end of the image
zero_image lastbyte.img $((8 * BS + 100))
put_byte lastbyte.img $((8 * BS + 99)) 01
detect_check "one non-zero byte at the end" lastbyte.img "8-8" 8

# --- nothing but zeros: an empty block map
zero_image allzero.img $((16 * BS))
detect_check "all zeros" allzero.img "" 16

# --- non-zero bytes on both sides of the 1 MiB read-buffer boundary
zero_image buffers.img $((3 * 1024 * 1024))
put_byte buffers.img $((1024 * 1024 - 1)) 01
put_byte buffers.img $((1024 * 1024)) 01
put_byte buffers.img $((2 * 1024 * 1024 + 5)) 01
detect_check "bytes around 1 MiB boundaries" buffers.img \
    "$(((1024 * 1024 - 1) / BS))-$((1024 * 1024 / BS)) $(((2 * 1024 * 1024 + 5) / BS))-$(((2 * 1024 * 1024 + 5) / BS))" \
    $((3 * 1024 * 1024 / BS - 3))

# --- sparse image: holes stay out, written zeros dropped, data kept
rm -f sparse.img
new_sparse sparse.img $((32 * BS))
put_zeros sparse.img $((2 * BS)) $((4 * BS))
put_blocks sparse.img 10 2
run_ok "$BMAPKIT" create -o sparse-plain.bmap sparse.img
expect_ranges sparse-plain.bmap "2-5 10-11"
detect_check "sparse image with written zeros" sparse.img "10-11" 4
