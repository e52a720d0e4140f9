#!/bin/bash
# bmapkit copy IMAGE DEST DEST...: files, loop devices (root) and NBD exports at once,
# --readback on each; one destination failing mid-way while the others finish and verify;
# a too small one left alone while the others are written, the same one twice refused; JSON events
# naming each destination; ums:all and ums:all=N on a fake sysfs tree.
source "$TESTS_DIR/lib.sh"
source "$TESTS_DIR/fake_sysfs.sh"
source "$TESTS_DIR/nbdkit_lib.sh"
require_tools nbdkit nbdcopy xz python3

cd "$WORK"
# A 48 MiB image: data at 0 (the head), at 1 MiB, and 6 MiB at 20 MiB; holes elsewhere.
new_sparse img 48M
put_random img 0 65536
put_random img $((1 << 20)) $((2 << 20))
put_random img $((20 << 20)) $((6 << 20))
$BMAPKIT -q create -o img.bmap img
xz -T2 -k -c img >img.xz
mapped=$(bmap_mapped_bytes img.bmap)

export_equals() {
    rm -f "$WORK/got.raw"
    nbdcopy "$(uri "$1")" "$WORK/got.raw"
    cmp -n "$(stat -c %s img)" img "$WORK/got.raw" || fail "export $1 does not hold the image"
}
no_head() { ! cmp -s -n 65536 img "$1" || fail "$1 holds the image's head"; }

# dest_events FILE WANT...: the dest-done events of FILE, as "DEST STATUS" lines, equal
# WANT (in order); every dest-done event has its fields, and "done" comes last.
dest_events() {
    local f=$1
    shift
    python3 - "$f" "$mapped" "$@" <<'PY' || fail "events in $f"
import json, sys
path, mapped, want = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
ev = [json.loads(l) for l in open(path)]
assert ev[0]["event"] == "start" and ev[-1]["event"] == "done", [e["event"] for e in ev]
dd = [e for e in ev if e["event"] == "dest-done"]
got = ["%s %s" % (e["dest"], e["status"]) for e in dd]
assert got == want, (got, want)
for e in dd:
    for k in ("bytes_written", "seconds", "verification", "error", "exit", "head_written"):
        assert k in e, (k, e)
    if e["status"] == "ok":
        assert e["bytes_written"] == mapped and e["verification"] == "verified", e
        assert e["error"] is None and e["head_written"], e
    else:
        assert e["error"]["message"] and e["error"]["code"] and e["exit"] != 0, e
        assert not e["head_written"], e
dests = [e for e in ev if e["event"] == "destinations"]
assert len(dests) == 1 and dests[0]["dests"] == [w.split(" ")[0] for w in want], dests
PY
}

# one_error_line ERR PATTERN: ERR holds exactly one error line, and it matches PATTERN.
one_error_line() {
    [ "$(grep -c '^bmapkit: error: ' "$1")" = 1 ] || { cat "$1"; fail "not one error line"; }
    grep '^bmapkit: error: ' "$1" | grep -q -- "$2" ||
        { cat "$1"; fail "the error line does not match /$2/"; }
}
# verified_beside ERR TAIL FILE...: each FILE holds the image, and ERR its summary line
# ending in TAIL (a basic regular expression), although another destination failed.
verified_beside() {
    local err=$1 tail=$2 f
    shift 2
    for f in "$@"; do
        cmp img "$f" || fail "$f does not hold the image although only another destination failed"
        grep -q "^bmapkit: $f: wrote 8.1 MiB in [0-9.]* s, verified$tail\$" "$err" ||
            { cat "$err"; fail "$f is not reported verified"; }
    done
}

# --- three files and an NBD export, from the .xz, with --readback.
serve --log mem memory 64M
run_ok $BMAPKIT copy --readback --json-events ev.json img.xz --bmap img.bmap a.img b.img c.img "$(uri mem)"
for f in a.img b.img c.img; do
    cmp img "$f" || fail "$f does not hold the image"
    grep -q "^bmapkit: $f: wrote 8.1 MiB in [0-9.]* s, verified, read back 3 range(s)$" .err ||
        { cat .err; fail "no summary line for $f"; }
