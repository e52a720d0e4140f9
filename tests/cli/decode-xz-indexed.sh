#!/usr/bin/env bash
# bmapkit copy of multi-block xz files by random access through the block index: ranges starting and ending inside xz blocks, a partial last block, several streams, the same bytes as streaming, corrupt mapped blocks fail, damage in unmapped blocks is skipped, --nobmap and --readback.
source "$TESTS_DIR/lib.sh"

require_tools xz
require_sparse_support "$WORK"
cd "$WORK"
[ "$BS" -eq 4096 ] || skip "the test images assume 4096-byte blocks, $WORK has $BS"
MiB=$((1024 * 1024))
XZB=1000000 # xz block size: not a multiple of 4096, so blocks split file-system blocks

# The image: 16 MiB and 1000 bytes. Ranges cross xz block boundaries, begin and end
# inside xz blocks, fill one exactly-sized piece, and the last one ends in the partial
# last block, which is also a partial xz block.
new_sparse disk.img $((16 * MiB + 1000))
put_blocks disk.img 0 16
put_blocks disk.img 200 100 # crosses the xz block boundary at byte 1000000
seq 1 600000 | dd of=disk.img bs=4096 seek=700 conv=notrunc status=none
put_blocks disk.img 3000 2    # inside one xz block
put_blocks disk.img 3300 400  # several xz blocks
put_blocks disk.img 4090 6    # up to the partial last block
put_random disk.img $((4096 * 4096)) 1000
run_ok "$BMAPKIT" create -q -o disk.bmap disk.img
nblocks=$(($(stat -c %s disk.img) / 4096 + 1))

xz -T2 --block-size=$XZB -c disk.img >disk.img.xz
blocks=$(xz --robot --list disk.img.xz | awk -F'\t' '$1 == "totals" { print $3 }')
[ "$blocks" -eq 17 ] || fail "expected 17 xz blocks, xz made $blocks"

# xz_block FILE N FIELD: field FIELD of xz block N (from 1) as xz --list -vv gives it:
# 5 compressed offset, 6 uncompressed offset, 7 total size, 8 uncompressed size.
xz_block() {
    xz --robot --list -vv "$1" | awk -F'\t' -v n="$2" -v f="$3" '$1 == "block" && $3 == n { print $f }'
}

# copies NAME XZ BMAP: the copy of XZ with BMAP through the index (the seekable file)
# and through a pipe (the stream decoder) are the same, byte for byte and hole for
# hole; the copy is left in seek.img.
copies() {
    local name=$1 xzf=$2 bmap=$3
    rm -f seek.img pipe.img
    run_ok "$BMAPKIT" copy -q --bmap "$bmap" "$xzf" seek.img
    cat "$xzf" | run_ok "$BMAPKIT" copy -q --bmap "$bmap" - pipe.img
    cmp seek.img pipe.img || fail "$name: the indexed copy differs from the streamed one"
    [ "$(data_ranges seek.img 4096)" = "$(data_ranges pipe.img 4096)" ] ||
        fail "$name: the indexed and streamed copies hold data in different blocks"
}

# --- the whole bmap
copies "whole bmap" disk.img.xz disk.bmap
same_as_image disk.img disk.bmap seek.img
pass "ranges across and inside xz blocks, partial last block: same as the image and as streaming"
# Standard input redirected from the file is seekable too.
rm -f out.img
run_ok "$BMAPKIT" copy -q --bmap disk.bmap - out.img <disk.img.xz
same_as_image disk.img disk.bmap out.img
pass "standard input redirected from the xz file"

# --- bmaps of a few ranges each: every one is checked against the image's bytes by
# its checksums, and the two ways must agree.
RANDOM=4242
for round in 1 2 3 4 5 6; do
    ranges="" at=0
    while :; do
        first=$((at + RANDOM % 900))
        last=$((first + RANDOM % 400))
        [ "$last" -lt "$nblocks" ] || break
        ranges="$ranges $first-$last"
        at=$((last + 2))
    done
    [ -n "$ranges" ] || ranges="0-0"
    gen_bmap 2.0 disk.img part.bmap sha256 "${ranges# }"
    copies "random ranges $ranges" disk.img.xz part.bmap
    pass "random ranges${ranges}: verified, same as streaming"
