#!/usr/bin/env bash
# bmapkit copy waiting for a U-Boot UMS disk on a fake sysfs tree: the board's disk appears while copy waits; countdown lines; Ctrl-C.
source "$TESTS_DIR/lib.sh"
source "$TESTS_DIR/fake_sysfs.sh"
require_tools script
cd "$WORK"

new_sparse img 4M
put_random img 0 65536
put_random img 3145728 4096
"$BMAPKIT" create -o img.bmap img 2>/dev/null

R=$WORK/root
fake_tree "$R"
fake_usb_stick "$R" sdc 8:32 1-3 SanDisk "Ultra Fit"
export BMAPKIT_SYSROOT=$R

# The board runs 'ums 0 mmc 0' about 1.5 s after copy started waiting.
plug_in_later() {
    (
        sleep 1.5
        # Built aside and moved in, so copy never sees half a disk.
        fake_tree "$WORK/staging"
        fake_ums "$WORK/staging" sdb 8:16 0 1-2 0123456789
        cp -a "$WORK/staging/sys/devices/pci0000:00/0000:00:14.0/usb1" "$R/sys/devices/pci0000:00/0000:00:14.0/"
        cp -a "$WORK/staging/dev/sdb" "$R/dev/"
        cp -a "$WORK/staging/sys/dev/block/8:16" "$R/sys/dev/block/"
        cp -a "$WORK/staging/sys/block/sdb" "$R/sys/block/"
        cp -a "$WORK/staging/sys/class/block/sdb" "$R/sys/class/block/"
        rm -rf "$WORK/staging"
    ) &
    PLUG_PID=$!
}

plug_in_later
start=$(date +%s%N)
run_ok "$BMAPKIT" copy --wait 20 img ums
wait "$PLUG_PID"
ms=$((($(date +%s%N) - start) / 1000000))
cmp img "$R/dev/sdb" || fail "the image did not reach the UMS disk that appeared"
[ ! -s "$R/dev/sdc" ] || fail "the USB stick was written"
[ "$ms" -ge 1400 ] && [ "$ms" -lt 10000 ] || fail "took $ms ms"
grep -q "^bmapkit: waiting up to 20 s for a U-Boot UMS disk (run 'ums 0 mmc 0' at the board's U-Boot prompt)$" .err ||
    { cat .err; fail "no waiting line"; }
! grep -q $'\r' .err || fail "carriage returns on a stderr that is not a terminal"
grep -q '^bmapkit: U-Boot UMS disk (LUN 0) /dev/sdb: Linux UMS disk 0, 8.0 MiB, USB port 1-2' .err ||
    { cat .err; fail "identity line"; }
pass "a UMS disk that appears after 1.5 s is found and written (in $ms ms), plain waiting line"

# With -q nothing is printed while waiting.
fake_remove "$R" sdb
plug_in_later
BMAPKIT_SYSROOT=$R run_ok "$BMAPKIT" -q copy --ums=1-2 --wait 20 img
wait "$PLUG_PID"
[ ! -s .err ] || { cat .err; fail "-q printed while waiting"; }
cmp img "$R/dev/sdb" || fail "-q: the image did not reach the UMS disk"
pass "-q: silent while waiting"

# On a terminal: a countdown line rewritten in place.
fake_remove "$R" sdb
# script(1) is required above; what may be missing here is a pseudo-terminal.
if script -qec true /dev/null >/dev/null 2>&1; then
    rc=0
    script -qec "'$BMAPKIT' copy --wait 2 img ums" /dev/null >tty.out 2>&1 || rc=$?
    [ "$rc" -eq 1 ] || { cat tty.out; fail "terminal: exit $rc, expected 1"; }
    grep -q $'\rbmapkit: waiting for a U-Boot UMS disk... 2 s left' tty.out || { cat -A tty.out; fail "no countdown at 2 s"; }
    grep -q $'\rbmapkit: waiting for a U-Boot UMS disk... 1 s left' tty.out || { cat -A tty.out; fail "no countdown at 1 s"; }
    grep -q 'error: no U-Boot UMS disk appeared within 2 s' tty.out || { cat -A tty.out; fail "terminal: error"; }
    pass "terminal: countdown rewritten in place, then the timeout error"
else
    note_skip "script(1) cannot give the command a terminal here"
fi

# Interrupted while waiting: exit 4.
"$BMAPKIT" copy --wait 30 img ums >.out 2>.err &
pid=$!
sleep 0.7
kill -INT "$pid"
rc=0
wait "$pid" || rc=$?
[ "$rc" -eq 4 ] || { cat .err; fail "interrupted wait: exit $rc, expected 4"; }
grep -q '^bmapkit: error: interrupted while waiting for a U-Boot UMS disk$' .err || { cat .err; fail "interrupted: message"; }
pass "SIGINT while waiting: exit 4"
