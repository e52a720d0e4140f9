#!/usr/bin/env bash
# libcurl, libnbd and libarchive (and the fifty libraries below them) are loaded only
# when a URL, an NBD export or an archive needs them: a local copy opens none of them,
# and each is opened when its user comes. The dynamic loader's own record
# (LD_DEBUG=files) tells which libraries a run opened. With a library's file made
# unreadable, its users fail with one line naming it, and a local copy still works.
source "$TESTS_DIR/lib.sh"

require_tools tar
cd "$WORK"

# opened CMD...: run CMD with the loader's record on; the libraries it opened, one per
# line, go to opened.txt, and CMD's status is returned.
opened() {
    rm -f ld.*
    local rc=0
    LD_DEBUG=files LD_DEBUG_OUTPUT="$WORK/ld" "$@" >out.txt 2>err.txt || rc=$?
    cat ld.* | grep -o 'file=[^ ]*' | sed 's/^file=//; s,.*/,,' | sort -u >opened.txt
    return $rc
}
# has NAME / lacks NAME: whether a library whose name starts with NAME was opened.
has() { grep -q "^$1\\.so" opened.txt || fail "$2: $1 was not loaded ($(xargs <opened.txt))"; }
lacks() { ! grep -q "^$1\\.so" opened.txt || fail "$2: $1 was loaded"; }

new_sparse img 8M
put_random img 0 64
put_random img 4096 256
run_ok "$BMAPKIT" create -o img.bmap img

opened "$BMAPKIT" copy -q img out.img || fail "local copy failed: $(cat err.txt)"
cmp img out.img || fail "local copy: out.img differs from the image"
has libcrypto "local copy" # the record is read: a linked library shows up
for lib in libcurl libnbd libarchive libxml2 libgnutls; do
    lacks $lib "local copy"
done
pass "a local copy loads none of libcurl, libnbd, libarchive (and what they pull in)"

tar cf img.tar img
opened "$BMAPKIT" copy -q --nobmap img.tar tar.img || fail "tar copy failed: $(cat err.txt)"
cmp img tar.img || fail "tar copy: tar.img differs from the image"
has libarchive "tar image"
lacks libcurl "tar image"
lacks libnbd "tar image"
pass "a tar image loads libarchive, and is copied"

port=$(free_tcp_port)
if opened "$BMAPKIT" copy -q --nobmap --retries 1 "http://127.0.0.1:$port/img" url.img; then
    fail "a copy from a closed port succeeded"
fi
grep -q "127.0.0.1:$port" err.txt || fail "URL copy: the error does not name the URL: $(cat err.txt)"
has libcurl "URL image"
lacks libnbd "URL image"
pass "a URL image loads libcurl (and fails cleanly on a closed port)"

if opened "$BMAPKIT" copy -q img "nbd://127.0.0.1:$port"; then
    fail "a copy to a closed NBD port succeeded"
fi
grep -q "127.0.0.1:$port" err.txt || fail "NBD copy: the error does not name the export: $(cat err.txt)"
has libnbd "NBD export"
lacks libcurl "NBD export"
pass "an NBD export loads libnbd (and fails cleanly on a closed port)"

# --- each library missing (its file unreadable in a mount namespace of the test's own):
# one error line naming the library and what needs it, exit 1, the destination as it
# was; a local copy still works without all three.
if [ "$(id -u)" -ne 0 ] || ! unshare -m true 2>/dev/null; then
    note_skip "missing libraries: needs root and unshare -m (a private mount namespace)"
    exit 0
fi
libfile() { readlink -f "$(ldconfig -p | awk -v n="$1" '$1 == n { print $NF; exit }')"; }
# without SONAME CMD...: run CMD with the file of SONAME replaced by an empty one.
without() {
    local file
    file=$(libfile "$1")
    [ -f "$file" ] || fail "no file found for $1"
    shift
    unshare -m sh -c 'mount --bind /dev/null "$0" && exec "$@"' "$file" "$@"
}
echo "keep me" >kept.img
for case in "libcurl.so.4|URLs|http://127.0.0.1:$port/img" \
    "libarchive.so.13|tar and zip images|img.tar"; do
    IFS='|' read -r so what src <<<"$case"
    rc=0
    without "$so" "$BMAPKIT" copy -q --nobmap "$src" kept.img 2>err.txt || rc=$?
    [ "$rc" -eq 1 ] || { cat err.txt; fail "$so missing: exit $rc, not 1"; }
    [ "$(wc -l <err.txt)" -eq 1 ] && grep -q "^bmapkit: error: .*$what need ${so//./\\.}, which cannot be loaded: " err.txt ||
        { cat err.txt; fail "$so missing: not one line naming it"; }
    [ "$(cat kept.img)" = "keep me" ] || fail "$so missing: the destination was changed"
done
rc=0
without libnbd.so.0 "$BMAPKIT" copy -q img "nbd://127.0.0.1:$port" 2>err.txt || rc=$?
[ "$rc" -eq 1 ] && [ "$(wc -l <err.txt)" -eq 1 ] &&
    grep -q '^bmapkit: error: .*NBD exports need libnbd\.so\.0, which cannot be loaded: ' err.txt ||
    { cat err.txt; fail "libnbd.so.0 missing: exit $rc, not one line naming it"; }
pass "a missing libcurl, libarchive or libnbd: one line naming it, exit 1, nothing written"

rm -f out.img
without libcurl.so.4 unshare -m sh -c 'mount --bind /dev/null "$0" && mount --bind /dev/null "$1" && exec "$2" copy -q img out.img' \
    "$(libfile libnbd.so.0)" "$(libfile libarchive.so.13)" "$BMAPKIT" ||
    fail "a local copy failed without libcurl, libnbd and libarchive"
cmp img out.img || fail "the local copy without the three libraries differs"
pass "a local copy works without libcurl, libnbd and libarchive"
