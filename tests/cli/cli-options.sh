#!/usr/bin/env bash
# The global command line and create's options: help, version, usage errors, -q and -d.
. "$TESTS_DIR/lib.sh"

cd "$WORK"
new_sparse img $((16 * BS))
put_blocks img 2 3

# --- version and help
run_ok "$BMAPKIT" --version
grep -Eqx 'bmapkit [0-9]+\.[0-9]+\.[0-9]+' .out || fail "--version printed '$(cat .out)'"
[ ! -s .err ] || fail "--version wrote to stderr"
pass "--version prints 'bmapkit X.Y.Z' on stdout"

for opt in -h --help; do
    run_ok "$BMAPKIT" "$opt"
    for word in 'Usage: bmapkit' '--version' '-q, --quiet' '-d, --debug' '-h, --help' '  create '; do
        grep -qF -- "$word" .out || fail "bmapkit $opt does not mention '$word'"
    done
    [ ! -s .err ] || fail "bmapkit $opt wrote to stderr"
    pass "bmapkit $opt lists the commands and global options on stdout"
done

for opt in -h --help; do
    run_ok "$BMAPKIT" create "$opt"
    for word in 'Usage: bmapkit create' '-o, --output' '--no-checksum' '--checksum-type' \
        '--detect-zeros' '--threads' '-q, --quiet' '-d, --debug' '-h, --help'; do
        grep -qF -- "$word" .out || fail "bmapkit create $opt does not mention '$word'"
    done
    [ ! -s .err ] || fail "bmapkit create $opt wrote to stderr"
    pass "bmapkit create $opt lists every create option"
done
run_ok "$BMAPKIT" create --help img
grep -q '^Usage: bmapkit create' .out || fail "create --help IMAGE did not print help"
if grep -q '<bmap' .out; then fail "create --help IMAGE also wrote a bmap"; fi
pass "create --help with an image prints help and does nothing else"

# --- usage errors: exit 2, one error line naming the problem, nothing created
expect_fail 2 "no command" "$BMAPKIT"
pass "no command: exit 2"
expect_fail 2 "unknown command 'frobnicate'" "$BMAPKIT" frobnicate img
pass "unknown command: exit 2, named"
expect_fail 2 "unknown option '--bogus'" "$BMAPKIT" --bogus create img
pass "unknown global long option: exit 2, named"
expect_fail 2 "unknown option '-x'" "$BMAPKIT" -x create img
pass "unknown global short option: exit 2, named"
expect_fail 2 "unknown option '--bogus'" "$BMAPKIT" create --bogus img
pass "unknown create long option: exit 2, named"
expect_fail 2 "unknown option '-x'" "$BMAPKIT" create -xq img
expect_fail 2 "unknown option '-x'" "$BMAPKIT" create -qx img
expect_fail 2 "unknown option '-x'" "$BMAPKIT" create img -x
pass "unknown create short option, alone or grouped: exit 2, named as -x"
expect_fail 2 "unknown option '--no-checksum=yes'" "$BMAPKIT" create --no-checksum=yes img
pass "a value given to an option without one: exit 2, named"
expect_fail 2 "no image" "$BMAPKIT" create
expect_fail 2 "no image" "$BMAPKIT" create -o out.bmap
pass "missing image: exit 2"
expect_fail 2 "unexpected argument 'extra'" "$BMAPKIT" create img extra
pass "extra argument: exit 2, named"
expect_fail 2 "'-o'.*value|value.*'-o'" "$BMAPKIT" create img -o
expect_fail 2 "'--output'.*value|value.*'--output'" "$BMAPKIT" create img --output
pass "-o / --output without a value: exit 2"
for bad in 0 65 -1 abc 2x ''; do
    expect_fail 2 "threads" "$BMAPKIT" create --threads "$bad" -o out.bmap img
done
pass "--threads 0, 65, -1, abc, 2x and '' rejected with exit 2"
for bad in foo SHA256 sha 'sha256 '; do
    expect_fail 2 "checksum type '$bad'" "$BMAPKIT" create --checksum-type "$bad" -o out.bmap img
done
pass "--checksum-type foo (and other non-names) rejected with exit 2, named"
[ ! -e out.bmap ] || fail "a usage error created the output file"
for f in .out.bmap.*; do
    [ ! -e "$f" ] || fail "a usage error left the temporary file $f"
done
pass "usage errors create no output file"

# --- option spellings and placement
run_ok "$BMAPKIT" create img -o a.bmap
run_ok "$BMAPKIT" create --output a2.bmap img
run_ok "$BMAPKIT" create -oa3.bmap img
run_ok "$BMAPKIT" create --threads=1 --checksum-type=sha256 img -o a4.bmap
run_ok "$BMAPKIT" create --thread 1 img -o a5.bmap
for f in a2 a3 a4 a5; do cmp a.bmap "$f.bmap" || fail "$f.bmap differs from a.bmap"; done
cp img -- -img
run_ok "$BMAPKIT" create -o a6.bmap -- -img
cmp a.bmap a6.bmap || fail "'--' before an image named -img"
pass "options before or after the image, =, attached values, abbreviations and -- work"

# --- -q, -d and where they go
run_ok "$BMAPKIT" create img -o q.bmap
grep -q '^bmapkit: img: 3 of 16 blocks mapped' .err || fail "no info line without -q: $(cat .err)"
pass "without -q an info line reports the mapped blocks"
for args in "-q create" "--quiet create" "create -q" "create --quiet"; do
    # shellcheck disable=SC2086
    run_ok "$BMAPKIT" $args img -o q.bmap
    [ ! -s .err ] || fail "bmapkit $args printed: $(cat .err)"
    cmp a.bmap q.bmap || fail "bmapkit $args changed the bmap"
done
run_ok "$BMAPKIT" -q create img
[ ! -s .err ] || fail "-q with standard output printed on stderr"
cmp a.bmap .out || fail "-q changed the bmap on standard output"
pass "-q / --quiet, before or after the command, silences info output"

dd if=/dev/urandom of=full.img bs="$BS" count=4 status=none
run_ok "$BMAPKIT" -q create full.img -o full.bmap
grep -q '^bmapkit: warning: ' .err || fail "-q hid the warning about an image without holes"
[ "$(wc -l <.err)" -eq 1 ] || fail "-q: more than the warning printed: $(cat .err)"
expect_fail 1 "missing\.img" "$BMAPKIT" -q create missing.img
pass "-q keeps warnings and errors"

for args in "-d create" "--debug create" "create -d" "create --debug"; do
    # shellcheck disable=SC2086
    run_ok "$BMAPKIT" $args img -o d.bmap
    grep -Eq '^bmapkit: debug: mapped with (fiemap|seek)' .err ||
        fail "bmapkit $args printed no debug line: $(cat .err)"
    cmp a.bmap d.bmap || fail "bmapkit $args changed the bmap"
done
run_ok "$BMAPKIT" create img -o d.bmap
if grep -q 'debug' .err; then fail "debug output without -d"; fi
pass "-d / --debug, before or after the command, adds debug lines (and only then)"
