#!/usr/bin/env bash
# bmapkit copy of lzop images: lzop's variants, suffix, no suffix, stdin, --nobmap, concatenated files; truncated, corrupt and trailing data fail naming lzop and the byte.
source "$TESTS_DIR/lib.sh"

require_tools lzop python3
require_sparse_support "$WORK"
cd "$WORK"
MiB=$((1024 * 1024))

# The image: holes at the start, in the middle and at the end; random data (stored
# blocks in lzop) and text (compressed blocks); a partial last block holding data.
new_sparse disk.img $((6 * MiB + 1000))
put_blocks disk.img 2 20 4096
put_blocks disk.img 300 200 4096
python3 -c 'import sys; sys.stdout.buffer.write((b"the quick brown fox jumps over the lazy dog %d\n" * 40000 % tuple(range(40000)))[:int(sys.argv[1])])' \
    $((MiB + 12345)) | dd of=disk.img bs=4096 seek=600 conv=notrunc status=none
put_random disk.img $((6 * MiB)) 1000
gen_bmap 2.0 disk.img disk.img.bmap
lzop -c disk.img >disk.img.lzo
SIZE=$(stat -c %s disk.img.lzo)

# lzop_tool ARGS...: inspect or rewrite lzop files (see the commands below).
lzop_tool() {
    python3 - "$@" <<'EOF'
import struct, sys, zlib
MAGIC = b"\x89LZO\x00\r\n\x1a\n"
F_ADLER32_D, F_ADLER32_C, F_H_EXTRA, F_CRC32_D, F_CRC32_C, F_H_FILTER, F_H_CRC32 = (
    0x1, 0x2, 0x40, 0x100, 0x200, 0x800, 0x1000)

def parse(d):
    """Header fields and blocks (offset, dst_len, src_len, data offset) of one lzop file."""
    assert d[:9] == MAGIC
    p = 9
    version, = struct.unpack(">H", d[p:p + 2])
    assert version >= 0x940
    p += 6
    method, level = d[p], d[p + 1]
    p += 2
    flags, = struct.unpack(">I", d[p:p + 4])
    p += 4
    if flags & F_H_FILTER:
        p += 4
    p += 12
    p += 1 + d[p]
    p += 4
    if flags & F_H_EXTRA:
        n, = struct.unpack(">I", d[p:p + 4])
        p += 8 + n
    header_end, blocks = p, []
    while True:
        start = p
        dst, = struct.unpack(">I", d[p:p + 4])
        p += 4
        if dst == 0:
            return dict(method=method, level=level, flags=flags, header_end=header_end,
                        blocks=blocks, end=p)
        src, = struct.unpack(">I", d[p:p + 4])
        p += 4
        p += 4 * bool(flags & F_ADLER32_D) + 4 * bool(flags & F_CRC32_D)
        if src < dst:
            p += 4 * bool(flags & F_ADLER32_C) + 4 * bool(flags & F_CRC32_C)
        blocks.append((start, dst, src, p))
        p += src

def header(method, level, flags, extra=None, name=b"disk.img"):
    h = struct.pack(">HHHBBI", 0x1040, 0x2080, 0x0940, method, level, flags)
    if flags & F_H_FILTER:
        h += struct.pack(">I", 1)
    h += struct.pack(">III", 0o100644, 0, 0) + bytes([len(name)]) + name
    sum_ = zlib.crc32 if flags & F_H_CRC32 else zlib.adler32
    h += struct.pack(">I", sum_(h))
    if extra is not None:
        e = struct.pack(">I", len(extra)) + extra
        h += e + struct.pack(">I", sum_(e))
    return MAGIC + h

cmd = sys.argv[1]
d = open(sys.argv[2], "rb").read()
info = parse(d)
if cmd == "blocks":
    # One line per block: offset, uncompressed and compressed length, data offset,
    # offset of its bytes in the image.
    pos = 0
    for b in info["blocks"]:
        print(*b, pos)
        pos += b[1]
elif cmd == "rewrite":
    # rewrite LZO IMAGE OUT FLAGS [extra]: the same blocks under other flags (checksums
    # recomputed from the image, whose bytes the blocks hold in order).
    image, out, flags = sys.argv[3], sys.argv[4], int(sys.argv[5], 0)
    img = open(image, "rb").read()
    extra = b"some extra field" if sys.argv[6:] == ["extra"] else None
    if extra is not None:
        flags |= F_H_EXTRA
    o, pos = [header(info["method"], info["level"], flags, extra)], 0
    for start, dst, src, at in info["blocks"]:
        raw, comp = img[pos:pos + dst], d[at:at + src]
        pos += dst
        o.append(struct.pack(">II", dst, src))
        if flags & F_ADLER32_D:
            o.append(struct.pack(">I", zlib.adler32(raw)))
        if flags & F_CRC32_D:
            o.append(struct.pack(">I", zlib.crc32(raw)))
        if src < dst and flags & F_ADLER32_C:
            o.append(struct.pack(">I", zlib.adler32(comp)))
        if src < dst and flags & F_CRC32_C:
            o.append(struct.pack(">I", zlib.crc32(comp)))
        o.append(comp)
    assert pos == len(img)
    o.append(b"\0\0\0\0")
    open(out, "wb").write(b"".join(o))
elif cmd == "header":
    # header LZO OUT METHOD FLAGS: another header in front of the same blocks.
    out, method, flags = sys.argv[3], int(sys.argv[4]), int(sys.argv[5], 0)
    open(out, "wb").write(header(method, info["level"], flags) + d[info["header_end"]:])
elif cmd == "bigblock":
    # bigblock LZO OUT: the header, then a block claiming 64 MiB + 1 bytes.
    out = sys.argv[3]
    open(out, "wb").write(d[:info["header_end"]] + struct.pack(">II", 64 * 2**20 + 1, 100) +
                          b"\0" * 200)
EOF
}

