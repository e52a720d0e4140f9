#!/usr/bin/env bash
# bmapkit copy refusals: corrupt image data per bmap version, tampered and unsupported bmaps, bad sources and destinations, usage errors.
source "$TESTS_DIR/lib.sh"

require_sparse_support "$WORK"
cd "$WORK"
[ "$BS" -eq 4096 ] || skip "the test images assume 4096-byte blocks, $WORK has $BS"
MiB=$((1024 * 1024))

# The image: data in the first MiB, a short range after it, a partial last block.
new_sparse good.img $((3 * MiB + 1000))
put_blocks good.img 2 20
put_blocks good.img 300 40
put_blocks good.img 500 100
put_random good.img $((768 * 4096)) 1000
for v in 1.0 1.1 1.2 1.3 1.4 2.0; do gen_bmap "$v" good.img "v$v.bmap"; done

# corrupt SRC DST OFFSET: DST is SRC with the byte at OFFSET changed.
corrupt() {
    local old new
    cp --sparse=always "$1" "$2"
    old=$(od -An -tx1 -j "$3" -N1 "$1" | tr -d ' ')
    new=$(printf '%02x' $(((0x$old + 1) % 256)))
    put_byte "$2" "$3" "$new"
    ! cmp -s "$1" "$2" || fail "corrupting $2 changed nothing"
}

# range_sum IMAGE FIRST LAST TYPE: checksum of blocks FIRST..LAST of IMAGE.
range_sum() {
    dd if="$1" bs=4096 skip="$2" count=$(($3 - $2 + 1)) status=none | digest_of "$4"
}

# dest_unchanged NAME FILE SAVED: FILE still equals SAVED.
dest_unchanged() {
    cmp -s "$2" "$3" || fail "$1: the existing destination was changed"
}

# --- one changed byte in a mapped block
for spot in "300 339 $((320 * 4096 + 17)) middle" "768 768 $((768 * 4096 + 999)) partial-last" \
    "2 21 $((5 * 4096)) first-MiB"; do
    read -r first last off where <<<"$spot"
    corrupt good.img bad.img "$off"
    for v in 1.1 1.2 1.3 1.4 2.0; do
        case $v in 1.4 | 2.0) t=sha256 ;; *) t=sha1 ;; esac
        want=$(range_sum good.img "$first" "$last" "$t")
        got=$(range_sum bad.img "$first" "$last" "$t")
        grep -q "$want" "v$v.bmap" || fail "generated v$v.bmap lacks the checksum $want"
        rm -f out.img
        expect_fail 3 "blocks $first-$last.*$want.*$got|blocks $first-$last.*$got.*$want" \
            "$BMAPKIT" copy -q --bmap "v$v.bmap" bad.img out.img
        # The image's beginning is written last: a failed copy must not carry it.
        if [ -e out.img ] && cmp -s -n "$MiB" good.img out.img; then
            fail "$where, v$v: the failed copy holds the image's first MiB"
        fi
        pass "$where corruption, bmap $v: exit 3 naming blocks $first-$last and both checksums"
    done
    rm -f out.img
    run_ok "$BMAPKIT" copy --no-verify --bmap v2.0.bmap bad.img out.img
    cmp bad.img out.img || fail "--no-verify copy differs from the corrupt image"
    pass "$where corruption: --no-verify copies it"
    # 1.0 has no checksums: refused unless --no-verify; with it, copied and said unverified.
    rm -f out.img
    expect_fail 1 'v1\.0\.bmap: no range checksums.*--no-verify' \
        "$BMAPKIT" copy --bmap v1.0.bmap bad.img out.img
    [ ! -e out.img ] || fail "$where: out.img created although the 1.0 bmap was refused"
    run_ok "$BMAPKIT" copy --no-verify --bmap v1.0.bmap bad.img out.img
    grep -q '^bmapkit: warning: not verified: ' .err ||
        { cat .err; fail "no warning that the 1.0 copy was not verified"; }
    cmp bad.img out.img || fail "1.0 copy differs from the image"
    pass "$where corruption, bmap 1.0: refused, and with --no-verify copied as not verified"
done
# Piped corrupt data fails the same way.
corrupt good.img bad.img $((500 * 4096 + 3))
rm -f out.img
expect_fail 3 "blocks 500-599" "$BMAPKIT" copy -q --bmap v1.2.bmap - out.img <bad.img
pass "corrupt image on standard input: exit 3"

# --- a tampered bmap (one byte of a comment) fails before the destination is touched
head -c 100000 /dev/urandom >saved.img
for v in 1.3 1.4 2.0; do
    sed 's/<!-- test bmap/<!-- Test bmap/' "v$v.bmap" >tampered.bmap
    [ "$(stat -c %s tampered.bmap)" -eq "$(stat -c %s "v$v.bmap")" ] || fail "tampering changed the size"
    ! cmp -s tampered.bmap "v$v.bmap" || fail "tampering changed nothing"
    rm -f out.img
    expect_fail 1 '[Cc]hecksum|SHA1|sha1' "$BMAPKIT" copy -q --bmap tampered.bmap good.img out.img
    [ ! -e out.img ] || fail "tampered $v bmap: out.img was created"
    cp saved.img existing.img
    expect_fail 1 '[Cc]hecksum|SHA1|sha1' "$BMAPKIT" copy -q --bmap tampered.bmap good.img existing.img
    dest_unchanged "tampered $v" existing.img saved.img
    expect_fail 1 '[Cc]hecksum|SHA1|sha1' "$BMAPKIT" copy -q --no-verify --bmap tampered.bmap good.img existing.img
    dest_unchanged "tampered $v, --no-verify" existing.img saved.img
    pass "tampered bmap $v: exit 1 naming the checksum, nothing created, existing file unchanged"
