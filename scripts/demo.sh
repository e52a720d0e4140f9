#!/bin/sh
# Build bmapkit and try it on a disk image made on the spot, without root or loop
# devices: a sparse 256 MiB file with a GPT, a FAT boot partition and an ext4 root
# partition. The bmap bmapkit writes is checked with the reference bmaptool, and with
# bmapkit's own copy command when the build has one. Everything goes to ./demo, which
# is recreated on each run.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
# The file-system tools live in /usr/sbin, which a normal user's PATH may lack.
PATH="$PATH:/usr/sbin:/sbin"

say() { printf '\n== %s\n' "$*"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
mib() { awk -v n="$1" 'BEGIN { printf "%.1f MiB", n / 1048576 }'; }
# Bytes a file really occupies on disk (its holes take none).
allocated() { echo $(($(stat -c '%b * %B' "$1"))); }
die() { echo "demo: error: $*" >&2; exit 1; }

say "dependencies"
sh scripts/install-deps.sh all
echo "all present"

say "build"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Run a command quietly; show what it printed only when it fails.
quiet() { "$@" >"$log" 2>&1 || { cat "$log" >&2; die "failed: $*"; }; }
if [ ! -f build-demo/build.ninja ]; then
    # The demo needs only the command: tests and fuzz targets are left out.
    quiet meson setup build-demo -Dtests=disabled -Dfuzz=disabled
fi
quiet ninja -C build-demo
bmapkit="$top/build-demo/programs/bmapkit"
echo "built $("$bmapkit" --version) in build-demo/"

rm -rf demo
mkdir -p demo/boot demo/rootfs
img=demo/disk.img

say "disk image: $img (256 MiB, sparse, GPT)"
truncate -s 256M "$img"
# Partition 1: 32 MiB FAT ("Microsoft basic data"), partition 2: Linux file system
# over the rest. Sizes and starts are in 512-byte sectors, 1 MiB aligned.
sfdisk --quiet "$img" <<'EOF'
label: gpt
start=2048, size=65536, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7, name="boot"
start=67584, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="rootfs"
EOF
sfdisk --list "$img" | sed -n '/^Device/,$p'
# Start and size of a partition, in sectors, from sfdisk's dump.
part_field() { sfdisk --dump "$img" | sed -n "s|^$img$1 *:.* $2= *\([0-9]*\).*|\1|p"; }
boot_start=$(part_field 1 start)
boot_size=$(part_field 1 size)
root_start=$(part_field 2 start)
root_size=$(part_field 2 size)
for v in "$boot_start" "$boot_size" "$root_start" "$root_size"; do
    [ -n "$v" ] || die "cannot read the partition table of $img back"
done

say "partition 1: FAT, made in place (mkfs.vfat --offset, mcopy -i IMAGE@@OFFSET)"
cat >demo/boot/extlinux.conf <<'EOF'
default demo
label demo
    kernel /Image
    append root=PARTLABEL=rootfs rootwait console=ttyS0,115200
EOF
# Stand-in for a kernel: 3 MiB that do not compress.
head -c 3145728 /dev/urandom >demo/boot/Image
# The size is given in KiB; mkfs.vfat notes that the file is longer, which is expected.
quiet mkfs.vfat --offset "$boot_start" -n BOOT "$img" $((boot_size / 2))
fat="$img@@$((boot_start * 512))"
mmd -i "$fat" ::/extlinux
mcopy -i "$fat" demo/boot/extlinux.conf ::/extlinux/
mcopy -i "$fat" demo/boot/Image ::/
mdir -i "$fat" -/ :: | grep -v '^$'

say "partition 2: ext4, made in its own sparse file (mkfs.ext4 -d), copied in with dd conv=sparse"
mkdir -p demo/rootfs/etc demo/rootfs/usr/share/doc
cp /etc/os-release demo/rootfs/etc/
cp -a /usr/share/common-licenses demo/rootfs/usr/share/
# Documentation directories in name order until about 6 MiB are copied.
limit=6291456
for d in /usr/share/doc/*; do
    if [ ! -d "$d" ] || [ -L "$d" ]; then continue; fi
    [ "$(du -sb demo/rootfs | cut -f1)" -lt "$limit" ] || break
    cp -a "$d" demo/rootfs/usr/share/doc/
done
echo "root file system content: $(mib "$(du -sb demo/rootfs | cut -f1)")," \
    "$(find demo/rootfs -type f | wc -l) files"
root_bytes=$((root_size * 512 / 4096 * 4096))
truncate -s "$root_bytes" demo/rootfs.ext4
mkfs.ext4 -q -F -b 4096 -L rootfs -E root_owner=0:0 -d demo/rootfs demo/rootfs.ext4
[ $((root_start * 512 % 4096)) -eq 0 ] || die "root partition is not 4 KiB aligned"
# A 4 KiB block size keeps the holes: dd seeks over blocks that are all zero instead of
# writing them, so the disk image stays as sparse as the file system image.
dd if=demo/rootfs.ext4 of="$img" bs=4096 seek=$((root_start * 512 / 4096)) \
    conv=sparse,notrunc status=none
rm -f demo/rootfs.ext4
echo "$img: $(mib "$(stat -c %s "$img")") long, $(mib "$(allocated "$img")") allocated"

say "bmapkit create $img -o $img.bmap"
t=$(now)
"$bmapkit" create "$img" -o "$img.bmap"
create_time=$(since "$t")
bmap_value() { sed -n "s|.*<$1> *\([0-9a-z]*\) *</$1>.*|\1|p" "$img.bmap"; }
block_size=$(bmap_value BlockSize)
blocks=$(bmap_value BlocksCount)
mapped=$(bmap_value MappedBlocksCount)
ranges=$(grep -c '<Range' "$img.bmap")
echo "bmap: version $(sed -n 's|.*<bmap version="\([^"]*\)".*|\1|p' "$img.bmap")," \
    "$(bmap_value ChecksumType), block size $block_size, $ranges ranges"
echo "mapped: $mapped of $blocks blocks = $(mib $((mapped * block_size))) of" \
    "$(mib $((blocks * block_size))) ($((mapped * 100 / blocks))%)"

say "check with the reference: bmaptool copy --bmap $img.bmap $img demo/flashed.img"
t=$(now)
bmaptool -q copy --bmap "$img.bmap" "$img" demo/flashed.img
ref_time=$(since "$t")
cmp "$img" demo/flashed.img
echo "demo/flashed.img is identical to $img, $(mib "$(allocated demo/flashed.img)")" \
    "allocated (bmaptool copy took $ref_time s)"
summary_copy="bmaptool copy (reference) accepted the bmap; the flashed file is identical"

if "$bmapkit" copy --help >/dev/null 2>&1; then
    say "bmapkit copy $img.xz demo/flashed-bmapkit.img"
    t=$(now)
    xz -T2 -k -c "$img" >"$img.xz"
    echo "compressed with xz -T2: $(mib "$(stat -c %s "$img.xz")") in $(since "$t") s"
    src="$img.xz"
    note=""
    t=$(now)
    if ! "$bmapkit" copy "$src" demo/flashed-bmapkit.img 2>demo/copy.err; then
        cat demo/copy.err >&2
        if grep -Eqi 'compress.*(not|un)[ -]?support|(not|un)[ -]?support.*compress' \
            demo/copy.err; then
            echo "this build reads no compressed images yet: copying the raw image instead"
            src="$img"
            note=" (compressed input not supported yet, raw image used)"
            t=$(now)
            "$bmapkit" copy "$src" demo/flashed-bmapkit.img
        else
            die "bmapkit copy failed"
        fi
    else
        cat demo/copy.err >&2
    fi
    copy_time=$(since "$t")
    rm -f demo/copy.err
    cmp "$img" demo/flashed-bmapkit.img
    echo "demo/flashed-bmapkit.img is identical to $img," \
        "$(mib "$(allocated demo/flashed-bmapkit.img)") allocated (bmapkit copy took $copy_time s)"
    summary_copy="$summary_copy
  - bmapkit copy $src$note: the flashed file is identical ($copy_time s)"
fi

say "summary"
cat <<EOF
  - built $bmapkit
  - made $img: 256 MiB, GPT, FAT boot partition (32 MiB) and ext4 root partition,
    $(mib "$(allocated "$img")") allocated on disk
  - bmapkit create mapped $mapped of $blocks blocks ($(mib $((mapped * block_size)))) in $ranges ranges, in $create_time s
  - $summary_copy
Everything is in $top/demo; run this script again to start over.
EOF
