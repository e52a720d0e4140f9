#!/usr/bin/env bash
# Images on tmpfs (no FIEMAP): mapped with SEEK_DATA/SEEK_HOLE, same result as the reference and as on disk.
. "$TESTS_DIR/lib.sh"

require_tools bmaptool

# --- a tmpfs to work on
if [ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ] && [ -w /dev/shm ]; then
    TDIR=$(mktemp -d /dev/shm/bmapkit-tmpfs.XXXXXX)
    at_exit rm -rf "$TDIR"
    echo "using the tmpfs /dev/shm"
elif [ "$(id -u)" -eq 0 ]; then
    TDIR=$WORK/tmpfs
    mkdir "$TDIR"
    mount -t tmpfs -o size=64m bmapkit-test "$TDIR" || skip "cannot mount a tmpfs on $TDIR"
    at_exit umount "$TDIR"
    echo "using a tmpfs mounted on $TDIR"
else
    skip "/dev/shm is not a writable tmpfs and mounting one needs root"
fi
TBS=$(fs_block_size "$TDIR")

# --- a disk directory to compare with: the test directory, unless it is a tmpfs as well
DDIR=""
for d in "$WORK" /var/tmp; do
    if [ "$(stat -f -c %T "$d")" != tmpfs ] && [ -w "$d" ] && [ "$(fs_block_size "$d")" -eq "$TBS" ]; then
        DDIR=$(mktemp -d "$d/bmapkit-disk.XXXXXX")
        at_exit rm -rf "$DDIR"
        break
    fi
done
[ -n "$DDIR" ] || note_skip "no disk directory with $TBS-byte blocks: no comparison with a disk copy"
if [ -n "$DDIR" ] && ! keeps_holes "$DDIR"; then
    note_skip "$DDIR does not keep holes: no comparison with a disk copy"
    DDIR=""
fi

cd "$TDIR"

# check_tmpfs NAME IMAGE RANGES [nodisk]: IMAGE (on the tmpfs) is mapped with seek to
# exactly RANGES; the bmap is correct, equal to the reference's and to that of a sparse
# copy on disk.
check_tmpfs() {
    local name=$1 image=$2 ranges=$3 what
    run_ok "$BMAPKIT" -d create -o "$WORK/tmpfs.bmap" "$image"
    grep -q '^bmapkit: debug: mapped with seek' "$WORK/.err" ||
        fail "$name: no 'mapped with seek' debug line: $(cat "$WORK/.err")"
    expect_ranges "$WORK/tmpfs.bmap" "$ranges"
    [ "$(bmap_value "$WORK/tmpfs.bmap" BlockSize)" -eq "$TBS" ] || fail "$name: BlockSize"
    check_bmap "$WORK/tmpfs.bmap" "$image"
    bmaptool -q create -o "$WORK/ref.bmap" "$image" 2>/dev/null || fail "$name: bmaptool create failed"
    same_bmap_content "$WORK/ref.bmap" "$WORK/tmpfs.bmap"
    bmaptool_copy_check "$image" "$WORK/tmpfs.bmap"
    what="mapped with seek, checksums correct, same as bmaptool create, bmaptool copy reproduces it"
    if [ -n "$DDIR" ] && [ "${4:-}" != nodisk ]; then
        cp --sparse=always "$image" "$DDIR/$image"
        run_ok "$BMAPKIT" create -o "$WORK/disk.bmap" "$DDIR/$image"
        same_bmap_content "$WORK/disk.bmap" "$WORK/tmpfs.bmap"
        rm -f "$DDIR/$image"
        what+=", same as the disk copy"
    fi
    [ "${#ranges}" -le 40 ] || ranges="$(wc -w <<<"$ranges") ranges"
    pass "$name: ${ranges:-no ranges}, $what"
}

new_sparse holes.img $((64 * TBS))
put_blocks holes.img 4 4 "$TBS"
put_blocks holes.img 20 1 "$TBS"
put_blocks holes.img 40 10 "$TBS"
check_tmpfs "holes at start, middle and end" holes.img "4-7 20-20 40-49"

new_sparse many.img $((1200 * TBS))
expected=""
runs=""
for ((b = 0; b < 1200; b += 4)); do
    runs+=" $b:$((b % 3 + 1))"
    expected+="${expected:+ }$b-$((b + b % 3))"
done
put_block_runs many.img "$TBS" "$runs"
check_tmpfs "300 ranges" many.img "$expected"

new_sparse partial.img $((20 * TBS + 123))
put_blocks partial.img 3 3 "$TBS"
put_random partial.img $((20 * TBS)) 123
check_tmpfs "partial last block with data" partial.img "3-5 20-20"

new_sparse partial-hole.img $((20 * TBS + 123))
put_blocks partial-hole.img 0 2 "$TBS"
check_tmpfs "partial last block in a hole" partial-hole.img "0-1"

head -c $((16 * TBS + 5)) /dev/urandom >full.img
check_tmpfs "fully mapped" full.img "0-16"

new_sparse sparse.img $((1024 * 1024))
check_tmpfs "fully sparse" sparse.img ""

# cp --sparse=always would turn written zeros into holes: no disk comparison here.
new_sparse zeros.img $((32 * TBS))
put_zeros zeros.img $((3 * TBS)) $((2 * TBS))
put_blocks zeros.img 9 1 "$TBS"
check_tmpfs "written zero pages" zeros.img "3-4 9-9" nodisk
