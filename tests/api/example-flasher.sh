#!/bin/bash
# examples/flash.c, the complete flasher that bmapkit(3) points to, compiles against
# the public headers and the built library alone, flashes a sparse image with its bmap
# (found next to it, given, from standard input, compressed, read back), and fails
# with one line and the command's exit statuses on damaged data, a missing bmap, a
# destination that is the image, and bad usage.
# Usage: example-flasher.sh SOURCE_DIR BUILD_LIB_DIR [SANITIZERS]; BMAPKIT and
# TESTS_DIR as for the command tests.
. "$TESTS_DIR/lib.sh"
top=$1 libdir=$2 sanitize=${3:-none}
require_tools "${CC:-cc}" cmp gzip

flags=()
# A library built with sanitizers needs their runtime in the program too.
[ "$sanitize" = none ] || flags+=("-fsanitize=$sanitize")
${CC:-cc} -std=c17 -Wall -Wextra -Werror -Wshadow -Wconversion "${flags[@]}" \
    -I "$top/include" "$top/examples/flash.c" \
    -L "$libdir" -lbmapkit -Wl,-rpath,"$libdir" -o "$WORK/flash"
pass "examples/flash.c builds with the project's warnings as errors"

cd "$WORK"
require_sparse_support .
size=$((48 * 1024 * 1024))
# Data in the first MiB (held back by the copy), a range longer than the copy's whole
# ring of buffers (so its first part is written before its end is hashed), a hole.
new_sparse disk.img "$size"
put_random disk.img 0 300000
put_random disk.img $((2 * 1024 * 1024)) $((40 * 1024 * 1024))
"$BMAPKIT" create -q -o disk.img.bmap disk.img
mapped=$(bmap_mapped_bytes disk.img.bmap)

# flash_ok DEST ARGS...: the flasher succeeds, and DEST holds the image.
flash_ok() {
    local dest=$1
    shift
    run_ok ./flash "$@"
    cmp -n "$size" disk.img "$dest" || fail "$dest differs from the image (flash $*)"
    [ "$(stat -c %s "$dest")" -eq "$size" ] || fail "$dest is not $size bytes (flash $*)"
    grep -q "^$mapped bytes written to $dest (file), 2 ranges verified, 0 not verified\$" \
        "$WORK/.out" || fail "unexpected result line (flash $*): $(cat "$WORK/.out")"
    grep -q '^flash: 100% ' "$WORK/.err" || fail "no progress to 100% (flash $*)"
}

flash_ok out.img disk.img out.img
# Only the mapped data was written: the file keeps the image's hole.
[ $(($(stat -c %b out.img) * 512)) -lt $((mapped + 1024 * 1024)) ] ||
    fail "out.img has $(stat -c %b out.img) blocks allocated: the hole was written"
pass "finds disk.img.bmap, writes the $mapped mapped bytes verified, keeps the hole"

flash_ok out-r.img -r disk.img out-r.img
grep -q '^2 ranges read back from out-r.img and matched$' "$WORK/.out" ||
    fail "no read-back line: $(cat "$WORK/.out")"
pass "reads the ranges back with -r"

./flash -b disk.img.bmap - out-stdin.img <disk.img >"$WORK/.out" 2>"$WORK/.err" ||
    fail "flash from standard input failed: $(cat "$WORK/.err")"
cmp disk.img out-stdin.img || fail "the copy from standard input differs"
grep -q '^standard input (raw): ' "$WORK/.out" || fail "unexpected: $(cat "$WORK/.out")"
pass "copies standard input with -b"

gzip -k -1 disk.img
flash_ok out-gz.img disk.img.gz out-gz.img
grep -q "^disk.img.gz (gzip): $mapped of $size bytes mapped in 2 ranges (bmap disk.img.bmap)\$" \
    "$WORK/.out" || fail "unexpected source line: $(cat "$WORK/.out")"
pass "decodes disk.img.gz and finds disk.img.bmap for it"

# flash_fails STATUS PATTERN ARGS...: exit status STATUS, nothing on stdout past the
# source line, and one line on stderr besides progress, matching PATTERN.
flash_fails() {
    local status=$1 pattern=$2 rc=0
    shift 2
    ./flash "$@" >"$WORK/.out" 2>"$WORK/.err" || rc=$?
    [ "$rc" -eq "$status" ] || fail "exit status $rc, not $status: flash $* ($(cat "$WORK/.err"))"
    grep -v '^flash: *[0-9]*% (' "$WORK/.err" >"$WORK/.msg" || true
    [ "$(wc -l <"$WORK/.msg")" -eq 1 ] || fail "not one error line from flash $*: $(cat "$WORK/.err")"
    grep -Eq -- "$pattern" "$WORK/.msg" || fail "error '$(cat "$WORK/.msg")' does not match /$pattern/"
    if grep -q 'bytes written' "$WORK/.out"; then fail "a result line after a failure: flash $*"; fi
}

# One byte of the long range changed after the bmap was made, near its end.
cp disk.img bad.img
printf '\125' | dd of=bad.img bs=1 seek=$((42 * 1024 * 1024 - 100)) conv=notrunc status=none
cmp -s disk.img bad.img && printf '\252' |
    dd of=bad.img bs=1 seek=$((42 * 1024 * 1024 - 100)) conv=notrunc status=none
flash_fails 3 '^flash: bad\.img: blocks [0-9]+-[0-9]+ \(bytes [0-9]+-[0-9]+\) do not match the bmap: sha256 expected [0-9a-f]{64}, got [0-9a-f]{64} \[verify\]; the destination holds an incomplete copy without the image.s first MiB$' \
    -b disk.img.bmap bad.img out-bad.img
cmp -s -n 1048576 out-bad.img /dev/zero || fail "out-bad.img holds data in its first MiB after the failure"
pass "a changed byte in a mapped range: exit 3, one line naming the blocks, first MiB not written"

flash_fails 1 '^flash: no bmap found for missing\.img .*\[io\]$' missing.img out-missing.img
[ ! -e out-missing.img ] || fail "out-missing.img was created although the bmap is missing"
pass "a missing bmap: exit 1, one line"

cp disk.img keep.img
flash_fails 1 '^flash: refusing to write to disk\.img: .*the image disk\.img.*\[refused\]' \
    disk.img disk.img
cmp disk.img keep.img || fail "the image changed when it was its own destination"
pass "the image as its destination is refused and left alone"

rc=0
./flash disk.img >/dev/null 2>"$WORK/.err" || rc=$?
[ "$rc" -eq 2 ] && grep -q '^usage: flash ' "$WORK/.err" || fail "usage error: status $rc"
pass "a missing argument: exit 2 with the usage"
