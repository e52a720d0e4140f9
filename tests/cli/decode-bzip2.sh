#!/usr/bin/env bash
# bmapkit copy of bzip2 images: bzip2 and pbzip2 output (decoded on several CPUs), several streams, the .bz2 suffix, no suffix, standard input, --nobmap; truncated, flipped and trailing-garbage files fail.
source "$TESTS_DIR/lib.sh"
source "$TESTS_DIR/decode_lib.sh"

FORMAT=bzip2
PIPE_DIFFERS=1 # a seekable file of several streams is decoded on several CPUs, a pipe in turn
require_tools bzip2 pbzip2 taskset
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

# --- bzip2(1) output, under its suffix and none
bzip2 -c disk.img >disk.img.bz2
cp disk.img.bz2 packed
copy_ok "bzip2, .bz2, bmap found by name" disk.img.bz2
copy_ok "bzip2, no suffix (magic), --bmap" --bmap disk.img.bmap packed
copy_ok "bzip2, standard input from the file" --bmap disk.img.bmap - <disk.img.bz2
piped_ok "bzip2, standard input from a pipe" disk.img.bz2 --bmap disk.img.bmap
nobmap_ok "bzip2, .bz2" disk.img.bz2
nobmap_ok "bzip2, no suffix" packed
piped_ok "bzip2, pipe, --nobmap" disk.img.bz2 --nobmap
# Small blocks: many blocks in one stream.
bzip2 -1 -c disk.img >small-blocks.bz2
copy_ok "bzip2 -1" --bmap disk.img.bmap small-blocks.bz2

# --- several streams: bzip2 of two pieces, concatenated, with an empty stream between
head -c $((2 * MiB + 5)) disk.img | bzip2 -c >streams.bz2
bzip2 -c </dev/null >>streams.bz2
tail -c +$((2 * MiB + 6)) disk.img | bzip2 -c >>streams.bz2
copy_ok "three bzip2 streams, one empty" --bmap disk.img.bmap streams.bz2
nobmap_ok "three bzip2 streams" streams.bz2
piped_ok "three bzip2 streams, pipe" streams.bz2 --bmap disk.img.bmap

# --- pbzip2 output: one stream per 100 KiB piece
pbzip2 -p2 -b1 -c disk.img >disk.pbzip2.bz2
streams=$(grep -c -a -o 'BZh91AY&SY' disk.pbzip2.bz2 || true)
[ "$streams" -gt 10 ] || fail "pbzip2 -b1 wrote $streams streams, expected many"
copy_ok "pbzip2 ($streams streams)" --bmap disk.img.bmap disk.pbzip2.bz2
nobmap_ok "pbzip2" disk.pbzip2.bz2
piped_ok "pbzip2, pipe" disk.pbzip2.bz2 --bmap disk.img.bmap
# Many streams are decoded on several CPUs; a damaged one must still fail, named.
psize=$(stat -c %s disk.pbzip2.bz2)
for cut in $((psize / 3)) $((psize - 3)); do
    head -c "$cut" disk.pbzip2.bz2 >pcut.bz2
    damaged "pbzip2, cut at byte $cut of $psize" pcut.bz2 "truncated.* at byte $cut$END"
done
damaged_middle_and_end disk.pbzip2.bz2 pbzip2
rm -f out.img
run_ok taskset -c 0 "$BMAPKIT" copy -q --bmap disk.img.bmap disk.pbzip2.bz2 out.img
same_as_image disk.img disk.img.bmap out.img
pass "pbzip2 on one CPU (one stream after the other)"

# --- a stream that decodes to more than a parallel job may hold (8 MiB), between
# small ones: the copy goes on one stream after the other from there.
head -c 100000 text | bzip2 -c >big.bz2
head -c $((12 * MiB)) /dev/zero | bzip2 -c >>big.bz2
tail -c 100000 text | bzip2 -c >>big.bz2
{ head -c 100000 text && head -c $((12 * MiB)) /dev/zero && tail -c 100000 text; } >big.raw
rm -f out.img
run_ok "$BMAPKIT" copy -q --nobmap big.bz2 out.img
cmp big.raw out.img || fail "a 12 MiB stream between small ones: the copy differs"
pass "a 12 MiB stream between small ones"

# --- damaged files
size=$(stat -c %s disk.img.bz2)
[ "$size" -gt 4096 ] || fail "disk.img.bz2 is only $size bytes"
for cut in 6 $((size / 2)) $((size - 5)) $((size - 1)); do
    head -c "$cut" disk.img.bz2 >cut.bz2
    damaged "cut at byte $cut of $size" cut.bz2 "truncated.* at byte $cut$END"
done
# Cut inside the last stream: in its magic, and further in.
head -c $((2 * MiB + 5)) disk.img | bzip2 -c >one.bz2
bzip2 -c </dev/null >>one.bz2
first=$(stat -c %s one.bz2)
for cut in $((first + 2)) $((first + 1000)); do
    head -c "$cut" streams.bz2 >cut.bz2
    damaged "three streams, cut at byte $cut" cut.bz2 "truncated.* at byte $cut$END"
done

damaged_middle_and_end disk.img.bz2
{ cat disk.img.bz2 && head -c 512 /dev/zero; } >padded.bz2
damaged "zero padding after the last stream" padded.bz2 "trailing data.* at byte $size$END"
{ cat disk.img.bz2 && printf 'BZh9xyz'; } >bad-magic.bz2
damaged "a broken stream header after the last stream" bad-magic.bz2 "corrupt"
