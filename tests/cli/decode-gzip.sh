#!/usr/bin/env bash
# bmapkit copy of gzip images: gzip and pigz output, several members, the .gz and .gzip suffixes, no suffix, standard input, --nobmap; truncated, flipped and trailing-garbage files fail.
source "$TESTS_DIR/lib.sh"
source "$TESTS_DIR/decode_lib.sh"

FORMAT=gzip
require_tools gzip pigz
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

# --- gzip(1) output, under every suffix and none
gzip -c disk.img >disk.img.gz
cp disk.img.gz disk.img.gzip
cp disk.img.gz packed
copy_ok "gzip, .gz, bmap found by name" disk.img.gz
copy_ok "gzip, .gzip, bmap found by name" disk.img.gzip
copy_ok "gzip, no suffix (magic), --bmap" --bmap disk.img.bmap packed
copy_ok "gzip, standard input from the file" --bmap disk.img.bmap - <disk.img.gz
piped_ok "gzip, standard input from a pipe" disk.img.gz --bmap disk.img.bmap
nobmap_ok "gzip, .gz" disk.img.gz
nobmap_ok "gzip, no suffix" packed
piped_ok "gzip, pipe, --nobmap" disk.img.gz --nobmap

# --- several members: gzip of two pieces, concatenated, with a name in each header
head -c $((2 * MiB + 5)) disk.img | gzip -c >members.gz
tail -c +$((2 * MiB + 6)) disk.img | gzip -9 -c >>members.gz
copy_ok "two gzip members" --bmap disk.img.bmap members.gz
nobmap_ok "two gzip members" members.gz
piped_ok "two gzip members, pipe" members.gz --bmap disk.img.bmap
# An empty member between the two is allowed too.
head -c $((2 * MiB + 5)) disk.img | gzip -c >members3.gz
gzip -c </dev/null >>members3.gz
tail -c +$((2 * MiB + 6)) disk.img | gzip -1 -c >>members3.gz
copy_ok "three gzip members, one empty" --bmap disk.img.bmap members3.gz

# --- pigz output (many deflate blocks, and concatenated pigz members)
pigz -p 2 -b 128 -c disk.img >disk.pigz.gz
copy_ok "pigz" --bmap disk.img.bmap disk.pigz.gz
nobmap_ok "pigz" disk.pigz.gz
pigz -i -p 2 -c disk.img >disk.pigzi.gz
copy_ok "pigz --independent" --bmap disk.img.bmap disk.pigzi.gz
head -c $MiB disk.img | pigz -c >pigz-members.gz
tail -c +$((MiB + 1)) disk.img | pigz -c >>pigz-members.gz
copy_ok "two pigz members" --bmap disk.img.bmap pigz-members.gz

# --- damaged files
size=$(stat -c %s disk.img.gz)
[ "$size" -gt 4096 ] || fail "disk.img.gz is only $size bytes"
for cut in 6 $((size / 2)) $((size - 5)) $((size - 1)); do
    head -c "$cut" disk.img.gz >cut.gz
    damaged "cut at byte $cut of $size" cut.gz "truncated.* at byte $cut$END"
done
# Cut inside the second member: right after its first byte, and further in.
head -c $((2 * MiB + 5)) disk.img | gzip -c >one.gz
first=$(stat -c %s one.gz)
for cut in $((first + 1)) $((first + 1000)); do
    head -c "$cut" members.gz >cut.gz
    damaged "two members, cut at byte $cut" cut.gz "truncated.* at byte $cut$END"
done

damaged_middle_and_end disk.img.gz
# Zero padding after the last member is refused too (gzip(1) only warns about it):
# a flasher cannot tell it from damage.
{ cat disk.img.gz && head -c 512 /dev/zero; } >padded.gz
damaged "zero padding after the last member" padded.gz "trailing data.* at byte $size$END"
{ cat disk.img.gz && printf '\037'; } >half-magic.gz
damaged "one byte of a further member's magic" half-magic.gz "truncated.* at byte $((size + 1))$END"
