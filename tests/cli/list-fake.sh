#!/usr/bin/env bash
# bmapkit list on fake sysfs trees: UMS disk, USB stick, NVMe system disk, partitions, hidden devices; table and JSON.
source "$TESTS_DIR/lib.sh"
source "$TESTS_DIR/fake_sysfs.sh"
require_tools python3

R=$WORK/root
fake_tree "$R"
fake_ums "$R" sdb 8:16 0 1-2 0123456789
fake_usb_stick "$R" sdc 8:32 1-3.4 SanDisk "Ultra Fit"
fake_part "$R" sdc sdc1 8:33 2048
fake_mount "$R" 8:33 /media/usb /dev/sdc1
fake_disk "$R" nvme0n1 259:0 1000215216 pci0000:00/0000:00:1d.0/0000:3d:00.0/nvme/nvme0 0 - \
    "Samsung SSD 970 EVO" S4EWNX0R
fake_part "$R" nvme0n1 nvme0n1p1 259:1 1048576
fake_part "$R" nvme0n1 nvme0n1p2 259:2 999000000
fake_mount "$R" 259:1 /boot/efi /dev/nvme0n1p1
fake_mount "$R" 259:2 / /dev/nvme0n1p2
# Hidden unless --all: a loop device without backing file, zram, device-mapper.
fake_disk "$R" loop0 7:0 0 virtual 0 - -
mkdir -p "$R/sys/class/block/loop0/loop"
fake_disk "$R" loop1 7:1 8192 virtual 0 - -
mkdir -p "$R/sys/class/block/loop1/loop"
echo /var/tmp/disk.img >"$R/sys/class/block/loop1/loop/backing_file"
fake_disk "$R" zram0 252:0 8388608 virtual 0 - -
fake_disk "$R" dm-0 253:0 8388608 virtual 0 - -
export BMAPKIT_SYSROOT=$R

# --- the table
run_ok "$BMAPKIT" list
out=$WORK/.out
head -1 "$out" | grep -q '^PATH  *SIZE  *TRANSPORT  *RM  *VENDOR  *MODEL  *SERIAL  *PORT  *MARKS$' ||
    fail "table header: $(head -1 "$out")"
[ "$(wc -l <"$out")" -eq 5 ] || { cat "$out"; fail "expected a header and 4 disks"; }
grep -Eq '^/dev/sdb +8\.0 MiB +usb +1 +Linux +UMS disk 0 +0123456789 +1-2 +ums:0$' "$out" ||
    { cat "$out"; fail "UMS disk row"; }
grep -Eq '^/dev/sdc +14\.9 GiB +usb +1 +SanDisk +Ultra Fit +4C530001230101117382 +1-3\.4 +mounted$' "$out" ||
    { cat "$out"; fail "USB stick row"; }
grep -Eq '^/dev/nvme0n1 +476\.9 GiB +nvme +0 +- +Samsung SSD 970 EVO +S4EWNX0R +- +system mounted$' "$out" ||
    { cat "$out"; fail "NVMe system disk row"; }
grep -Eq '^/dev/loop1 +4\.0 MiB +loop +0 ' "$out" || { cat "$out"; fail "loop device with a backing file"; }
! grep -Eq 'sdc1|nvme0n1p|loop0|zram|dm-0' "$out" || { cat "$out"; fail "hidden devices listed"; }
pass "table: UMS disk with LUN, port and serial; USB stick mounted; NVMe marked system; hidden ones left out"

# --- --all adds partitions and virtual devices
run_ok "$BMAPKIT" list --all
for n in sdc1 nvme0n1p1 nvme0n1p2 loop0 zram0 dm-0; do
    grep -q "^/dev/$n " "$WORK/.out" || { cat "$WORK/.out"; fail "--all does not list $n"; }
