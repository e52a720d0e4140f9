#!/usr/bin/env bash
# bmapkit copy --json-events when the copy fails before it starts (missing image, bmap
# missing, malformed, with a wrong checksum or for another image, a signature that is
# not one, no UMS disk, an interruption while waiting, a refused destination): exactly
# one error event with the failure's class, its message and the exit status, then a
# done event, every line valid JSON with "schema":1; the exit status and the error line
# are the same as without --json-events. Also: events that cannot be written, and usage
# errors, which write none.
source "$TESTS_DIR/lib.sh"

require_tools python3 timeout
cd "$WORK"
MiB=$((1024 * 1024))

new_sparse img $((4 * MiB))
put_random img 0 $((64 * 1024))
put_random img $((2 * MiB)) $((128 * 1024))
"$BMAPKIT" create -q img -o img.bmap
cp --sparse=always img other.img
echo '<bmap version="2.0">' >malformed.bmap
# A changed range checksum: the bmap's own checksum no longer matches.
python3 - img.bmap sum.bmap <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
m = re.search(r'chksum="([0-9a-f])', text)
flip = "1" if m.group(1) == "0" else "0"
open(sys.argv[2], "w").write(text[:m.start(1)] + flip + text[m.end(1):])
EOF
! cmp -s img.bmap sum.bmap || fail "sum.bmap is not changed"
truncate -s $((3 * MiB)) short.img
cp img.bmap signed.bmap
echo "this is no signature" >signed.bmap.asc
mkdir -p sysroot/sys/class/block sysroot/sys/block sysroot/dev
mkfifo image.fifo

# events_check FILE CODE EXIT ERRLINE [started]: FILE holds JSON lines only, each with
# "schema":1; exactly one error event, of class CODE, exit EXIT and the message of
# ERRLINE (the error line without its prefix; up to its first ';' when it describes a
# destination's state), right before the last event, done, failed with exit EXIT. With
# "started" the first event is start; otherwise there is no start and no progress.
events_check() {
    python3 - "$@" <<'EOF'
import json, sys
path, code, status, errline = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
started = len(sys.argv) > 5 and sys.argv[5] == "started"
def bad(msg):
    print("events in %s: %s" % (path, msg), file=sys.stderr)
    sys.exit(1)
ev = []
for n, line in enumerate(open(path), 1):
    try:
        e = json.loads(line)
    except ValueError as x:
        bad("line %d is not JSON (%s): %r" % (n, x, line))
    if not isinstance(e, dict) or not isinstance(e.get("event"), str):
        bad("line %d is not an event: %r" % (n, line))
    if e.get("schema") != 1:
        bad("line %d has schema %r, not 1" % (n, e.get("schema")))
    ev.append(e)
errors = [e for e in ev if e["event"] == "error"]
if len(errors) != 1:
    bad("%d error events, expected 1" % len(errors))
err, done = errors[0], ev[-1]
if len(ev) < 2 or ev[-2] is not err:
    bad("the error event is not right before the last event")
if done["event"] != "done" or done.get("status") != "failed" or done.get("exit") != status:
    bad("last event %r, expected done, failed, exit %d" % (done, status))
if err.get("code") != code or err.get("exit") != status:
    bad("error event %r, expected code %s, exit %d" % (err, code, status))
prefix = "bmapkit: error: "
if not errline.startswith(prefix):
    bad("no error line on stderr")
if not errline[len(prefix):].startswith(err.get("message") or "\0"):
    bad("message %r is not the error line %r" % (err.get("message"), errline))
if started:
    if ev[0]["event"] != "start":
        bad("the first event is %r, not start" % ev[0]["event"])
elif any(e["event"] in ("start", "progress", "range") for e in ev):
    bad("start, progress or range events before the copy started")
EOF
}

