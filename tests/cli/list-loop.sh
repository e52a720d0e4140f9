#!/usr/bin/env bash
# bmapkit list and copy on real loop devices (root only): size, transport loop, backing file, mounted mark, copy refused.
source "$TESTS_DIR/lib.sh"
[ "$(id -u)" -eq 0 ] || skip "attaching loop devices needs root"
require_tools python3 losetup mkfs.ext4
cd "$WORK"

truncate -s 64M disk.img
LOOP=$(losetup -f --show disk.img 2>/dev/null) || skip "cannot attach a loop device here"
at_exit "losetup -d '$LOOP' 2>/dev/null"
NAME=${LOOP#/dev/}
[ -e "/sys/class/block/$NAME" ] || skip "no sysfs entry for $LOOP (sysfs not mounted?)"

new_sparse img 8M
put_random img 0 65536
"$BMAPKIT" create -o img.bmap img 2>/dev/null

# --- listed with its size, transport and backing file
run_ok "$BMAPKIT" list --all
grep -Eq "^$LOOP +64\.0 MiB +loop +0 " .out || { cat .out; fail "list --all: $LOOP"; }
run_ok "$BMAPKIT" list
grep -Eq "^$LOOP +64\.0 MiB +loop " .out || { cat .out; fail "list: $LOOP with a backing file"; }
run_ok "$BMAPKIT" list --json
python3 - .out "$LOOP" "$WORK/disk.img" <<'PY' || fail "list --json: $LOOP"
import json, sys
d = {x["path"]: x for x in json.load(open(sys.argv[1]))}[sys.argv[2]]
assert d["transport"] == "loop" and d["size"] == 64 << 20 and d["type"] == "disk", d
assert d["backing_file"] == sys.argv[3], d
assert not d["mounted"] and not d["system"] and not d["ums"] and d["marks"] == [], d
PY
pass "$LOOP: 64 MiB, transport loop, backing file, no marks"

# --- the running system's disk carries the system mark (when / is on a listed disk)
run_ok "$BMAPKIT" list --json --all
python3 - .out <<'PY' || fail "system mark"
import json, os, sys
disks = json.load(open(sys.argv[1]))
dev = os.stat("/").st_dev
name = "%d:%d" % (os.major(dev), os.minor(dev))
def dev_of(d):
    # Another test may detach its loop device between the listing and this look-up.
    try:
        return open("/sys/class/block/%s/dev" % d["name"]).read().strip()
    except FileNotFoundError:
        return None
real = [d for d in disks if dev_of(d) == name]
if real:
    assert real[0]["system"] and real[0]["mounted"], real[0]
    print("system mark on", real[0]["path"])
else:
    print("/ is not on a block device listed here (%s)" % name)
PY
pass "the device holding / (if any) is marked system and mounted"

# --- mounted: marked, and copy refuses it through the common destination checks
mkfs.ext4 -q -F "$LOOP" >/dev/null 2>&1 || skip "mkfs.ext4 failed on $LOOP"
mkdir mnt
mount "$LOOP" mnt 2>/dev/null || skip "cannot mount $LOOP here"
at_exit "umount '$WORK/mnt' 2>/dev/null"
run_ok "$BMAPKIT" list
grep -Eq "^$LOOP +64\.0 MiB +loop .* mounted$" .out || { cat .out; fail "list: $LOOP not marked mounted"; }
run_ok "$BMAPKIT" list --json
python3 - .out "$LOOP" "$WORK/mnt" <<'PY' || fail "list --json: mounted $LOOP"
import json, sys
d = {x["path"]: x for x in json.load(open(sys.argv[1]))}[sys.argv[2]]
assert d["mounted"] and not d["system"] and d["marks"] == ["mounted"], d
assert sys.argv[3] in d["usage"], d
PY
expect_fail 1 "refusing to write to $LOOP: $LOOP is mounted on $WORK/mnt" "$BMAPKIT" copy img "$LOOP"
pass "mounted $LOOP: marked mounted, copy refused"

umount mnt
run_ok "$BMAPKIT" copy img "$LOOP"
cmp -n 65536 img "$LOOP" || fail "copy to the unmounted $LOOP"
pass "unmounted again: copy to $LOOP works"