done
# The last block alone, and one byte-sized file-system block in the middle.
gen_bmap 2.0 disk.img part.bmap sha256 "$((nblocks - 1))"
copies "the partial last block" disk.img.xz part.bmap
gen_bmap 2.0 disk.img part.bmap sha256 "3001"
copies "one block" disk.img.xz part.bmap
pass "the partial last block alone, one block alone: same as streaming"

# --- several streams, with padding, each of several blocks
# piece OFFSET [COUNT]: COUNT bytes (default: all) of the image from byte OFFSET.
piece() {
    dd if=disk.img iflag=skip_bytes,count_bytes skip="$1" ${2:+count="$2"} bs=64K status=none
}
piece 0 $((5 * MiB + 3)) | xz -T2 --block-size=$XZB -c >multi.xz
printf '\0\0\0\0\0\0\0\0' >>multi.xz
piece $((5 * MiB + 3)) $((7 * MiB)) | xz -c >>multi.xz
piece $((12 * MiB + 3)) | xz -T2 --block-size=$((XZB / 2)) -c >>multi.xz
printf '\0\0\0\0' >>multi.xz
copies "three streams" multi.xz disk.bmap
same_as_image disk.img disk.bmap seek.img
pass "three streams with padding: same as the image and as streaming"

# --- --nobmap reads the whole image in order, through the index
rm -f out.img
run_ok "$BMAPKIT" copy -q --nobmap disk.img.xz out.img
cmp disk.img out.img || fail "--nobmap copy of the indexed file differs from the image"
rm -f out.img
run_ok "$BMAPKIT" copy -q --nobmap multi.xz out.img
cmp disk.img out.img || fail "--nobmap copy of the three streams differs from the image"
pass "--nobmap: the whole image, one stream and three"

# --- --readback reads the destination back and may read the source again
rm -f out.img
run_ok "$BMAPKIT" copy -q --readback --bmap disk.bmap disk.img.xz out.img
same_as_image disk.img disk.bmap out.img
pass "--readback with the indexed source"

# --- damage inside a block that holds mapped data fails, naming the block. Block 13
# holds only blocks 3000-3001 of the image; their bytes reach the reader only after
# the xz block's check, so the error is xz's, also when the checksums are not checked.
n=13
off=$(xz_block disk.img.xz $n 5)
total=$(xz_block disk.img.xz $n 7)
uoff=$(xz_block disk.img.xz $n 6)
usize=$(xz_block disk.img.xz $n 8)
[ "$uoff" -le $((3000 * 4096)) ] && [ $((3002 * 4096)) -le $((uoff + usize)) ] ||
    fail "xz block $n does not hold image blocks 3000-3001"
gen_bmap 2.0 disk.img part.bmap sha256 "3000-3001"
cp disk.img.xz bad.xz
old=$(od -An -tu1 -j $((off + total / 2)) -N1 bad.xz | tr -d ' ')
put_byte bad.xz $((off + total / 2)) "$(printf '%02x' $((old ^ 0x55)))"
rm -f out.img
expect_fail 1 "bad.xz: xz: block at compressed byte $off is corrupt" \
    "$BMAPKIT" copy -q --bmap part.bmap bad.xz out.img
expect_fail 1 "bad.xz: xz: block at compressed byte $off is corrupt" \
    "$BMAPKIT" copy -q --no-verify --bmap part.bmap bad.xz out.img
expect_fail 1 "bad.xz: xz: block at compressed byte $off is corrupt" \
    "$BMAPKIT" copy -q --nobmap bad.xz out.img
pass "a damaged mapped block fails naming it (bmap, --no-verify, --nobmap)"
# With the whole bmap the damage may also be caught by a range checksum first.
rc=0
"$BMAPKIT" copy -q --bmap disk.bmap bad.xz out.img 2>.err || rc=$?
{ [ "$rc" -eq 1 ] && grep -q "xz: block at compressed byte $off is corrupt" .err; } ||
    { [ "$rc" -eq 3 ] && grep -q "do not match the bmap" .err; } ||
    { cat .err; fail "whole bmap, damaged block: exit $rc"; }