# early NAME CODE EXIT PATTERN [started] -- COPY-ARGS...: the copy fails with EXIT and
# one error line matching PATTERN with events to standard output and to a file, and
# without events.
early() {
    local name=$1 code=$2 status=$3 pattern=$4 started= rc errline
    shift 4
    if [ "$1" = started ]; then
        started=started
        shift
    fi
    [ "$1" = -- ] && shift
    expect_fail "$status" "$pattern" "$BMAPKIT" copy "$@"
    errline=$(grep '^bmapkit: error: ' "$WORK/.ef.err")
    rc=0
    "$BMAPKIT" copy --json-events - "$@" >"$name.stdout.json" 2>"$name.stdout.err" || rc=$?
    [ "$rc" -eq "$status" ] || { cat "$name.stdout.err"; fail "$name: exit $rc with --json-events -, $status without"; }
    [ "$(grep '^bmapkit: error: ' "$name.stdout.err")" = "$errline" ] ||
        fail "$name: a different error line with --json-events -: $(cat "$name.stdout.err")"
    events_check "$name.stdout.json" "$code" "$status" "$errline" $started || fail "$name: events on standard output"
    rc=0
    "$BMAPKIT" copy --json-events "$name.json" "$@" >"$name.out" 2>"$name.err" || rc=$?
    [ "$rc" -eq "$status" ] || fail "$name: exit $rc with --json-events FILE, $status without"
    [ ! -s "$name.out" ] || fail "$name: --json-events FILE wrote to standard output"
    events_check "$name.json" "$code" "$status" "$errline" $started || fail "$name: events in a file"
    pass "$name: exit $status, one error event ($code), then done; the same error line as without events"
}

early missing-image io 1 'cannot open image nothing\.img: No such file' -- nothing.img out.img
# The image is named first, even when a bmap is given that is missing too.
early missing-both io 1 'cannot open image nothing\.img: No such file' -- --bmap nothing.bmap nothing.img out.img
early missing-bmap io 1 'cannot open bmap nothing\.bmap: No such file' -- --bmap nothing.bmap img out.img
early no-bmap-found io 1 'no bmap found for other\.img' -- other.img out.img
early malformed-bmap format 1 'malformed\.bmap' -- --bmap malformed.bmap img out.img
early bmap-checksum checksum 1 'sum\.bmap' -- --bmap sum.bmap img out.img
early wrong-image format 1 'short\.img is 3145728 bytes but the bmap describes an image of 4194304 bytes' \
    -- --bmap img.bmap short.img out.img
early bad-signature signature 1 'signature signed\.bmap\.asc: not an OpenPGP signature' \
    -- --bmap signed.bmap img out.img
early no-signature invalid 1 'no signature found but --fingerprint given' \
    -- --fingerprint 0123456789ABCDEF0123456789ABCDEF01234567 --bmap img.bmap img out.img
early stdin-without-bmap invalid 1 'standard input needs --bmap' -- - out.img </dev/null
BMAPKIT_SYSROOT="$WORK/sysroot" early no-ums-disk invalid 1 'no U-Boot UMS disk appeared within 0 s' \
    -- --bmap img.bmap --ums --wait 0 img
early refused-dest refused 1 'destination /dev/bmapkit-none does not exist' started \
    -- --bmap img.bmap img /dev/bmapkit-none
early own-input refused 1 'img' started -- --bmap img.bmap img img
cmp img other.img || fail "the image was changed by a copy onto itself"

# --- an interruption while waiting for the UMS disk, and while opening a FIFO nobody
# writes: exit 4 with the events saying so
for what in ums fifo; do
    if [ $what = ums ]; then
        set -- --bmap img.bmap --ums --wait 30 img
    else
        set -- --bmap img.bmap image.fifo out.img
    fi
    BMAPKIT_SYSROOT="$WORK/sysroot" "$BMAPKIT" copy --json-events int.json "$@" >int.out 2>int.err &
    pid=$!
    sleep 1
    kill -INT $pid
    rc=0
    wait $pid || rc=$?
    [ "$rc" -eq 4 ] || { cat int.err; fail "interrupted while waiting ($what): exit $rc, expected 4"; }
    [ "$(grep -c '^bmapkit: error: ' int.err)" -eq 1 ] || { cat int.err; fail "interrupted ($what): not one error line"; }
    code=cancelled
    [ $what = fifo ] && code=io
    events_check int.json $code 4 "$(grep '^bmapkit: error: ' int.err)" ||
        fail "interrupted while waiting ($what): events"
    pass "interrupted while waiting ($what): exit 4, one error event ($code, exit 4), then done"
done

# --- events that cannot be written: the error line only, and nothing else happens
expect_fail 1 'cannot open JSON events file nodir/events\.json: No such file' \
    "$BMAPKIT" copy --json-events nodir/events.json nothing.img out.img
[ ! -e out.img ] || fail "a copy whose events cannot be written created its destination"
pass "events file that cannot be created: one error line, exit 1"

# --- usage errors are not events: the command line was not understood
rm -f usage.json
expect_fail 2 "unknown option '--bogus'" "$BMAPKIT" copy --json-events usage.json --bogus img out.img
expect_fail 2 'copy needs an IMAGE and a DEST' "$BMAPKIT" copy --json-events usage.json img
[ ! -e usage.json ] || fail "a usage error wrote events"
pass "usage errors: exit 2, no events file"
