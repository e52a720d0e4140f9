#!/usr/bin/env bash
# bmapkit copy of bzip2 images: bzip2 and pbzip2 output, several streams, the .bz2 suffix, no suffix, standard input, --nobmap; truncated, flipped and trailing-garbage files fail.
source "$TESTS_DIR/lib.sh"

FORMAT=bzip2
command -v bzip2 >/dev/null 2>&1 || skip "bzip2 is not installed"
require_sparse_support "$WORK"
cd "$WORK"
[ "$BS" -eq 4096 ] || skip "the test images assume 4096-byte blocks, $WORK has $BS"
MiB=$((1024 * 1024))
END='([^0-9]|$)' # the end of a number in a pattern

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

# copy_ok NAME ARGS...: bmapkit copy -q ARGS... out.img succeeds and out.img equals the
# image byte for byte and hole for hole.
copy_ok() {
    local name=$1
    shift
    rm -f out.img
    run_ok "$BMAPKIT" copy -q "$@" out.img
    same_as_image disk.img disk.img.bmap out.img
    pass "$name"
}

# nobmap_ok NAME FILE: --nobmap copies all of FILE's image.
nobmap_ok() {
    rm -f out.img
    run_ok "$BMAPKIT" copy -q --nobmap "$2" out.img
    cmp disk.img out.img || fail "$1: --nobmap copy differs from the image"
    pass "$1: --nobmap"
}

# piped_ok NAME FILE ARGS...: cat FILE | bmapkit copy -q ARGS... - out.img succeeds and
# gives the image.
piped_ok() {
    local name=$1 file=$2
    shift 2
    rm -f out.img
    if ! cat "$file" | "$BMAPKIT" copy -q "$@" - out.img >.out 2>.err; then
        cat .err
        fail "$name: copy from a pipe failed"
    fi
    cmp disk.img out.img || fail "$name: copy from a pipe differs from the image"
    pass "$name"
}

# copy_fails NAME PATTERN ARGS...: bmapkit copy -q ARGS... out.img exits non-zero with one
# "bmapkit: error:" line that names the format and matches PATTERN (grep -Ei), and
# leaves no complete copy: out.img is not created, or the message says it lacks the
# image's first MiB (or got nothing) and it indeed does not hold it. A flipped byte
# may instead be caught first by a range checksum of the bmap (exit 3): PATTERN
# "|verify" allows that.
copy_fails() {
    local name=$1 pattern=$2 rc=0 line
    shift 2
    rm -f out.img
    "$BMAPKIT" copy -q "$@" out.img >.out 2>.err || rc=$?
    [ "$rc" -ne 0 ] || fail "$name: exit status 0 from: copy $*"
    [ ! -s .out ] || fail "$name: output on stdout"
    if [ "$(grep -c '^bmapkit: error: ' .err)" -ne 1 ] || [ "$(wc -l <.err)" -ne 1 ]; then
        cat .err
        fail "$name: expected exactly one 'bmapkit: error:' line"
    fi
    line=$(cat .err)
    if [ "$rc" -eq 3 ] && [[ $pattern == *"|verify" ]]; then
        grep -Eq 'blocks [0-9]+-[0-9]+' <<<"$line" || fail "$name: exit 3 but '$line'"
    else
        [ "$rc" -eq 1 ] || fail "$name: exit status $rc, expected 1: $line"
        grep -qi -- "$FORMAT" <<<"$line" || fail "$name: '$line' does not name $FORMAT"
        grep -Eqi -- "${pattern%|verify}" <<<"$line" || fail "$name: '$line' does not match /$pattern/"
    fi
    if [ -e out.img ]; then
        grep -Eq "nothing was written|without the image's first MiB" <<<"$line" ||
            fail "$name: '$line' does not say out.img is incomplete"
        if cmp -s -n "$MiB" disk.img out.img; then
            fail "$name: the failed copy holds the image's first MiB"
        fi
    fi
}

# damaged NAME FILE PATTERN: FILE fails with the bmap, with --nobmap and from standard
# input.
damaged() {
    local name=$1 file=$2 pattern=$3
    copy_fails "$name, bmap" "$pattern" --bmap disk.img.bmap "$file"
    copy_fails "$name, --nobmap" "${pattern%|verify}" --nobmap "$file"
    copy_fails "$name, stdin" "$pattern" --bmap disk.img.bmap - <"$file"
    pass "$name: fails (bmap, --nobmap, stdin) naming $FORMAT"
}