done
grep -Eq '^/dev/nvme0n1p1 .* mounted$' "$WORK/.out" || fail "--all: nvme0n1p1 not marked mounted"
grep -Eq '^/dev/nvme0n1p2 .* system mounted$' "$WORK/.out" || fail "--all: nvme0n1p2 not marked system"
grep -Eq '^/dev/zram0 .* zram ' "$WORK/.out" || fail "--all: zram0 transport"
pass "--all: partitions with their own marks, zram, dm, unused loop"

# --- JSON
run_ok "$BMAPKIT" list --json
python3 - "$WORK/.out" <<'PY' || fail "list --json"
import json, sys
disks = json.load(open(sys.argv[1]))
by = {d["name"]: d for d in disks}
assert sorted(by) == ["loop1", "nvme0n1", "sdb", "sdc"], sorted(by)
keys = {"path", "name", "type", "disk", "size", "transport", "removable", "read_only", "vendor",
        "model", "serial", "usb_port", "backing_file", "ums", "ums_lun", "mounted", "system",
        "swap", "in_use", "usage", "marks"}
for d in disks:
    assert set(d) == keys, set(d) ^ keys
u = by["sdb"]
assert u["path"] == "/dev/sdb" and u["type"] == "disk" and u["size"] == 16384 * 512
assert u["vendor"] == "Linux" and u["model"] == "UMS disk 0", u
assert u["ums"] is True and u["ums_lun"] == 0 and u["marks"] == ["ums"], u
assert u["usb_port"] == "1-2" and u["serial"] == "0123456789" and u["transport"] == "usb"
assert u["removable"] is True and u["mounted"] is False and u["system"] is False
s = by["sdc"]
assert s["ums"] is False and s["ums_lun"] is None and s["mounted"] and not s["system"], s
assert s["marks"] == ["mounted"] and "/media/usb" in s["usage"], s
n = by["nvme0n1"]
assert n["transport"] == "nvme" and n["system"] and n["mounted"] and n["removable"] is False, n
assert set(n["marks"]) == {"system", "mounted"} and "mounted on /" in n["usage"], n
l = by["loop1"]
assert l["transport"] == "loop" and l["backing_file"] == "/var/tmp/disk.img", l
PY
pass "--json: stable fields, marks and identity of each disk"

run_ok "$BMAPKIT" list --json --all
python3 - "$WORK/.out" <<'PY' || fail "list --json --all"
import json, sys
by = {d["name"]: d for d in json.load(open(sys.argv[1]))}
p = by["nvme0n1p2"]
assert p["type"] == "partition" and p["disk"] == "nvme0n1" and p["system"], p
assert by["sdc1"]["type"] == "partition" and by["sdc1"]["disk"] == "sdc"
assert by["loop0"]["transport"] == "loop" and by["loop0"]["size"] == 0
PY
pass "--json --all: partitions name their disk"

# --- the disk of the process's own root (a chroot whose root no mount table names)
C=$WORK/chroot
fake_tree "$C"
fake_disk "$C" vda 254:0 2097152 virtual 0 - -
fake_part "$C" vda vda1 254:1 2048
echo 254:1 >"$C/proc/root-device"
BMAPKIT_SYSROOT=$C run_ok "$BMAPKIT" list --json
python3 - "$WORK/.out" <<'PY' || fail "own root: vda not marked system"
import json, sys
d = json.load(open(sys.argv[1]))[0]
assert d["name"] == "vda" and d["system"] and d["mounted"], d
assert "root directory of this process" in d["usage"], d
PY
[ ! -s "$WORK/.err" ] || fail "own root known, yet: $(cat "$WORK/.err")"
pass "the disk holding the process's root is marked system without a mount on /"
# Nothing tells: said plainly, and no disk marked.
rm "$C/proc/root-device"
BMAPKIT_SYSROOT=$C run_ok "$BMAPKIT" list
grep -q "warning: cannot tell which disk holds the running system" "$WORK/.err" ||
    fail "root unknown, no warning: '$(cat "$WORK/.err")'"