done
export_equals mem
grep -q "^bmapkit: $(uri mem): wrote 8.1 MiB in [0-9.]* s, verified, read back" .err ||
    { cat .err; fail "no summary line for the NBD export"; }
[ "$(grep -c 'Read ' mem.log)" -gt 0 ] || fail "the NBD export was not read back"
dest_events ev.json "a.img ok" "b.img ok" "c.img ok" "$(uri mem) ok"
pass "three files and an NBD export from one .xz, each read back and summarised"
stop mem

# --- the same destination twice, by the same name or another: refused, nothing created.
rm -f a.img b.img c.img
expect_fail 1 "the destination a.img is given twice" $BMAPKIT copy img a.img b.img a.img
[ ! -e a.img ] && [ ! -e b.img ] || fail "a destination was created although the copy was refused"
: >a.img
expect_fail 1 "the destinations a.img and \./a.img are the same" $BMAPKIT copy img a.img ./a.img
[ ! -s a.img ] || fail "a.img was written"
ln -s a.img link.img
expect_fail 1 "the destinations a.img and link.img are the same" $BMAPKIT copy img a.img link.img
pass "the same destination twice, as the same or another name: refused before anything"

# --- a too small destination among several: one line naming it, and it is left alone;
# the others are written and verified, and the exit status says one failed.
serve --log small memory 16M
rm -f a.img b.img
rc=0
$BMAPKIT copy --json-events ref.json img "$(uri small)" a.img b.img >small.out 2>small.err || rc=$?
[ "$rc" = 1 ] || { cat small.err; fail "exit status $rc with a too small destination, expected 1"; }
one_error_line small.err "destination .*small.sock.* is too small.*this destination is left alone"
verified_beside small.err "" a.img b.img
grep -q "^bmapkit: 2 of 3 destinations written$" small.err ||
    { cat small.err; fail "no count of those written"; }
[ "$(grep -c 'Write ' small.log)" = 0 ] || fail "the too small export was written to"
dest_events ref.json "$(uri small) refused" "a.img ok" "b.img ok"
# Every one refused (too small, a folder that does not exist): one line each, then one
# saying that nothing was written.
rc=0
$BMAPKIT copy --json-events ref2.json img "$(uri small)" "$WORK/no/such/dir/x.img" 2>small.err || rc=$?
[ "$rc" = 1 ] || { cat small.err; fail "exit status $rc when every destination is refused"; }
[ "$(grep -c '^bmapkit: error: ' small.err)" = 3 ] &&
    grep -q "^bmapkit: error: .*small.sock.* is too small" small.err &&
    grep -q "^bmapkit: error: .*no/such/dir/x.img" small.err &&
    [ "$(tail -n 1 small.err)" = "bmapkit: error: every destination was refused; nothing was written" ] ||
    { cat small.err; fail "not one line for each refusal, then one saying nothing was written"; }
json_events_check ref2.json img.bmap failed 1 >/dev/null || fail "events of the refusals"
[ "$(grep -c 'Write ' small.log)" = 0 ] || fail "the too small export was written to"
pass "a too small destination among several: one line, left alone, the others written"
stop small

# --- one destination failing mid-way: an NBD export whose writes fail from when the
# trigger file appears (slowed down so the copy is still running); the others finish.
rm -f a.img b.img trigger
serve bad -t 1 --filter=error --filter=delay --filter=log memory 64M delay-write=150ms \
    error-pwrite-rate=1 error-pwrite-file="$WORK/trigger" logfile="$WORK/bad.log"
rc=0
$BMAPKIT copy --readback --json-events bad.json img a.img "$(uri bad)" b.img >bad.out 2>bad.err &
copy=$!
for _ in $(seq 200); do
    [ "$(grep -c 'Write id=.*\.\.\.' bad.log 2>/dev/null)" -ge 3 ] && break
    sleep 0.05
done
touch trigger
wait $copy || rc=$?
[ "$rc" = 1 ] || { cat bad.err; fail "exit status $rc with one failed destination, expected 1"; }
one_error_line bad.err "bad.sock.*Input/output error.*holds an incomplete copy"
verified_beside bad.err ", read back 3 range(s)" a.img b.img
dest_events bad.json "a.img ok" "$(uri bad) failed" "b.img ok"
rm -f trigger
nbdcopy "$(uri bad)" got.raw
no_head got.raw
pass "one export failing mid-way: exit 1, one line naming it, the others verified"
stop bad

