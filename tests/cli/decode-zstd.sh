#!/usr/bin/env bash
# bmapkit copy of zstd images: zstd and zstd -T2 output, several frames and skippable frames, --long=31, the .zst suffix, no suffix, standard input, --nobmap; truncated, flipped and trailing-garbage files fail.
source "$TESTS_DIR/lib.sh"
source "$TESTS_DIR/decode_lib.sh"

FORMAT=zstd
require_tools zstd
require_sparse_support "$WORK"
cd "$WORK"
[ "$BS" -eq 4096 ] || skip "the test images assume 4096-byte blocks, $WORK has $BS"

# The image: data in the first MiB, holes, random and compressible ranges, a partial
# last block holding data.
new_sparse disk.img $((6 * MiB + 1234))
put_blocks disk.img 1 30
seq 1 400000 >text
dd if=text of=disk.img bs=4096 seek=300 conv=notrunc status=none
put_blocks disk.img 1000 150
put_random disk.img $((1536 * 4096)) 1234
run_ok "$BMAPKIT" create -q -o disk.img.bmap disk.img
[ "$(bmap_range_count disk.img.bmap)" -eq 4 ] || fail "the test image should have 4 ranges"

# --- zstd(1) output, under its suffix and none
zstd -q -c disk.img >disk.img.zst
cp disk.img.zst packed
copy_ok "zstd, .zst, bmap found by name" disk.img.zst
copy_ok "zstd, no suffix (magic), --bmap" --bmap disk.img.bmap packed
copy_ok "zstd, standard input from the file" --bmap disk.img.bmap - <disk.img.zst
piped_ok "zstd, standard input from a pipe" disk.img.zst --bmap disk.img.bmap
nobmap_ok "zstd, .zst" disk.img.zst
nobmap_ok "zstd, no suffix" packed
piped_ok "zstd, pipe, --nobmap" disk.img.zst --nobmap
zstd -q -T2 -B262144 -c disk.img >threads.zst
copy_ok "zstd -T2" --bmap disk.img.bmap threads.zst
nobmap_ok "zstd -T2" threads.zst
# From a pipe the size is unknown, so the frame keeps the whole 2 GiB window.
zstd -q --long=31 -c <disk.img >long.zst
copy_ok "zstd --long=31 of a pipe" --bmap disk.img.bmap long.zst
zstd -q --no-check -c disk.img >nocheck.zst
copy_ok "zstd --no-check" --bmap disk.img.bmap nocheck.zst

# --- several frames and skippable frames (written here: the zstd command only reads them)
# skippable N TEXT: a skippable frame with magic 0x184D2A5N holding TEXT.
skippable() {
    python3 -c 'import struct, sys
data = sys.argv[2].encode()
sys.stdout.buffer.write(struct.pack("<II", 0x184D2A50 + int(sys.argv[1]), len(data)) + data)' "$1" "$2"
}
{
    head -c $((2 * MiB + 5)) disk.img | zstd -q -c
    skippable 0 "seek table or other metadata"
    tail -c +$((2 * MiB + 6)) disk.img | zstd -q -19 -c
    skippable 15 ""
} >frames.zst
copy_ok "two frames and two skippable frames" --bmap disk.img.bmap frames.zst
nobmap_ok "two frames and two skippable frames" frames.zst
piped_ok "two frames and two skippable frames, pipe" frames.zst --bmap disk.img.bmap
{ zstd -q -c </dev/null && cat disk.img.zst && zstd -q -c </dev/null; } >empty-frames.zst
copy_ok "empty frames around the image" --bmap disk.img.bmap empty-frames.zst

# --- damaged files
size=$(stat -c %s disk.img.zst)
[ "$size" -gt 4096 ] || fail "disk.img.zst is only $size bytes"
for cut in 6 $((size / 2)) $((size - 5)) $((size - 1)); do
    head -c "$cut" disk.img.zst >cut.zst
    damaged "cut at byte $cut of $size" cut.zst "truncated.* at byte $cut$END"
done
# Cut inside the second frame and inside the skippable frame after it.
first=$(($(head -c $((2 * MiB + 5)) disk.img | zstd -q -c | wc -c) + 36))
second=$(stat -c %s frames.zst)
second=$((second - 8))
for cut in $((first + 2)) $((first + 1000)) $((second + 2)) $((second + 6)); do
    head -c "$cut" frames.zst >cut.zst
    damaged "frames, cut at byte $cut" cut.zst "truncated.* at byte $cut$END"
done

damaged_middle_and_end disk.img.zst
{ cat disk.img.zst && printf 'ga'; } >trailing.zst
damaged "two bytes of trailing garbage" trailing.zst "trailing data.* at byte $size$END"
{ cat disk.img.zst && head -c 512 /dev/zero; } >padded.zst
damaged "zero padding after the last frame" padded.zst "trailing data.* at byte $size$END"
