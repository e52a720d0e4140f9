#!/usr/bin/env bash
# bmapkit copy of zstd files of several frames that record their sizes, by random access: ranges starting and ending inside frames, a partial last block, skippable and empty frames, the same bytes as streaming, corrupt mapped frames fail, damage in unmapped frames is skipped, the structure is checked up front, --nobmap and --readback; files without random access (one frame, frames without sizes, pzstd) are streamed, a single frame after its structure was checked.
source "$TESTS_DIR/lib.sh"

require_tools zstd pzstd
require_sparse_support "$WORK"
cd "$WORK"
[ "$BS" -eq 4096 ] || skip "the test images assume 4096-byte blocks, $WORK has $BS"
MiB=$((1024 * 1024))
FR=300000 # frame size: not a multiple of 4096, so frames split file-system blocks

# The image: 8 MiB and 1000 bytes. Ranges cross frame boundaries, begin and end inside
# frames, and the last one ends in the partial last block, which is also a partial frame.
new_sparse disk.img $((8 * MiB + 1000))
put_blocks disk.img 0 16
put_blocks disk.img 70 10 # crosses the frame boundary at byte 300000
seq 1 200000 | dd of=disk.img bs=4096 seek=300 conv=notrunc status=none
put_blocks disk.img 1000 2  # inside one frame
put_blocks disk.img 1300 300 # several frames
put_blocks disk.img 2040 8   # up to the partial last block
put_random disk.img $((2048 * 4096)) 1000
run_ok "$BMAPKIT" create -q -o disk.bmap disk.img
nblocks=$(($(stat -c %s disk.img) / 4096 + 1))

# One zstd frame per FR bytes of the image, each written by zstd from a file, so that
# its header records its size.
split -b $FR -d -a 3 disk.img part.
nframes=$(ls part.[0-9]* | wc -l)
for p in part.[0-9]*; do zstd -q -c "$p"; done >disk.img.zst
[ "$nframes" -eq 28 ] || fail "expected 28 frames, split made $nframes"
[ "$(zstd -lv disk.img.zst 2>/dev/null | awk '/^# Zstandard Frames:/ { print $4 }')" -eq 28 ] ||
    fail "disk.img.zst does not hold 28 frames"

# frame_at N: the compressed offset of frame N (from 0) of disk.img.zst.
frame_at() {
    local n=$1 off=0 i
    for ((i = 0; i < n; i++)); do
        off=$((off + $(zstd -q -c "$(printf 'part.%03d' "$i")" | wc -c)))
    done
    echo "$off"
}

# copies NAME ZST BMAP: the copy of ZST with BMAP by random access (the seekable file)
# and through a pipe (the stream decoder) are the same, byte for byte and hole for
# hole; the copy is left in seek.img.
copies() {
    local name=$1 zst=$2 bmap=$3
    rm -f seek.img pipe.img
    run_ok "$BMAPKIT" copy -q --bmap "$bmap" "$zst" seek.img
    cat "$zst" | run_ok "$BMAPKIT" copy -q --bmap "$bmap" - pipe.img
    cmp seek.img pipe.img || fail "$name: the random-access copy differs from the streamed one"
    [ "$(data_ranges seek.img 4096)" = "$(data_ranges pipe.img 4096)" ] ||
        fail "$name: the random-access and streamed copies hold data in different blocks"
}

# --- the whole bmap
copies "whole bmap" disk.img.zst disk.bmap
same_as_image disk.img disk.bmap seek.img
pass "ranges across and inside frames, partial last block: same as the image and as streaming"
rm -f out.img
run_ok "$BMAPKIT" copy -q --bmap disk.bmap - out.img <disk.img.zst
same_as_image disk.img disk.bmap out.img
pass "standard input redirected from the zstd file"

# --- bmaps of a few ranges each, checked by their checksums; the two ways must agree.
RANDOM=4243
for round in 1 2 3; do
    ranges="" at=0
    while :; do
        first=$((at + RANDOM % 500))
        last=$((first + RANDOM % 200))
        [ "$last" -lt "$nblocks" ] || break
        ranges="$ranges $first-$last"
        at=$((last + 2))
    done
    [ -n "$ranges" ] || ranges="0-0"
    gen_bmap 2.0 disk.img part.bmap sha256 "${ranges# }"
    copies "random ranges $ranges" disk.img.zst part.bmap
    pass "random ranges${ranges}: verified, same as streaming"