# copy_ok NAME IMAGE [OPTIONS...]: copy IMAGE to a new file, byte and hole equal to
# disk.img (with --nobmap, byte equal).
copy_ok() {
    local name=$1 img=$2
    shift 2
    rm -f out.img
    run_ok "$BMAPKIT" copy -q "$@" "$img" out.img
    if [[ " $* " == *" --nobmap "* ]]; then
        cmp disk.img out.img || fail "$name: the copy differs from the image"
    else
        same_as_image disk.img disk.img.bmap out.img
    fi
    pass "$name"
}

# copy_piped NAME IMAGE [OPTIONS...]: the same, IMAGE fed through a pipe as '-'.
copy_piped() {
    local name=$1 img=$2 rc=0
    shift 2
    rm -f out.img
    cat "$img" | "$BMAPKIT" copy -q "$@" - out.img >.out 2>.err || rc=$?
    [ "$rc" -eq 0 ] || { cat .err; fail "$name: exit status $rc"; }
    if [[ " $* " == *" --nobmap "* ]]; then
        cmp disk.img out.img || fail "$name: the copy differs from the image"
    else
        same_as_image disk.img disk.img.bmap out.img
    fi
    pass "$name"
}

# Both kinds of block are in the file, or the test proves less than it claims.
TEXT_START=$((600 * 4096))
TEXT_END=$((TEXT_START + MiB + 12345))
lzop_tool blocks disk.img.lzo >blocks.txt
awk '$2 == $3 { s++ } $3 < $2 { c++ } END { exit !(s > 0 && c > 0) }' blocks.txt ||
    fail "disk.img.lzo lacks stored or compressed blocks: $(cat blocks.txt)"
