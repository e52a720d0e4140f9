#!/usr/bin/env bash
# labgrid's USBStorageDriver in bmaptool mode with bmapkit installed as bmaptool (root
# only): the driver's own code builds and runs "bmaptool copy", on this machine and on
# an exporter reached through labgrid's ssh manager; the disk is a loop device.
source "$TESTS_DIR/lib.sh"
source "$TESTS_DIR/sshd_lib.sh"

# python3-labgrid is a Debian package: Debian's interpreter imports it, while a python3
# found earlier on PATH may be another installation.
PY=/usr/bin/python3
HELPER="$TESTS_DIR/labgrid_replay.py"
require_tools losetup gzip cmp sha256sum rsync unshare mount
[ -x "$PY" ] || fail "$PY is not installed (scripts/install-deps.sh installs python3)"
"$PY" -c 'import labgrid.driver.usbstoragedriver' 2>"$WORK/.import.err" ||
    fail "python3-labgrid is not installed (scripts/install-deps.sh installs it): $(tail -n 1 "$WORK/.import.err")"
[ "$(id -u)" -eq 0 ] || skip "loop devices need root"
cd "$WORK"
MiB=$((1024 * 1024))

# bmapkit under the name bmaptool, behind a wrapper that records each command line.
mkdir -p client-bin client/plain exporter/cache
bmaptool_wrapper

# The image: data in and after the first MiB, a partial last block.
new_sparse client/disk.img $((8 * MiB + 1024))
put_random client/disk.img 0 $((64 * 1024))
put_random client/disk.img $((3 * MiB)) $((512 * 1024))
put_random client/disk.img $((8 * MiB)) 1024
SIZE=$(stat -c %s client/disk.img)
run_ok "$BMAPKIT" create -o client/disk.img.bmap client/disk.img
NRANGES=$(bmap_range_count client/disk.img.bmap)
gzip -c client/disk.img >client/disk.img.gz
cp --sparse=always client/disk.img client/plain/plain.img

truncate -s 16M disk.bin
attach_loop disk.bin || skip "losetup cannot attach a loop device here: $(cat .losetup.err)"
DISK=$LOOP
truncate -s 1M small.bin
attach_loop small.bin || skip "losetup cannot attach a second loop device: $(cat .losetup.err)"
SMALL=$LOOP

# The exporter: every ssh session runs in a mount namespace of its own, where the
# client's image folder is hidden (so labgrid copies the files over instead of using
# them in place) and /var/cache, where labgrid puts the copies, is a folder of the test.
cat >exporter/session <<EOF
#!/bin/sh
export PATH='$WORK/bin':"\$PATH"
exec unshare --mount --propagation private /bin/sh -c '
mount -t tmpfs -o size=64k,mode=0700 hidden-client "\$1" &&
mount --bind "\$2" /var/cache &&
exec /bin/sh -c "\$SSH_ORIGINAL_COMMAND"' session '$WORK/client' '$WORK/exporter/cache'
EOF
chmod +x exporter/session
EXPORTER=1
if unshare --mount --propagation private true 2>.unshare.err; then
    SSHD_EXTRA_CONFIG="ForceCommand $WORK/exporter/session"
    start_sshd
else
    EXPORTER=0
    SSH_CONFIG=/dev/null SSH_HOST=bk-remote
fi

# labgrid runs "ssh" from PATH with options of its own; this one adds the test's
# client configuration, so nothing in the user's ~/.ssh is read or changed.
cat >client-bin/ssh <<EOF
#!/bin/sh
exec /usr/bin/ssh -F '$SSH_CONFIG' "\$@"
EOF
chmod +x client-bin/ssh
# labgrid 0.4.1 copies files with "rsync --compress=1", which rsync refuses since 3.2.7
# (labgrid later passes plain --compress). This shim makes that one change; the bmaptool
# command line under test is not touched.
cat >client-bin/rsync <<'EOF'
#!/bin/sh
for a in "$@"; do
    shift
    if [ "$a" = --compress=1 ]; then set -- "$@" --compress; else set -- "$@" "$a"; fi
done
exec /usr/bin/rsync "$@"
EOF
chmod +x client-bin/rsync

cat >env.yaml <<EOF
targets:
  local:
    resources:
      LoopUSBMassStorage:
        match:
          sys_name: $(basename "$DISK")
    drivers:
      USBStorageDriver:
        image: disk
  small:
    resources:
      LoopUSBMassStorage:
        match:
          sys_name: $(basename "$SMALL")
    drivers:
      USBStorageDriver: {}
  remote:
    resources:
      ExporterUSBMassStorage:
        host: $SSH_HOST
        busnum: null
        devnum: null
        path: $DISK
        vendor_id: null
        model_id: null
    drivers:
      USBStorageDriver: {}
images:
  disk: client/disk.img
EOF

