#!/usr/bin/env bash
# bmapkit copy of tar (plain and with every compression) and zip archives: the image is the first regular file; bmap, --nobmap, stdin; truncated and damaged archives fail naming the format.
source "$TESTS_DIR/lib.sh"

require_tools tar zip unzip gzip bzip2 xz zstd lz4 lzop python3
require_sparse_support "$WORK"
cd "$WORK"
MiB=$((1024 * 1024))

# The image: holes at the start, in the middle and at the end; random data and text; a
# partial last block holding data.
new_sparse disk.img $((5 * MiB + 1000))
put_blocks disk.img 2 20 4096
put_blocks disk.img 300 200 4096
python3 -c 'import sys; sys.stdout.buffer.write((b"line %d of some compressible text\n" * 30000 % tuple(range(30000)))[:int(sys.argv[1])])' \
    $((MiB / 2 + 777)) | dd of=disk.img bs=4096 seek=800 conv=notrunc status=none
put_random disk.img $((5 * MiB)) 1000
gen_bmap 2.0 disk.img disk.img.bmap
head -c 5000 /dev/urandom >notes.txt

# copy_case NAME ARCHIVE HOW OPTIONS...: copy ARCHIVE (HOW: as a file, redirected to
# standard input or piped) to a new file and compare it with disk.img, byte and hole
# equal (with --nobmap, byte equal).
copy_case() {
    local name=$1 img=$2 how=$3 rc=0
    shift 3
    rm -f out.img
    case $how in
        file) "$BMAPKIT" copy -q "$@" "$img" out.img >.out 2>.err || rc=$? ;;
        redirect) "$BMAPKIT" copy -q "$@" - out.img <"$img" >.out 2>.err || rc=$? ;;
        pipe) cat "$img" | "$BMAPKIT" copy -q "$@" - out.img >.out 2>.err || rc=$? ;;
    esac
    [ "$rc" -eq 0 ] || { cat .err; fail "$name ($how $*): exit status $rc"; }
    if [[ " $* " == *" --nobmap "* ]]; then
        cmp disk.img out.img || fail "$name ($how $*): the copy differs from the image"
    else
        same_as_image disk.img disk.img.bmap out.img
    fi
}

# archive_ok NAME ARCHIVE: every way of copying ARCHIVE gives the image.
archive_ok() {
    local name=$1 img=$2 how ways="file redirect pipe"
    # The quick run reads each archive from the file with the bmap and from a pipe with
    # --nobmap only.
    if test_quick; then
        copy_case "$name" "$img" file --bmap disk.img.bmap
        copy_case "$name" "$img" pipe --nobmap
        pass "$name: with the bmap from the file, with --nobmap from a pipe"
        return 0
    fi
    for how in $ways; do
        copy_case "$name" "$img" "$how" --bmap disk.img.bmap
        copy_case "$name" "$img" "$how" --nobmap
    done
    pass "$name: with the bmap and with --nobmap, from the file, redirected and piped"
}

test_quick && note_skip "archives not read from a redirected standard input, nor as a file with --nobmap, nor piped with the bmap (BMAPKIT_TEST_QUICK=1)"

# --- tar
tar -cf disk.img.tar disk.img
archive_ok "tar" disk.img.tar
rm -f out.img
run_ok "$BMAPKIT" copy -q disk.img.tar out.img
same_as_image disk.img disk.img.bmap out.img
pass "tar: bmap found next to it"
tar --format=posix -cf pax.tar disk.img
archive_ok "tar, POSIX pax format" pax.tar
tar --format=gnu -cSf sparse.tar disk.img
[ "$(stat -c %s sparse.tar)" -lt "$(stat -c %s disk.img)" ] || fail "tar -S did not write a sparse member"
archive_ok "tar -S (sparse member)" sparse.tar
tar -cf two.tar disk.img notes.txt
archive_ok "tar with a second member" two.tar
mkdir -p tree/sub
cp --sparse=always disk.img tree/sub/disk.img
tar -cf dirfirst.tar tree
[ "$(tar -tf dirfirst.tar | head -n 1)" = tree/ ] || fail "dirfirst.tar does not start with the directory"
archive_ok "tar starting with directories" dirfirst.tar

# Every compression tar can add, undone in the library, tar detected inside.
while read -r name suffix opts; do
    # shellcheck disable=SC2086 # the options are words
    tar $opts -cf "disk.img.$suffix" disk.img 2>.err ||
        fail "$name: tar $opts cannot compress here: $(head -n 1 .err)"
    archive_ok "$name" "disk.img.$suffix"
