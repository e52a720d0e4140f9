#!/usr/bin/env bash
# The udev rules for U-Boot UMS disks (data/udev/70-bmapkit-ums.rules, root only): udevadm parses them among the system's rules without a complaint (a broken copy gets complaints); on a loop device they do nothing; on a fake /sys with UMS disks, USB sticks (one from Linux's own gadget), an NVMe and an eMMC disk and partitions they tag and tune exactly the disks bmapkit marks "ums", and 73-seat-late.rules then grants the seat's user access; a copy by another user than root to a disk so tuned changes nothing and warns about nothing.

# udevadm test does what udevd would (links in /dev, its database in /run/udev, attribute
# writes): it runs in a mount namespace of its own, with /run and, for each run, /dev
# and /etc/udev/rules.d on empty tmpfs, so nothing of it reaches the machine.
if [ "$(id -u)" -eq 0 ] && [ -z "${BMAPKIT_TEST_PRIVATE_RUN:-}" ] &&
    unshare --mount --propagation private true 2>/dev/null; then
    exec env BMAPKIT_TEST_PRIVATE_RUN=1 unshare --mount --propagation private bash "$0" "$@"
fi
source "$TESTS_DIR/lib.sh"
source "$TESTS_DIR/fake_sysfs.sh"
require_tools udevadm unshare losetup setpriv python3
RULES=$TESTS_DIR/../../data/udev/70-bmapkit-ums.rules
NAME=70-bmapkit-ums.rules
[ -r "$RULES" ] || fail "no rules file at $RULES"
[ "$(id -u)" -eq 0 ] || skip "udevadm test writes /dev, /run/udev and sysfs: it needs root"
[ -n "${BMAPKIT_TEST_PRIVATE_RUN:-}" ] || skip "no mount namespace of its own (unshare --mount)"
mount -t tmpfs -o mode=0755 bmapkit-test-run /run 2>"$WORK/.mount.err" ||
    skip "cannot mount a tmpfs on /run in a private mount namespace: $(cat "$WORK/.mount.err")"
cd "$WORK"

# logind turns the uaccess tag into an ACL in 73-seat-late.rules: ours must come first.
[[ $NAME < 73-seat-late.rules ]] || fail "$NAME does not sort before 73-seat-late.rules"
pass "$NAME sorts before 73-seat-late.rules"

# udev_test RULES SYS DEVICE: "udevadm test --action=add" of /sys/class/block/DEVICE
# with RULES as /etc/udev/rules.d/$NAME next to the system's rules, and SYS, when not
# empty, a fake tree bound on /sys; its output in udev.out, its status returned.
udev_test() {
    local rc=0
    unshare --mount --propagation private bash -c '
        set -e
        mount -t tmpfs bmapkit-test-rules /etc/udev/rules.d
        cp "$1" "/etc/udev/rules.d/$2"
        if [ -n "$3" ]; then
            mount --bind "$3" /sys
            # systemd-udev checks that a device is on sysfs; its own tests turn that off
            # for their fake trees the same way.
            export SYSTEMD_DEVICE_VERIFY_SYSFS=0
        fi
        mount -t tmpfs bmapkit-test-dev /dev
        exec udevadm test --action=add "/sys/class/block/$4"
    ' - "$1" "$NAME" "$2" "$3" >udev.out 2>&1 || rc=$?
    return $rc
}

# complaints: what udevadm said about the rules file itself (parse errors and warnings
# are "FILE:LINE ..." lines; what a rule does for a device starts with the device).
complaints() {
    grep -F "/etc/udev/rules.d/$NAME:" udev.out | grep -v '^[^ /]*: ' || true
}