# --- every destination failing: the copy stops, each named in its own line.
serve bad1 --filter=error memory 64M error-pwrite-rate=1
serve bad2 --filter=error memory 64M error-pwrite-rate=1
rc=0
$BMAPKIT -q copy img "$(uri bad1)" "$(uri bad2)" 2>all.err || rc=$?
[ "$rc" = 1 ] || { cat all.err; fail "exit status $rc when every destination failed"; }
[ "$(grep -c '^bmapkit: error: ' all.err)" = 2 ] || { cat all.err; fail "not two error lines"; }
grep -q 'bad1.sock' all.err && grep -q 'bad2.sock' all.err || fail "a failed export is not named"
pass "every destination failing: exit 1, one line each"
stop bad1
stop bad2

# --- usage: a UMS or ssh:// DEST among several.
expect_fail 2 "DEST 'ums' must be the only DEST" $BMAPKIT copy img a.img ums
expect_fail 2 "an ssh:// DEST must be the only DEST" $BMAPKIT copy img a.img ssh://localhost/x
expect_fail 2 "ums:all=N takes a number" $BMAPKIT copy img ums:all=0
for opt in --skip-unchanged --zero-unmapped --relocate-gpt --force-range=0+4K; do
    expect_fail 2 "apply to one DEST" $BMAPKIT copy $opt img u1.img u2.img
    expect_fail 2 "apply to one DEST" $BMAPKIT copy $opt img ums:all
done
[ ! -e u1.img ] && [ ! -e u2.img ] || fail "a usage error created a destination"
pass "usage errors of several DESTs, and options for one DEST only"

# --- ums:all on a fake tree: two UMS disks and a USB stick.
R=$WORK/tree
fake_tree "$R"
fake_ums "$R" sdb 8:16 0 1-2 SERIALB 131072
fake_ums "$R" sdd 8:48 0 1-4 SERIALD 131072
fake_usb_stick "$R" sdc 8:32 1-3 SanDisk "Ultra Fit"
BMAPKIT_SYSROOT=$R run_ok $BMAPKIT copy --json-events ums.json img ums:all
for d in sdb sdd; do
    cmp img "$R/dev/$d" || fail "UMS disk $d not written"
done
[ ! -s "$R/dev/sdc" ] || fail "the USB stick was written"
grep -q "^bmapkit: U-Boot UMS disk (LUN 0) /dev/sdb: .*USB port 1-2, serial SERIALB$" .err &&
    grep -q "^bmapkit: U-Boot UMS disk (LUN 0) /dev/sdd: .*USB port 1-4, serial SERIALD$" .err ||
    { cat .err; fail "identity lines of ums:all"; }
grep -q "^bmapkit: $R/dev/sdb (USB port 1-2, serial SERIALB): wrote 8.1 MiB" .err ||
    { cat .err; fail "summary line of sdb names no port and serial"; }
[ "$(grep -c '"event":"device"' ums.json)" = 2 ] || fail "not two device events"
pass "ums:all: every UMS disk written, the stick untouched, port and serial in each line"

expect_fail 1 "2 of 3 U-Boot UMS disk\(s\) appeared within 1 s" \
    env BMAPKIT_SYSROOT="$R" $BMAPKIT -q copy --wait 1 img ums:all=3
# A third board appears while the command waits.
: >"$R/dev/sdb"
: >"$R/dev/sdd"
(sleep 1 && fake_ums "$R" sde 8:64 0 1-5 SERIALE 131072) &
BMAPKIT_SYSROOT=$R run_ok $BMAPKIT copy --wait 20 img ums:all=3
wait
for d in sdb sdd sde; do cmp img "$R/dev/$d" || fail "UMS disk $d not written after the wait"; done
fake_remove "$R" sdb
fake_remove "$R" sdd
fake_remove "$R" sde
expect_fail 1 "0 of 1 U-Boot UMS disk\(s\) appeared within 0 s" \
    env BMAPKIT_SYSROOT="$R" $BMAPKIT -q copy --wait 0 img ums:all