done

# --- major version 3 refused
gen_bmap 3.0 good.img v3.0.bmap
rm -f out.img
expect_fail 1 '3\.0' "$BMAPKIT" copy -q --bmap v3.0.bmap good.img out.img
[ ! -e out.img ] || fail "bmap 3.0: out.img was created"
cp saved.img existing.img
expect_fail 1 '3\.0' "$BMAPKIT" copy -q --bmap v3.0.bmap good.img existing.img
dest_unchanged "bmap 3.0" existing.img saved.img
pass "bmap version 3.0: exit 1 naming the version, destination untouched"

# --- image size differs from ImageSize
cp --sparse=always good.img longer.img
truncate -s +4096 longer.img
cp --sparse=always good.img shorter.img
truncate -s $((3 * MiB)) shorter.img
for img in longer.img shorter.img; do
    rm -f out.img
    expect_fail 1 "$(stat -c %s "$img")" "$BMAPKIT" copy -q --bmap v2.0.bmap "$img" out.img
    [ ! -e out.img ] || fail "$img: out.img was created"
    cp saved.img existing.img
    expect_fail 1 "$(stat -c %s "$img")" "$BMAPKIT" copy -q --bmap v2.0.bmap "$img" existing.img
    dest_unchanged "$img" existing.img saved.img
    pass "$img: size differs from ImageSize: refused before touching the destination"
done

# --- truncated standard input
for cut in $((320 * 4096 + 5)) $((768 * 4096 + 10)) 1000; do
    rm -f out.img
    rc=0
    head -c "$cut" good.img | "$BMAPKIT" copy --bmap v2.0.bmap - out.img >.out 2>.err || rc=$?
    [ "$rc" -eq 1 ] || { cat .err; fail "truncated stdin at $cut: exit $rc, expected 1"; }
    grep -q "^bmapkit: error: .*\b$cut\b" .err || { cat .err; fail "truncated stdin: no byte offset $cut"; }
    if [ -e out.img ] && cmp -s -n "$MiB" good.img out.img; then
        fail "truncated stdin at $cut: the copy holds the image's first MiB"
    fi
    pass "standard input cut at byte $cut: exit 1 naming the offset"
done

# --- bad sources and destinations
rm -f out.img
expect_fail 1 'missing\.img' "$BMAPKIT" copy -q --bmap v2.0.bmap missing.img out.img
[ ! -e out.img ] || fail "missing image: out.img was created"
pass "missing image: exit 1"
mkdir adir
expect_fail 1 'directory' "$BMAPKIT" copy -q --bmap v2.0.bmap good.img adir
[ -z "$(ls -A adir)" ] || fail "something was created inside the directory"
pass "destination is a directory: exit 1"
cp --sparse=always good.img self.img
expect_fail 1 'self\.img' "$BMAPKIT" copy -q --bmap v2.0.bmap self.img self.img
cmp good.img self.img || fail "copying an image onto itself changed it"
ln -s self.img self-link.img
expect_fail 1 'image' "$BMAPKIT" copy -q --bmap v2.0.bmap self.img self-link.img
cmp good.img self.img || fail "copying an image onto a link to itself changed it"
pass "destination equal to the image (also through a symlink): refused, image unchanged"
devpath=/dev/bmapkit-test-nonexistent-$$
[ ! -e "$devpath" ] || fail "$devpath exists already"
at_exit "rm -f '$devpath'"
expect_fail 1 "$devpath" "$BMAPKIT" copy -q --bmap v2.0.bmap good.img "$devpath"
[ ! -e "$devpath" ] || fail "$devpath was created"
pass "missing path under /dev: refused, not created"
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
    shmpath=/dev/shm/bmapkit-test-$$.img
    at_exit "rm -f '$shmpath'"
    run_ok "$BMAPKIT" copy --bmap v2.0.bmap good.img "$shmpath"
    cmp good.img "$shmpath" || fail "copy to $shmpath differs"
    rm -f "$shmpath"
    pass "missing path under /dev/shm: created and copied"
else
    note_skip "/dev/shm is not a writable directory here"
fi

# --- usage errors
expect_fail 2 '' "$BMAPKIT" copy -q --bmap v2.0.bmap good.img
expect_fail 2 '' "$BMAPKIT" copy
pass "no DEST: exit 2"
rm -f out.img
expect_fail 2 'nobmap' "$BMAPKIT" copy -q --bmap v2.0.bmap --nobmap good.img out.img
[ ! -e out.img ] || fail "--bmap with --nobmap: out.img was created"
pass "--bmap with --nobmap: exit 2"
expect_fail 2 'no-such-option' "$BMAPKIT" copy -q --no-such-option --bmap v2.0.bmap good.img out.img
[ ! -e out.img ] || fail "unknown option: out.img was created"
pass "unknown option: exit 2"
# More DESTs are more destinations (copy-many.sh); a UMS one among them is a usage error.
expect_fail 2 "DEST 'ums' must be the only DEST" "$BMAPKIT" copy -q --bmap v2.0.bmap good.img out.img ums
[ ! -e out.img ] || fail "extra argument: out.img was created"
pass "extra argument: exit 2"

# A file whose name promises compression but whose content does not (cut before its
# magic, or misnamed) is refused rather than copied as a raw image.
head -c 3 "$WORK/good.img" >"$WORK/cut.xz"
rm -f "$WORK/cut.out"
expect_fail 1 'name says xz' "$BMAPKIT" copy --nobmap "$WORK/cut.xz" "$WORK/cut.out"
pass "a .xz file without xz content is refused, also with --nobmap"
