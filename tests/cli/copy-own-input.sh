#!/usr/bin/env bash
# bmapkit copy never destroys its own input: the destination is refused when it is the
# image, the bmap or standard input's file (by any name), a symbolic link into /dev that
# leads nowhere, a loop device over the image or bmap, a device holding a file system
# the image lies on, a device the image is read from, or the file behind such a device.
# Each refusal names the input and leaves every byte of it unchanged.
source "$TESTS_DIR/lib.sh"

require_tools losetup sfdisk mkfs.ext4 sha256sum
cd "$WORK"
MiB=$((1024 * 1024))

new_sparse img $((8 * MiB))
put_random img 0 $((2 * MiB))
put_random img $((5 * MiB)) $((1 * MiB))
gen_bmap 2.0 img img.bmap
IMG_SUM=$(sha256sum <img | cut -d' ' -f1)
BMAP_SUM=$(sha256sum <img.bmap | cut -d' ' -f1)

# inputs_intact WHAT: the image and the bmap are as they were.
inputs_intact() {
    [ "$(sha256sum <img | cut -d' ' -f1)" = "$IMG_SUM" ] || fail "$1: the image changed"
    [ "$(sha256sum <img.bmap | cut -d' ' -f1)" = "$BMAP_SUM" ] || fail "$1: the bmap changed"
}

# --- the bmap, the image, other names of them
expect_fail 1 'destroy the bmap img.bmap .*same file' "$BMAPKIT" copy --bmap img.bmap img img.bmap
inputs_intact "bmap as destination"
pass "the bmap as destination: refused, bmap unchanged"

expect_fail 1 'destroy the image img .*same file' "$BMAPKIT" copy --bmap img.bmap img img
inputs_intact "image as destination"
ln img img.hard
ln -s img img.sym
ln -s img.bmap bmap.sym
expect_fail 1 'destroy the image img ' "$BMAPKIT" copy --bmap img.bmap img img.hard
expect_fail 1 'destroy the image img ' "$BMAPKIT" copy --bmap img.bmap img img.sym
expect_fail 1 'destroy the image img ' "$BMAPKIT" copy --bmap img.bmap img "$WORK/./img"
expect_fail 1 'destroy the bmap img.bmap ' "$BMAPKIT" copy --bmap img.bmap img bmap.sym
inputs_intact "other names"
pass "the image by a hard link, a symbolic link, another path; the bmap by a link: refused"

# --- standard input read from the destination file
cp img stdin.img
expect_fail 1 'destroy the image on standard input' \
    "$BMAPKIT" copy --bmap img.bmap - stdin.img <stdin.img
cmp stdin.img img || fail "stdin.img changed"
expect_fail 1 'destroy the image on standard input' \
    "$BMAPKIT" copy --nobmap - stdin.img <stdin.img
cmp stdin.img img || fail "stdin.img changed (--nobmap)"
pass "standard input redirected from the destination: refused, file unchanged"

# A copy to another file from standard input still works.
run_ok "$BMAPKIT" copy --bmap img.bmap - out.img <img
cmp out.img img || fail "copy from standard input differs"
pass "standard input to another file: copied"

# --- dangling symbolic links that lead into /dev
devpath=/dev/bmapkit-test-own-input-$$
at_exit "rm -f '$devpath' '$devpath-rel'"
ln -s "$devpath" dangling
expect_fail 1 "links to $devpath" "$BMAPKIT" copy --bmap img.bmap img dangling
[ ! -e "$devpath" ] || fail "$devpath was created through a dangling link"
# A chain of links, the last relative to its own folder.
ln -s "/dev/../dev/$(basename "$devpath")-rel" chain2
ln -s chain2 chain1
expect_fail 1 "links to /dev/../dev/" "$BMAPKIT" copy --bmap img.bmap img chain1
[ ! -e "$devpath-rel" ] || fail "$devpath-rel was created through a chain of links"
ln -s loop-a loop-b
ln -s loop-b loop-a
expect_fail 1 "symbolic links" "$BMAPKIT" copy --bmap img.bmap img loop-a
pass "dangling links into /dev and a loop of links: refused, nothing created"
# A dangling link outside /dev still receives the image as a new file.
ln -s new-target.img newlink
run_ok "$BMAPKIT" copy --bmap img.bmap img newlink
cmp new-target.img img || fail "copy through a dangling link outside /dev differs"
pass "a dangling link outside /dev: the file it names is created"

# ---------------------------------------------------------------- block devices (root)
if [ "$(id -u)" -ne 0 ]; then
    echo "skip: the loop-device cases need root"
    exit 0
fi

truncate -s 1M probe.img
if ! attach_loop probe.img; then
    echo "skip: losetup cannot attach a loop device here: $(cat .losetup.err)"
    exit 0
fi

# --- a loop device over the image, over the bmap
attach_loop img || fail "cannot attach img"
expect_fail 1 "destroy the image img \\(it is the file behind $(basename "$LOOP")\\)" \
    "$BMAPKIT" copy --bmap img.bmap img "$LOOP"
