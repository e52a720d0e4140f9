#!/usr/bin/env bash
# bmapkit copy --psplash-pipe: the reader of the FIFO gets "PROGRESS N" for every whole
# percent from 0 to 100, each once and in order, also when the copy's progress jumps
# several percent at a time and when the reader comes only after the copy began; a
# path that is not a FIFO is left alone with a warning.
source "$TESTS_DIR/lib.sh"

require_tools python3 timeout
cd "$WORK"
MiB=$((1024 * 1024))

# 8 MiB of data in 16 MiB, as 512 ranges.
new_sparse img $((16 * MiB))
python3 - img <<'EOF'
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
for off in range(0, 16 << 20, 32768):
    os.pwrite(fd, os.urandom(16384), off)
os.close(fd)
EOF
"$BMAPKIT" create -q img -o img.bmap
seq 0 100 | sed 's/^/PROGRESS /' >all.expected

# expect_all FILE WHAT: FILE holds PROGRESS 0 to PROGRESS 100, each once, in order.
expect_all() {
    if ! cmp -s all.expected "$1"; then
        diff all.expected "$1" | head -10 || true
        fail "$2: the psplash reader did not get every percent from 0 to 100 once, in order"
    fi
}

mkfifo splash.fifo

# --- a reader from the start; a copy whose progress moves in steps of many percent
timeout 60 cat splash.fifo >splash.out &
reader=$!
at_exit "kill $reader 2>/dev/null"
sleep 0.3
run_ok "$BMAPKIT" copy --json-events events.json --psplash-pipe splash.fifo --bmap img.bmap img out.img
wait $reader || fail "the psplash reader failed or was not let go"
cmp img out.img || fail "the copy with --psplash-pipe differs"
steps=$(grep -c '"event":"progress"' events.json)
[ "$steps" -lt 50 ] || fail "the copy reported its progress $steps times: the test needs jumps"
expect_all splash.out "reader from the start"
! grep -q 'warning\|error' .err || fail "unexpected messages: $(cat .err)"
pass "reader from the start: PROGRESS 0..100, each once, in order ($steps progress reports)"

# --- the reader comes after the copy began (psplash started late): it gets what it
# missed first, then the rest
rm -f out.img image.fifo
mkfifo image.fifo
# The image over about four seconds, in 64 KiB pieces.
python3 - img image.fifo <<'EOF' &
import sys, time
data = open(sys.argv[1], "rb").read()
with open(sys.argv[2], "wb") as out:
    for i in range(0, len(data), 65536):
        out.write(data[i:i + 65536])
        out.flush()
        time.sleep(4 / (len(data) / 65536))
EOF
feeder=$!
at_exit "kill $feeder 2>/dev/null"
rc=0
"$BMAPKIT" copy --json-events late.json --psplash-pipe splash.fifo --bmap img.bmap image.fifo out.img \
    >late.out 2>late.err &
copier=$!
# Once the copy reported a percent above 0 without a reader, the reader starts.
for _ in $(seq 300); do
    grep -q '"percent":[1-9]' late.json 2>/dev/null && break
    sleep 0.05
done
grep -q '"percent":[1-9]' late.json || fail "the slow copy reported no progress"
timeout 60 cat splash.fifo >late.splash &
reader=$!
wait $copier || rc=$?
wait $reader || fail "the late psplash reader failed or was not let go"
wait $feeder || true
[ "$rc" -eq 0 ] || { cat late.err; fail "the copy with a late psplash reader: exit $rc"; }
cmp img out.img || fail "the copy with a late psplash reader differs"
expect_all late.splash "late reader"
[ "$(grep -c 'warning: cannot open psplash pipe splash.fifo: No such device or address' late.err)" -eq 1 ] ||
    { cat late.err; fail "expected one warning about the psplash pipe without a reader"; }
pass "reader started at $(grep -o '"percent":[1-9][0-9]*' late.json | head -1 | cut -d: -f2)%: it still gets PROGRESS 0..100, each once, in order"

# --- not a FIFO: left alone, with a warning
: >plain.file
rm -f out.img
run_ok "$BMAPKIT" copy --psplash-pipe plain.file --bmap img.bmap img out.img
[ ! -s plain.file ] || fail "progress was written into the regular file plain.file"
grep -qx 'bmapkit: warning: plain.file is not a FIFO: no progress is sent to psplash' .err ||
    { cat .err; fail "no warning about plain.file not being a FIFO"; }
cmp img out.img || fail "the copy with a regular file as psplash pipe differs"
pass "a regular file as psplash pipe: one warning, the file untouched, the copy done"