pass "ums:all=N waits for N boards; too few in time, or none, is one line"

# --- a disk and one of its partitions (root: device nodes, of a number no driver has, so
# that nothing could be opened if the check let them through; a fake sysfs tree).
if [ "$(id -u)" != 0 ]; then
    note_skip "a disk and its partition: mknod needs root"
else
    P=$WORK/parts
    fake_tree "$P"
    fake_disk "$P" sdx 240:16 131072 platform/fake-host/target0 1 Fake Disk
    fake_part "$P" sdx sdx1 240:17 65536
    mknod "$WORK/node-sdx" b 240 16
    mknod "$WORK/node-sdx1" b 240 17
    rm -f a.img
    expect_fail 1 "refusing to write to .*node-sdx: that would destroy the destination .*node-sdx1 .*nothing was written" \
        env BMAPKIT_SYSROOT="$P" $BMAPKIT copy img "$WORK/node-sdx" a.img "$WORK/node-sdx1"
    [ ! -e a.img ] || fail "a.img was created although the copy was refused"
    pass "a disk and one of its partitions: refused before anything is written"
fi

# --- loop devices (root): three at once with --readback.
if [ "$(id -u)" != 0 ]; then
    note_skip "loop devices: not root"
else
    loops=()
    for i in 1 2 3; do
        truncate -s 64M "disk$i.raw"
        if ! attach_loop "disk$i.raw"; then
            note_skip "loop devices: $(cat .losetup.err)"
            loops=()
            break
        fi
        loops+=("$LOOP")
    done
    if [ ${#loops[@]} = 3 ]; then
        run_ok $BMAPKIT copy --readback img.xz --bmap img.bmap "${loops[@]}"
        for l in "${loops[@]}"; do
            cmp -n "$(stat -c %s img)" img "$l" || fail "$l does not hold the image"
            grep -q "^bmapkit: $l: wrote 8.1 MiB in [0-9.]* s, verified, read back 3 range(s)$" .err ||
                { cat .err; fail "no summary line for $l"; }
        done
        # Another node of the same device: compared by device number, not by inode.
        other=$WORK/loopnode
        mknod "$other" b "$((0x$(stat -c %t "${loops[0]}")))" "$((0x$(stat -c %T "${loops[0]}")))"
        expect_fail 1 "the destinations ${loops[0]} and $other are the same" \
            $BMAPKIT copy img "${loops[0]}" "$other"
        # A loop device and the file behind it: refused before anything is written.
        rm -f a.img
        sum=$(md5sum <disk2.raw)
        expect_fail 1 "refusing to write to ${loops[1]}: .*destination disk2.raw.*nothing was written" \
            $BMAPKIT copy img a.img "${loops[1]}" disk2.raw
        [ ! -e a.img ] && [ "$(md5sum <disk2.raw)" = "$sum" ] || fail "written although refused"
        pass "three loop devices at once, each read back; a loop device and its file refused"
        # A mounted one among them: left alone with its line, the others written.
        mkfs.ext4 -q -F "${loops[2]}" >/dev/null
        mkdir -p mnt
        mount "${loops[2]}" mnt || fail "cannot mount ${loops[2]}"
        at_exit "umount '$WORK/mnt' 2>/dev/null || umount -l '$WORK/mnt' 2>/dev/null"
        echo "kept" >mnt/owned.txt
        sync
        rm -f a.img
        rc=0
        $BMAPKIT copy img a.img "${loops[2]}" >mounted.out 2>mounted.err || rc=$?
        [ "$rc" -ne 0 ] || { cat mounted.err; fail "a mounted destination among several: exit 0"; }
        one_error_line mounted.err "refusing to write to ${loops[2]}: .*mounted.*this destination is left alone"
        verified_beside mounted.err "" a.img
        grep -q "^bmapkit: 1 of 2 destinations written$" mounted.err || { cat mounted.err; fail "no count"; }
        [ "$(cat mnt/owned.txt)" = kept ] || fail "the mounted file system lost its file"
        umount mnt
        fsck.ext4 -n "${loops[2]}" >/dev/null 2>&1 || fail "the mounted file system is damaged"
        pass "a mounted loop device among several: left alone, its file system intact, the other written"
    fi
fi
