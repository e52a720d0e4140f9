#!/usr/bin/env bash
# bmapkit create on sparse images: hole layouts, full/empty maps, many ranges, output and checksum options.
. "$TESTS_DIR/lib.sh"

require_tools bmaptool
require_sparse_support "$WORK"
cd "$WORK"

# create_ok IMAGE BMAP [OPTIONS...]: create must succeed, writing BMAP with -o.
create_ok() {
    local image=$1 bmap=$2
    shift 2
    run_ok "$BMAPKIT" create "$@" -o "$bmap" "$image"
    [ ! -s .out ] || fail "create -o $bmap wrote to standard output"
}

# full_check NAME IMAGE EXPECTED_RANGES: bmap of IMAGE maps exactly EXPECTED_RANGES,
# is well formed with correct checksums, and the reference copies IMAGE with it.
full_check() {
    local name=$1 image=$2 ranges=$3 shown=$3
    [ "${#shown}" -le 60 ] || shown="$(wc -w <<<"$ranges") ranges"
    create_ok "$image" "$image.bmap"
    expect_ranges "$image.bmap" "$ranges"
    [ "$(bmap_value "$image.bmap" BlockSize)" -eq "$BS" ] || fail "$name: BlockSize is not $BS"
    check_bmap "$image.bmap" "$image"
    if grep -q '^bmapkit: warning:' .err; then
        cat .err
        fail "$name: unexpected warning"
    fi
    bmaptool_copy_check "$image" "$image.bmap"
    pass "$name: ranges '$shown', checksums correct, bmaptool copy reproduces it"
}

# --- hole layouts
new_sparse start.img $((32 * BS))
put_blocks start.img 10 22
full_check "hole at the start" start.img "10-31"

new_sparse middle.img $((32 * BS))
put_blocks middle.img 0 5
put_blocks middle.img 20 12
full_check "hole in the middle" middle.img "0-4 20-31"

new_sparse end.img $((32 * BS))
put_blocks end.img 0 8
full_check "hole at the end" end.img "0-7"

new_sparse mixed.img $((64 * BS))
put_blocks mixed.img 4 4
put_blocks mixed.img 20 1
put_blocks mixed.img 40 10
full_check "holes at start, middle and end" mixed.img "4-7 20-20 40-49"

# --- written zeros are data, not holes
new_sparse zeros.img $((32 * BS))
put_zeros zeros.img $((3 * BS)) $((3 * BS))
put_blocks zeros.img 10 1
full_check "written zero blocks stay mapped" zeros.img "3-5 10-10"
want=$(head -c $((3 * BS)) /dev/zero | sha256sum)
[ "$(bmap_ranges zeros.img.bmap | head -n 1)" = "3-5 ${want%% *}" ] ||
    fail "the zero range's checksum is not the sha256 of $((3 * BS)) zero bytes"
pass "zero range checksum is the digest of zero bytes"

# --- no holes at all: every block mapped, with a warning
dd if=/dev/urandom of=full.img bs="$BS" count=16 status=none
create_ok full.img full.img.bmap
expect_ranges full.img.bmap "0-15"
[ "$(bmap_value full.img.bmap MappedBlocksCount)" -eq 16 ] || fail "fully mapped: MappedBlocksCount"
check_bmap full.img.bmap full.img
[ "$(grep -c '^bmapkit: warning: .*full\.img.*no holes' .err)" -eq 1 ] ||
    fail "fully mapped image: no warning naming it (stderr: $(cat .err))"
bmaptool_copy_check full.img full.img.bmap
pass "fully mapped image: all 16 blocks mapped, one warning naming the image"

# --- nothing but a hole: a valid bmap with an empty BlockMap
new_sparse hole.img $((1024 * 1024))
create_ok hole.img hole.img.bmap
expect_ranges hole.img.bmap ""
[ "$(bmap_value hole.img.bmap MappedBlocksCount)" -eq 0 ] || fail "fully sparse: MappedBlocksCount"
[ "$(bmap_value hole.img.bmap BlocksCount)" -eq $(((1024 * 1024 + BS - 1) / BS)) ] ||
    fail "fully sparse: BlocksCount"
grep -A1 '^    <BlockMap>$' hole.img.bmap | tail -n 1 | grep -q '^    </BlockMap>$' ||
    fail "fully sparse: BlockMap is not empty"
check_bmap hole.img.bmap hole.img
if grep -q '^bmapkit: warning:' .err; then fail "fully sparse image: unexpected warning"; fi
bmaptool_copy_check hole.img hole.img.bmap
pass "fully sparse image: zero mapped blocks, empty BlockMap, accepted by bmaptool copy"

