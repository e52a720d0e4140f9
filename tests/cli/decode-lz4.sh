#!/usr/bin/env bash
# bmapkit copy of lz4 images: lz4 frame output with and without checksums and linked blocks, several frames and skippable frames, the .lz4 suffix, no suffix, standard input, --nobmap; truncated, flipped, trailing-garbage and legacy-format files fail.
source "$TESTS_DIR/lib.sh"
source "$TESTS_DIR/decode_lib.sh"

FORMAT=lz4
require_tools lz4
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

# --- lz4(1) output, under its suffix and none (lz4 writes to stdout only when told)
lz4 -q -c disk.img >disk.img.lz4
cp disk.img.lz4 packed
copy_ok "lz4, .lz4, bmap found by name" disk.img.lz4
copy_ok "lz4, no suffix (magic), --bmap" --bmap disk.img.bmap packed
copy_ok "lz4, standard input from the file" --bmap disk.img.bmap - <disk.img.lz4
piped_ok "lz4, standard input from a pipe" disk.img.lz4 --bmap disk.img.bmap
nobmap_ok "lz4, .lz4" disk.img.lz4
nobmap_ok "lz4, no suffix" packed
piped_ok "lz4, pipe, --nobmap" disk.img.lz4 --nobmap
lz4 -q -9 -BD -B4 --content-size -BX -c disk.img >linked.lz4
copy_ok "lz4 -9, linked 64 KiB blocks, block checksums, content size" --bmap disk.img.bmap linked.lz4
lz4 -q --no-frame-crc -c disk.img >nocheck.lz4
copy_ok "lz4 --no-frame-crc" --bmap disk.img.bmap nocheck.lz4

# --- several frames and skippable frames
# skippable N TEXT: a skippable frame with magic 0x184D2A5N holding TEXT.
skippable() {
    python3 -c 'import struct, sys
data = sys.argv[2].encode()
sys.stdout.buffer.write(struct.pack("<II", 0x184D2A50 + int(sys.argv[1]), len(data)) + data)' "$1" "$2"
}
{
    head -c $((2 * MiB + 5)) disk.img | lz4 -q -c
    skippable 0 "metadata"
    tail -c +$((2 * MiB + 6)) disk.img | lz4 -q -c
    skippable 15 ""
} >frames.lz4
copy_ok "two frames and two skippable frames" --bmap disk.img.bmap frames.lz4
nobmap_ok "two frames and two skippable frames" frames.lz4
piped_ok "two frames and two skippable frames, pipe" frames.lz4 --bmap disk.img.bmap
{ lz4 -q -c </dev/null && cat disk.img.lz4 && lz4 -q -c </dev/null; } >empty-frames.lz4
copy_ok "empty frames around the image" --bmap disk.img.bmap empty-frames.lz4

# --- damaged files
size=$(stat -c %s disk.img.lz4)
[ "$size" -gt 4096 ] || fail "disk.img.lz4 is only $size bytes"
for cut in 6 $((size / 2)) $((size - 5)) $((size - 1)); do
    head -c "$cut" disk.img.lz4 >cut.lz4
    damaged "cut at byte $cut of $size" cut.lz4 "truncated.* at byte $cut$END"
done
# Cut inside the second frame and inside the skippable frame after it.
first=$(($(head -c $((2 * MiB + 5)) disk.img | lz4 -q -c | wc -c) + 16))
second=$(($(stat -c %s frames.lz4) - 8))
for cut in $((first + 2)) $((first + 1000)) $((second + 2)) $((second + 6)); do
    head -c "$cut" frames.lz4 >cut.lz4
    damaged "frames, cut at byte $cut" cut.lz4 "truncated.* at byte $cut$END"
done

damaged_middle_and_end disk.img.lz4

# A byte flipped inside a block that lz4 stored uncompressed (random data) decodes
# without complaint: only the frame's content checksum catches it, which bmapkit checks
# itself. 64 KiB blocks, so that some lie wholly inside the random range.
lz4 -q -B4 -c disk.img >small-blocks.lz4
# first_stored_block FILE: offset of the data of FILE's first uncompressed block.
first_stored_block() {
    python3 - "$1" <<'PY'
import struct, sys
d = open(sys.argv[1], "rb").read()
flg = d[4]
pos = 4 + 2 + (8 if flg & 0x08 else 0) + (4 if flg & 0x01 else 0) + 1
while True:
    (size,) = struct.unpack_from("<I", d, pos)
    if size == 0:
        sys.exit("no uncompressed block")
    if size & 0x80000000:
        print(pos + 4)
        break
    pos += 4 + size + (4 if flg & 0x10 else 0)
PY
}
stored=$(first_stored_block small-blocks.lz4)
ssize=$(stat -c %s small-blocks.lz4)
flip small-blocks.lz4 $((stored + 1000)) stored-flip.lz4
damaged "byte flipped in an uncompressed block" stored-flip.lz4 \
    "content checksum mismatch.* at byte $((ssize - 4))$END"
lz4 -q -B4 -BX -c disk.img >block-sums.lz4
flip block-sums.lz4 $(($(first_stored_block block-sums.lz4) + 1000)) block-sum-flip.lz4
damaged "byte flipped in an uncompressed block with block checksums" block-sum-flip.lz4 \
    "corrupt.*checksum"
{ cat disk.img.lz4 && printf 'ga'; } >trailing.lz4
damaged "two bytes of trailing garbage" trailing.lz4 "trailing data.* at byte $size$END"
{ cat disk.img.lz4 && head -c 512 /dev/zero; } >padded.lz4
damaged "zero padding after the last frame" padded.lz4 "trailing data.* at byte $size$END"

# --- the legacy format (lz4 -l) is not supported, and says so when it follows a frame
lz4 -q -l -c disk.img >legacy.lz4
[ "$(od -An -tx1 -N4 legacy.lz4 | tr -d ' ')" = 02214c18 ] || fail "lz4 -l did not write the legacy magic"
{ cat disk.img.lz4 && cat legacy.lz4; } >then-legacy.lz4
damaged "a legacy frame after a frame" then-legacy.lz4 "legacy.* at byte $size$END"
# Alone it is not recognised as lz4 at all but taken for a raw image, which the bmap
# does not describe.
rm -f out.img
rc=0
"$BMAPKIT" copy -q --bmap disk.img.bmap legacy.lz4 out.img 2>.err || rc=$?
[ "$rc" -ne 0 ] || fail "a legacy lz4 file was copied as if it were the image"
pass "legacy lz4 file with the image's bmap: exit $rc"
