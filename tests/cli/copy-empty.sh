#!/usr/bin/env bash
# bmapkit copy of an empty image without a bmap: refused like create refuses it, never
# "copied" with exit status 0. A local file is refused before the destination is
# opened; a stream found empty only at its end fails once read.
source "$TESTS_DIR/lib.sh"

require_tools gzip xz zstd
cd "$WORK"

: >empty.img
echo "keep me" >dest.txt
expect_fail 1 'image empty.img is empty' "$BMAPKIT" copy --nobmap empty.img dest.txt
[ "$(cat dest.txt)" = "keep me" ] || fail "dest.txt changed by a refused copy"
pass "empty file: refused before the destination is opened"

gzip -c empty.img >empty.img.gz
xz -c empty.img >empty.img.xz
zstd -q -c empty.img >empty.img.zst
for f in empty.img.gz empty.img.xz empty.img.zst; do
    expect_fail 1 "$f: the image is empty" "$BMAPKIT" copy -q --nobmap "$f" out.img
done
pass "empty gz, xz and zst streams: refused"

expect_fail 1 'standard input: the image is empty' "$BMAPKIT" copy -q --nobmap - out.img </dev/null
pass "empty standard input: refused"

echo x >one.img
run_ok "$BMAPKIT" copy --nobmap one.img out.img
cmp one.img out.img || fail "a 2-byte image was not copied"
pass "a 2-byte image is still copied"
