#!/usr/bin/env bash
# bmapkit copy of every compressed and archived suffix the reference bmaptool recognises, each made by the real tool, its bmap found by stripping extensions.
source "$TESTS_DIR/lib.sh"

require_tools python3 tar gzip bzip2 xz lzop lz4 zstd zip
require_sparse_support "$WORK"
cd "$WORK"
MiB=$((1024 * 1024))

# The image: holes at the start, in the middle and at the end; random data and text; a
# partial last block holding data.
new_sparse disk.img $((3 * MiB + 1000))
put_blocks disk.img 1 10 4096
put_blocks disk.img 200 50 4096
python3 -c 'import sys; sys.stdout.buffer.write((b"row %d of the text part\n" * 20000 % tuple(range(20000)))[:int(sys.argv[1])])' \
    $((MiB / 4 + 99)) | dd of=disk.img bs=4096 seek=400 conv=notrunc status=none
put_random disk.img $((3 * MiB)) 1000
# disk.img.SUFFIX finds it by stripping one extension after another.
gen_bmap 2.0 disk.img disk.img.bmap

# make_file SUFFIX: write disk.img.SUFFIX with the tool the suffix stands for.
make_file() {
    local out="disk.img.$1"
    case $1 in
        gz | gzip) gzip -c disk.img >"$out" ;;
        bz2) bzip2 -c disk.img >"$out" ;;
        xz) xz -c disk.img >"$out" ;;
        lzo) lzop -c disk.img >"$out" ;;
        lz4) lz4 -q -c disk.img >"$out" ;;
        zst) zstd -q -c disk.img >"$out" ;;
        zip) zip -q "$out" disk.img ;;
        tar.gz | tgz) tar -czf "$out" disk.img ;;
        tar.bz2 | tbz | tbz2 | tb2) tar -cjf "$out" disk.img ;;
        tar.xz | txz) tar -cJf "$out" disk.img ;;
        tar.lzo | tzo) tar -I lzop -cf "$out" disk.img ;;
        tar.lz4 | tlz4) tar -I lz4 -cf "$out" disk.img ;;
        tar.zst | tzst) tar --zstd -cf "$out" disk.img ;;
        *) fail "no tool for .$1" ;;
    esac
}

for suffix in gz gzip bz2 xz lzo lz4 zst zip tar.gz tgz tar.bz2 tbz tbz2 tb2 tar.xz txz \
    tar.lzo tzo tar.lz4 tlz4 tar.zst tzst; do
    make_file "$suffix"
    img="disk.img.$suffix"
    rm -f out.img
    rc=0
    "$BMAPKIT" copy "$img" out.img >.out 2>.err || rc=$?
    [ "$rc" -eq 0 ] || { cat .err; fail ".$suffix: exit status $rc"; }
    grep -q "using bmap disk\.img\.bmap" .err .out ||
        { cat .err .out; fail ".$suffix: the bmap found is not disk.img.bmap"; }
    same_as_image disk.img disk.img.bmap out.img
    rm -f out.img
    run_ok "$BMAPKIT" copy -q --nobmap "$img" out.img
    cmp disk.img out.img || fail ".$suffix, --nobmap: the copy differs from the image"
    pass ".$suffix: bmap found, copy byte and hole equal; --nobmap equal"
done
