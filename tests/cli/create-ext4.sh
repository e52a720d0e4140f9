#!/usr/bin/env bash
# Images on loop-mounted ext4 (4 KiB and 1 KiB blocks): FIEMAP, preallocated extents, same as the reference.
. "$TESTS_DIR/lib.sh"

require_tools mkfs.ext4 bmaptool
[ "$(id -u)" -eq 0 ] || skip "mounting an ext4 file system needs root"

# mount_ext4 BLOCKSIZE: a fresh ext4 with BLOCKSIZE-byte blocks, mounted on $MNT.
MOUNTS=0
mount_ext4() {
    MOUNTS=$((MOUNTS + 1))
    local fs="$WORK/ext4-$MOUNTS.fs"
    MNT="$WORK/mnt-$MOUNTS"
    mkdir "$MNT"
    truncate -s 128M "$fs"
    mkfs.ext4 -q -F -b "$1" "$fs" || fail "mkfs.ext4 -b $1 failed"
    if ! mount -o loop "$fs" "$MNT" 2>"$WORK/mount.err"; then
        skip "cannot loop-mount an ext4 file system here: $(cat "$WORK/mount.err")"
    fi
    at_exit "umount '$MNT' || umount -l '$MNT'"
    [ "$(fs_block_size "$MNT")" -eq "$1" ] || fail "the mounted ext4 does not have $1-byte blocks"
    echo "ext4 with $1-byte blocks mounted on $MNT"
}

# check_ext4 NAME IMAGE RANGES: mapped with FIEMAP to exactly RANGES (in blocks of the
# file system), correct checksums, same as bmaptool create, copied back exactly.
check_ext4() {
    local name=$1 image=$2 ranges=$3
    run_ok "$BMAPKIT" -d create -o "$WORK/our.bmap" "$image"
    grep -q '^bmapkit: debug: mapped with fiemap' "$WORK/.err" ||
        fail "$name: no 'mapped with fiemap' debug line: $(cat "$WORK/.err")"
    expect_ranges "$WORK/our.bmap" "$ranges"
    [ "$(bmap_value "$WORK/our.bmap" BlockSize)" -eq "$FBS" ] || fail "$name: BlockSize is not $FBS"
    check_bmap "$WORK/our.bmap" "$image"
    bmaptool -q create -o "$WORK/ref.bmap" "$image" 2>/dev/null || fail "$name: bmaptool create failed"
    same_bmap_content "$WORK/ref.bmap" "$WORK/our.bmap"
    bmaptool_copy_check "$image" "$WORK/our.bmap"
    [ "${#ranges}" -le 40 ] || ranges="$(wc -w <<<"$ranges") ranges"
    pass "ext4/$FBS $name: ${ranges:-no ranges}, mapped with fiemap, same as bmaptool create, copy reproduces it"
}

for FBS in 4096 1024; do
    mount_ext4 "$FBS"
    cd "$MNT"

    new_sparse holes.img $((256 * FBS))
    put_blocks holes.img 8 8 "$FBS"
    put_blocks holes.img 100 1 "$FBS"
    put_blocks holes.img 200 20 "$FBS"
    check_ext4 "holes at start, middle and end" holes.img "8-15 100-100 200-219"

    # Preallocated (unwritten) extents count as mapped, as in the reference.
    new_sparse prealloc.img $((256 * FBS))
    put_blocks prealloc.img 0 2 "$FBS"
    prealloc prealloc.img $((50 * FBS)) $((30 * FBS))
    put_blocks prealloc.img 60 2 "$FBS"
    check_ext4 "preallocated region with data inside" prealloc.img "0-1 50-79"

    rm -f falloc.img
    fallocate -l $((64 * FBS)) falloc.img
    check_ext4 "fallocate -l of a whole image" falloc.img "0-63"

    new_sparse partial.img $((40 * FBS + 321))
    put_blocks partial.img 5 5 "$FBS"
    put_random partial.img $((40 * FBS)) 321
    check_ext4 "partial last block" partial.img "5-9 40-40"

    new_sparse many.img $((2400 * FBS))
    expected=""
    runs=""
    for ((b = 3; b < 2400; b += 3)); do
        runs+=" $b:1"
        expected+="${expected:+ }$b-$b"
    done
    put_block_runs many.img "$FBS" "$runs"
    check_ext4 "799 single-block extents" many.img "$expected"

    new_sparse zeros.img $((32 * FBS))
    put_zeros zeros.img $((4 * FBS)) $((4 * FBS))
    check_ext4 "written zeros" zeros.img "4-7"

    new_sparse empty.img $((1024 * 1024))
    check_ext4 "fully sparse" empty.img ""

    cd "$WORK"
done