expect_fail 1 "destroy the image img " "$BMAPKIT" copy --force --bmap img.bmap img "$LOOP"
inputs_intact "loop over the image"
pass "a loop device over the image: refused, also with --force; image unchanged"

cp img.bmap copy.bmap
truncate -s 64K copy.bmap.dev
cp copy.bmap bmapdev.saved
attach_loop copy.bmap || fail "cannot attach copy.bmap"
expect_fail 1 "destroy the bmap copy.bmap" "$BMAPKIT" copy --bmap copy.bmap img "$LOOP"
cmp copy.bmap bmapdev.saved || fail "copy.bmap changed"
pass "a loop device over the bmap: refused"

# --- the image read from a loop device, the destination the file behind it
cp img backing.img
attach_loop backing.img || fail "cannot attach backing.img"
IMGDEV=$LOOP
expect_fail 1 "destroy the image $IMGDEV \\(this file is behind $(basename "$IMGDEV")\\)" \
    "$BMAPKIT" copy --bmap img.bmap "$IMGDEV" backing.img
cmp backing.img img || fail "backing.img changed"
# Another loop device over the same file.
attach_loop backing.img || fail "cannot attach backing.img twice"
expect_fail 1 "destroy the image $IMGDEV .*read the same file" \
    "$BMAPKIT" copy --bmap img.bmap "$IMGDEV" "$LOOP"
expect_fail 1 "destroy the image $IMGDEV " "$BMAPKIT" copy --bmap img.bmap "$IMGDEV" "$IMGDEV"
cmp backing.img img || fail "backing.img changed"
# Read from a loop device, written to an unrelated file: allowed.
run_ok "$BMAPKIT" copy --bmap img.bmap "$IMGDEV" other.img
cmp other.img img || fail "copy from $IMGDEV differs"
pass "image read from a loop device: its file and another loop over it refused; other files fine"

# --- the image on a file system on a partition of the destination
truncate -s 64M disk.back
printf 'label: dos\nstart=2048, size=40960, type=83\nstart=45056, type=83\n' |
    sfdisk -q disk.back >/dev/null || fail "sfdisk failed"
attach_loop disk.back -P || fail "cannot attach disk.back with partitions"
DISK=$LOOP
name=$(basename "$DISK")
for _ in $(seq 30); do [ -e "/sys/class/block/${name}p2" ] && break; sleep 0.1; done
[ -e "/sys/class/block/${name}p2" ] || partx -a "$DISK" 2>/dev/null || true
# part N: the node of partition N, made from the sysfs numbers where nothing made it.
part() {
    local node=${DISK}p$1 sys=/sys/class/block/${name}p$1/dev
    if [ ! -b "$node" ] && [ -r "$sys" ]; then
        node=$WORK/${name}p$1
        [ -b "$node" ] || mknod "$node" b "$(cut -d: -f1 "$sys")" "$(cut -d: -f2 "$sys")"
    fi
    echo "$node"
}
P1=$(part 1)
P2=$(part 2)
if [ ! -b "$P1" ] || [ ! -b "$P2" ]; then
    note_skip "the partitions of $DISK did not appear here"
    exit 0
fi
mkfs.ext4 -q -F "$P1" >/dev/null 2>&1 || fail "mkfs.ext4 $P1 failed"
mkdir mnt
mount "$P1" mnt || fail "cannot mount $P1"
at_exit "umount '$WORK/mnt' 2>/dev/null"
cp img img.bmap mnt/
expect_fail 1 "destroy the image mnt/img \\(it lies on $(basename "$P1")\\)" \
    "$BMAPKIT" copy --force mnt/img "$DISK"
expect_fail 1 "destroy the bmap mnt/img.bmap \\(it lies on $(basename "$P1")\\)" \
    "$BMAPKIT" copy --force --bmap mnt/img.bmap img "$P1"
cmp mnt/img img || fail "mnt/img changed"
# The sibling partition shares nothing with the first: --force lets the copy go there.
run_ok "$BMAPKIT" copy --force mnt/img "$P2"
cmp -n $((8 * MiB)) "$P2" img || fail "copy to $P2 differs"
pass "image on a mounted partition: its disk and partition refused even with --force; sibling written"
umount mnt

# A partition as image, its disk as destination, and the reverse.
expect_fail 1 "destroy the image $P1 \\(they share $(basename "$P1")\\)" \
    "$BMAPKIT" copy --nobmap "$P1" "$DISK"
expect_fail 1 "destroy the image $DISK \\(they share $name\\)" \
    "$BMAPKIT" copy --nobmap "$DISK" "$P1"
expect_fail 1 "destroy the image $P1 \\(this file is behind $name\\)" \
    "$BMAPKIT" copy --nobmap "$P1" disk.back
run_ok "$BMAPKIT" copy --nobmap "$P1" "$P2"
pass "partition and disk of one device: refused both ways; partition to partition allowed"
inputs_intact "end"