# --- many ranges: 2000 single blocks with a hole after each (more than one FIEMAP call)
new_sparse many.img $((4000 * BS))
expected=""
# One byte in each even block (written in one process: 2000 dd runs take long).
python3 - many.img "$BS" <<'EOF'
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
bs = int(sys.argv[2])
for b in range(0, 4000, 2):
    os.pwrite(fd, bytes([b % 255 + 1]), b * bs + b % bs)
os.close(fd)
EOF
for ((b = 0; b < 4000; b += 2)); do
    expected+="${expected:+ }$b-$b"
done
full_check "2000 single-block ranges" many.img "$expected"
[ "$(bmap_value many.img.bmap MappedBlocksCount)" -eq 2000 ] || fail "many ranges: MappedBlocksCount"
# Many threads finishing many small ranges at once must not lose a checksum.
for threads in 1 4 16; do
    create_ok many.img "many-$threads.bmap" --threads "$threads"
    cmp many.img.bmap "many-$threads.bmap" || fail "2000 ranges: --threads $threads gives another bmap"
done
pass "2000 ranges: --threads 1, 4 and 16 give the same bmap as the default"

# --- standard output and -o give the same bytes, in every spelling of the option
run_ok "$BMAPKIT" create mixed.img
cp .out stdout.bmap
[ -s stdout.bmap ] || fail "nothing on standard output"
cmp stdout.bmap mixed.img.bmap || fail "standard output differs from -o output"
run_ok "$BMAPKIT" create --output=long.bmap mixed.img
cmp long.bmap mixed.img.bmap || fail "--output=FILE differs"
run_ok "$BMAPKIT" create mixed.img -o after.bmap
cmp after.bmap mixed.img.bmap || fail "IMAGE -o FILE (Yocto's order) differs"
echo "stale content" >old.bmap
run_ok "$BMAPKIT" create -o old.bmap mixed.img
cmp old.bmap mixed.img.bmap || fail "an existing -o file was not replaced by the new bmap"
pass "stdout, -o, --output= and IMAGE -o OUT give byte-identical bmaps; an old file is replaced"

# --- --no-checksum: no chksum attributes, but ChecksumType and the file checksum stay
create_ok mixed.img nosum.bmap --no-checksum
if grep -q 'chksum=' nosum.bmap; then fail "--no-checksum: chksum attribute present"; fi
[ "$(bmap_value nosum.bmap ChecksumType)" = sha256 ] || fail "--no-checksum: ChecksumType"
check_bmap nosum.bmap mixed.img none
expect_ranges nosum.bmap "$(bmap_ranges_only mixed.img.bmap)"
bmaptool_copy_check mixed.img nosum.bmap
pass "--no-checksum: no chksum, ChecksumType sha256 and a valid BmapFileChecksum"

# --- other checksum types: digests of the right length matching the system tools
for type in sha1 sha224 sha384 sha512 md5; do
    create_ok mixed.img "$type.bmap" --checksum-type "$type"
    [ "$(bmap_value "$type.bmap" ChecksumType)" = "$type" ] || fail "$type: ChecksumType"
    expect_ranges "$type.bmap" "$(bmap_ranges_only mixed.img.bmap)"
    check_bmap "$type.bmap" mixed.img "$type"
    pass "--checksum-type $type: $(digest_hex_len "$type")-digit digests match ${type}sum"
done
create_ok mixed.img sha256.bmap --checksum-type sha256
cmp sha256.bmap mixed.img.bmap || fail "--checksum-type sha256 differs from the default"
pass "--checksum-type sha256 is the default"

# --- hashing threads do not change the result (one range spans several read buffers)
new_sparse threads.img $((8 * 1024 * 1024 + 1234))
put_random threads.img 0 $((3 * 1024 * 1024 + 5 * BS))
put_blocks threads.img $((4 * 1024 * 1024 / BS)) 3
put_blocks threads.img $((5 * 1024 * 1024 / BS)) 1
put_random threads.img $((8 * 1024 * 1024)) 1234
create_ok threads.img t1.bmap --threads 1
create_ok threads.img t2.bmap --threads 2
create_ok threads.img t8.bmap --threads 8
create_ok threads.img tdefault.bmap
cmp t1.bmap t2.bmap || fail "--threads 1 and --threads 2 differ"
cmp t1.bmap t8.bmap || fail "--threads 1 and --threads 8 differ"
cmp t1.bmap tdefault.bmap || fail "--threads 1 and the default differ"
check_bmap t2.bmap threads.img
[ "$(bmap_ranges_only t2.bmap | wc -w)" -eq 4 ] || fail "threads image: expected 4 ranges"
pass "--threads 1, 2, 8 and the default give identical bmaps"
