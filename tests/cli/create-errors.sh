#!/usr/bin/env bash
# bmapkit create on bad input: clear error, exit 1, no output written, nothing destroyed.
. "$TESTS_DIR/lib.sh"

require_tools setpriv
cd "$WORK"
new_sparse img $((16 * BS))
put_blocks img 1 2
cp img img.orig

# no_output FILE: FILE and no temporary file for it exist.
no_output() {
    local f
    [ ! -e "$1" ] || fail "$1 was created by a failed create"
    for f in "$(dirname "$1")/.$(basename "$1")."*; do
        [ ! -e "$f" ] || fail "the temporary file $f was left behind"
    done
}

# fails_cleanly PATTERN ARGS...: create fails with exit 1 and an error matching PATTERN,
# writing neither to -o new.bmap nor to standard output. The command runs under the
# prefix in the array AS (empty: as is).
AS=()
fails_cleanly() {
    local pattern=$1
    shift
    expect_fail 1 "$pattern" "${AS[@]}" "$BMAPKIT" create -o new.bmap "$@"
    no_output new.bmap
    expect_fail 1 "$pattern" "${AS[@]}" "$BMAPKIT" create "$@"
}

# Run "$@" without the capabilities that let root ignore file permissions.
without_dac() {
    setpriv --bounding-set=-dac_override,-dac_read_search -- "$@"
}

# can_drop_dac: as root, setpriv can take away the permission override.
can_drop_dac() {
    : >"$WORK/.probe"
    chmod 000 "$WORK/.probe"
    if without_dac cat "$WORK/.probe" >/dev/null 2>&1; then
        rm -f "$WORK/.probe"
        return 1
    fi
    rm -f "$WORK/.probe"
}

# --- bad images
: >empty.img
fails_cleanly "empty\.img.*empty" empty.img
pass "zero-sized image: error naming it, exit 1, no output"

fails_cleanly "missing\.img.*No such file" missing.img
pass "missing image: error naming it, exit 1, no output"

mkdir adir
fails_cleanly "adir.*not a regular file" adir
pass "directory as image: error naming it, exit 1, no output"

mkfifo fifo
AS=(timeout 30)
fails_cleanly "fifo.*not a regular file" fifo
AS=()
pass "FIFO as image: refused at once (no wait for a writer), exit 1"

fails_cleanly "/dev/null.*not a regular file" /dev/null
pass "character device as image: refused, exit 1"

cp img unreadable.img
chmod 000 unreadable.img
if [ "$(id -u)" -ne 0 ]; then
    fails_cleanly "unreadable\.img.*Permission denied" unreadable.img
    pass "unreadable image: permission error naming it, exit 1, no output"
elif can_drop_dac; then
    AS=(without_dac)
    fails_cleanly "unreadable\.img.*Permission denied" unreadable.img
    AS=()
    pass "unreadable image (root without CAP_DAC_OVERRIDE): permission error, exit 1, no output"
else
    note_skip "unreadable image: running as root and setpriv cannot drop CAP_DAC_OVERRIDE"
fi

# --- bad outputs
expect_fail 1 "/nonexistent/dir/x\.bmap" "$BMAPKIT" create -o /nonexistent/dir/x.bmap img
[ ! -e /nonexistent ] || fail "/nonexistent was created"
pass "output in a missing directory: error naming it, exit 1"

mkdir rodir
chmod 555 rodir
if [ "$(id -u)" -ne 0 ]; then
    expect_fail 1 "rodir/x\.bmap.*Permission denied" "$BMAPKIT" create -o rodir/x.bmap img
    pass "output in a read-only directory: permission error, exit 1"
elif can_drop_dac; then
    expect_fail 1 "rodir/x\.bmap.*Permission denied" without_dac "$BMAPKIT" create -o rodir/x.bmap img
    pass "output in a read-only directory (root without CAP_DAC_OVERRIDE): permission error, exit 1"
else
    note_skip "read-only output directory: running as root and setpriv cannot drop CAP_DAC_OVERRIDE"
fi
[ -z "$(ls -A rodir)" ] || fail "something was written into the read-only directory"

expect_fail 1 "adir.*directory" "$BMAPKIT" create -o adir img
[ -z "$(ls -A adir)" ] || fail "something was written into adir"
pass "output is a directory: refused, exit 1"

expect_fail 1 "/dev/full" "$BMAPKIT" create -o /dev/full img
rc=0
"$BMAPKIT" create img >/dev/full 2>.err || rc=$?
[ "$rc" -eq 1 ] || fail "bmap to a full standard output: exit $rc"
grep -q '^bmapkit: error: standard output: .*No space left' .err || fail "full stdout: $(cat .err)"
pass "output device full (-o and standard output): write error, exit 1"

# --- the output must never be the image itself
expect_fail 1 "img.*image itself" "$BMAPKIT" create -o img img
expect_fail 1 "image itself" "$BMAPKIT" create -o ./img "$WORK/img"
ln -s img img-link
expect_fail 1 "image itself" "$BMAPKIT" create -o img-link img
ln img img-hardlink
expect_fail 1 "image itself" "$BMAPKIT" create -o img-hardlink img
cmp img img.orig || fail "the image was modified"
pass "-o naming the image (same path, other spelling, symlink, hard link): refused, image intact"

# --- a failed create leaves an existing bmap untouched
run_ok "$BMAPKIT" create -o old.bmap img
cp old.bmap old.bmap.orig
expect_fail 1 "missing\.img" "$BMAPKIT" create -o old.bmap missing.img
cmp old.bmap old.bmap.orig || fail "old.bmap changed after a failure (missing image)"
expect_fail 1 "empty\.img" "$BMAPKIT" create -o old.bmap empty.img
cmp old.bmap old.bmap.orig || fail "old.bmap changed after a failure (empty image)"
expect_fail 1 "adir" "$BMAPKIT" create -o old.bmap adir
cmp old.bmap old.bmap.orig || fail "old.bmap changed after a failure (directory)"
for f in .old.bmap.*; do
    [ ! -e "$f" ] || fail "the temporary file $f was left behind"
done
pass "an existing bmap at -o is left untouched when create fails"

# --- a usage error exits 2 and never touches the output either
expect_fail 2 "threads" "$BMAPKIT" create --threads 0 -o old.bmap img
cmp old.bmap old.bmap.orig || fail "old.bmap changed after a usage error"
pass "usage error: exit 2, existing output untouched"
