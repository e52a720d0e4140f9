#!/bin/bash
# bmapkit copy --skip-unchanged: a re-flash writes only what differs. On a file, an NBD
# export whose request log counts the bytes written, and (as root) a loop device whose
# kernel statistics count them: an identical image writes nothing, 5% of the mapped data
# changed in a large range writes about that much, the result is the new image, with
# --readback too, from a pipe, and over garbage it gives what a normal copy gives.
source "$TESTS_DIR/lib.sh"
source "$TESTS_DIR/nbdkit_lib.sh"
require_tools nbdkit nbdcopy xz python3

cd "$WORK"
# put_text FILE OFFSET LENGTH: random text, which xz compresses quickly.
put_text() {
    python3 -c 'import base64, os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
os.pwrite(fd, base64.b64encode(os.urandom(int(sys.argv[3]) * 3 // 4)), int(sys.argv[2]))' "$@"
}
# 64 MiB: the head (64 KiB), 2 MiB at 1 MiB, 24 MiB at 8 MiB, 256 KiB at 40 MiB.
new_sparse img 64M
put_text img 0 65536
put_text img $((1 << 20)) $((2 << 20))
put_text img $((8 << 20)) $((24 << 20))
put_text img $((40 << 20)) $((256 << 10))
$BMAPKIT -q create -o img.bmap img
mv img old.img
mv img.bmap old.bmap
mapped=$(bmap_mapped_bytes old.bmap)
nranges=$(bmap_range_count old.bmap)
head_mapped=65536

# change5 IMAGE: overwrite 5% of the mapped bytes with new random data, in 16 KiB pieces
# scattered over the 24 MiB range; prints "CHANGED PIECES".
change5() {
    python3 - "$1" "$mapped" <<'EOF'
import os, random, sys
path, mapped = sys.argv[1], int(sys.argv[2])
rng = random.Random(18)
piece = 16 << 10
want = mapped * 5 // 100
offsets = sorted(rng.sample(range((8 << 20) // 4096, ((32 << 20) - piece) // 4096), want // piece + 1))
fd = os.open(path, os.O_WRONLY)
for o in offsets:
    os.pwrite(fd, os.urandom(piece), o * 4096)
os.close(fd)
# Pieces may overlap: count the distinct bytes changed.
covered = set()
for o in offsets:
    covered.update(range(o, o + piece // 4096))
print(len(covered) * 4096, len(offsets))
EOF
}
cp --sparse=always old.img new.img
read -r changed pieces < <(change5 new.img)
$BMAPKIT -q create -o new.bmap new.img
xz -0 -T2 -k -c new.img >new.img.xz
# What the re-flash may write: the changed blocks, the gaps of up to 64 KiB it merges
# between them, and the head twice on a disk (cleared first, written last).
bound=$((changed + pieces * 65536))
[ "$bound" -lt $((mapped * 30 / 100)) ] || fail "the bound $bound says nothing for $mapped mapped"


# ---------------------------------------------------------------- a file

run_ok $BMAPKIT copy --bmap old.bmap old.img f.img
cmp old.img f.img || fail "first copy"
run_ok $BMAPKIT copy --skip-unchanged --json-events ev1 --bmap old.bmap old.img f.img
[ "$(done_field ev1 bytes_written)" = 0 ] || fail "an identical re-flash of a file wrote $(done_field ev1 bytes_written) bytes"
[ "$(done_field ev1 ranges_skipped)" = "$nranges" ] || fail "ranges skipped: $(done_field ev1 ranges_skipped) of $nranges"
[ "$(done_field ev1 bytes_skipped)" = "$mapped" ] || fail "bytes skipped on an identical re-flash"
[ "$(done_field ev1 ranges_verified)" = "$nranges" ] || fail "skipped ranges count as verified"
grep -q "unchanged on f.img: $nranges of $nranges range(s) skipped" .err || fail "summary: $(cat .err)"
cmp old.img f.img || fail "identical re-flash changed the file"
pass "file: an identical re-flash writes nothing and says so"

run_ok $BMAPKIT copy --skip-unchanged --json-events ev2 --bmap new.bmap new.img f.img
w=$(done_field ev2 bytes_written)
[ "$w" -ge "$changed" ] && [ "$w" -le "$bound" ] || fail "file: wrote $w, changed $changed, bound $bound"
[ "$(done_field ev2 ranges_skipped)" = $((nranges - 1)) ] || fail "file: one range differs"
[ $((w + $(done_field ev2 bytes_skipped))) = "$mapped" ] || fail "written + skipped != mapped"
cmp new.img f.img || fail "file: the re-flash is not the new image"
pass "file: 5% changed: $w bytes written (changed $changed, bound $bound of $mapped)"

# With --readback, only the range written is read back.
cp --sparse=always old.img f.img
run_ok $BMAPKIT copy --skip-unchanged --readback --json-events ev3 --bmap new.bmap new.img f.img
[ "$(done_field ev3 readback_checked)" = 1 ] || fail "read back $(done_field ev3 readback_checked) ranges"
cmp new.img f.img || fail "file: --readback re-flash"
pass "file: --readback reads back only the range written"

# From a pipe (the image is read as a stream, skipped ranges skipped over).
cp --sparse=always old.img f.img
xz -dc new.img.xz | run_ok $BMAPKIT copy --skip-unchanged --json-events ev4 --bmap new.bmap - f.img
w=$(done_field ev4 bytes_written)
[ "$w" -le "$bound" ] || fail "stream: wrote $w"
cmp new.img f.img || fail "stream re-flash"
pass "file: .xz through a pipe: $w bytes written"

# Refusals, before anything is written.
expect_fail 2 "--skip-unchanged .*--nobmap" $BMAPKIT copy --skip-unchanged --nobmap new.img f.img
expect_fail 1 "/dev/null cannot be read" $BMAPKIT -q copy --skip-unchanged --bmap new.bmap new.img /dev/null
pass "refused with --nobmap and on a destination that cannot be read"

# Ranges of 512-byte blocks that start and end inside 4 KiB blocks, two of them sharing
# one: the blocks compared at their edges are clipped to the range, and changes right at
# the edges are found, from a file and from a stream.
python3 - <<'EOF'
import hashlib, os, random
rng = random.Random(512)
old = bytearray(rng.randbytes(8 << 20))
ranges = [(1, 3000), (5001, 9000), (9003, 16000)]
new = bytearray(old)
for at in (512, 1536000, 1536511, 2560512, 4608000, 4608511, 4609536, 6 << 20, 8192511):
    new[at] ^= 0xFF
def bmap(img):
    rows = "".join(
        f'        <Range chksum="{hashlib.sha256(img[a * 512:(b + 1) * 512]).hexdigest()}"> '
        f"{a}-{b} </Range>\n" for a, b in ranges)
    mapped = sum(b - a + 1 for a, b in ranges)
    text = ('<?xml version="1.0" ?>\n<bmap version="2.0">\n'
            f"    <ImageSize> {len(img)} </ImageSize>\n    <BlockSize> 512 </BlockSize>\n"
            f"    <BlocksCount> {len(img) // 512} </BlocksCount>\n"
            f"    <MappedBlocksCount> {mapped} </MappedBlocksCount>\n"
            "    <ChecksumType> sha256 </ChecksumType>\n"
            f"    <BmapFileChecksum> {'0' * 64} </BmapFileChecksum>\n"
            f"    <BlockMap>\n{rows}    </BlockMap>\n</bmap>\n")
    return text.replace("0" * 64, hashlib.sha256(text.encode()).hexdigest(), 1)
for name, img in (("u-old", old), ("u-new", new)):
    open(name + ".img", "wb").write(img)
    open(name + ".bmap", "w").write(bmap(img))
EOF
for how in file stream; do
    cp u-old.img u.img
    if [ $how = file ]; then
        run_ok $BMAPKIT copy --skip-unchanged --json-events ev-u --bmap u-new.bmap u-new.img u.img
    else
        run_ok $BMAPKIT copy --skip-unchanged --json-events ev-u --bmap u-new.bmap - u.img <u-new.img
    fi
    cmp u-new.img u.img || fail "512-byte ranges ($how): not the new image"
    w=$(done_field ev-u bytes_written)
    [ "$w" -ge 8 ] && [ "$w" -le $((9 * 4096)) ] || fail "512-byte ranges ($how): wrote $w bytes"
done
pass "ranges cut inside 4 KiB blocks: changes at their edges found, from a file and a stream"

# ---------------------------------------------------------------- an NBD export

# logged_bytes LOG Write|Read: bytes of the requests of that kind the server has logged
# so far.
logged_bytes() {
    python3 - "$1" "$2" <<'EOF'
import re, sys
n = 0
for line in open(sys.argv[1]):
    m = re.search(sys.argv[2] + r" id=\d+ offset=0x[0-9a-f]+ count=(0x[0-9a-f]+)", line)
    if m and "..." in line:
        n += int(m.group(1), 16)
print(n)
EOF
}
logged_writes() { logged_bytes "$1" Write; }

serve --log --wait mem memory 64M
run_ok $BMAPKIT copy --bmap old.bmap old.img "$(uri mem)"
full=$(logged_writes mem.log)
[ "$full" -ge "$mapped" ] || fail "full flash to NBD wrote $full"
run_ok $BMAPKIT copy --skip-unchanged --bmap old.bmap old.img "$(uri mem)"
[ "$(logged_writes mem.log)" = "$full" ] || fail "an identical re-flash to NBD wrote $(($(logged_writes mem.log) - full)) bytes"
pass "NBD: an identical re-flash sends no write at all"

run_ok $BMAPKIT copy --skip-unchanged --readback --json-events ev5 --bmap new.bmap new.img.xz "$(uri mem)"
w=$(($(logged_writes mem.log) - full))
[ "$w" -ge "$changed" ] && [ "$w" -le $((bound + 2 * head_mapped)) ] ||
    fail "NBD: the server got $w bytes, changed $changed, bound $((bound + 2 * head_mapped))"
[ "$w" = $(($(done_field ev5 bytes_written) + head_mapped)) ] || fail "NBD: the event's count and the server's differ"
nbdcopy "$(uri mem)" got.img
cmp -n "$(stat -c %s new.img)" new.img got.img || fail "NBD: the export is not the new image"
pass "NBD: 5% changed (.xz, --readback): the server got $w bytes of $full"

# The survey reads every mapped byte once; the blocks of the range that differs are
# then compared with the prints it took, not read from the export again.
run_ok $BMAPKIT -q copy --bmap old.bmap old.img "$(uri mem)"
r0=$(logged_bytes mem.log Read)
run_ok $BMAPKIT -q copy --skip-unchanged --bmap new.bmap new.img.xz "$(uri mem)"
r=$(($(logged_bytes mem.log Read) - r0))
[ "$r" -ge "$mapped" ] && [ "$r" -le $((mapped + 65536)) ] ||
    fail "NBD: the re-flash read $r bytes of the export for $mapped mapped"
nbdcopy "$(uri mem)" got.img
cmp -n "$(stat -c %s new.img)" new.img got.img || fail "NBD: the export is not the new image"
pass "NBD: the re-flash read the export once ($r bytes for $mapped mapped)"

# Garbage everywhere: every range differs; the same result as a normal copy.
head -c 64M /dev/urandom >g1
cp g1 g2
serve --log --wait g1 file g1
serve --log --wait g2 file g2
run_ok $BMAPKIT copy --skip-unchanged --json-events ev6 --bmap new.bmap new.img "$(uri g1)"
run_ok $BMAPKIT copy --bmap new.bmap new.img "$(uri g2)"
[ "$(done_field ev6 ranges_skipped)" = 0 ] || fail "garbage: ranges skipped"
[ "$(done_field ev6 bytes_written)" = "$mapped" ] || fail "garbage: wrote $(done_field ev6 bytes_written) of $mapped"
cmp g1 g2 || fail "garbage: --skip-unchanged differs from a normal copy"
pass "NBD over garbage: everything written, the same as a normal copy"

# ---------------------------------------------------------------- a loop device

if [ "$(id -u)" -ne 0 ]; then
    note_skip "loop device: not root"
elif ! attach_loop "$(truncate -s 64M lo && echo lo)"; then
    note_skip "loop device: $(cat "$WORK/.losetup.err")"
else
    dev=${LOOP##*/}
    # sectors_written: the kernel's count of 512-byte sectors written to the device.
    sectors_written() { awk '{print $7}' "/sys/block/$dev/stat"; }
    run_ok $BMAPKIT copy --bmap old.bmap old.img "$LOOP"
    s0=$(sectors_written)
    run_ok $BMAPKIT copy --skip-unchanged --bmap old.bmap old.img "$LOOP"
    s1=$(sectors_written)
    [ "$s1" = "$s0" ] || fail "loop: an identical re-flash wrote $(((s1 - s0) * 512)) bytes"
    pass "loop device: an identical re-flash writes nothing"
    run_ok $BMAPKIT copy --skip-unchanged --readback --bmap new.bmap new.img "$LOOP"
    w=$((($(sectors_written) - s1) * 512))
    [ "$w" -ge "$changed" ] && [ "$w" -le $((bound + 2 * head_mapped)) ] ||
        fail "loop: $w bytes written, changed $changed"
    cmp -n "$(stat -c %s new.img)" new.img "$LOOP" || fail "loop: not the new image"
    pass "loop device: 5% changed, --readback: $w bytes written"
fi
