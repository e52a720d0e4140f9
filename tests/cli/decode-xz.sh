#!/usr/bin/env bash
# bmapkit copy of xz images: single-block xz, multi-block xz -T2, two streams with padding, the .xz suffix, no suffix, standard input (file and pipe), --nobmap; truncated, flipped and trailing-garbage files fail naming xz.
source "$TESTS_DIR/lib.sh"
source "$TESTS_DIR/decode_lib.sh"

FORMAT=xz
PIPE_DIFFERS=1 # a seekable xz file is read through its index, a pipe as a stream

require_tools xz
require_sparse_support "$WORK"
cd "$WORK"
[ "$BS" -eq 4096 ] || skip "the test images assume 4096-byte blocks, $WORK has $BS"

# The image: random data at the start, a hole, compressible text, more random data, a
# partial last block holding data.
new_sparse disk.img $((8 * MiB + 1000))
put_blocks disk.img 0 24
seq 1 300000 >text
dd if=text of=disk.img bs=4096 seek=400 conv=notrunc status=none
put_blocks disk.img 1100 200
put_random disk.img $((2048 * 4096)) 1000
run_ok "$BMAPKIT" create -q -o disk.img.bmap disk.img
[ "$(bmap_range_count disk.img.bmap)" -eq 4 ] || fail "the test image should have 4 ranges"

# xz_blocks FILE: the number of blocks in FILE, by xz --list.
xz_blocks() {
    xz --robot --list "$1" | awk -F'\t' '$1 == "totals" { print $3 }'
}

# whole_ok NAME FILE: --nobmap copies the whole image from FILE and from a pipe.
whole_ok() {
    rm -f out.img
    run_ok "$BMAPKIT" copy -q --nobmap "$2" out.img
    cmp disk.img out.img || fail "$1: --nobmap copy of the file differs from the image"
    rm -f out.img
    cat "$2" | run_ok "$BMAPKIT" copy -q --nobmap - out.img
    cmp disk.img out.img || fail "$1: --nobmap copy from a pipe differs from the image"
    pass "$1: --nobmap, file and pipe"
}

# all_ways NAME FILE: FILE (an xz of disk.img) copies every way there is.
all_ways() {
    local name=$1 file=$2
    cp "$file" "$name.img.xz"
    cp disk.img.bmap "$name.img.bmap"
    cp "$file" "$name-packed"
    copy_ok "$name: .xz suffix, bmap found by name" "$name.img.xz"
    copy_ok "$name: no suffix, --bmap" --bmap disk.img.bmap "$name-packed"
    copy_ok "$name: standard input from the file" --bmap disk.img.bmap - <"$file"
    piped_ok "$name: through a pipe" "$file" --bmap disk.img.bmap
    whole_ok "$name" "$name-packed"
    rm -f "$name.img.xz" "$name.img.bmap" "$name-packed"
}


# --- single-block xz (xz -k), multi-block xz -T2, two streams with padding
cp disk.img single.img
xz -k single.img
[ "$(xz_blocks single.img.xz)" -eq 1 ] || fail "xz -k made $(xz_blocks single.img.xz) blocks"
mv single.img.xz single.xz
xz -T2 -1 -c disk.img >multi.xz
[ "$(xz_blocks multi.xz)" -ge 3 ] || fail "xz -T2 -1 made $(xz_blocks multi.xz) blocks"
head -c $((3 * MiB + 5)) disk.img | xz -c >two.xz
printf '\0\0\0\0' >>two.xz
tail -c +$((3 * MiB + 6)) disk.img | xz -T2 -1 -c >>two.xz
printf '\0\0\0\0\0\0\0\0' >>two.xz
all_ways single single.xz
all_ways multi multi.xz
all_ways two-streams two.xz
# Padding after the last stream and an empty stream are part of the format.
{ cat multi.xz && xz -c </dev/null && head -c 64 /dev/zero; } >padded.xz
copy_ok "an empty stream and zero padding at the end" --bmap disk.img.bmap padded.xz
piped_ok "an empty stream and zero padding at the end: through a pipe" padded.xz --bmap disk.img.bmap

# --- damaged files
for v in single multi; do
    size=$(stat -c %s $v.xz)
    for cut in 6 12 100 $((size / 3)) $((size / 2)) $((size - 12)) $((size - 1)); do
        head -c "$cut" $v.xz >cut.xz
        damaged "$v, cut at byte $cut of $size" cut.xz "truncated.* at byte $cut$END"
    done
    # A byte in the compressed data: the block's check (or LZMA2 itself) finds it, or a
    # range checksum does first.
    flip $v.xz $((size / 2)) flipped.xz
    damaged "$v, byte $((size / 2)) flipped" flipped.xz "corrupt|verify"
    # The stream header, the index and the footer hold no image data: xz must object.
    flip $v.xz 7 flipped.xz
    damaged "$v, stream flags flipped" flipped.xz "corrupt|header|unsupported"
    flip $v.xz $((size - 20)) flipped.xz
    damaged "$v, index flipped" flipped.xz "corrupt|index"
    flip $v.xz $((size - 6)) flipped.xz
    damaged "$v, footer flipped" flipped.xz "corrupt|footer|truncated"

    { cat $v.xz && printf 'garbage\n'; } >trailing.xz
    damaged "$v, trailing garbage" trailing.xz "trailing data.* at byte $size$END"
    { cat $v.xz && printf '\0\0\0\0garbage!'; } >trailing.xz
    damaged "$v, padding then garbage" trailing.xz "trailing data.* at byte $((size + 4))$END"
    { cat $v.xz && printf '\0\0'; } >trailing.xz
    damaged "$v, two zero bytes after" trailing.xz "trailing data.*not a multiple of four.* at byte $size$END"
    { cat $v.xz && printf '\xfd7z'; } >trailing.xz
    damaged "$v, part of a further stream's magic" trailing.xz "truncated.* at byte $((size + 3))$END"
done

# The first block's header: damage there is found before any data of it is used.
flip multi.xz 13 flipped.xz
damaged "multi, first block header flipped" flipped.xz "corrupt"

# Cut inside the second stream.
first=$(head -c $((3 * MiB + 5)) disk.img | xz -c | wc -c)
size=$(stat -c %s two.xz)
for cut in $((first + 4 + 6)) $((first + 4 + 5000)) $((size - 9)); do
    head -c "$cut" two.xz >cut.xz
    damaged "two streams, cut at byte $cut" cut.xz "truncated.* at byte $cut$END"
done
# Padding that is not a multiple of four between the streams.
{ head -c $((3 * MiB + 5)) disk.img | xz -c && printf '\0\0\0' &&
    tail -c +$((3 * MiB + 6)) disk.img | xz -c; } >badpad.xz
damaged "three bytes of padding between streams" badpad.xz "padding.*not a multiple of four.* at byte $first$END"