done
gen_bmap 2.0 disk.img part.bmap sha256 "$((nblocks - 1))"
copies "the partial last block" disk.img.zst part.bmap
gen_bmap 2.0 disk.img part.bmap sha256 "1001"
copies "one block" disk.img.zst part.bmap
pass "the partial last block alone, one block alone: same as streaming"

# --- skippable frames, empty frames and frames of other levels in between
# skippable N TEXT: a skippable frame with magic 0x184D2A5N holding TEXT (shorter than 256).
skippable() {
    printf "\x5$(printf %x "$1")\x2a\x4d\x18\x$(printf %02x ${#2})\x00\x00\x00%s" "$2"
}
: >empty
head -c $((3 * MiB + 5)) disk.img >a.part
tail -c +$((3 * MiB + 6)) disk.img >b.part
{
    skippable 0 "metadata"
    zstd -q -c empty
    zstd -q -1 -c a.part
    skippable 15 ""
    zstd -q -c empty
    zstd -q -19 -c b.part
    zstd -q -c empty
} >mixed.zst
copies "skippable and empty frames" mixed.zst disk.bmap
same_as_image disk.img disk.bmap seek.img
pass "skippable and empty frames between two frames: same as the image and as streaming"

# --- --nobmap and --readback
rm -f out.img
run_ok "$BMAPKIT" copy -q --nobmap disk.img.zst out.img
cmp disk.img out.img || fail "--nobmap copy differs from the image"
rm -f out.img
run_ok "$BMAPKIT" copy -q --nobmap mixed.zst out.img
cmp disk.img out.img || fail "--nobmap copy of mixed.zst differs from the image"
pass "--nobmap: the whole image"
rm -f out.img
run_ok "$BMAPKIT" copy -q --readback --bmap disk.bmap disk.img.zst out.img
same_as_image disk.img disk.bmap out.img
pass "--readback with the random-access source"

# --- damage inside a frame that holds mapped data fails, naming the frame. Frame 4
# (image bytes 1200000-1499999) holds image blocks 300-365 of the text; the bytes
# reach the reader only after the frame's checksum, so the error is zstd's, also when
# the bmap's checksums are not checked.
n=4
off=$(frame_at $n)
size=$(zstd -q -c part.004 | wc -c)
gen_bmap 2.0 disk.img part.bmap sha256 "300-310"
cp disk.img.zst bad.zst
at=$((off + size / 2))
old=$(od -An -tu1 -j "$at" -N1 bad.zst | tr -d ' ')
put_byte bad.zst "$at" "$(printf '%02x' $((old ^ 0x55)))"
msg="bad.zst: zstd: frame at compressed byte $off is corrupt"
rm -f out.img
expect_fail 1 "$msg" "$BMAPKIT" copy -q --bmap part.bmap bad.zst out.img
expect_fail 1 "$msg" "$BMAPKIT" copy -q --no-verify --bmap part.bmap bad.zst out.img
expect_fail 1 "$msg" "$BMAPKIT" copy -q --nobmap bad.zst out.img
pass "a damaged mapped frame fails naming it (bmap, --no-verify, --nobmap)"
rc=0
"$BMAPKIT" copy -q --bmap disk.bmap bad.zst out.img 2>.err || rc=$?
{ [ "$rc" -eq 1 ] && grep -q "$msg" .err; } ||
    { [ "$rc" -eq 3 ] && grep -q "do not match the bmap" .err; } ||
    { cat .err; fail "whole bmap, damaged frame: exit $rc"; }
pass "a damaged mapped frame fails with the whole bmap too"

# --- damage inside a frame that holds no mapped data: the frame is never decoded and
# none of its bytes can reach the destination, so the copy succeeds and is exact.
# Decoding everything finds it: the stream decoder and --nobmap fail. (That the copy
# succeeds also shows that a seekable file is read by random access.)
n=19 # image bytes 5700000-5999999: random data, left out of this bmap
off=$(frame_at $n)
size=$(zstd -q -c part.019 | wc -c)
gen_bmap 2.0 disk.img part.bmap sha256 "0-15 300-365 1300-1390 1470-1599 2040-$((nblocks - 1))"
cp disk.img.zst skip.zst
at=$((off + size / 2))
old=$(od -An -tu1 -j "$at" -N1 skip.zst | tr -d ' ')
put_byte skip.zst "$at" "$(printf '%02x' $((old ^ 0x55)))"
rm -f out.img ref.img
run_ok "$BMAPKIT" copy -q --bmap part.bmap disk.img.zst ref.img
run_ok "$BMAPKIT" copy -q --bmap part.bmap skip.zst out.img
cmp ref.img out.img || fail "damage in an unmapped frame: the copy differs"
[ "$(data_ranges out.img 4096)" = "$(bmap_ranges_only part.bmap)" ] ||
    fail "damage in an unmapped frame: the copy holds data outside the bmap's ranges"