done <<'EOF'
tar-gzip tar.gz -z
tar-bzip2 tar.bz2 -j
tar-xz tar.xz -J
tar-zstd tar.zst --zstd
tar-lz4 tar.lz4 -I lz4
tar-lzop tar.lzo -I lzop
EOF

# A tar inside an xz file of several blocks and a zstd file of several frames: these
# are read through their random-access source, in order (the file is opened once,
# which the redirected standard input shows).
tar -cf plain.tar disk.img
xz -T2 --block-size=65536 -c plain.tar >blocks.tar.xz
[ "$(xz --robot -l blocks.tar.xz | awk '$1 == "totals" {print $3}')" -gt 2 ] ||
    fail "blocks.tar.xz has a single block"
archive_ok "tar inside xz of several blocks" blocks.tar.xz
split -b 300000 plain.tar part.
for part in part.*; do zstd -q -c "$part"; done >frames.tar.zst
[ "$(zstd -lv frames.tar.zst 2>/dev/null | awk '/Zstandard Frames/ {print $4}')" -gt 2 ] ||
    fail "frames.tar.zst has a single frame"
archive_ok "tar inside zstd of several frames" frames.tar.zst

# --- zip
zip -q disk.img.zip disk.img
archive_ok "zip (deflated)" disk.img.zip
zip -q -0 stored.zip disk.img
archive_ok "zip -0 (stored)" stored.zip
zip -q - - <disk.img >stream.zip
archive_ok "zip written to a pipe (sizes after the data)" stream.zip
zip -q two.zip disk.img notes.txt
archive_ok "zip with a second member" two.zip
zip -qr dirfirst.zip tree
[ "$(unzip -Z1 dirfirst.zip | head -n 1)" = tree/ ] || fail "dirfirst.zip does not start with the directory"
archive_ok "zip starting with directories" dirfirst.zip

# --- damaged archives: exit 1 and one error line naming the format and the byte

# bad NAME FILE PATTERN: FILE fails with the bmap and with --nobmap, as a file and
# piped, with an error matching PATTERN.
bad() {
    local name=$1 file=$2 pattern=$3 opts rc
    for opts in "--bmap disk.img.bmap" --nobmap; do
        rm -f out.img
        # The quick run reads the file with the bmap only, and pipes it with --nobmap only.
        if ! test_quick || [ "$opts" != --nobmap ]; then
            # shellcheck disable=SC2086
            expect_fail 1 "$pattern" "$BMAPKIT" copy -q $opts "$file" out.img
        fi
        test_quick && [ "$opts" != --nobmap ] && continue
        rm -f out.img
        rc=0
        # shellcheck disable=SC2086
        cat "$file" | "$BMAPKIT" copy -q $opts - out.img >.out 2>.err || rc=$?
        [ "$rc" -eq 1 ] || { cat .err; fail "$name, piped, $opts: exit $rc, expected 1"; }
        grep -Eq "^bmapkit: error: .*$pattern" .err ||
            { cat .err; fail "$name, piped, $opts: error does not match /$pattern/"; }
    done
    pass "$name: exit 1, the error names the format and the byte"
}

# flipped SRC OFFSET DST: DST is SRC with the byte at OFFSET changed.
flipped() {
    local old
    cp "$1" "$3"
    old=$(od -An -tx1 -j "$2" -N1 "$1" | tr -d ' ')
    put_byte "$3" "$2" "$(printf '%02x' $((0x$old ^ 0x55)))"
}

test_quick && note_skip "damaged archives not read as a file with --nobmap, nor piped with the bmap (BMAPKIT_TEST_QUICK=1)"
TAR_DATA_END=$((512 + ($(stat -c %s disk.img) + 511) / 512 * 512))
# (A cut inside the first header leaves too little to tell a tar: copied as raw.)
for cut in 512 $((512 + 100000)) $((TAR_DATA_END - 1)) $((TAR_DATA_END + 100)); do
    head -c "$cut" two.tar >cut.tar
    bad "tar truncated at byte $cut" cut.tar "tar: .*[Tt]runcated.* at byte [0-9]+"
done
head -c $((TAR_DATA_END + 512 + 1000)) two.tar >cut.tar
bad "tar truncated in the second member" cut.tar "tar: .*[Tt]runcated.* at byte [0-9]+"
flipped disk.img.tar 100 bad.tar
bad "tar with a damaged header" bad.tar "tar: .* at byte [0-9]+"
flipped two.tar $((TAR_DATA_END + 100)) bad.tar
bad "tar with a damaged second header" bad.tar "tar: .* at byte [0-9]+"
mkdir -p empty
tar -cf empty.tar empty
bad "tar without a regular file" empty.tar "tar: .*no regular file.* at byte [0-9]+"

