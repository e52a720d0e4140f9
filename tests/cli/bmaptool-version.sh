#!/usr/bin/env bash
# --version under the name bmaptool (as -Dinstall_bmaptool_name=true installs it): the
# reference release whose command line is accepted, in that release's one-line form, so
# that scripts reading its second or last word get a version they can compare; a person
# at a terminal also learns that it is bmapkit. Under its own name: "bmapkit X.Y.Z".
source "$TESTS_DIR/lib.sh"

require_tools script awk
cd "$WORK"
mkdir bin
ln -s "$BMAPKIT" bin/bmaptool

run_ok bin/bmaptool --version
[ "$(cat .out)" = "bmaptool 3.9.0" ] || fail "bmaptool --version printed '$(cat .out)'"
[ ! -s .err ] || fail "bmaptool --version wrote to stderr: $(cat .err)"
pass "bmaptool --version: exactly 'bmaptool 3.9.0' on stdout"

[ "$(bin/bmaptool --version | awk '{print $2}')" = 3.9.0 ] || fail "the second word is not 3.9.0"
[ "$(bin/bmaptool --version 2>&1 | awk '{ print $NF }')" = 3.9.0 ] || fail "the last word is not 3.9.0"
# As scripts that pick options by version compare it (the reference got --psplash-pipe
# in 3.6 and --removable-device, --keyring, --fingerprint in 3.9).
[ "$(printf '%s\n' 3.9 "$(bin/bmaptool --version | awk '{print $2}')" | sort -V | head -n 1)" = 3.9 ] ||
    fail "the version does not sort at or after 3.9"
pass "scripts reading the second or the last word get 3.9.0"

# Called through PATH, argv[0] is the bare name.
[ "$(PATH="$WORK/bin:$PATH" bmaptool --version)" = "bmaptool 3.9.0" ] ||
    fail "bmaptool --version through PATH printed something else"
pass "bmaptool --version through PATH: the same line"

# On a terminal a second line names the program.
script -q -e -c "bin/bmaptool --version" tty.out >/dev/null
tr -d '\r' <tty.out | grep -v '^Script ' >tty.txt
[ "$(head -n 1 tty.txt)" = "bmaptool 3.9.0" ] || fail "on a terminal the first line is '$(head -n 1 tty.txt)'"
grep -Eqx '\(bmapkit [0-9]+\.[0-9]+\.[0-9]+, accepting the command line of bmaptool 3\.9\.0\)' tty.txt ||
    { cat tty.txt; fail "on a terminal no line names bmapkit"; }
pass "on a terminal: a second line names bmapkit and the accepted command line"

run_ok "$BMAPKIT" --version
grep -Eqx 'bmapkit [0-9]+\.[0-9]+\.[0-9]+' .out || fail "bmapkit --version printed '$(cat .out)'"
ln -s "$BMAPKIT" bin/bmaptool-other
run_ok bin/bmaptool-other --version
grep -Eqx 'bmapkit [0-9]+\.[0-9]+\.[0-9]+' .out || fail "bmaptool-other --version printed '$(cat .out)'"
pass "under any other name: 'bmapkit X.Y.Z'"

run_ok bin/bmaptool --help
grep -q 'Compatible with the command line of bmaptool 3\.9\.0' .out || fail "--help does not name the reference release"
pass "--help names the reference release"
