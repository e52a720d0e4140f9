#!/usr/bin/env bash
# bmapkit copy trusts a bmap only as far as it can check it: content that contradicts the declared version (a version edited down or up) is a malformed bmap, also when the image is damaged too; a bmap without range checksums is copied only with --no-verify, and the summary and the JSON done event then say "not verified"; genuine bmaps of every version with checksums still verify.
source "$TESTS_DIR/lib.sh"

require_tools bmaptool
cd "$WORK"

# The image: data in three runs of blocks, zeros everywhere else (no holes needed, the
# ranges are given to gen_bmap), the last block partial.
nblocks=64
size=$((nblocks * BS - 100))
truncate -s "$size" good.img
put_random good.img 0 $((3 * BS))
put_random good.img $((10 * BS)) $((5 * BS))
put_random good.img $((63 * BS)) $((BS - 100))
RANGES="0-2 10-14 63"
NRANGES=3
# bad.img: one byte of the second range changed.
cp good.img bad.img
off=$((12 * BS + 5))
old=$(od -An -tx1 -j "$off" -N1 good.img | tr -d ' ')
put_byte bad.img "$off" "$(printf '%02x' $(((0x$old + 1) % 256)))"
! cmp -s good.img bad.img || fail "bad.img is not damaged"

for v in 1.0 1.1 1.2 1.3 1.4 2.0; do
    gen_bmap "$v" good.img "v$v.bmap" sha256 "$RANGES"
done
run_ok "$BMAPKIT" create -o created.bmap good.img

# The destination starts as a file of a known pattern; a refused copy must leave it so.
head -c $((size + 4096)) /dev/zero | tr '\0' 'Z' >pattern
reset_dest() { cp pattern dest.img; }
dest_untouched() {
    cmp -s pattern dest.img || fail "$1: the destination was written to"
}

# done_event FILE: the done event's status, exit, ranges_verified, ranges_unchecked and
# verification, separated by spaces.
done_event() {
    python3 - "$1" <<'EOF'
import json, sys
events = [json.loads(line) for line in open(sys.argv[1])]
done = events[-1]
if done.get("event") != "done" or "verification" not in done:
    sys.exit("last event is not a done event with a verification member: %r" % done)
print(done["status"], done["exit"], done["ranges_verified"], done["ranges_unchecked"],
      done["verification"])
EOF
}

# refused_events FILE CODE: a copy refused before it started wrote exactly two events,
# an error of class CODE with exit 1 and a done event that failed with exit 1.
refused_events() {
    python3 - "$1" "$2" <<'EOF'
import json, sys
events = [json.loads(line) for line in open(sys.argv[1])]
kinds = [(e.get("event"), e.get("code"), e.get("status"), e.get("exit")) for e in events]
want = [("error", sys.argv[2], None, 1), ("done", None, "failed", 1)]
if kinds != want:
    sys.exit("events %r, expected %r" % (kinds, want))
EOF
}

# line_of FILE TEXT: the number of the first line of FILE that holds TEXT.
line_of() {
    grep -n -m1 -F -- "$2" "$1" | cut -d: -f1
}

