#!/usr/bin/env bash
# LAVA's U-Boot UMS flashing with bmapkit installed as bmaptool (root only: loop
# devices): the dispatcher's two command lines, run the way it runs commands (split
# with shlex, behind nice, on a pseudo-terminal through pexpect), to a loop device.
source "$TESTS_DIR/lib.sh"

# pexpect comes with python3-labgrid as a Debian package: Debian's interpreter imports
# it, while a python3 found earlier on PATH may be another installation.
PY=/usr/bin/python3
require_tools losetup cmp nice blockdev
[ -x "$PY" ] || fail "$PY is not installed (scripts/install-deps.sh installs python3)"
"$PY" -c 'import pexpect' 2>"$WORK/.import.err" ||
    fail "python3-pexpect is not installed (scripts/install-deps.sh installs it with python3-labgrid): $(tail -n 1 "$WORK/.import.err")"
[ "$(id -u)" -eq 0 ] || skip "loop devices need root"
cd "$WORK"
MiB=$((1024 * 1024))

# bmapkit under the name bmaptool, behind a wrapper that records each command line.
bmaptool_wrapper

# The image where the dispatcher's download step leaves it: data in and after the
# first MiB, a partial last block.
DL="$WORK/dispatcher/tmp/1/downloads/common"
mkdir -p "$DL"
IMG="$DL/rootfs.img"
new_sparse "$IMG" $((6 * MiB + 512))
put_random "$IMG" 0 $((32 * 1024))
put_random "$IMG" $((2 * MiB)) $((256 * 1024))
put_random "$IMG" $((6 * MiB)) 512
SIZE=$(stat -c %s "$IMG")

truncate -s 16M ums.bin
attach_loop ums.bin || skip "losetup cannot attach a loop device here: $(cat .losetup.err)"
UMS=$LOOP
truncate -s 1M small.bin
attach_loop small.bin || skip "losetup cannot attach a second loop device: $(cat .losetup.err)"
SMALL=$LOOP

# lava COMMAND: run the command string as the dispatcher does; the terminal's output
# in .tty (carriage returns removed), the exit status in $LAVA_RC.
lava() {
    LAVA_RC=0
    PATH="$WORK/bin:$PATH" "$PY" - "$1" .tty.raw <<'EOF' || LAVA_RC=$?
import shlex, sys
import pexpect

command_list = [str(s) for s in shlex.split(sys.argv[1])]
with open(sys.argv[2], "w", encoding="utf-8") as log:
    proc = pexpect.spawn("nice", command_list, encoding="utf-8", codec_errors="replace",
                         logfile=log, timeout=300, searchwindowsize=10)
    proc.expect(pexpect.EOF)
    ret = proc.wait()
if ret is None:
    print("killed by signal %s" % proc.signalstatus, file=sys.stderr)
    sys.exit(125)
sys.exit(ret)
EOF
    tr -d '\r' <.tty.raw >.tty
}

# expect_ok WHAT: exit status 0 and no error or warning on the terminal.
expect_ok() {
    [ "$LAVA_RC" -eq 0 ] || { cat -A .tty; fail "$1: exit status $LAVA_RC"; }
    if grep -E 'error|warning' .tty; then fail "$1: complained on the terminal"; fi
}

# expect_silent WHAT: exit status 0 and nothing but white space on the terminal.
expect_silent() {
    [ "$LAVA_RC" -eq 0 ] || { cat -A .tty; fail "$1: exit status $LAVA_RC"; }
    [ -z "$(tr -d ' \t\n' <.tty)" ] || { cat -A .tty; fail "$1: printed on the terminal"; }
}

# expect_one_error WHAT PATTERN: a non-zero exit status and, on the terminal, one
# non-blank line: bmapkit's error matching PATTERN.
expect_one_error() {
    local out
    [ "$LAVA_RC" -ne 0 ] || { cat -A .tty; fail "$1: exit status 0"; }
    out=$(grep -v '^[[:space:]]*$' .tty || true)
    if [ "$(wc -l <<<"$out")" -ne 1 ] || ! grep -Eq "^bmapkit: error: $2" <<<"$out"; then
        cat -A .tty
        fail "$1: expected one error line matching /$2/"
    fi
}

# fill DEV BYTE: every byte of DEV set to the octal BYTE.
fill() {
    head -c "$(blockdev --getsize64 "$1")" /dev/zero | tr '\0' "\\$2" |
        dd of="$1" bs=1M oflag=direct status=none
}

# ---------------------------------------------------------------- the two steps

# create reports its progress on a terminal; LAVA only logs it.
lava "bmaptool create --output $IMG.layout $IMG"
expect_ok "create"
expect_argv "bmaptool create --output $IMG.layout $IMG"
check_bmap "$IMG.layout" "$IMG"
pass "'bmaptool create --output IMAGE.layout IMAGE': exit 0, a valid bmap"

lava "bmaptool --quiet copy --bmap $IMG.layout $IMG $UMS"
expect_silent "quiet copy"
expect_argv "bmaptool --quiet copy --bmap $IMG.layout $IMG $UMS"
cmp -n "$SIZE" "$IMG" "$UMS" || fail "quiet copy: $UMS does not hold the image"
pass "'bmaptool --quiet copy --bmap IMAGE.layout IMAGE DEV': exit 0, silent, disk written"

# The same copy without --quiet draws a progress bar on this terminal: the silence
# above is --quiet's doing.
fill "$UMS" 000
lava "bmaptool copy --bmap $IMG.layout $IMG $UMS"
expect_ok "copy without --quiet"
grep -q '100%' .tty || { cat -A .tty; fail "copy without --quiet: no progress bar on the terminal"; }
cmp -n "$SIZE" "$IMG" "$UMS" || fail "copy: $UMS does not hold the image"
rm -f "$ARGV_LOG"
pass "without --quiet the terminal shows progress"

# ---------------------------------------------------------------- failures

# A disk too small: refused before anything is written.
fill "$SMALL" 245
cp "$SMALL" small.before
lava "bmaptool --quiet copy --bmap $IMG.layout $IMG $SMALL"
expect_argv "bmaptool --quiet copy --bmap $IMG.layout $IMG $SMALL"
expect_one_error "disk too small" "destination $SMALL is too small"
cmp small.before "$SMALL" || fail "disk too small: $SMALL was written"
pass "disk too small: non-zero exit, one error line, disk untouched"

# The download missing: the layout step fails the same way.
lava "bmaptool create --output $DL/missing.img.layout $DL/missing.img"
expect_argv "bmaptool create --output $DL/missing.img.layout $DL/missing.img"
expect_one_error "missing image" ".*$DL/missing\\.img"
[ ! -e "$DL/missing.img.layout" ] || fail "missing image: a layout was left behind"
pass "missing image: create fails with one error line, no layout left"