# --- the rules parse, among the system's; a broken copy is complained about
truncate -s 4M loop.img
attach_loop loop.img || skip "losetup cannot attach a loop device here: $(cat .losetup.err)"
L=${LOOP#/dev/}
udev_test "$RULES" "" "$L" || { cat udev.out; fail "udevadm test of $LOOP failed"; }
grep -qxF "Reading rules file: /etc/udev/rules.d/$NAME" udev.out ||
    { cat udev.out; fail "udevadm did not read $NAME"; }
[ -z "$(complaints)" ] || fail "udevadm complains about $NAME: $(complaints)"
sed -e '0,/GOTO="bmapkit_ums_end"/s//GOTO="bmapkit_ums_ends"/' -e 's/TAG+=/TAGS+=/' "$RULES" >broken.rules
udev_test broken.rules "" "$L" || true
[ "$(complaints | wc -l)" -ge 2 ] && complaints | grep -q 'no matching label' &&
    complaints | grep -q 'Invalid .*TAGS' ||
    { cat udev.out; fail "udevadm did not complain about a broken copy of $NAME"; }
pass "udevadm reads $NAME among the system's rules without a complaint (and complains about a broken copy)"

# --- a loop device is not a UMS disk: nothing tagged, nothing written
sched() { sed -E 's/.*\[([^]]*)\].*/\1/' "/sys/class/block/$1/queue/scheduler"; }
ratio() { cat "/sys/class/block/$1/bdi/max_ratio"; }
settings() { echo "$(sched "$1")/$(ratio "$1")"; }
# set_settings SCHEDULER RATIO: of the loop device.
set_settings() {
    echo "$1" >"/sys/class/block/$L/queue/scheduler"
    echo "$2" >"/sys/class/block/$L/bdi/max_ratio"
    [ "$(settings "$L")" = "$1/$2" ] || fail "$LOOP: cannot set $1/$2, it is $(settings "$L")"
}
# A loop device may come with the settings of an earlier user: start from others than
# the rules' (another scheduler, 50%), and leave it as it came.
orig=$(settings "$L")
at_exit "echo '${orig#*/}' >/sys/class/block/$L/bdi/max_ratio; echo '${orig%/*}' >/sys/class/block/$L/queue/scheduler"
other=$(tr -d '[]' <"/sys/class/block/$L/queue/scheduler" | tr ' ' '\n' | grep -vx -e none -e '' | head -n 1) ||
    skip "$LOOP has no I/O scheduler but none: the rules' settings cannot be told from others"
set_settings "$other" 50
before=$(settings "$L")
udev_test "$RULES" "" "$L" || { cat udev.out; fail "udevadm test of $LOOP failed"; }
if grep -qF "$NAME:" <(grep "^$L: " udev.out); then
    fail "a rule of $NAME acted on $LOOP: $(grep "^$L: .*$NAME:" udev.out)"
fi
if grep -q '^TAGS=.*:uaccess:' udev.out; then fail "$LOOP got the uaccess tag"; fi
[ "$(settings "$L")" = "$before" ] || fail "$LOOP: scheduler/max_ratio $before became $(settings "$L")"
pass "$LOOP: no rule of $NAME applies, no tag, settings $before left"

# --- the rules' assignments on a real device: the same rules matching the loop device
sed -e "s/^SUBSYSTEMS==\"scsi\", ATTRS{vendor}==\"Linux\", \\\\\$/KERNEL==\"$L\", \\\\/" \
    -e '/^  ATTRS{model}==/d' "$RULES" >loop.rules
grep -q "^KERNEL==\"$L\"" loop.rules || fail "cannot make the rules match $LOOP: is the match still on one line with SUBSYSTEMS and ATTRS{vendor}?"
udev_test loop.rules "" "$L" || { cat udev.out; fail "udevadm test of $LOOP failed"; }
[ -z "$(complaints)" ] || fail "udevadm complains about the rules made to match $LOOP: $(complaints)"
grep -q '^TAGS=.*:uaccess:' udev.out || { cat udev.out; fail "$LOOP: no uaccess tag from the rules made to match it"; }
[ "$(settings "$L")" = none/1 ] ||
    { cat udev.out; fail "$LOOP: the rules made to match it left scheduler/max_ratio $(settings "$L")"; }
set_settings "$other" 50
pass "the rules' assignments on a real device (the rules made to match $LOOP): tag uaccess, scheduler none, max_ratio 1"

# --- the match, on a fake /sys: what udev needs besides what bmapkit reads
# udev_disk ROOT NAME: the uevent and subsystem of the fake block device NAME, of the
# device above a disk (SCSI for a USB disk), and for a disk the settings (empty files,
# since udev writes without truncating, and the bdi link).
udev_disk() {
    local root=$1 name=$2 dir dev type=disk parent
    dir=$(readlink -f "$root/sys/class/block/$name")
    dev=$(cat "$dir/dev")
    [ ! -e "$dir/partition" ] || type=partition
    printf 'MAJOR=%s\nMINOR=%s\nDEVNAME=%s\nDEVTYPE=%s\n' "${dev%:*}" "${dev#*:}" "$name" \
        "$type" >"$dir/uevent"
    ln -sr "$root/sys/class/block" "$dir/subsystem"
    [ "$type" = disk ] || return 0
    mkdir -p "$dir/queue" "$root/sys/devices/virtual/bdi/$dev"
    : >"$dir/queue/scheduler"
    : >"$root/sys/devices/virtual/bdi/$dev/max_ratio"
    ln -sr "$root/sys/devices/virtual/bdi/$dev" "$dir/bdi"
    parent=$(readlink -f "$dir/device")
    case $parent in
        */target*) mkdir -p "$root/sys/bus/scsi" && ln -sfr "$root/sys/bus/scsi" "$parent/subsystem" &&
            echo DEVTYPE=scsi_device >"$parent/uevent" ;;
        */nvme/*) mkdir -p "$root/sys/class/nvme" && ln -sfr "$root/sys/class/nvme" "$parent/subsystem" &&
            : >"$parent/uevent" ;;
        *mmc*) mkdir -p "$root/sys/bus/mmc" && ln -sfr "$root/sys/bus/mmc" "$parent/subsystem" &&
            echo MMC_TYPE=MMC >"$parent/uevent" ;;
    esac
}

R=$WORK/root
fake_tree "$R"
fake_ums "$R" sdb 8:16 0 1-2 0123456789
fake_part "$R" sdb sdb1 8:17 8000
fake_ums "$R" sdc 8:32 12 1-3
fake_ums "$R" sdd 8:48 255 1-4
fake_usb_stick "$R" sde 8:64 1-5 Linux "File-Stor Gadget"
fake_usb_stick "$R" sdf 8:80 1-6 SanDisk "UMS disk 0"
fake_usb_stick "$R" sdg 8:96 1-7 Linux "UMS disk 256"
fake_usb_stick "$R" sdh 8:112 1-8 Linux "UMS disk x"
fake_usb_stick "$R" sdi 8:128 1-9 Linux "UMS disk"
fake_usb_stick "$R" sdj 8:144 2-1 SanDisk "Ultra Fit"
fake_part "$R" sdj sdj1 8:145 1000
fake_disk "$R" nvme0n1 259:0 1000215216 pci0000:00/0000:00:1d.0/0000:3d:00.0/nvme/nvme0 0 - "Samsung SSD"
fake_disk "$R" mmcblk0 179:0 30000000 platform/mmc0/mmc0:0001 1 - -
devices=(sdb sdb1 sdc sdd sde sdf sdg sdh sdi sdj sdj1 nvme0n1 mmcblk0)
for d in "${devices[@]}"; do
    udev_disk "$R" "$d"
done

# What bmapkit makes of the same tree: the disks it marks ums.
BMAPKIT_SYSROOT=$R "$BMAPKIT" list --all --json 2>bmapkit.err >list.json
python3 -c 'import json, sys; print(" ".join(sorted(d["name"] for d in json.load(open(sys.argv[1])) if d["ums"])))' \
    list.json >ums.txt
[ "$(cat ums.txt)" = "sdb sdc sdd" ] || fail "bmapkit marks [$(cat ums.txt)] ums on the fake tree, not [sdb sdc sdd]"

seat_late=/usr/lib/udev/rules.d/73-seat-late.rules
[ -e "$seat_late" ] || note_skip "no $seat_late (systemd): the uaccess builtin it starts is not checked"
tagged=()
for d in "${devices[@]}"; do
    udev_test "$RULES" "$R/sys" "$d" || { cat udev.out; fail "udevadm test of the fake $d failed"; }
    [ -z "$(complaints)" ] || fail "udevadm complains about $NAME: $(complaints)"
    dir=$(readlink -f "$R/sys/class/block/$d")
    settings=-
    [ ! -e "$dir/queue/scheduler" ] || settings="$(cat "$dir/queue/scheduler")/$(cat "$dir/bdi/max_ratio")"
    if grep -q '^TAGS=.*:uaccess:' udev.out; then
        tagged+=("$d")
        [ "$settings" = none/1 ] || fail "$d: tagged uaccess, but scheduler/max_ratio written: '$settings'"
        if [ -e "$seat_late" ] && ! grep -qxF "run: 'uaccess'" udev.out; then
            cat udev.out
            fail "$d: tagged uaccess, but 73-seat-late.rules does not start the uaccess builtin"
        fi
    else
        [ "$settings" = / ] || [ "$settings" = - ] || fail "$d: not tagged, but '$settings' written"
    fi
done
[ "${tagged[*]}" = "$(cat ums.txt)" ] ||
    fail "the rules tag and tune [${tagged[*]}], bmapkit marks [$(cat ums.txt)] ums"
pass "on a fake /sys the rules tag and tune exactly the disks bmapkit marks ums (${tagged[*]}), not their partitions, a Linux gadget of another model, another vendor's 'UMS disk 0', LUN 256, non-numbers, NVMe, eMMC"

# --- a copy by another user to a disk the rules tuned: nothing to change, no warning
chmod 755 "$WORK"
if ! setpriv --reuid nobody --regid nogroup --clear-groups test -x "$BMAPKIT"; then
    # A build in a folder only root can enter, such as /root in a fresh chroot.
    note_skip "user nobody cannot run $BMAPKIT here: the copy by another user is not run"
    exit 0
fi
new_sparse img 2M
put_random img 0 65536
put_random img 1048576 65536
"$BMAPKIT" create -o img.bmap img 2>/dev/null
chmod 644 img img.bmap
# A node of its own for the loop device, owned by nobody as uaccess would grant it.
mknod node b "$(stat -c %t "$LOOP" | xargs printf '%d')" "$(stat -c %T "$LOOP" | xargs printf '%d')"
chown nobody node
set_settings none 1
as_nobody() {
    local rc=0
    setpriv --reuid nobody --regid nogroup --clear-groups "$BMAPKIT" copy --bmap img.bmap img node \
        >nobody.out 2>nobody.err || rc=$?
    [ "$rc" -eq 0 ] || { cat nobody.err; fail "copy as nobody: status $rc"; }
    cmp -n 2097152 img node || fail "the copy as nobody differs from the image"
}
as_nobody
if grep -q 'warning' nobody.err; then
    cat nobody.err
    fail "copy as nobody to a disk already tuned: a warning"
fi
[ "$(settings "$L")" = none/1 ] || fail "$LOOP: settings $(settings "$L") after the copy"
[ ! -e /run/bmapkit/tuning ] || [ -z "$(ls -A /run/bmapkit/tuning)" ] || fail "a tuning record was left"
# Not tuned (no rule): the one warning that the settings stay as they are.
set_settings "$other" 50
as_nobody
grep -q "warning: I/O settings of $L left unchanged" nobody.err ||
    { cat nobody.err; fail "copy as nobody to an untuned disk: no warning"; }
pass "a copy as nobody to a disk with the rules' settings changes nothing and warns about nothing (untuned: one warning)"
