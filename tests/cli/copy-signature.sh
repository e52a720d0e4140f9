#!/usr/bin/env bash
# bmapkit copy of OpenPGP-signed bmaps: detached signatures (--bmap-sig, BMAP.asc, then
# BMAP.sig) and clearsigned bmaps, --keyring, --fingerprint, --no-sig-verify. Every
# refusal leaves the destination untouched; a bad signature never ends in exit status 0.
# Keys are made here, in temporary GnuPG homes.
source "$TESTS_DIR/lib.sh"

require_tools gpg gpgconf python3 cmp
require_sparse_support "$WORK"
cd "$WORK"

# The library's temporary GnuPG homes go here, so the test sees they are removed.
export TMPDIR="$WORK/tmp"
mkdir "$TMPDIR"

# new_key NAME EMAIL: a GnuPG home gnupg-NAME with a fresh, unprotected ed25519 key.
new_key() {
    local home="$WORK/gnupg-$1"
    mkdir -m 700 "$home"
    at_exit "GNUPGHOME='$home' gpgconf --kill all"
    GNUPGHOME="$home" gpg --batch --quiet --gen-key 2>/dev/null <<EOF
%no-protection
Key-Type: eddsa
Key-Curve: ed25519
Key-Usage: sign
Name-Real: $1 Test
Name-Email: $2
Expire-Date: 0
%commit
EOF
    GNUPGHOME="$home" gpg --batch --with-colons --list-keys | awk -F: '/^fpr/ { print $10; exit }'
}
FPR_A=$(new_key alice alice@example.org)
FPR_B=$(new_key bob bob@example.org)
[ ${#FPR_A} -eq 40 ] && [ ${#FPR_B} -eq 40 ] || fail "no fingerprints: '$FPR_A' '$FPR_B'"
GPG_A=(env GNUPGHOME="$WORK/gnupg-alice" gpg --batch --quiet --yes)
GPG_B=(env GNUPGHOME="$WORK/gnupg-bob" gpg --batch --quiet --yes)
"${GPG_A[@]}" --export -o alice.gpg
"${GPG_A[@]}" --export --armor -o alice.asc.keys
"${GPG_B[@]}" --export -o bob.gpg
cat alice.gpg bob.gpg >both.gpg
# Copies run with Alice's home unless a case says otherwise.
export GNUPGHOME="$WORK/gnupg-alice"

new_sparse a.img $((2 * 1024 * 1024 + 1000))
put_blocks a.img 3 20
put_blocks a.img 300 40
gen_bmap 2.0 a.img a.bmap
gen_bmap 1.4 a.img a.v14.bmap
OK_LINE="successfully verified bmap file signature of alice Test <alice@example.org>"
OK_LINE="$OK_LINE \(fingerprint $FPR_A\)"

# copy_ok BMAP [OPTIONS...]: copy a.img with BMAP; exit 0, the copy right, and the
# verified-signature line printed.
copy_ok() {
    local bmap=$1
    shift
    rm -f out.img
    run_ok "$BMAPKIT" copy --bmap "$bmap" "$@" a.img out.img
    same_as_image a.img "$bmap" out.img
    grep -Eq "^bmapkit: $OK_LINE\$" "$WORK/.err" || {
        cat "$WORK/.err"
        fail "no verified-signature line for $bmap $*"
    }
}

# refused PATTERN CMD-OPTIONS...: copy a.img to dest.txt is refused with exit status 1,
# one error matching PATTERN, and dest.txt unchanged.
refused() {
    local pattern=$1
    shift
    echo "keep me" >dest.txt
    expect_fail 1 "$pattern" "$BMAPKIT" copy "$@" a.img dest.txt
    [ "$(cat dest.txt)" = "keep me" ] || fail "dest.txt changed by a refused copy ($*)"
}

# Detached, discovered as BMAP.asc; the JSON start event names the signer.
"${GPG_A[@]}" --armor --detach-sign -o a.bmap.asc a.bmap
copy_ok a.bmap --json-events events.json
python3 - "$FPR_A" <<'EOF' || fail "start event without the signer"
import json, sys
start = json.loads(open("events.json").readline())
want = {"fingerprint": sys.argv[1], "signer": "alice Test <alice@example.org>"}
sys.exit(0 if start["event"] == "start" and start["signature"] == want else 1)
EOF
pass "a.bmap.asc discovered and verified; start event names the signer"

# BMAP.sig (binary) when there is no BMAP.asc; BMAP.asc is preferred when both are there.
mv a.bmap.asc good.asc
"${GPG_A[@]}" --detach-sign -o a.bmap.sig a.bmap
copy_ok a.bmap
"${GPG_A[@]}" --armor --detach-sign -o a.bmap.asc a.v14.bmap
refused "signature a.bmap.asc: discovered a BAD GPG signature" --bmap a.bmap
rm a.bmap.asc a.bmap.sig
pass "a.bmap.sig discovered; a.bmap.asc taken first"

# --bmap-sig names it; no signature at all: the JSON start event has null.
copy_ok a.bmap --bmap-sig good.asc
rm -f out.img
run_ok "$BMAPKIT" copy --bmap a.bmap --json-events events.json a.img out.img
python3 -c 'import json, sys
sys.exit(json.loads(open("events.json").readline())["signature"] is not None)' ||
    fail "unsigned bmap: the start event's signature is not null"
if grep -q "signature" "$WORK/.err"; then fail "an unsigned bmap talks of signatures"; fi
pass "--bmap-sig; unsigned bmap: signature null"

# Clearsigned, alone and with the signer's fingerprint (spaces allowed).
"${GPG_A[@]}" --clearsign -o a.cs.bmap a.bmap
copy_ok a.cs.bmap
copy_ok a.cs.bmap --fingerprint "$FPR_A"
copy_ok a.cs.bmap --fingerprint "$(sed 's/..../& /g' <<<"$FPR_A")"
pass "clearsigned bmap, also with --fingerprint"

# --keyring: only that file's keys, without any GnuPG home (none exists here).
mkdir home-empty
GNUPGHOME="$WORK/no-such-home" HOME="$WORK/home-empty" copy_ok a.cs.bmap --keyring alice.gpg
GNUPGHOME="$WORK/no-such-home" HOME="$WORK/home-empty" copy_ok a.bmap --bmap-sig good.asc \
    --keyring alice.asc.keys --fingerprint "$FPR_A"
[ ! -e no-such-home ] && [ -z "$(ls -A home-empty)" ] || fail "--keyring touched a GnuPG home"
[ -z "$(ls -A "$TMPDIR")" ] || fail "temporary GnuPG homes left: $(ls "$TMPDIR")"
pass "--keyring with no GnuPG home, binary and armored keys"

# Signed by a key not in the keyring: the user's home, and --keyring.
"${GPG_B[@]}" --clearsign -o b.cs.bmap a.bmap
"${GPG_B[@]}" --armor --detach-sign -o bob.asc a.bmap
refused "clearsigned bmap b.cs.bmap: signature by key [0-9A-F]+, which is not in the keyring" \
    --bmap b.cs.bmap
refused "signature bob.asc: signature by key [0-9A-F]+, which is not in the keyring" \
    --bmap a.bmap --bmap-sig bob.asc
refused "which is not in the keyring" --bmap b.cs.bmap --keyring alice.gpg
pass "unknown signer refused"

# Signed by another key of the keyring than --fingerprint.
refused "signed by key $FPR_B \(bob Test <bob@example.org>\), not by the required key $FPR_A" \
    --bmap b.cs.bmap --keyring both.gpg --fingerprint "$FPR_A"
refused "signed by key $FPR_A .*, not by the required key $FPR_B" --bmap a.cs.bmap \
    --fingerprint "$FPR_B"
refused "fingerprint '12AB' is not 40 or 64 hexadecimal digits" --bmap a.cs.bmap \
    --fingerprint 12AB
pass "--fingerprint of another key refused"

# The 1.4 bmap with the 2.0 bmap's signature, by either signer: a valid signature of
# another bmap is a BAD signature.
for who in A B; do
    gpg_cmd="GPG_$who[@]"
    "${!gpg_cmd}" --armor --detach-sign -o a.v14.bmap.asc a.bmap
    refused "signature a.v14.bmap.asc: discovered a BAD GPG signature" --bmap a.v14.bmap \
        --keyring both.gpg
done
"${GPG_A[@]}" --armor --detach-sign -o a.v14.bmap.asc a.bmap
refused "signature a.v14.bmap.asc: discovered a BAD GPG signature by key $FPR_A \(alice Test" \
    --bmap a.v14.bmap
rm a.v14.bmap.asc
pass "a 1.4 bmap with the 2.0 bmap's signature refused, both signers"

# Edited after signing: detached and clearsigned (one digit of a checksum changed).
sed 's/chksum="\(.\)/chksum="X\1/' a.bmap >edited.bmap
cmp -s a.bmap edited.bmap && fail "the edit changed nothing"
cp good.asc edited.bmap.asc
refused "signature edited.bmap.asc: discovered a BAD GPG signature" --bmap edited.bmap
sed 's/chksum="\(.\)/chksum="X\1/' a.cs.bmap >edited.cs.bmap
refused "clearsigned bmap edited.cs.bmap: discovered a BAD GPG signature" --bmap edited.cs.bmap
pass "bmaps edited after signing refused"

# Not a signature; text outside the signed part of a clearsigned bmap.
echo "not a signature" >junk.asc
refused "signature junk.asc: not an OpenPGP signature" --bmap a.bmap --bmap-sig junk.asc
{ cat a.cs.bmap; echo '<extra/>'; } >trailing.cs.bmap
refused "clearsigned bmap trailing.cs.bmap: line [0-9]+: text after the end of the signature" \
    --bmap trailing.cs.bmap
pass "junk signature and text after a clearsigned bmap refused"

# --fingerprint or --keyring and no signature to check.
refused "no signature found but --fingerprint given" --bmap a.bmap --fingerprint "$FPR_A"
refused "no signature found but --keyring given" --bmap a.bmap --keyring alice.gpg
pass "--fingerprint and --keyring on an unsigned bmap refused"

# Other refusals: an empty keyring, --bmap-sig with a clearsigned bmap, missing file.
: >empty.gpg
refused "keyring empty.gpg: no OpenPGP public keys in it" --bmap a.cs.bmap --keyring empty.gpg
refused "the bmap a.cs.bmap is clearsigned .* --bmap-sig cannot be used" --bmap a.cs.bmap \
    --bmap-sig good.asc
refused "cannot open the bmap signature nothere.asc" --bmap a.bmap --bmap-sig nothere.asc
[ -z "$(ls -A "$TMPDIR")" ] || fail "temporary GnuPG homes left: $(ls "$TMPDIR")"
pass "empty keyring, --bmap-sig with a clearsigned bmap, missing signature refused"

# --no-sig-verify: no check, a clearsigned bmap still read; excludes the checking options.
cp bob.asc a.v14.bmap.asc
rm -f out.img
run_ok "$BMAPKIT" copy --bmap a.v14.bmap --no-sig-verify a.img out.img
same_as_image a.img a.v14.bmap out.img
rm -f out.img a.v14.bmap.asc
run_ok "$BMAPKIT" copy --bmap b.cs.bmap --no-sig-verify a.img out.img
same_as_image a.img a.bmap out.img
if grep -q "verified bmap file signature" "$WORK/.err"; then
    fail "--no-sig-verify claims a verified signature"
fi
echo "keep me" >dest.txt
expect_fail 2 "--no-sig-verify excludes --bmap-sig, --keyring and --fingerprint" \
    "$BMAPKIT" copy --no-sig-verify --fingerprint "$FPR_A" --bmap a.bmap a.img dest.txt
expect_fail 2 "cannot be used with --nobmap" "$BMAPKIT" copy --nobmap --keyring alice.gpg \
    a.img dest.txt
[ "$(cat dest.txt)" = "keep me" ] || fail "dest.txt changed"
pass "--no-sig-verify skips the check and reads clearsigned bmaps"

# Dash-escaped lines in a clearsigned bmap (1.2: no file checksum, so lines can be added).
gen_bmap 1.2 a.img a.v12.bmap
printf '<!--\n-a line beginning with a dash\n-->\n' >dashes.txt
sed '/^<?xml/r dashes.txt' a.v12.bmap >dash.bmap
"${GPG_A[@]}" --clearsign -o dash.cs.bmap dash.bmap
grep -q '^- -a line beginning' dash.cs.bmap || fail "gpg did not dash-escape the line"
copy_ok dash.cs.bmap
pass "dash-escaped clearsigned bmap verified and read"