# --- a version changed in a bmap that has checksums: malformed, nothing written
# refused_as NAME BMAP IMAGE WHAT: copying IMAGE with BMAP fails with exit 1 and one error
# naming BMAP, the line of WHAT, what contradicts the declared version and its line.
refused_as() {
    local name=$1 bmap=$2 image=$3 what=$4 v line vline
    v=$(sed -nE 's/.*<bmap version="([0-9.]+)">.*/\1/p' "$bmap")
    line=$(line_of "$bmap" "$what")
    vline=$(line_of "$bmap" '<bmap version=')
    [ -n "$line" ] && [ -n "$vline" ] || fail "$name: $bmap has no $what"
    what=${what%=}
    what=${what#<Range }
    reset_dest
    rm -f ev.json
    expect_fail 1 "^bmapkit: error: $bmap:$line: .*$what.* contradicts bmap format version ${v//./\\.} declared on line $vline " \
        "$BMAPKIT" copy --json-events ev.json --bmap "$bmap" "$image" dest.img
    dest_untouched "$name"
    refused_events ev.json format || fail "$name: events of the refused bmap"
    pass "$name: refused as malformed (line $line), destination untouched"
}

# edit_version FROM TO OUT: the bmap of version FROM with only its version attribute set to TO.
edit_version() {
    sed "s/<bmap version=\"$1\">/<bmap version=\"$2\">/" "v$1.bmap" >"$3"
    grep -q "<bmap version=\"$2\">" "$3" || fail "could not set the version of v$1.bmap to $2"
}

edit_version 2.0 1.0 down-2.0-1.0.bmap
refused_as "2.0 edited to 1.0" down-2.0-1.0.bmap good.img '<ChecksumType>'
edit_version 2.0 1.2 down-2.0-1.2.bmap
refused_as "2.0 edited to 1.2" down-2.0-1.2.bmap good.img '<ChecksumType>'
edit_version 2.0 1.3 down-2.0-1.3.bmap
refused_as "2.0 edited to 1.3" down-2.0-1.3.bmap good.img '<ChecksumType>'
edit_version 1.4 1.2 down-1.4-1.2.bmap
refused_as "1.4 edited to 1.2" down-1.4-1.2.bmap good.img '<ChecksumType>'
edit_version 1.3 1.2 down-1.3-1.2.bmap
refused_as "1.3 edited to 1.2" down-1.3-1.2.bmap good.img '<BmapFileSHA1>'
edit_version 1.2 1.0 down-1.2-1.0.bmap
refused_as "1.2 edited to 1.0" down-1.2-1.0.bmap good.img '<Range sha1='
edit_version 1.1 1.0 down-1.1-1.0.bmap
refused_as "1.1 edited to 1.0" down-1.1-1.0.bmap good.img '<Range sha1='
edit_version 1.2 2.0 up-1.2-2.0.bmap
refused_as "1.2 edited to 2.0" up-1.2-2.0.bmap good.img '<Range sha1='
edit_version 1.3 2.0 up-1.3-2.0.bmap
refused_as "1.3 edited to 2.0" up-1.3-2.0.bmap good.img '<BmapFileSHA1>'
sed 's/<bmap version="2.0">/<bmap version="1.0">/' created.bmap >created-1.0.bmap
refused_as "bmapkit create's bmap edited to 1.0" created-1.0.bmap good.img '<ChecksumType>'

# --- the same with one range of the image changed: still refused, never exit 0
reset_dest
expect_fail 3 'bad\.img: blocks 10-14 .*do not match' "$BMAPKIT" copy -q --bmap v2.0.bmap bad.img dest.img
pass "the damaged range is caught by the genuine 2.0 bmap (exit 3)"
refused_as "2.0 edited to 1.0, image damaged" down-2.0-1.0.bmap bad.img '<ChecksumType>'
refused_as "1.4 edited to 1.2, image damaged" down-1.4-1.2.bmap bad.img '<ChecksumType>'
refused_as "1.2 edited to 1.0, image damaged" down-1.2-1.0.bmap bad.img '<Range sha1='
# ... and with a range checksum edited to match nothing as well.
sed -E '0,/chksum="[0-9a-f]/s//chksum="x/' down-2.0-1.0.bmap >down-edited.bmap
! cmp -s down-2.0-1.0.bmap down-edited.bmap || fail "no range checksum edited"
refused_as "2.0 edited to 1.0 and a range checksum edited, image damaged" down-edited.bmap \
    bad.img '<ChecksumType>'

# --- genuine bmaps without range checksums: refused unless --no-verify is given
sed -E 's/ sha1="[0-9a-f]+"//' v1.2.bmap >nosum-1.2.bmap
! grep -q 'sha1=' nosum-1.2.bmap || fail "nosum-1.2.bmap still has sha1 attributes"
run_ok "$BMAPKIT" create --no-checksum -o nosum-create.bmap good.img
bmaptool -q create --no-checksum -o nosum-bmaptool.bmap good.img || fail "bmaptool create --no-checksum"
for b in v1.0.bmap nosum-1.2.bmap nosum-create.bmap nosum-bmaptool.bmap; do
    ! grep -Eq 'chksum=|sha1=' "$b" || fail "$b has range checksums"
    n=$(bmap_range_count "$b")
    reset_dest
    rm -f ev.json
    expect_fail 1 "^bmapkit: error: bmap $b: no range checksums.*--no-verify" \
        "$BMAPKIT" copy --json-events ev.json --bmap "$b" good.img dest.img
    dest_untouched "$b without --no-verify"
    refused_events ev.json unverifiable || fail "$b: events of the refused copy"
    # The refusal comes before the image data is looked at: a damaged image gets the same.
    expect_fail 1 "no range checksums.*--no-verify" \
        "$BMAPKIT" copy --bmap "$b" bad.img dest.img
    dest_untouched "$b without --no-verify, damaged image"
    pass "$b: refused with a message naming --no-verify, destination untouched"

    rm -f out.img
    run_ok "$BMAPKIT" copy --no-verify --json-events ev.json --bmap "$b" good.img out.img
    cmp good.img out.img || fail "$b with --no-verify: the copy differs from the image"
    grep -q "^bmapkit: warning: not verified: none of the $n range(s) was checked (--no-verify; the bmap has no range checksums)\$" .err ||
        { cat .err; fail "$b with --no-verify: the summary does not say 'not verified'"; }
    if grep -q '^bmapkit: verified ' .err; then
        cat .err
        fail "$b with --no-verify: the summary claims verified ranges"
    fi
    got=$(done_event ev.json) || fail "$b: $got"
    [ "$got" = "ok 0 0 $n not verified" ] || fail "$b with --no-verify: done event '$got'"
    pass "$b with --no-verify: copied, exit 0, summary and done event say not verified"
done
# -q keeps the warning: the one line that says the data was not checked.
rm -f out.img
run_ok "$BMAPKIT" copy -q --no-verify --bmap v1.0.bmap bad.img out.img
cmp bad.img out.img || fail "1.0 with --no-verify -q: the copy differs from the damaged image"
[ "$(cat .err)" = "bmapkit: warning: not verified: none of the $NRANGES range(s) was checked (--no-verify; the bmap has no range checksums)" ] ||
    { cat .err; fail "1.0 with --no-verify -q: expected exactly the not-verified warning"; }
pass "1.0 with --no-verify -q: damaged data copied as asked, only the not-verified warning printed"

# A bmap with checksums on some ranges only: copied, the rest reported unchecked.
sed -E '0,/ sha1="[0-9a-f]+"/s///' v1.2.bmap >partial-1.2.bmap
[ "$(grep -c 'sha1=' partial-1.2.bmap)" -eq $((NRANGES - 1)) ] || fail "partial-1.2.bmap"
rm -f out.img
run_ok "$BMAPKIT" copy --json-events ev.json --bmap partial-1.2.bmap good.img out.img
cmp good.img out.img || fail "partial 1.2: the copy differs"
grep -q "^bmapkit: verified $((NRANGES - 1)) of $NRANGES range(s)\$" .err ||
    { cat .err; fail "partial 1.2: no 'verified 2 of 3' line"; }
grep -q "^bmapkit: warning: 1 range(s) were not verified (the bmap has no checksum for them)\$" .err ||
    { cat .err; fail "partial 1.2: no warning about the unchecked range"; }
got=$(done_event ev.json) || fail "partial 1.2: $got"
[ "$got" = "ok 0 $((NRANGES - 1)) 1 partial" ] || fail "partial 1.2: done event '$got'"
pass "1.2 with one range without sha1: copied, done event says partial"

# --- genuine bmaps with checksums: verified and copied; damaged data still caught
for b in v1.1.bmap v1.2.bmap v1.3.bmap v1.4.bmap v2.0.bmap created.bmap; do
    n=$(bmap_range_count "$b")
    rm -f out.img
    run_ok "$BMAPKIT" copy --json-events ev.json --bmap "$b" good.img out.img
    cmp good.img out.img || fail "$b: the copy differs from the image"
    grep -q "^bmapkit: verified $n of $n range(s)\$" .err ||
        { cat .err; fail "$b: no 'verified $n of $n' line"; }
    if grep -q 'not verified' .err; then
        cat .err
        fail "$b: a verified copy says 'not verified'"
    fi
    got=$(done_event ev.json) || fail "$b: $got"
    [ "$got" = "ok 0 $n 0 verified" ] || fail "$b: done event '$got'"
    reset_dest
    rm -f ev.json
    expect_fail 3 "bad\.img: blocks [0-9-]+ .*do not match the bmap" \
        "$BMAPKIT" copy -q --json-events ev.json --bmap "$b" bad.img dest.img
    got=$(done_event ev.json) || fail "$b, damaged: $got"
    [[ $got =~ ^failed\ 3\ [0-9]+\ 0\ not\ verified$ ]] || fail "$b, damaged image: done event '$got'"
    pass "$b: verified and copied (done event: verified); the damaged image fails with exit 3"
done

# --no-verify with a bmap that has checksums: copied, reported as not verified.
rm -f out.img
run_ok "$BMAPKIT" copy --no-verify --json-events ev.json --bmap v2.0.bmap bad.img out.img
cmp bad.img out.img || fail "2.0 with --no-verify: the copy differs"
grep -q "^bmapkit: warning: not verified: none of the $NRANGES range(s) was checked (--no-verify)\$" .err ||
    { cat .err; fail "2.0 with --no-verify: no not-verified warning"; }
got=$(done_event ev.json) || fail "2.0 --no-verify: $got"
[ "$got" = "ok 0 0 $NRANGES not verified" ] || fail "2.0 with --no-verify: done event '$got'"
pass "2.0 with --no-verify: copied, summary and done event say not verified"
