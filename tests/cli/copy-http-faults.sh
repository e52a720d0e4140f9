#!/bin/bash
# bmapkit copy from http:// when the network misbehaves: fault_proxy.py, between bmapkit
# and an nginx the test starts on 127.0.0.1, cuts an answer off, answers 500 once or for
# good, or stalls; nginx's limit_rate makes a slow server that keeps sending; a socket
# that never accepts makes connecting time out. Each case checks the exit status and its
# one error line; also the bytes fetched in the JSON events and on the progress bar.
source "$TESTS_DIR/lib.sh"
source "$TESTS_DIR/nginx_lib.sh"
require_tools nginx python3

cd "$WORK"
# A 16 MiB image: 64 KiB at 0 (the head), 1 MiB at 4 MiB, 1 MiB at 8 MiB; holes elsewhere.
new_sparse img 16M
put_random img 0 65536
put_random img $((4 << 20)) $((1 << 20))
put_random img $((8 << 20)) $((1 << 20))
$BMAPKIT -q create -o img.bmap img
size=$(stat -c %s img)
mkdir -p www/slow
cp img img.bmap www/
cp img img.bmap www/slow/

# wait_file FILE: until FILE is there and not empty (a helper's port), at most 20 s.
wait_file() {
    local i
    for ((i = 0; i < 200; i++)); do
        [ -s "$1" ] && return 0
        sleep 0.1
    done
    fail "$1 did not appear"
}

nginx_server port --root www --log access.log 'location /slow/ { limit_rate 64k; }'
start_nginx

# proxy ARGS...: (re)start fault_proxy.py for /img with ARGS; its port in $pport, its
# log in proxy.log (emptied).
proxy_pid=
stop_proxy() {
    if [ -n "$proxy_pid" ]; then
        kill "$proxy_pid" 2>/dev/null || true
        wait "$proxy_pid" 2>/dev/null || true
    fi
    proxy_pid=
}
at_exit 'stop_proxy'
proxy() {
    stop_proxy
    rm -f proxy.port
    : >proxy.log
    python3 "$TESTS_DIR/fault_proxy.py" --upstream "$port" --port-file proxy.port \
        --log proxy.log --path /img "$@" &
    proxy_pid=$!
    wait_file proxy.port
    pport=$(cat proxy.port)
}

head_absent() {
    if cmp -s -n 65536 img "$1"; then fail "$1 holds the image's head after a failed copy"; fi
}

# fetched_check EVENTS: the done event carries "fetched", a number > 0 and <= the file
# size, and so do the progress events, never decreasing.
fetched_check() {
    python3 - "$1" "$size" <<'EOF' || fail "the bytes fetched in $1 are wrong"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
size = int(sys.argv[2])
done = ev[-1]
assert done["event"] == "done", done
f = done.get("fetched")
if not isinstance(f, int) or isinstance(f, bool) or not 0 < f <= size:
    sys.exit("done event: fetched %r, expected a number from 1 to %d" % (f, size))
prog = [e.get("fetched") for e in ev if e["event"] == "progress"]
if not prog or any(not isinstance(x, int) for x in prog) or prog != sorted(prog) or prog[-1] > f:
    sys.exit("progress events: fetched %r" % prog)
print(f)
EOF
}

# --- (1) the connection cut after 100000 bytes of an answer, once: the copy resumes with
# a Range request from the byte reached and succeeds.
proxy --cut 2:100000
rm -f out
run_ok $BMAPKIT copy --json-events ev.json "http://127.0.0.1:$pport/img" out
cmp img out || fail "the copy resumed after a cut differs from the image"
cut=$(grep '^CUT ' proxy.log) || { cat proxy.log; fail "the proxy cut no answer"; }
read -r _ n start bytes <<<"$cut"
resume=$((start + bytes))
grep -Eq "^REQ [0-9]+ GET /img bytes=$resume-" proxy.log ||
    { cat proxy.log; fail "no Range request from byte $resume after the cut at request $n"; }
got=$(fetched_check ev.json)
json_events_check ev.json img.bmap ok >/dev/null || fail "events of the resumed copy"
pass "an answer cut after $bytes bytes (from byte $start): resumed with Range from $resume, image verified, $got bytes fetched"

