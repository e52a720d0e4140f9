#!/usr/bin/env bash
# bmapkit copy to a U-Boot UMS disk on fake sysfs trees: DEST ums, ums:SEL, --ums[=SEL]; one, two, none; identity printed; JSON device event.
source "$TESTS_DIR/lib.sh"
source "$TESTS_DIR/fake_sysfs.sh"
require_tools python3
cd "$WORK"

new_sparse img 4M
put_random img 0 65536
put_random img 2097152 65536
"$BMAPKIT" create -o img.bmap img 2>/dev/null

# One UMS disk (LUN 0, port 1-2), an ordinary USB stick and an NVMe disk holding /.
R=$WORK/one
fake_tree "$R"
fake_ums "$R" sdb 8:16 0 1-2 0123456789
fake_usb_stick "$R" sdc 8:32 1-3 SanDisk "Ultra Fit"
fake_disk "$R" nvme0n1 259:0 1000215216 pci0000:00/0000:00:1d.0/0000:3d:00.0/nvme/nvme0 0 - \
    "Samsung SSD 970 EVO" S4EWNX0R
fake_part "$R" nvme0n1 nvme0n1p1 259:1 999000000
fake_mount "$R" 259:1 / /dev/nvme0n1p1

for dest in "ums" "ums:0" "ums:1-2" "ums:0123456789" "--ums" "--ums=0" "--ums=1-2"; do
    : >"$R/dev/sdb"
    : >"$R/dev/sdc"
    if [ "${dest#--}" != "$dest" ]; then
        BMAPKIT_SYSROOT=$R run_ok "$BMAPKIT" copy "$dest" img
    else
        BMAPKIT_SYSROOT=$R run_ok "$BMAPKIT" copy img "$dest"
    fi
    cmp img "$R/dev/sdb" || fail "$dest: the image did not reach the UMS disk"
    [ ! -s "$R/dev/sdc" ] || fail "$dest: the USB stick was written"
    grep -q '^bmapkit: U-Boot UMS disk (LUN 0) /dev/sdb: Linux UMS disk 0, 8.0 MiB, USB port 1-2, serial 0123456789$' .err ||
        { cat .err; fail "$dest: identity line"; }
    # The identity comes before the copy starts.
    id=$(grep -n 'U-Boot UMS disk (LUN' .err | cut -d: -f1)
    cp=$(grep -n '^bmapkit: copying' .err | cut -d: -f1)
    [ "$id" -lt "$cp" ] || fail "$dest: identity printed after the copy started"
    ! grep -q 'waiting' .err || fail "$dest: waited although the disk was there"
    pass "copy to $dest: the UMS disk was picked, identity printed first, stick untouched"
done

# -q: no identity line, no waiting lines
: >"$R/dev/sdb"
BMAPKIT_SYSROOT=$R run_ok "$BMAPKIT" -q copy img ums
[ ! -s .err ] || { cat .err; fail "-q printed something"; }
cmp img "$R/dev/sdb"
pass "-q: silent"

# JSON events: a device event before start
BMAPKIT_SYSROOT=$R run_ok "$BMAPKIT" copy --json-events ev.json img ums:0
python3 - ev.json "$R/dev/sdb" <<'PY' || fail "device event"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
names = [e["event"] for e in ev]
assert names[0] == "device" and names[1] == "start" and names[-1] == "done", names
d = ev[0]["device"]
assert d["path"] == "/dev/sdb" and d["ums_lun"] == 0 and d["usb_port"] == "1-2", d
assert d["vendor"] == "Linux" and d["model"] == "UMS disk 0" and d["size"] == 16384 * 512, d
assert d["serial"] == "0123456789", d
assert ev[1]["dest"] == sys.argv[2], ev[1]
assert ev[-1]["status"] == "ok"
PY
pass "--json-events: device event with identity, then start naming the resolved path"

# A selector that matches nothing waits, then fails; the USB stick is never picked.
start=$(date +%s%N)
BMAPKIT_SYSROOT=$R expect_fail 1 "no U-Boot UMS disk matching '1' appeared within 1 s" \
    "$BMAPKIT" -q copy --wait 1 img ums:1
ms=$((($(date +%s%N) - start) / 1000000))
[ "$ms" -lt 3000 ] || fail "--wait 1 took $ms ms"
BMAPKIT_SYSROOT=$R expect_fail 1 "no U-Boot UMS disk matching 'SanDisk'" \
    "$BMAPKIT" -q copy --wait 0 --ums=SanDisk img
BMAPKIT_SYSROOT=$R expect_fail 1 "no U-Boot UMS disk matching '1-3'" \
    "$BMAPKIT" -q copy --wait 0 --ums=1-3 img
pass "selectors that match no UMS disk time out (--wait 1 in $ms ms); the USB stick is not a UMS disk"

