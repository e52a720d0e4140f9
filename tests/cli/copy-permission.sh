#!/usr/bin/env bash
# bmapkit copy by a user who may not write to the destination (root only, to make the
# disk and to become user nobody): on a disk the error says how to get access (root or
# sudo, the disk's group, the udev rule for UMS disks), also in the JSON error event;
# on a regular file the error is the plain refusal, without that advice.
source "$TESTS_DIR/lib.sh"

require_tools losetup setpriv python3
[ "$(id -u)" -eq 0 ] || skip "making a disk and becoming another user need root"
cd "$WORK"
chmod 755 "$WORK"
if ! setpriv --reuid nobody --regid nogroup --clear-groups test -x "$BMAPKIT"; then
    # A build in a folder only root can enter, such as /root in a fresh chroot.
    skip "user nobody cannot run $BMAPKIT here"
fi
as_nobody() {
    setpriv --reuid nobody --regid nogroup --clear-groups "$@"
}

new_sparse img $((2 * 1024 * 1024))
put_random img 0 65536
"$BMAPKIT" create -q img -o img.bmap
chmod 644 img img.bmap
truncate -s 4M disk.img
attach_loop disk.img || skip "losetup cannot attach a loop device here: $(cat .losetup.err)"
chmod 660 "$LOOP"
as_nobody test -w "$LOOP" && skip "user nobody may write to $LOOP here"

# --- a disk: the advice
hint='\(writing to a disk takes root, e\.g\. sudo, or membership in the group( .[a-z0-9_-]+.)? that owns it; the udev rule 70-bmapkit-ums\.rules, once installed, gives the user logged in at the seat access to a board.s U-Boot UMS disk when it is connected\)$'
expect_fail 1 "^bmapkit: error: cannot open destination $LOOP: Permission denied $hint" \
    as_nobody "$BMAPKIT" copy --bmap img.bmap img "$LOOP"
pass "a disk nobody may write: Permission denied, with how to get access"

rc=0
as_nobody "$BMAPKIT" copy --json-events - --bmap img.bmap img "$LOOP" >events.json 2>events.err || rc=$?
[ "$rc" -eq 1 ] || { cat events.err; fail "with --json-events: exit $rc"; }
python3 - events.json "$LOOP" <<'EOF' || fail "the error event of the refused disk"
import json, sys
ev = [json.loads(line) for line in open(sys.argv[1])]
err = [e for e in ev if e["event"] == "error"]
assert len(err) == 1, "%d error events" % len(err)
msg = err[0]["message"]
assert err[0]["code"] == "io" and err[0]["exit"] == 1, err[0]
assert msg.startswith("cannot open destination %s: Permission denied (" % sys.argv[2]), msg
assert "70-bmapkit-ums.rules" in msg, msg
assert ev[-1]["event"] == "done" and ev[-1]["exit"] == 1, ev[-1]
EOF
cmp -n 65536 /dev/zero "$LOOP" || fail "something was written to $LOOP"
pass "with --json-events: the error event carries the same advice, nothing written"

# --- a regular file: only the refusal
: >root-only.img
chmod 644 root-only.img
expect_fail 1 '^bmapkit: error: [^(]*root-only\.img[^(]*Permission denied$' \
    as_nobody "$BMAPKIT" copy --bmap img.bmap img root-only.img
pass "a regular file nobody may write: Permission denied, without advice about disks"