# --- bzip2(1) output, under its suffix and none
bzip2 -c disk.img >disk.img.bz2
cp disk.img.bz2 packed
copy_ok "bzip2, .bz2, bmap found by name" disk.img.bz2
copy_ok "bzip2, no suffix (magic), --bmap" --bmap disk.img.bmap packed
copy_ok "bzip2, standard input from the file" --bmap disk.img.bmap - <disk.img.bz2
piped_ok "bzip2, standard input from a pipe" disk.img.bz2 --bmap disk.img.bmap
nobmap_ok "bzip2, .bz2" disk.img.bz2
nobmap_ok "bzip2, no suffix" packed
piped_ok "bzip2, pipe, --nobmap" disk.img.bz2 --nobmap
# Small blocks: many blocks in one stream.
bzip2 -1 -c disk.img >small-blocks.bz2
copy_ok "bzip2 -1" --bmap disk.img.bmap small-blocks.bz2

# --- several streams: bzip2 of two pieces, concatenated, with an empty stream between
head -c $((2 * MiB + 5)) disk.img | bzip2 -c >streams.bz2
bzip2 -c </dev/null >>streams.bz2
tail -c +$((2 * MiB + 6)) disk.img | bzip2 -c >>streams.bz2
copy_ok "three bzip2 streams, one empty" --bmap disk.img.bmap streams.bz2
nobmap_ok "three bzip2 streams" streams.bz2
piped_ok "three bzip2 streams, pipe" streams.bz2 --bmap disk.img.bmap

# --- pbzip2 output: one stream per 100 KiB piece
if command -v pbzip2 >/dev/null 2>&1; then
    pbzip2 -p2 -b1 -c disk.img >disk.pbzip2.bz2
    streams=$(grep -c -a -o 'BZh91AY&SY' disk.pbzip2.bz2 || true)
    [ "$streams" -gt 10 ] || fail "pbzip2 -b1 wrote $streams streams, expected many"
    copy_ok "pbzip2 ($streams streams)" --bmap disk.img.bmap disk.pbzip2.bz2
    nobmap_ok "pbzip2" disk.pbzip2.bz2
    piped_ok "pbzip2, pipe" disk.pbzip2.bz2 --bmap disk.img.bmap
else
    note_skip "pbzip2 is not installed"
fi

# --- damaged files
size=$(stat -c %s disk.img.bz2)
[ "$size" -gt 4096 ] || fail "disk.img.bz2 is only $size bytes"
for cut in 6 $((size / 2)) $((size - 5)) $((size - 1)); do
    head -c "$cut" disk.img.bz2 >cut.bz2
    damaged "cut at byte $cut of $size" cut.bz2 "truncated.* at byte $cut$END"
done
# Cut inside the last stream: in its magic, and further in.
head -c $((2 * MiB + 5)) disk.img | bzip2 -c >one.bz2
bzip2 -c </dev/null >>one.bz2
first=$(stat -c %s one.bz2)
for cut in $((first + 2)) $((first + 1000)); do
    head -c "$cut" streams.bz2 >cut.bz2
    damaged "three streams, cut at byte $cut" cut.bz2 "truncated.* at byte $cut$END"
done

cp disk.img.bz2 flipped.bz2
old=$(od -An -tu1 -j $((size / 2)) -N1 disk.img.bz2 | tr -d ' ')
put_byte flipped.bz2 $((size / 2)) "$(printf '%02x' $((old ^ 0xff)))"
damaged "one byte flipped at $((size / 2))" flipped.bz2 "corrupt|verify"

{ cat disk.img.bz2 && printf 'garbage\n'; } >trailing.bz2
damaged "trailing garbage" trailing.bz2 "trailing data.* at byte $size$END"
{ cat disk.img.bz2 && head -c 512 /dev/zero; } >padded.bz2
damaged "zero padding after the last stream" padded.bz2 "trailing data.* at byte $size$END"
{ cat disk.img.bz2 && printf 'BZh9xyz'; } >bad-magic.bz2
damaged "a broken stream header after the last stream" bad-magic.bz2 "corrupt"