# --- (2) 500 on the 3rd request, once: tried again, the copy succeeds.
proxy --fail 3
rm -f out
run_ok $BMAPKIT copy "http://127.0.0.1:$pport/img" out
cmp img out || fail "the copy after a 500 differs from the image"
grep -q '^FAIL 3$' proxy.log || { cat proxy.log; fail "the proxy did not answer 500"; }
failed=$(awk '$1 == "REQ" && $2 == 3 { print $5 }' proxy.log)
again=$(awk -v r="$failed" '$1 == "REQ" && $2 > 3 && $5 == r' proxy.log)
[ -n "$again" ] || { cat proxy.log; fail "the request that got 500 ($failed) was not sent again"; }
pass "500 on the 3rd request ($failed): sent again, image verified"

# --- (3) 500 on every request from the 3rd: fails after --retries, one line with the
# URL without its password, the status, the tries and the bytes received; no head.
proxy --fail-from 3
rm -f out
t0=$(date +%s)
expect_fail 1 "http://user@127\.0\.0\.1:$pport/img: .*500.*tried 3 times.*[0-9]+ bytes received" \
    $BMAPKIT -q copy --retries 2 --json-events ev.json "http://user:secret@127.0.0.1:$pport/img" out
! grep -q secret "$WORK/.ef.err" ev.json || fail "the password appears in the error or the events"
head_absent out
json_events_check ev.json img.bmap failed 1 >/dev/null || fail "events of the failed copy"
tries=$(grep -c '^FAIL ' proxy.log)
[ "$tries" -ge 3 ] || fail "$tries answers of 500, expected at least 3 (--retries 2)"
pass "500 for good: $(grep -o 'img: .*' "$WORK/.ef.err" | head -c 100)"

# --- (4) a server that stalls: --stall-timeout 2 gives up in a few seconds. From its
# first answer on (that of opening the image, which is not tried again).
proxy --stall-from 1 --stall-bytes 0
rm -f out
t0=$(date +%s)
expect_fail 1 "127\.0\.0\.1:$pport/img: .*(too slow|stall).*[0-9]+ bytes received" \
    $BMAPKIT -q copy --stall-timeout 2 "http://127.0.0.1:$pport/img" out
t=$(($(date +%s) - t0))
[ "$t" -le 10 ] || fail "a stalled server was given up after $t s with --stall-timeout 2"
grep -q '^STALL 1$' proxy.log || fail "the proxy did not stall"
pass "a server that stalls at once, --stall-timeout 2: failed after $t s"

# In the middle of the copy, after 1000 bytes of the 3rd answer: every transfer stalls,
# each tried twice (--retries 1).
proxy --stall-from 3 --stall-bytes 1000
rm -f out
t0=$(date +%s)
expect_fail 1 "127\.0\.0\.1:$pport/img: .*(too slow|stall).*tried 2 times.*[0-9]+ bytes received" \
    $BMAPKIT -q copy --stall-timeout 2 --retries 1 "http://127.0.0.1:$pport/img" out
t=$(($(date +%s) - t0))
[ "$t" -le 40 ] || fail "a stalled server was given up after $t s with --stall-timeout 2"
grep -q '^STALL 3$' proxy.log || fail "the proxy did not stall"
head_absent out
pass "a server that stalls during the copy, --stall-timeout 2 --retries 1: failed after $t s"
stop_proxy