STORED=$(awk '$2 == $3 { print $4; exit }' blocks.txt)
COMPRESSED=$(awk '$3 < $2 { print $4 " " $3; exit }' blocks.txt)
COMP_AT=${COMPRESSED% *}
COMP_LEN=${COMPRESSED#* }

# --- good files
copy_ok ".lzo, bmap found next to it" disk.img.lzo
copy_ok ".lzo, --bmap" disk.img.lzo --bmap disk.img.bmap
copy_ok ".lzo, --nobmap" disk.img.lzo --nobmap
cp disk.img.lzo noext
copy_ok "no suffix: told by the magic" noext --bmap disk.img.bmap
copy_ok "no suffix, --nobmap" noext --nobmap
rm -f out.img
run_ok "$BMAPKIT" copy -q --bmap disk.img.bmap - out.img <disk.img.lzo
same_as_image disk.img disk.img.bmap out.img
pass "standard input redirected from the file"
copy_piped "standard input through a pipe" disk.img.lzo --bmap disk.img.bmap
copy_piped "standard input through a pipe, --nobmap" disk.img.lzo --nobmap

variants=(-1 -3 -7 -9 --crc32 -F "-9 --crc32" "-1 -F")
if test_quick; then
    # The last two hold what the others do: both kinds of compressor, crc32 and no checksums.
    note_skip "lzop -1, -3, -7, -9, --crc32 and -F alone: not in the quick run (BMAPKIT_TEST_QUICK=1)"
    variants=("-9 --crc32" "-1 -F")
fi
for opts in "${variants[@]}"; do
    # shellcheck disable=SC2086 # the options are words
    lzop $opts -c disk.img >variant.lzo
    copy_ok "lzop $opts" variant.lzo --bmap disk.img.bmap
done
lzop -c <disk.img >piped.lzo
copy_ok "lzop writing to a pipe" piped.lzo --bmap disk.img.bmap

# What lzop does not write but the format allows: checksums of the compressed data
# too, both kinds at once, a crc32 header checksum, an extra header field.
lzop_tool rewrite disk.img.lzo disk.img all.lzo 0x03001303
copy_ok "all four block checksums, crc32 header" all.lzo --bmap disk.img.bmap
lzop_tool rewrite disk.img.lzo disk.img extra.lzo 0x03000003 extra
copy_ok "extra header field, compressed-data checksums" extra.lzo --bmap disk.img.bmap
copy_ok "extra header field, --nobmap" extra.lzo --nobmap
lzop_tool rewrite disk.img.lzo disk.img none.lzo 0x03000000
copy_ok "no checksums at all" none.lzo --bmap disk.img.bmap

# Several lzop files one after the other are decoded in turn, as lzop -d does; zero
# bytes after the end are padding (lzop -d ignores them too).
cat disk.img.lzo disk.img.lzo >twice.lzo
rm -f out.img
run_ok "$BMAPKIT" copy -q --nobmap twice.lzo out.img
cmp <(cat disk.img disk.img) out.img || fail "concatenated lzop files: wrong copy"
pass "concatenated lzop files: both decoded"
expect_fail 1 'longer than' "$BMAPKIT" copy -q --bmap disk.img.bmap twice.lzo out.img
pass "concatenated lzop files: longer than the bmap says"
{ cat disk.img.lzo && head -c 1000 /dev/zero; } >zeros.lzo
copy_ok "zero padding after the end" zeros.lzo --bmap disk.img.bmap
copy_ok "zero padding after the end, --nobmap" zeros.lzo --nobmap

# --- damaged files: exit 1, one line naming lzop and the byte; never a complete copy

# bad NAME FILE PATTERN: with the bmap, with --nobmap and piped, FILE fails naming lzop.
bad() {
    local name=$1 file=$2 pattern=$3 rc
    for opts in "--bmap disk.img.bmap" --nobmap; do
        rm -f out.img
        # The quick run reads the file with the bmap only, and pipes it with --nobmap only.
        if ! test_quick || [ "$opts" != --nobmap ]; then
            # shellcheck disable=SC2086
            expect_fail 1 "lzop: .*$pattern" "$BMAPKIT" copy -q $opts "$file" out.img
        fi
        test_quick && [ "$opts" != --nobmap ] && continue
        rm -f out.img
        rc=0
        # shellcheck disable=SC2086
        cat "$file" | "$BMAPKIT" copy -q $opts - out.img >.out 2>.err || rc=$?
        [ "$rc" -eq 1 ] || { cat .err; fail "$name, piped, $opts: exit $rc, expected 1"; }
        grep -Eq "^bmapkit: error: .*lzop: .*$pattern" .err ||
            { cat .err; fail "$name, piped, $opts: error does not match /lzop: $pattern/"; }
    done
    pass "$name: exit 1 naming lzop"
}

# flipped SRC OFFSET DST: DST is SRC with the byte at OFFSET changed.
flipped() {
    local old
    cp "$1" "$3"
    old=$(od -An -tx1 -j "$2" -N1 "$1" | tr -d ' ')
    put_byte "$3" "$2" "$(printf '%02x' $((0x$old ^ 0x55)))"
}

test_quick && note_skip "damaged files not read as a file with --nobmap, nor piped with the bmap (BMAPKIT_TEST_QUICK=1)"
END_AT=$((SIZE - 4))
for cut in 9 12 20 41 $((STORED + 100)) $((COMP_AT + COMP_LEN / 2)) $((SIZE / 2)) \
    $((END_AT - 1)) "$END_AT" $((SIZE - 1)); do
    head -c "$cut" disk.img.lzo >cut.lzo
    bad "truncated at byte $cut" cut.lzo "the stream ends early \(truncated\) at byte $cut([^0-9]|\$)"
done

flipped disk.img.lzo 26 bad.lzo
bad "flipped byte in the header" bad.lzo "header checksum mismatch at byte"
flipped disk.img.lzo $((STORED + 1000)) bad.lzo
bad "flipped byte in a stored block" bad.lzo "adler32 check .* at byte"
flipped disk.img.lzo $((COMP_AT + COMP_LEN / 2)) bad.lzo
bad "flipped byte in a compressed block" bad.lzo "(corrupt|adler32 check).* at byte"
flipped all.lzo $(($(lzop_tool blocks all.lzo | awk '$3 < $2 { print $4 + int($3 / 2); exit }'))) bad.lzo
bad "flipped byte in compressed data with its own checksum" bad.lzo \
    "compressed data fails its adler32 check .* at byte"
flipped disk.img.lzo $((STORED - 12)) bad.lzo
bad "flipped byte in a block length" bad.lzo "(larger than the 64 MiB maximum|bad compressed block length|corrupt|truncated).* at byte"
lzop_tool bigblock disk.img.lzo big.lzo
bad "block larger than 64 MiB" big.lzo "block larger than the 64 MiB maximum .*at byte"
lzop_tool header disk.img.lzo method.lzo 9 0x03000001
bad "unknown method" method.lzo "method 9 is not supported at byte"
lzop_tool header disk.img.lzo filter.lzo 1 0x03000801
bad "filter" filter.lzo "filter 1 is not supported at byte"

# Without data checksums a flipped byte may decode to other bytes: the bmap's range
# checksums catch that (exit 3), or the decoder does (exit 1); never exit 0. The
# blocks chosen hold mapped image bytes only.
lzop -F -c disk.img >nosum.lzo
NOSUM=$(lzop_tool blocks nosum.lzo)
for off in $(awk '$2 == $3 { print $4 + 3000; exit }' <<<"$NOSUM") \
    $(awk -v a="$TEXT_START" -v b="$TEXT_END" '$3 < $2 && $5 >= a && $5 + $2 <= b {
        print $4 + int($3 / 2) }' <<<"$NOSUM"); do
    flipped nosum.lzo "$off" bad.lzo
    rm -f out.img
    rc=0
    "$BMAPKIT" copy -q --bmap disk.img.bmap bad.lzo out.img >.out 2>.err || rc=$?
    if [ "$rc" -ne 1 ] && [ "$rc" -ne 3 ]; then
        cat .err
        fail "lzop -F file with a flipped byte at $off: exit $rc, expected 1 or 3"
    fi
    [ "$(grep -c '^bmapkit: error: ' .err)" -eq 1 ] || { cat .err; fail "expected one error line"; }
    pass "lzop -F, flipped byte at $off: exit $rc"
done

{ cat disk.img.lzo && echo garbage; } >trail.lzo
bad "trailing garbage" trail.lzo "trailing garbage .*at byte $SIZE([^0-9]|\$)"
{ cat disk.img.lzo && head -c 100 /dev/zero && echo x; } >trail.lzo
bad "garbage after zero padding" trail.lzo "trailing garbage .*at byte $((SIZE + 100))([^0-9]|\$)"
{ cat disk.img.lzo && head -c 5 disk.img.lzo; } >trail.lzo
bad "the start of a second lzop file" trail.lzo "truncated.* at byte $((SIZE + 5))([^0-9]|\$)"
{ cat disk.img.lzo && head -c 3000 disk.img.lzo; } >trail.lzo
bad "a truncated second lzop file" trail.lzo "truncated.* at byte $((SIZE + 3000))([^0-9]|\$)"