pass "damage in an unmapped frame: skipped, the copy is exact"
expect_fail 1 "zstd: compressed data is corrupt" \
    "$BMAPKIT" copy -q --bmap part.bmap - out.img < <(cat skip.zst)
expect_fail 1 "zstd: frame at compressed byte $off is corrupt" \
    "$BMAPKIT" copy -q --nobmap skip.zst out.img
pass "damage in an unmapped frame: the stream decoder and --nobmap find it"

# --- the structure is checked when the file is opened: nothing is written, and the
# messages are the stream decoder's.
size=$(stat -c %s disk.img.zst)
off=$(frame_at 10)
for cut in $((size / 2)) $((off + 2)) $((off + 7)) $((size - 2)); do
    head -c "$cut" disk.img.zst >cut.zst
    rm -f out.img
    expect_fail 1 "cut.zst: zstd: the stream ends early \(truncated\) at byte $cut\$" \
        "$BMAPKIT" copy -q --bmap disk.bmap cut.zst out.img
    [ ! -e out.img ] || fail "cut at $cut: out.img was created"
done
pass "files cut inside a frame, its magic, its header, its checksum: refused before writing"
{ cat disk.img.zst && printf 'garbage\n'; } >trailing.zst
{ cat disk.img.zst && head -c 512 /dev/zero; } >padded.zst
for f in trailing.zst padded.zst; do
    rm -f out.img
    expect_fail 1 "$f: zstd: trailing data after the zstd stream at byte $size\$" \
        "$BMAPKIT" copy -q --bmap disk.bmap "$f" out.img
    [ ! -e out.img ] || fail "$f: out.img was created"
done
cp disk.img.zst magic.zst
put_byte magic.zst "$off" 00
expect_fail 1 "magic.zst: zstd: trailing data after the zstd stream at byte $off\$" \
    "$BMAPKIT" copy -q --bmap disk.bmap magic.zst out.img
pass "trailing garbage, zero padding and a damaged frame magic: refused before writing"

# --- the image size is known from the frame headers
head -c $((8 * MiB)) disk.img >short.img
split -b $FR -d -a 3 short.img short.
for p in short.[0-9]*; do zstd -q -c "$p"; done >short.zst
expect_fail 1 "is $((8 * MiB)) bytes but the bmap describes an image of $((8 * MiB + 1000)) bytes" \
    "$BMAPKIT" copy -q --bmap disk.bmap short.zst out.img
pass "the image size is known from the frame headers"

# --- no random access: one frame, a frame without its size, pzstd (whose frames do
# not record their sizes): decoded as a stream, with the same result.
zstd -q -c disk.img >single.zst
{
    zstd -q -c a.part
    zstd -q -c <b.part
} >nosize.zst
for f in single.zst nosize.zst; do
    rm -f out.img
    run_ok "$BMAPKIT" copy -q --bmap disk.bmap "$f" out.img
    same_as_image disk.img disk.bmap out.img
done
pzstd -q -1 -p 2 -c disk.img >pzstd.zst
rm -f out.img
run_ok "$BMAPKIT" copy -q --bmap disk.bmap pzstd.zst out.img
same_as_image disk.img disk.bmap out.img
pass "one frame, a frame without its size, pzstd: streamed, same as the image"

# --- a single frame is streamed, but its structure is walked first all the same: a
# file cut short or followed by garbage is refused before anything is written.
size=$(stat -c %s single.zst)
for cut in $((size / 3)) $((size - 2)); do
    head -c "$cut" single.zst >cut.zst
    rm -f out.img
    expect_fail 1 "cut.zst: zstd: the stream ends early \(truncated\) at byte $cut\$" \
        "$BMAPKIT" copy -q --bmap disk.bmap cut.zst out.img
    [ ! -e out.img ] || fail "single frame cut at $cut: out.img was created"
done
{ cat single.zst && printf 'garbage\n'; } >trailing.zst
rm -f out.img
expect_fail 1 "trailing.zst: zstd: trailing data after the zstd stream at byte $size\$" \
    "$BMAPKIT" copy -q --bmap disk.bmap trailing.zst out.img
[ ! -e out.img ] || fail "single frame with trailing garbage: out.img was created"
pass "one frame, cut short or with trailing garbage: refused before writing"
