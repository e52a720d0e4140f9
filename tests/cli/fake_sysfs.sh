# Build fake /sys, /proc and /dev trees for the list and UMS tests. Sourced after lib.sh.
#
# bmapkit reads every block-device fact through a root prefix: the library takes it as
# the sysroot argument (struct bk_dest_options.sysroot, bk_disk_list, bk_ums_find) and
# the command line takes it from the BMAPKIT_SYSROOT environment variable, a test-only
# hook that is not documented for users. Under a sysroot:
#   - SYSROOT/sys/class/block/NAME links to SYSROOT/sys/devices/.../block/NAME, whose
#     files dev, size (512-byte sectors), removable, ro and device/{vendor,model,serial}
#     describe the disk; partitions are subdirectories holding "partition";
#   - SYSROOT/sys/dev/block/MAJ:MIN links to the same directories;
#   - SYSROOT/proc/self/mountinfo (and proc/1/mountinfo, if made) and SYSROOT/proc/swaps
#     say what is in use; SYSROOT/proc/root-device, if made, names the device of the
#     root directory as MAJ:MIN (a chroot whose root no mount table shows);
#   - SYSROOT/dev/NAME is the device node. Fake trees make it a regular file, and copy
#     to a UMS disk then writes the image into that file as into any regular file: the
#     block-device checks (mounted, system, capacity, O_EXCL) apply to real devices only
#     and are tested on loop devices.
# Symbolic links are relative, as in the real sysfs, so the tree can live anywhere.

# fake_tree ROOT: an empty machine (no disks, nothing mounted).
fake_tree() {
    mkdir -p "$1/sys/class/block" "$1/sys/block" "$1/sys/dev/block" "$1/sys/devices" \
        "$1/proc/self" "$1/dev"
    : >"$1/proc/self/mountinfo"
    echo "Filename Type Size Used Priority" >"$1/proc/swaps"
}

# fake_disk ROOT NAME MAJ:MIN SECTORS DEVPATH REMOVABLE VENDOR MODEL [SERIAL]: a whole
# disk whose device (vendor, model, serial) is SYSROOT/sys/devices/DEVPATH. VENDOR and
# MODEL are padded with spaces like SCSI inquiry strings; "-" leaves the file out.
fake_disk() {
    local root=$1 name=$2 dev=$3 sectors=$4 devpath=$5 rm=$6 vendor=$7 model=$8 serial=${9:-}
    local ddir="$root/sys/devices/$devpath" dir="$root/sys/devices/$devpath/block/$name"
    mkdir -p "$dir"
    echo "$dev" >"$dir/dev"
    echo "$sectors" >"$dir/size"
    echo "$rm" >"$dir/removable"
    echo 0 >"$dir/ro"
    mkdir -p "$dir/holders"
    ln -sfn ../.. "$dir/device"
    [ "$vendor" = - ] || printf '%-8s\n' "$vendor" >"$ddir/vendor"
    [ "$model" = - ] || printf '%-16s\n' "$model" >"$ddir/model"
    [ -z "$serial" ] || echo "$serial" >"$ddir/serial"
    ln -sfn "../../devices/$devpath/block/$name" "$root/sys/class/block/$name"
    ln -sfn "../devices/$devpath/block/$name" "$root/sys/block/$name"
    ln -sfn "../../devices/$devpath/block/$name" "$root/sys/dev/block/$dev"
    : >"$root/dev/$name"
}

# fake_part ROOT DISK PART MAJ:MIN SECTORS: partition PART of DISK.
fake_part() {
    local root=$1 disk=$2 part=$3 dev=$4 sectors=$5 rel
    rel=$(readlink "$root/sys/class/block/$disk")
    local dir="$root/sys/class/block/$disk/$part"
    mkdir -p "$dir/holders"
    echo "$dev" >"$dir/dev"
    echo "$sectors" >"$dir/size"
    echo "${part##*[!0-9]}" >"$dir/partition"
    echo 0 >"$dir/ro"
    ln -sfn "$rel/$part" "$root/sys/class/block/$part"
    ln -sfn "$rel/$part" "$root/sys/dev/block/$dev"
    : >"$root/dev/$part"
}

# fake_ums ROOT NAME MAJ:MIN LUN PORT [SERIAL] [SECTORS]: U-Boot's UMS gadget exporting
# LUN on USB port PORT ("1-2", "3-1.4"); the serial sits on the USB device, as U-Boot's
# gadget reports it.
fake_ums() {
    local root=$1 name=$2 dev=$3 lun=$4 port=$5 serial=${6:-} sectors=${7:-16384}
    local bus=${port%%-*} chain="" p=${port%%-*}- rest=${port#*-} host=${name#sd}
    # The hub chain: 1-2.3 sits under 1-2, which sits under usb1.
    local IFS=. parts=() x
    read -ra parts <<<"$rest"
    for x in "${parts[@]}"; do
        p+=$x
        chain+="/$p"
        p+=.
    done
    unset IFS
    local usbdev="pci0000:00/0000:00:14.0/usb$bus$chain"
    local devpath="$usbdev/$port:1.0/host1$host/target1$host:0:0/1$host:0:0:$lun"
    fake_disk "$root" "$name" "$dev" "$sectors" "$devpath" 1 Linux "UMS disk $lun"
    echo "USB download gadget" >"$root/sys/devices/$usbdev/product"
    [ -z "$serial" ] || echo "$serial" >"$root/sys/devices/$usbdev/serial"
}

# fake_usb_stick ROOT NAME MAJ:MIN PORT VENDOR MODEL [SECTORS]: an ordinary USB stick.
fake_usb_stick() {
    local root=$1 name=$2 dev=$3 port=$4 vendor=$5 model=$6 sectors=${7:-31250000}
    local usbdev="pci0000:00/0000:00:14.0/usb${port%%-*}/$port"
    fake_disk "$root" "$name" "$dev" "$sectors" \
        "$usbdev/$port:1.0/host7/target7:0:0/7:0:0:0" 1 "$vendor" "$model"
    echo "4C530001230101117382" >"$root/sys/devices/$usbdev/serial"
}

# fake_mount ROOT MAJ:MIN MOUNTPOINT SOURCE: one mountinfo line.
fake_mount() {
    local n
    n=$(($(wc -l <"$1/proc/self/mountinfo") + 20))
    echo "$n 1 $2 / $3 rw,relatime shared:$n - ext4 $4 rw" >>"$1/proc/self/mountinfo"
}

# fake_remove ROOT NAME: the disk NAME is gone (unplugged).
fake_remove() {
    local dev
    dev=$(cat "$1/sys/class/block/$2/dev")
    rm -f "$1/sys/class/block/$2" "$1/sys/block/$2" "$1/sys/dev/block/$dev" "$1/dev/$2"
}
