#!/usr/bin/env bash
# SIGINT, SIGTERM and SIGHUP at many moments from process start to the end of a copy: every run ends with status 0 (a whole, verified copy) or 4 (interrupted, without the image's first MiB on the destination), never by a signal's default action; also blocked opening a FIFO. As root, the same on a loop device, whose I/O settings are back afterwards.
source "$TESTS_DIR/lib.sh"
require_tools python3 gzip
cd "$WORK"

# A gzip image takes long enough to be caught anywhere: reading the bmap, decoding,
# writing, flushing, writing the head.
new_sparse img 48M
put_random img 0 2M
put_random img 8M 16M
put_random img 40M 3M
"$BMAPKIT" create -q -o img.bmap img
gzip -1 -c img >img.gz

# The runs, from Python: it starts each copy with the three signals blocked, so that
# one sent before bmapkit's main is held until its handlers are in place (a shell could
# deliver it to the half-started process and kill it before any code of ours ran).
cat >signals.py <<'PY'
import os, signal, subprocess, sys, time

bmapkit, dest, mode = sys.argv[1], sys.argv[2], sys.argv[3]
SIGS = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]
# Milliseconds after the start: at once, while loading, reading the bmap, decoding
# and writing, and late (after the end for a fast machine: status 0 is right then).
DELAYS = [0, 0, 1, 2, 3, 5, 8, 12, 20, 30, 50, 80, 120, 180, 250, 350, 500, 700, 1000,
          1400, 2000, 3000]
head = open("img", "rb").read(1 << 20)
ok = interrupted = 0
for i, delay in enumerate(DELAYS):
    sig = SIGS[i % 3]
    if mode == "file" and os.path.exists(dest):
        os.unlink(dest)
    old = signal.pthread_sigmask(signal.SIG_BLOCK, SIGS)
    p = subprocess.Popen([bmapkit, "copy", "-q", "--bmap", "img.bmap", "img.gz", dest],
                         stderr=subprocess.PIPE)
    signal.pthread_sigmask(signal.SIG_SETMASK, old)
    time.sleep(delay / 1000)
    p.send_signal(sig)
    err = p.communicate()[1].decode()
    rc = p.returncode
    what = f"{signal.Signals(sig).name} after {delay} ms"
    if rc < 0:
        sys.exit(f"FAIL: {what}: killed by {signal.Signals(-rc).name} (default action)")
    if rc not in (0, 4):
        sys.exit(f"FAIL: {what}: exit status {rc}: {err.strip()}")
    lines = [l for l in err.splitlines() if l.startswith("bmapkit: error:")]
    got = open(dest, "rb").read(1 << 20) if os.path.exists(dest) else b""
    if rc == 4:
        if len(lines) != 1:
            sys.exit(f"FAIL: {what}: expected one error line, got: {err!r}")
        if got == head:
            sys.exit(f"FAIL: {what}: interrupted, yet the image's first MiB is on {dest}")
        interrupted += 1
    else:
        if subprocess.run(["cmp", "-s", "img", dest] if mode == "file" else
                          ["cmp", "-s", "-n", str(os.path.getsize("img")), "img", dest]).returncode:
            sys.exit(f"FAIL: {what}: status 0 but {dest} differs from the image")
        ok += 1
print(f"{len(DELAYS)} runs: {interrupted} interrupted (status 4), {ok} complete (status 0)")
if interrupted < len(DELAYS) // 2:
    sys.exit(f"FAIL: only {interrupted} of {len(DELAYS)} runs were interrupted: too fast to test")
PY

python3 signals.py "$BMAPKIT" out.img file || fail "signals during a copy to a file"
pass "signals at 22 moments of a copy to a file: status 0 or 4, never killed, no head after 4"

# Blocked opening a FIFO given as the image: no writer ever comes.
mkfifo fifo.img
"$BMAPKIT" copy -q --bmap img.bmap fifo.img fifo-out.img 2>fifo.err &
pid=$!
sleep 0.3
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
[ "$rc" -eq 4 ] || { cat fifo.err; fail "SIGTERM while opening a FIFO: exit status $rc"; }
[ "$(grep -c '^bmapkit: error: ' fifo.err)" -eq 1 ] || { cat fifo.err; fail "FIFO: one error line"; }
pass "SIGTERM while blocked opening a FIFO: status 4, one error line"

# --- a loop device: the same, and its I/O settings back after every run
if [ "$(id -u)" -ne 0 ]; then
    note_skip "loop device: attaching one needs root"
    exit 0
fi
truncate -s 64M disk.img
LOOP=$(losetup -f --show disk.img 2>/dev/null) || { note_skip "cannot attach a loop device"; exit 0; }
at_exit "losetup -d '$LOOP' 2>/dev/null"
NAME=${LOOP#/dev/}
sched=/sys/class/block/$NAME/queue/scheduler
ratio=/sys/class/block/$NAME/bdi/max_ratio
before="$(cat "$sched" 2>/dev/null) / $(cat "$ratio" 2>/dev/null)"
python3 signals.py "$BMAPKIT" "$LOOP" loop || fail "signals during a copy to $LOOP"
after="$(cat "$sched" 2>/dev/null) / $(cat "$ratio" 2>/dev/null)"
[ "$before" = "$after" ] || fail "$LOOP settings were '$before', are '$after' after the runs"
pass "signals during copies to $LOOP: status 0 or 4, no head after 4, settings restored ($after)"