pass "a damaged mapped block fails with the whole bmap too"

# A damaged block header is caught before any of the block is decoded.
cp disk.img.xz bad.xz
old=$(od -An -tu1 -j $((off + 1)) -N1 bad.xz | tr -d ' ')
put_byte bad.xz $((off + 1)) "$(printf '%02x' $((old ^ 0x01)))"
expect_fail 1 "xz: block at compressed byte $off is corrupt" \
    "$BMAPKIT" copy -q --bmap part.bmap bad.xz out.img
pass "a damaged block header fails"

# --- damage inside a block that holds no mapped data: the block is never decoded and
# none of its bytes can reach the destination, so the copy succeeds and is exact (the
# mapped data is still checked by its own blocks' checks and the bmap's checksums).
# Decoding everything finds it: the stream decoder and --nobmap fail. (That the copy
# succeeds also shows that a seekable file goes through the index.)
n=10 # image bytes 9000000-9999999: a hole in the image
uoff=$(xz_block disk.img.xz $n 6)
usize=$(xz_block disk.img.xz $n 8)
if bmap_ranges_only disk.bmap | tr ' ' '\n' | awk -F- -v a=$((uoff / 4096)) -v b=$(((uoff + usize - 1) / 4096)) \
    '$2 >= a && $1 <= b { found = 1 } END { exit !found }'; then
    fail "xz block $n holds mapped data"
fi
off=$(xz_block disk.img.xz $n 5)
total=$(xz_block disk.img.xz $n 7)
cp disk.img.xz skip.xz
old=$(od -An -tu1 -j $((off + total / 2)) -N1 skip.xz | tr -d ' ')
put_byte skip.xz $((off + total / 2)) "$(printf '%02x' $((old ^ 0x55)))"
rm -f out.img
run_ok "$BMAPKIT" copy -q --bmap disk.bmap skip.xz out.img
same_as_image disk.img disk.bmap out.img
pass "damage in an unmapped xz block: skipped, the copy is exact"
expect_fail 1 "xz: compressed data is corrupt" \
    "$BMAPKIT" copy -q --bmap disk.bmap - out.img < <(cat skip.xz)
expect_fail 1 "xz: block at compressed byte $off is corrupt" \
    "$BMAPKIT" copy -q --nobmap skip.xz out.img
pass "damage in an unmapped xz block: the stream decoder and --nobmap find it"

# --- the structure is checked when the file is opened: nothing is written
size=$(stat -c %s disk.img.xz)
for spot in "$((size - 20)) index" "$((size - 8)) footer" "8 header"; do
    read -r at what <<<"$spot"
    cp disk.img.xz bad.xz
    old=$(od -An -tu1 -j "$at" -N1 bad.xz | tr -d ' ')
    put_byte bad.xz "$at" "$(printf '%02x' $((old ^ 0x10)))"
    rm -f out.img
    expect_fail 1 "xz: .*$what.* at byte [0-9]+" "$BMAPKIT" copy -q --bmap disk.bmap bad.xz out.img
    [ ! -e out.img ] || fail "damaged $what: out.img was created"
    pass "damaged stream $what: refused before writing"
done
head -c $((size / 2)) disk.img.xz >cut.xz
expect_fail 1 "xz: the stream ends early \(truncated\) at byte $((size / 2))\$" \
    "$BMAPKIT" copy -q --bmap disk.bmap cut.xz out.img
[ ! -e out.img ] || fail "truncated file: out.img was created"
pass "a truncated multi-block file is refused before writing"

# --- a bmap that does not fit: the image size comes from the index
head -c $((16 * MiB)) disk.img >short.img
xz -T2 --block-size=$XZB -c short.img >short.xz
expect_fail 1 "is $((16 * MiB)) bytes but the bmap describes an image of $((16 * MiB + 1000)) bytes" \
    "$BMAPKIT" copy -q --bmap disk.bmap short.xz out.img
pass "the image size is known from the index"