# A truncated compressed tar fails in the decoder, which names its format.
tar -I lzop -cf disk.img.tar.lzo disk.img
SIZE=$(stat -c %s disk.img.tar.lzo)
for cut in 100 $((SIZE / 2)) $((SIZE - 1)); do
    head -c "$cut" disk.img.tar.lzo >cut.tar.lzo
    bad "tar.lzo truncated at byte $cut" cut.tar.lzo "lzop: .*truncated.* at byte $cut([^0-9]|\$)"
done
{ cat disk.img.tar.lzo && echo garbage; } >trail.tar.lzo
bad "tar.lzo with trailing garbage" trail.tar.lzo "lzop: .*trailing garbage.* at byte $SIZE([^0-9]|\$)"
tar -czf disk.img.tar.gz disk.img
SIZE=$(stat -c %s disk.img.tar.gz)
for cut in 100 $((SIZE / 2)) $((SIZE - 4)); do
    head -c "$cut" disk.img.tar.gz >cut.tar.gz
    bad "tar.gz truncated at byte $cut" cut.tar.gz "gzip: .* at byte [0-9]+"
done
{ cat disk.img.tar.gz && echo garbage; } >trail.tar.gz
bad "tar.gz with trailing garbage" trail.tar.gz "gzip: .* at byte [0-9]+"

# A cut zip says so, like every other format, at the byte where it ends: in a local
# header, in deflated, stored or streamed data (where zlib only sees its input run
# out), in the central directory and in the end record.
ZSIZE=$(stat -c %s two.zip)
for cut in 20 31 100 $((ZSIZE / 2)) $((ZSIZE - 200)) $((ZSIZE - 100)) $((ZSIZE - 10)) $((ZSIZE - 1)); do
    head -c "$cut" two.zip >cut.zip
    bad "zip truncated at byte $cut" cut.zip "zip: .*ends early \(truncated\).* at byte $cut([^0-9]|\$)"
done
for zipfile in stored.zip stream.zip; do
    SSIZE=$(stat -c %s "$zipfile")
    for cut in 100 $((SSIZE / 2)) $((SSIZE - 100)) $((SSIZE - 30)); do
        head -c "$cut" "$zipfile" >cut.zip
        bad "$zipfile truncated at byte $cut" cut.zip "zip: .*ends early \(truncated\).* at byte $cut([^0-9]|\$)"
    done
done
# A flipped byte in deflated data: the decoder or the CRC fails it; with the bmap the
# range checksums may see the damage first (exit 3).
flipped disk.img.zip $(($(stat -c %s disk.img.zip) / 2)) bad.zip
expect_fail 1 "zip: .*(CRC|decompression failed).* at byte [0-9]+" \
    "$BMAPKIT" copy -q --nobmap bad.zip out.img
rc=0
"$BMAPKIT" copy -q --bmap disk.img.bmap bad.zip out.img >.out 2>.err || rc=$?
{ [ "$rc" -eq 1 ] || [ "$rc" -eq 3 ]; } || { cat .err; fail "flipped deflated zip, bmap: exit $rc"; }
pass "zip with a flipped byte in deflated data: exit 1 naming zip (--nobmap), $rc with the bmap"
# Stored data: the flipped bytes land in holes of the image, so only the CRC can tell.
for off in 1000 $((100 * 4096)) $((600 * 4096)); do
    flipped stored.zip "$off" bad.zip
    bad "stored zip with a flipped byte at $off" bad.zip "zip: .*CRC.* at byte [0-9]+"
done
ZSIZE=$(stat -c %s disk.img.zip)
{ cat disk.img.zip && echo garbage; } >trail.zip
bad "zip with trailing garbage" trail.zip "zip: trailing data after the end of central directory record at byte $ZSIZE([^0-9]|\$)"
# Garbage longer than the tail that is searched for the end record: either may be.
{ cat disk.img.zip && head -c 100000 /dev/zero | tr "\\0" x; } >trail.zip
bad "zip with 100000 bytes of trailing garbage" trail.zip \
    "zip: the end of central directory record is missing \(the archive is truncated or has trailing data\) at byte $((ZSIZE + 100000))([^0-9]|\$)"