# --- (4b) SIGTERM while the server stalls, with the default --stall-timeout (60 s):
# exit 4 at once, none of the image's head written. A raw image is fetched ahead by
# several requests (the 3rd and later stall); a gzip image is one stream, pulled in
# order (it stalls after 200000 bytes); a multi-block xz has its blocks fetched ahead
# for the decoder's threads.
gzip -c img >www/img.gz
# term_during_stall WHAT PATH PROXY-ARGS...
term_during_stall() {
    local what=$1 path=$2
    shift 2
    proxy --path "$path" "$@"
    rm -f out
    $BMAPKIT -q copy --bmap img.bmap "http://127.0.0.1:$pport$path" out 2>term.err &
    local copy=$! i rc=0
    for ((i = 0; i < 200; i++)); do
        grep -q '^STALL' proxy.log && break
        sleep 0.1
    done
    grep -q '^STALL' proxy.log || fail "$what: the proxy did not stall"
    sleep 0.5
    kill -0 "$copy" 2>/dev/null || { cat term.err; fail "$what: bmapkit ended before the SIGTERM"; }
    local t0=$SECONDS
    kill -TERM "$copy"
    wait "$copy" || rc=$?
    local t=$((SECONDS - t0))
    [ "$rc" -eq 4 ] || { cat term.err; fail "$what: SIGTERM during a stall gave exit status $rc, not 4"; }
    [ "$t" -le 5 ] || fail "$what: bmapkit took $t s to stop after SIGTERM during a stall"
    if [ -e out ]; then head_absent out; fi
    pass "$what: SIGTERM while the server stalls: exit 4 after $t s, no image head"
    stop_proxy
}
term_during_stall "raw image fetched ahead" /img --stall-from 3 --stall-bytes 1000
term_during_stall "gzip image streamed" /img.gz --stall-from 1 --stall-bytes 200000
xz -T2 --block-size=1MiB -c img >www/img.xz
term_during_stall "multi-block xz, its blocks fetched ahead" /img.xz --stall-from 3 --stall-bytes 1000

# --- (5) a slow server that keeps sending (64 KiB/s a connection): no stall, the copy
# succeeds. On a terminal 120 columns wide, the bar shows the network's rate.
rm -f out
t0=$(date +%s)
python3 - "$BMAPKIT" "http://127.0.0.1:$port/slow/img" out >bar.txt <<'EOF' || { cat bar.txt; fail "the copy from a slow server failed"; }
import fcntl, os, pty, struct, subprocess, sys, termios
master, slave = pty.openpty()
fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
p = subprocess.Popen([sys.argv[1], "copy", "--stall-timeout", "2", sys.argv[2], sys.argv[3]],
                     stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
os.close(slave)
out = b""
while True:
    try:
        chunk = os.read(master, 65536)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
sys.stdout.write(out.decode("utf-8", "replace"))
sys.exit(p.wait())
EOF
t=$(($(date +%s) - t0))
cmp img out || fail "the copy from a slow server differs from the image"
[ "$t" -ge 3 ] || fail "the slow server sent 2 MiB in $t s: limit_rate did not slow it down"
tr '\r' '\n' <bar.txt | grep -Eq '100%.*/s .*net +[0-9.]+ [KMG]?i?B/s' ||
    { cat -v bar.txt; fail "the bar does not show the network's rate"; }
grep -q "fetched .* from the network" bar.txt || fail "the summary does not say what was fetched"
pass "a slow server (limit_rate 64k), --stall-timeout 2: copied in $t s, the bar shows 'net ...'"

# --- (6) a port whose listening socket never accepts: --connect-timeout gives up.
cat >blackhole.py <<'EOF'
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(0)
port = s.getsockname()[1]
# Fill the queue of a backlog of 0: later handshakes get no answer.
held = []
for _ in range(3):
    c = socket.socket()
    c.setblocking(False)
    c.connect_ex(("127.0.0.1", port))
    held.append(c)
time.sleep(0.3)
open(sys.argv[1] + ".tmp", "w").write("%d\n" % port)
import os
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(600)
EOF
python3 blackhole.py bh.port &
bh=$!
at_exit "kill $bh 2>/dev/null"
wait_file bh.port
t0=$(date +%s)
expect_fail 1 "127\.0\.0\.1:$(cat bh.port)/img: .*(after 2[0-9]{3} ms|[Tt]ime.?out|timed out)" \
    $BMAPKIT copy --nobmap --connect-timeout 2 "http://127.0.0.1:$(cat bh.port)/img" out
t=$(($(date +%s) - t0))
[ "$t" -le 10 ] || fail "connecting was given up after $t s with --connect-timeout 2"
kill $bh 2>/dev/null || true
pass "a server that never accepts, --connect-timeout 2: failed after $t s"

# --- bad values: one line naming the option.
expect_fail 2 "--connect-timeout takes" $BMAPKIT copy --connect-timeout 0 img out
expect_fail 2 "--stall-timeout takes" $BMAPKIT copy --stall-timeout x img out
expect_fail 2 "--retries takes" $BMAPKIT copy --retries 101 img out
expect_fail 2 "--retries takes" $BMAPKIT copy --retries -1 img out
pass "bad values of --connect-timeout, --stall-timeout and --retries are named"
