#!/usr/bin/env bash
# bmapkit copy output channels: --json-events to stdout and to a file, on success and on corrupt data; --psplash-pipe; -q.
source "$TESTS_DIR/lib.sh"

require_sparse_support "$WORK"
cd "$WORK"
[ "$BS" -eq 4096 ] || skip "the test images assume 4096-byte blocks, $WORK has $BS"
MiB=$((1024 * 1024))

new_sparse good.img $((40 * MiB + 1000))
put_blocks good.img 0 8
put_blocks good.img 100 3
put_blocks good.img 1000 2000
put_blocks good.img 5000 1
put_random good.img $((10240 * 4096)) 1000
gen_bmap 2.0 good.img good.bmap
gen_bmap 1.2 good.img good12.bmap
[ "$(bmap_range_count good.bmap)" -eq 5 ] || fail "expected 5 ranges in good.bmap"
cp --sparse=always good.img bad.img
put_byte bad.img $((1500 * 4096 + 7)) "$(printf '%02x' $(((0x$(od -An -tx1 -j $((1500 * 4096 + 7)) -N1 good.img | tr -d ' ') + 1) % 256)))"
! cmp -s good.img bad.img || fail "bad.img is not corrupt"

# --- --json-events -: stdout holds the events only
for b in good.bmap good12.bmap; do
    rm -f out.img
    run_ok "$BMAPKIT" copy --json-events - --bmap "$b" good.img out.img
    n=$(json_events_check .out "$b" ok) || fail "--json-events - with $b"
    cmp good.img out.img || fail "copy with --json-events differs"
    pass "--json-events - ($b): $n events, start first, 5 verified ranges, totals match"
done

# --- --json-events FILE: stdout stays empty
rm -f out.img
run_ok "$BMAPKIT" copy --json-events events.json --bmap good.bmap good.img out.img
[ ! -s .out ] || fail "--json-events FILE wrote to standard output"
n=$(json_events_check events.json good.bmap ok) || fail "--json-events FILE"
pass "--json-events FILE: $n events, totals match, nothing on stdout"

# standard input as the source gives the same totals
rm -f out.img
run_ok "$BMAPKIT" copy --json-events events.json --bmap good.bmap - out.img <good.img
n=$(json_events_check events.json good.bmap ok) || fail "--json-events FILE from stdin"
pass "--json-events FILE, image on standard input: totals match"

# --- a corrupt image: error, then done with status failed, exit 3
for dest in stdout file; do
    rm -f out.img events.json
    rc=0
    if [ $dest = stdout ]; then
        "$BMAPKIT" copy --json-events - --bmap good.bmap bad.img out.img >events.json 2>.err || rc=$?
    else
        "$BMAPKIT" copy --json-events events.json --bmap good.bmap bad.img out.img >.out 2>.err || rc=$?
    fi
    [ "$rc" -eq 3 ] || { cat .err; fail "corrupt image with --json-events: exit $rc, expected 3"; }
    n=$(json_events_check events.json good.bmap failed 3) || fail "json events of a failed copy"
    grep -q '"event":"error".*1000-2999' events.json || fail "the error event does not name blocks 1000-2999"
    pass "corrupt image, events to $dest: exit 3, last events error then done failed"
done

# --- --psplash-pipe
mkfifo splash.fifo
cat splash.fifo >splash.out &
reader=$!
at_exit "kill $reader 2>/dev/null"
sleep 0.3
rm -f out.img
run_ok "$BMAPKIT" copy --psplash-pipe splash.fifo --bmap good.bmap good.img out.img
for _ in $(seq 50); do kill -0 $reader 2>/dev/null || break; sleep 0.1; done
! kill -0 $reader 2>/dev/null || fail "the psplash pipe was not closed"
wait $reader || fail "the psplash reader failed"
[ -s splash.out ] || fail "nothing arrived on the psplash pipe"
if grep -Ev '^PROGRESS [0-9]+$' splash.out >/dev/null; then
    grep -Ev '^PROGRESS [0-9]+$' splash.out | head -3
    fail "the psplash pipe got lines other than PROGRESS n"
fi
[ "$(tail -n 1 splash.out)" = "PROGRESS 100" ] || fail "the psplash pipe did not end with PROGRESS 100"
awk '{ if ($2 < prev || $2 > 100) exit 1; prev = $2 }' splash.out || fail "psplash percents not rising within 0..100"
cmp good.img out.img || fail "copy with --psplash-pipe differs"
pass "--psplash-pipe: $(wc -l <splash.out) PROGRESS lines ending with PROGRESS 100"

# a psplash pipe nobody reads does not stop the copy (best effort)
rm -f out.img
run_ok timeout 60 "$BMAPKIT" copy --psplash-pipe splash.fifo --bmap good.bmap good.img out.img
cmp good.img out.img || fail "copy with an unread psplash pipe differs"
pass "--psplash-pipe without a reader: the copy still completes"

# --- -q: nothing on stderr for a successful copy
for q in -q --quiet; do
    rm -f out.img
    run_ok "$BMAPKIT" copy $q --bmap good.bmap good.img out.img
    [ ! -s .err ] || { cat .err; fail "$q printed on stderr"; }
    [ ! -s .out ] || fail "$q printed on stdout"
    cmp good.img out.img || fail "copy with $q differs"
    pass "$q: nothing printed for a successful copy"
done
# ... but the error still shows with -q
rm -f out.img
expect_fail 3 '1000-2999' "$BMAPKIT" copy -q --bmap good.bmap bad.img out.img
pass "-q: the error of a corrupt copy is still printed"
# without -q there is a summary on stderr
rm -f out.img
run_ok "$BMAPKIT" copy --bmap good.bmap good.img out.img
[ -s .err ] || fail "no summary without -q"
pass "without -q: a summary on stderr"