# --- two UMS disks at once: refused and listed unless a selector picks one
T=$WORK/two
fake_tree "$T"
fake_ums "$T" sdb 8:16 0 1-2 AAAA1111
fake_ums "$T" sdd 8:48 1 3-1.4 BBBB2222 32768
fake_usb_stick "$T" sdc 8:32 1-3 SanDisk "Ultra Fit"
for dest in ums ums:; do
    rc=0
    BMAPKIT_SYSROOT=$T "$BMAPKIT" copy img $dest >.out 2>.err || rc=$?
    [ "$rc" -eq 1 ] || { cat .err; fail "two UMS disks, $dest: exit $rc, expected 1"; }
    grep -q '^bmapkit: error: 2 U-Boot UMS disks are present; pick one with --ums=LUN, --ums=SERIAL or --ums=PORT' .err ||
        { cat .err; fail "two UMS disks: error line"; }
    grep -Eq '^  /dev/sdb +LUN 0  serial AAAA1111  port 1-2  8\.0 MiB$' .err || { cat .err; fail "sdb not listed"; }
    grep -Eq '^  /dev/sdd +LUN 1  serial BBBB2222  port 3-1\.4  16\.0 MiB$' .err || { cat .err; fail "sdd not listed"; }
    ! grep -q sdc .err || fail "the USB stick was listed as a UMS disk"
    [ ! -s "$T/dev/sdb" ] && [ ! -s "$T/dev/sdd" ] || fail "written although refused"
    [ ! -s .out ] || fail "stdout not empty"
done
pass "two UMS disks: refused, exit 1, both listed with LUN, serial and port"

for sel in "ums:1" "ums:3-1.4" "ums:BBBB2222" "--ums=1" "--ums=BBBB2222"; do
    : >"$T/dev/sdb"
    : >"$T/dev/sdd"
    if [ "${sel#--}" != "$sel" ]; then
        BMAPKIT_SYSROOT=$T run_ok "$BMAPKIT" copy "$sel" img
    else
        BMAPKIT_SYSROOT=$T run_ok "$BMAPKIT" copy img "$sel"
    fi
    cmp img "$T/dev/sdd" || fail "$sel: not written to sdd"
    [ ! -s "$T/dev/sdb" ] || fail "$sel: sdb written"
    grep -q '(LUN 1) /dev/sdd: Linux UMS disk 1, 16.0 MiB, USB port 3-1.4, serial BBBB2222$' .err ||
        { cat .err; fail "$sel: identity"; }
    pass "two UMS disks, $sel picks LUN 1 on port 3-1.4"
done
: >"$T/dev/sdb"
BMAPKIT_SYSROOT=$T run_ok "$BMAPKIT" copy img ums:1-2
cmp img "$T/dev/sdb" || fail "ums:1-2 did not pick sdb"
pass "two UMS disks, ums:1-2 picks LUN 0"

# A disk still reading its capacity (size 0) or without its /dev node yet is not ready.
echo 0 >"$T/sys/class/block/sdd/size"
BMAPKIT_SYSROOT=$T run_ok "$BMAPKIT" copy --wait 0 img ums
grep -q '/dev/sdb:' .err || fail "size 0 UMS disk not skipped"
echo 32768 >"$T/sys/class/block/sdd/size"
rm "$T/dev/sdd"
BMAPKIT_SYSROOT=$T run_ok "$BMAPKIT" copy --wait 0 img ums
grep -q '/dev/sdb:' .err || fail "UMS disk without a /dev node not skipped"
pass "a UMS disk of size 0 or without its /dev node is not ready yet"

# --- none at all
N=$WORK/none
fake_tree "$N"
fake_usb_stick "$N" sdc 8:32 1-3 SanDisk "Ultra Fit"
start=$(date +%s%N)
BMAPKIT_SYSROOT=$N expect_fail 1 "no U-Boot UMS disk appeared within 1 s \(run 'ums 0 mmc 0'" \
    "$BMAPKIT" -q copy --wait 1 img ums
ms=$((($(date +%s%N) - start) / 1000000))
[ "$ms" -ge 900 ] && [ "$ms" -lt 3000 ] || fail "--wait 1 took $ms ms"
BMAPKIT_SYSROOT=$N expect_fail 1 "within 0 s" "$BMAPKIT" -q copy --wait 0 --ums img
[ ! -s "$N/dev/sdc" ] || fail "the USB stick was written"
pass "no UMS disk: clear error, exit 1, after the --wait timeout ($ms ms)"

# Checks of the image come first: a missing image or bmap fails before any waiting.
BMAPKIT_SYSROOT=$N expect_fail 1 "cannot open image nothing\.img: No such file" "$BMAPKIT" copy --wait 5 nothing.img ums
: >lonely.img
BMAPKIT_SYSROOT=$N expect_fail 1 "no bmap found for lonely\.img" "$BMAPKIT" copy --wait 5 lonely.img ums
pass "image and bmap are checked before waiting for the board"

# --- usage
expect_fail 2 "--ums replaces DEST" "$BMAPKIT" copy --ums img out.img
expect_fail 2 "--wait applies only to a UMS destination" "$BMAPKIT" copy --wait 5 img out.img
expect_fail 2 "--wait takes a number" "$BMAPKIT" copy --wait soon img ums
expect_fail 2 "copy needs an IMAGE$" "$BMAPKIT" copy --ums
pass "usage errors"