grep -q "system" "$WORK/.out" && fail "root unknown, yet a disk is marked: $(cat "$WORK/.out")"
pass "when no disk can be told to hold the running system, list says so"

# --- a machine without disks; usage errors
E=$WORK/empty
fake_tree "$E"
BMAPKIT_SYSROOT=$E run_ok "$BMAPKIT" list --json
[ "$(tr -d ' \n' <"$WORK/.out")" = "[]" ] || fail "empty machine: '$(cat "$WORK/.out")'"
BMAPKIT_SYSROOT=$E run_ok "$BMAPKIT" list
[ ! -s "$WORK/.out" ] && grep -q "no disks found" "$WORK/.err" || fail "empty machine table"
pass "no disks: [] in JSON, a message otherwise"
expect_fail 2 "unexpected argument 'sda'" "$BMAPKIT" list sda
expect_fail 2 "unknown option '--bogus'" "$BMAPKIT" list --bogus
BMAPKIT_SYSROOT=$WORK/nothing expect_fail 1 "cannot list block devices" "$BMAPKIT" list
pass "usage errors and a missing sysfs"

# --- list puts back the I/O settings a killed copy left behind (fake sysroot)
R=$WORK/tuned
fake_tree "$R"
fake_disk "$R" sdx 8:240 2048 "pci0000:00/x/host9/target9:0:0/9:0:0:0" 1 Test Disk
mkdir -p "$R/sys/class/block/sdx/queue" "$R/sys/class/block/sdx/bdi" "$R/run/bmapkit/tuning"
chmod 700 "$R/run/bmapkit/tuning"
echo none >"$R/sys/class/block/sdx/queue/scheduler"
echo 1 >"$R/sys/class/block/sdx/bdi/max_ratio"
sh -c 'exit 0' &
dead=$!
wait $dead
printf 'bmapkit-tuning 1\ndisk sdx\ndev 8:240\ndiskseq -\nboot %s\nowner %s 1\nset bdi/max_ratio 40 1\nset queue/scheduler mq-deadline none\nend\n' \
    "$(cat /proc/sys/kernel/random/boot_id)" "$dead" >"$R/run/bmapkit/tuning/sdx.$dead.1"
BMAPKIT_SYSROOT=$R run_ok "$BMAPKIT" list
grep -qxF "bmapkit: warning: put back the I/O settings of sdx that process $dead changed for a copy and left behind when it ended: bdi/max_ratio 40, queue/scheduler mq-deadline" "$WORK/.err" ||
    { cat "$WORK/.err"; fail "list: no put-back warning"; }
[ "$(cat "$R/sys/class/block/sdx/queue/scheduler")" = mq-deadline ] ||
    fail "list: scheduler not put back"
[ "$(cat "$R/sys/class/block/sdx/bdi/max_ratio")" = 40 ] || fail "list: max_ratio not put back"
[ -z "$(ls -A "$R/run/bmapkit/tuning")" ] || fail "list: the record was left"
pass "list puts back a dead copy's settings and removes its record"
# The same record with a live owner (this shell) is left alone.
echo none >"$R/sys/class/block/sdx/queue/scheduler"
start=$(cut -d' ' -f22 /proc/$$/stat)
printf 'bmapkit-tuning 1\ndisk sdx\ndev 8:240\ndiskseq -\nboot %s\nowner %s %s\nset queue/scheduler mq-deadline none\nend\n' \
    "$(cat /proc/sys/kernel/random/boot_id)" "$$" "$start" >"$R/run/bmapkit/tuning/sdx.$$.$start"
BMAPKIT_SYSROOT=$R run_ok "$BMAPKIT" list
[ "$(cat "$R/sys/class/block/sdx/queue/scheduler")" = none ] || fail "list: a live copy's settings were undone"
[ -e "$R/run/bmapkit/tuning/sdx.$$.$start" ] || fail "list: a live copy's record was removed"
pass "list leaves a running copy's record and settings alone"