# labgrid [IMAGE]: the driver of TARGET writes IMAGE (default: the configured one);
# output in .out and .err, status in $LG_RC.
labgrid() {
    LG_RC=0
    PATH="$WORK/client-bin:$WORK/bin:$PATH" "$PY" "$HELPER" env.yaml "$@" \
        >.out 2>.err || LG_RC=$?
}

# expect_written WHAT [bmap]: the helper succeeded and the disk holds the image; with
# "bmap", labgrid's log shows that bmapkit checked every range of the bmap.
expect_written() {
    if [ "$LG_RC" -ne 0 ]; then
        cat .out .err
        fail "$1: labgrid failed with status $LG_RC"
    fi
    if grep -E 'bmapkit: (error|warning)|Traceback' .out .err; then fail "$1: an error was printed"; fi
    cmp -n "$SIZE" client/disk.img "$DISK" || fail "$1: $DISK does not hold the image"
    if [ "${2:-}" = bmap ] && ! grep -q "bmapkit: verified $NRANGES of $NRANGES range" .err; then
        cat .err
        fail "$1: no sign in labgrid's log that the bmap's ranges were verified"
    fi
}

# fill DEV BYTE: every byte of DEV set to the octal BYTE, so a copy that writes
# nothing is noticed.
fill() {
    head -c "$(blockdev --getsize64 "$1")" /dev/zero | tr '\0' "\\$2" |
        dd of="$1" bs=1M oflag=direct status=none
}

# ---------------------------------------------------------------- on this machine

fill "$DISK" 000
labgrid local
expect_written "configured image" bmap
expect_argv "bmaptool copy $WORK/client/disk.img $DISK --bmap=$WORK/client/disk.img.bmap"
pass "configured image: 'bmaptool copy IMAGE DEV --bmap=IMAGE.bmap', disk written"

fill "$DISK" 000
labgrid local "$WORK/client/disk.img.gz"
expect_written "compressed image" bmap
expect_argv "bmaptool copy $WORK/client/disk.img.gz $DISK --bmap=$WORK/client/disk.img.bmap"
pass "compressed image: the bmap of the uncompressed name passed, disk written"

fill "$DISK" 245
labgrid local "$WORK/client/plain/plain.img"
expect_written "image without bmap"
expect_argv "bmaptool copy $WORK/client/plain/plain.img $DISK --nobmap"
pass "image without a bmap: 'bmaptool copy IMAGE DEV --nobmap', every byte written"

# A disk too small: the driver's exception carries bmapkit's one error line.
labgrid small "$WORK/client/disk.img"
expect_argv "bmaptool copy $WORK/client/disk.img $SMALL --bmap=$WORK/client/disk.img.bmap"
[ "$LG_RC" -eq 3 ] || { cat .out .err; fail "disk too small: helper status $LG_RC, expected 3"; }
grep -q '^labgrid_replay: bmaptool exited with status [1-9]' .err || { cat .err; fail "disk too small: no failure status"; }
out=$(grep -v '^[[:space:]]*$' .out || true)
if [ "$(wc -l <<<"$out")" -ne 1 ] || ! grep -q "^bmapkit: error: .*$SMALL" <<<"$out"; then
    fail "disk too small: expected one error line naming $SMALL, got: $out"
fi
pass "disk too small: the driver fails with bmapkit's one error line"

# ---------------------------------------------------------------- on the exporter

[ "$EXPORTER" -eq 1 ] || {
    note_skip "no mount namespace for the exporter's sessions: $(cat .unshare.err)"
    exit 0
}
LG_USER=${USER:-$(id -un)}
IMG_HASH=$(sha256sum <client/disk.img.gz | cut -d' ' -f1)
BMAP_HASH=$(sha256sum <client/disk.img.bmap | cut -d' ' -f1)
CACHE=/var/cache/labgrid/$LG_USER
fill "$DISK" 000
labgrid remote "$WORK/client/disk.img.gz"
expect_written "over ssh" bmap
expect_argv "bmaptool copy $CACHE/$IMG_HASH/disk.img.gz $DISK --bmap=$CACHE/$BMAP_HASH/disk.img.bmap"
cmp client/disk.img.gz "exporter/cache/labgrid/$LG_USER/$IMG_HASH/disk.img.gz" ||
    fail "over ssh: the image did not reach the exporter's cache"
cmp client/disk.img.bmap "exporter/cache/labgrid/$LG_USER/$BMAP_HASH/disk.img.bmap" ||
    fail "over ssh: the bmap did not reach the exporter's cache"
pass "over ssh: image and bmap copied to the exporter, bmaptool run there, disk written"

fill "$DISK" 245
rm -rf exporter/cache/labgrid
labgrid remote "$WORK/client/plain/plain.img"
expect_written "over ssh without bmap"
expect_argv "bmaptool copy $CACHE/$(sha256sum <client/plain/plain.img | cut -d' ' -f1)/plain.img $DISK --nobmap"
pass "over ssh without a bmap: '--nobmap' on the exporter, every byte written"
