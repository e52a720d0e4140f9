#!/usr/bin/env bash
# bmapkit copy to ssh:// destinations, over an sshd on 127.0.0.1 whose bmapkit is this build: the compressed image and its bmap sent as they are to a file and a loop device, the remote errors relayed as one line, the bytes on the wire, a dropped connection and a killed command leaving no image head, the nbdkit fallback, neither there, the UMS disk there; and the receiving side's --bmap-from-stdin alone.
source "$TESTS_DIR/lib.sh"
source "$TESTS_DIR/sshd_lib.sh"
source "$TESTS_DIR/fake_sysfs.sh"
require_tools python3 xz cmp base64
cd "$WORK"

# An image of 40 MiB with some 10 MiB mapped: random bytes and text, so xz has work.
# Its xz (about 6 MB) is more than ssh holds in flight (a 2 MiB channel window, pipes):
# a copy stopped after 1 MB went over leaves the far side a stream that ends early, not
# one that was already all on its way.
new_sparse img 40M
put_random img 0 1M
put_random img $((20 << 20)) 4M
python3 - img <<'PY'
import os, sys
words = open("/usr/share/common-licenses/GPL-3", "rb").read()
fd = os.open(sys.argv[1], os.O_WRONLY)
os.pwrite(fd, (words * 200)[:4 << 20], 1 << 20)
os.pwrite(fd, os.urandom(1 << 20) + words * 10, 30 << 20)
os.close(fd)
PY
"$BMAPKIT" create -o img.bmap img 2>/dev/null
xz -T2 -k img
IMG_SIZE=$(stat -c %s img)
BMAP_SIZE=$(stat -c %s img.bmap)

# first_mib_is_image FILE: the first MiB of FILE is the image's.
first_mib_is_image() {
    cmp -s -n 1048576 img "$1"
}

# --- the receiving side alone: the bmap, then the image, on standard input
run_ok "$BMAPKIT" copy --bmap-from-stdin="$BMAP_SIZE" - local.img < <(cat img.bmap img.xz)
same_as_image img img.bmap local.img
pass "--bmap-from-stdin: the bmap, then the compressed image, on standard input"

sed 's/<BlockSize> *\([0-9]*\)/<BlockSize> 1\1/' img.bmap >bad.bmap
expect_fail 1 "bmap from standard input" \
    "$BMAPKIT" copy -q --bmap-from-stdin="$(stat -c %s bad.bmap)" - bad.img < <(cat bad.bmap img.xz)
expect_fail 1 "standard input ended after $BMAP_SIZE of the bmap's $((BMAP_SIZE + 10)) bytes" \
    "$BMAPKIT" copy -q --bmap-from-stdin=$((BMAP_SIZE + 10)) - bad.img <img.bmap
head -c $((BMAP_SIZE + 1000000)) < <(cat img.bmap img.xz) >short
expect_fail 1 "xz" "$BMAPKIT" copy -q --bmap-from-stdin="$BMAP_SIZE" - short.img <short
first_mib_is_image short.img && fail "a truncated stream left the image's head"
pass "--bmap-from-stdin: a damaged bmap, a short bmap and a cut image each fail in one line"

expect_fail 2 "needs the IMAGE '-'" "$BMAPKIT" copy -q --bmap-from-stdin=10 img.xz out
expect_fail 2 "excludes --bmap" "$BMAPKIT" copy -q --bmap-from-stdin=10 --bmap img.bmap - out
expect_fail 2 "number of bytes" "$BMAPKIT" copy -q --bmap-from-stdin=x - out
pass "--bmap-from-stdin: usage errors"

# --- URLs are read strictly, before anything is connected
for bad in "ssh://host" "ssh://host/" "ssh://:22/dev/sdb" "ssh://host:0/x" "ssh://host:99999/x" \
    "ssh://host:/x" "ssh://-oProxyCommand=x/dev/sdb" "ssh://us\$er@host/x" "ssh://@host/x" \
    "ssh://[::1/x" "ssh://host/ums:a b" "ssh://host/a"$'\n'"b"; do
    expect_fail 2 "bad ssh destination" "$BMAPKIT" copy -q img.xz "$bad"
done
expect_fail 2 "a password cannot be given in the URL" "$BMAPKIT" copy -q img.xz ssh://me:secret@host/x
expect_fail 2 "--remote-bmapkit applies only to an ssh:// DEST" \
    "$BMAPKIT" copy -q --remote-bmapkit=x img.xz out
expect_fail 2 "--wait applies only to a UMS destination" \
    "$BMAPKIT" copy -q --wait 3 img.xz ssh://host/dev/sdb
pass "bad ssh:// destinations are usage errors"

start_sshd
R="ssh://$SSH_HOST"
REMOTE=(--remote-bmapkit="$BMAPKIT")

# --- mode 1: the image as it is, to a regular file
run_ok "$BMAPKIT" copy "${REMOTE[@]}" --json-events ev.json img.xz "$R$WORK/out.img"
grep -q "^bmapkit: $R$WORK/out.img: bmapkit $("$BMAPKIT" --version | cut -d' ' -f2) there writes the image" .err ||
    { cat .err; fail "no line saying that the bmapkit there writes"; }
grep -q "^bmapkit: wrote .* MiB to $R$WORK/out.img in .* sent over ssh$" .err ||
    { cat .err; fail "no summary line"; }
same_as_image img img.bmap out.img
json_events_check ev.json img.bmap ok >/dev/null
python3 - ev.json "$R$WORK/out.img" <<'PY' || fail "events name the ssh destination"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
assert ev[0]["dest"] == sys.argv[2] and ev[0]["image"] == "img.xz", ev[0]
assert all(list(e).count("schema") <= 1 for e in ev)
PY
pass "mode 1: to a remote file, same content and holes, events relayed"

# the same with the image on standard input, and with --nobmap
run_ok "$BMAPKIT" copy "${REMOTE[@]}" --bmap img.bmap - "$R$WORK/out-stdin.img" <img.xz
same_as_image img img.bmap out-stdin.img
run_ok "$BMAPKIT" copy "${REMOTE[@]}" --nobmap img.xz "$R$WORK/out-nobmap.img"
cmp img out-nobmap.img
pass "mode 1: the image from standard input, and without a bmap"

# --- an image given as a URL is not bytes to send: refused before the far side is touched.
expect_fail 1 "file://$WORK/img\.xz: an image given as a URL cannot be sent on to ssh://" \
    "$BMAPKIT" copy "${REMOTE[@]}" --bmap img.bmap "file://$WORK/img.xz" "$R$WORK/out-url.img"
[ ! -e out-url.img ] || fail "a refused URL image created the destination"
pass "mode 1: an image given as a URL is refused with one line"

# --- a signed bmap: checked here; the other host gets the bmap that was checked
require_tools gpg gpgconf
mkdir -m 700 gnupg
at_exit "GNUPGHOME='$WORK/gnupg' gpgconf --kill all"
GNUPGHOME="$WORK/gnupg" gpg --batch --quiet --gen-key 2>/dev/null <<EOF
%no-protection
Key-Type: eddsa
Key-Curve: ed25519
Key-Usage: sign
Name-Real: signer Test
Name-Email: signer@example.org
Expire-Date: 0
%commit
EOF
GNUPGHOME="$WORK/gnupg" gpg --batch --quiet --yes --export -o signer.gpg
GNUPGHOME="$WORK/gnupg" gpg --batch --quiet --yes --clearsign -o img.signed.bmap img.bmap
run_ok "$BMAPKIT" copy "${REMOTE[@]}" --keyring signer.gpg --bmap img.signed.bmap \
    --json-events ev-signed.json img.xz "$R$WORK/signed.img"
grep -q "^bmapkit: successfully verified bmap file signature of signer Test" .err ||
    { cat .err; fail "no signature line"; }
same_as_image img img.bmap signed.img
python3 -c 'import json, sys; e = json.loads(open(sys.argv[1]).readline()); assert e["signature"]["signer"].startswith("signer Test"), e' \
    ev-signed.json || fail "the start event names no signer"
sed 's/^\(    <ImageSize>\)/\1 /' img.signed.bmap >img.forged.bmap
expect_fail 1 "signature" "$BMAPKIT" copy -q "${REMOTE[@]}" --keyring signer.gpg \
    --bmap img.forged.bmap img.xz "$R$WORK/forged.img"
[ ! -e forged.img ] || fail "a bmap with a bad signature reached the other host"
pass "a clearsigned bmap: checked here, its signed text copied there; a forged one refused here"

# --- the bytes on the wire (a proxy between ssh and sshd counts them): the compressed image
# and the bmap, hardly more. (A mode 1 copy as above: the quick run leaves the count out.)
if test_quick; then
    note_skip "the bytes on the wire: not counted in the quick run (BMAPKIT_TEST_QUICK=1)"
else
    run_ok env BMAPKIT_SSH_COMMAND="ssh -F $(ssh_proxy_config "$WORK/counts")" \
        "$BMAPKIT" copy "${REMOTE[@]}" img.xz "$R$WORK/out-counted.img"
    cmp img out-counted.img
    sent=$(proxy_sent "$WORK/counts")
    want=$(($(stat -c %s img.xz) + BMAP_SIZE))
    awk -v s="$sent" -v w="$want" 'BEGIN { exit !(s <= 1.05 * w) }' ||
        fail "$sent bytes went over ssh for $want bytes of compressed image and bmap"
    pass "bytes on the wire: $sent for $want of image.xz and bmap ($(awk -v s="$sent" -v w="$want" 'BEGIN { printf "%.4f", s / w }')x)"
fi

# --- remote errors: one line, naming the destination, with the remote status
expect_fail 1 "^bmapkit: error: $R/dev/bmapkit-no-such-disk: .*does not exist" \
    "$BMAPKIT" copy -q "${REMOTE[@]}" --json-events ev-fail.json img.xz "$R/dev/bmapkit-no-such-disk"
json_events_check ev-fail.json img.bmap failed 1 >/dev/null
python3 - ev-fail.json "$R/dev/bmapkit-no-such-disk" <<'PY' || fail "the error event"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
err = ev[-2]
assert err["message"].startswith(sys.argv[2] + ": ") and err["code"] == "refused", err
PY
expect_fail 1 "^bmapkit: error: $R$WORK/no-such-folder/out.img: " \
    "$BMAPKIT" copy -q "${REMOTE[@]}" img.xz "$R$WORK/no-such-folder/out.img"
# a bmap of another image of the same size: the data there does not verify
cp img other
put_random other 30M 4096
"$BMAPKIT" create -o other.bmap other 2>/dev/null
expect_fail 3 "^bmapkit: error: $R$WORK/bad.img: .*do not match the bmap" \
    "$BMAPKIT" copy -q "${REMOTE[@]}" --bmap other.bmap img.xz "$R$WORK/bad.img"
first_mib_is_image bad.img && fail "data that did not verify there left the image's head"
pass "remote errors: a missing disk, a missing folder, data that does not verify"

# --- a dropped connection and a stopped command, mid-copy
# A wrapper records the pid of every bmapkit run there, to wait for their end.
cat >remote-bmapkit <<EOF
#!/bin/sh
echo \$\$ >>"$WORK/remote.pids"
exec "$BMAPKIT" "\$@"
EOF
chmod +x remote-bmapkit
remote_pids_gone() {
    local i pid alive
    for i in $(seq 100); do
        alive=0
        for pid in $(cat remote.pids 2>/dev/null); do
            kill -0 "$pid" 2>/dev/null && alive=1
        done
        [ "$alive" -eq 0 ] && return 0
        sleep 0.1
    done
    fail "the remote bmapkit still runs 10 s after the connection went"
}

# start_slow_copy NAME: a copy to $WORK/NAME.img through a proxy at 500 kB/s, in the
# background ($COPY_PID), returning once the copy there has begun and 1 MB went over.
start_slow_copy() {
    local i
    : >remote.pids
    rm -f "$1.img"
    env BMAPKIT_SSH_COMMAND="ssh -F $(ssh_proxy_config "$WORK/$1" --rate 500000)" \
        "$BMAPKIT" copy --remote-bmapkit="$WORK/remote-bmapkit" img.xz "$R$WORK/$1.img" \
        >"$1.out" 2>"$1.err" &
    COPY_PID=$!
    for i in $(seq 600); do
        [ -e "$1.img" ] && [ "$(proxy_sent "$WORK/$1")" -gt 1000000 ] && return 0
        sleep 0.05
    done
    fail "$1: the copy did not get going"
}

# one_error NAME STATUS PATTERN: the copy NAME ended with STATUS and one error line.
one_error() {
    local rc=0
    wait "$COPY_PID" || rc=$?
    [ "$rc" -eq "$2" ] || { cat "$1.err"; fail "$1: exit status $rc, expected $2"; }
    [ "$(grep -c '^bmapkit: error: ' "$1.err")" -eq 1 ] && grep -Eq "$3" "$1.err" ||
        { cat "$1.err"; fail "$1: not one error line matching /$3/"; }
}

# the link goes: the proxy of the copy's connection (the busier one) is killed
start_slow_copy dropped
proxy=$(for f in dropped.[0-9]*; do echo "$(cut -d' ' -f1 "$f") ${f#dropped.}"; done |
    sort -n | tail -n 1 | cut -d' ' -f2)
kill -KILL "$proxy"
one_error dropped 1 "^bmapkit: error: $R$WORK/dropped.img: the connection to $SSH_HOST ended before the copy did"
remote_pids_gone
first_mib_is_image dropped.img && fail "a dropped connection left the image's head"
pass "a connection dropped mid-copy: one error line, no image head there"

# the local command stopped: SIGTERM (status 4, one line), SIGKILL (only ssh is left)
start_slow_copy stopped
kill -TERM "$COPY_PID"
one_error stopped 4 "^bmapkit: error: $R$WORK/stopped.img: interrupted"
remote_pids_gone
first_mib_is_image stopped.img && fail "SIGTERM: the image's head reached the remote file"
pass "SIGTERM to the local command mid-copy: status 4, one error line, no image head there"
if test_quick; then
    # The bmapkit there then sees its input end early, as with the dropped connection.
    note_skip "SIGKILL to the local command mid-copy: not in the quick run (BMAPKIT_TEST_QUICK=1)"
else
    start_slow_copy killed
    # (bash reports a child killed so on its own error output, which is not the copy's)
    exec 3>&2 2>/dev/null
    kill -KILL "$COPY_PID"
    wait "$COPY_PID" || true
    exec 2>&3 3>&-
    remote_pids_gone
    first_mib_is_image killed.img && fail "SIGKILL: the image's head reached the remote file"
    pass "SIGKILL to the local command mid-copy: no image head there"
fi

# --- no ssh server at the address
port=$(free_tcp_port)
expect_fail 1 "^bmapkit: error: ssh://127.0.0.1:$port/x: cannot run a command there over ssh: .*port $port: Connection refused" \
    "$BMAPKIT" copy -q img.xz "ssh://127.0.0.1:$port/x"
pass "no ssh server there: one error line with ssh's reason"

# --- mode 2: no bmapkit there, nbdkit over ssh
run_ok "$BMAPKIT" copy --remote-bmapkit=/nonexistent/bmapkit img.xz "$R$WORK/nbd.img"
grep -q "^bmapkit: $R$WORK/nbd.img: no bmapkit there .* written through nbdkit over ssh" .err ||
    { cat .err; fail "no line saying the copy goes through nbdkit"; }
same_as_image img img.bmap nbd.img
pass "mode 2: without bmapkit there, through nbdkit, to a remote file"

expect_fail 1 "^bmapkit: error: $R/dev/bmapkit-no-such-disk: /dev/bmapkit-no-such-disk does not exist on $SSH_HOST" \
    "$BMAPKIT" copy -q --remote-bmapkit=/nonexistent/bmapkit img.xz "$R/dev/bmapkit-no-such-disk"
pass "mode 2: a missing disk is refused"

# --- neither bmapkit nor nbdkit there: the remote command runs in a mount namespace where
# every nbdkit is covered by an empty file that cannot be run
cat >ssh-no-nbdkit <<EOF
#!/bin/bash
n=\$#
enc=\$(printf '%s' "\${!n}" | base64 -w0)
exec ssh -F "$SSH_CONFIG" "\${@:1:n-1}" "unshare -m sh -c 'for d in /usr/bin /usr/sbin /usr/local/bin /usr/local/sbin; do if [ -x \\\$d/nbdkit ]; then mount --bind $WORK/empty \\\$d/nbdkit || exit 1; fi; done; eval \"\\\$(echo \$enc | base64 -d)\"'"
EOF
chmod +x ssh-no-nbdkit
: >empty
BMAPKIT_SSH_COMMAND="$WORK/ssh-no-nbdkit" expect_fail 1 \
    "^bmapkit: error: $R$WORK/none.img: $SSH_HOST has neither a bmapkit .* nor nbdkit" \
    "$BMAPKIT" copy -q --remote-bmapkit=/nonexistent/bmapkit img.xz "$R$WORK/none.img"
[ ! -e none.img ] || fail "something was written with neither there"
if test_quick; then
    # A mode 1 copy like the first: only the absent nbdkit is new.
    note_skip "a copy with bmapkit but no nbdkit there: not in the quick run (BMAPKIT_TEST_QUICK=1)"
    pass "neither bmapkit nor nbdkit there: one error line"
else
    BMAPKIT_SSH_COMMAND="$WORK/ssh-no-nbdkit" run_ok \
        "$BMAPKIT" copy "${REMOTE[@]}" img.xz "$R$WORK/no-nbdkit.img"
    cmp img no-nbdkit.img
    pass "neither bmapkit nor nbdkit there: one error line; bmapkit alone is enough"
fi

# --- block devices there: a loop device, one too small, the nbdkit way to one, one mounted
# (a small image, for the small disk and the UMS disk)
new_sparse ums.img 4M
put_random ums.img 0 65536
put_random ums.img 2097152 65536
"$BMAPKIT" create -o ums.img.bmap ums.img 2>/dev/null
new_sparse disk 64M
new_sparse small 16M
if test_quick; then
    note_skip "block devices there: not in the quick run (BMAPKIT_TEST_QUICK=1)"
elif attach_loop disk && DISK=$LOOP && attach_loop small && SMALL=$LOOP; then
    run_ok "$BMAPKIT" copy "${REMOTE[@]}" --readback img.xz "$R$DISK"
    cmp -n "$IMG_SIZE" img "$DISK"
    grep -q "^bmapkit: read back $(bmap_range_count img.bmap) range(s) from $R$DISK: all match$" .err ||
        { cat .err; fail "no read-back line"; }
    pass "mode 1: to a loop device there, read back there"
    expect_fail 1 "^bmapkit: error: $R$SMALL: .*(too small|smaller)" \
        "$BMAPKIT" copy -q "${REMOTE[@]}" img.xz "$R$SMALL"
    pass "mode 1: a disk too small there is refused"
    dd if=/dev/zero of="$DISK" bs=1M count=64 status=none
    run_ok "$BMAPKIT" copy --remote-bmapkit=/nonexistent/bmapkit --readback img.xz "$R$DISK"
    cmp -n "$IMG_SIZE" img "$DISK"
    grep -q "^bmapkit: read back $(bmap_range_count img.bmap) range(s) from $R$DISK: all match$" .err ||
        { cat .err; fail "no read-back line"; }
    expect_fail 1 "^bmapkit: error: $R$SMALL: $SMALL is too small" \
        "$BMAPKIT" copy -q --remote-bmapkit=/nonexistent/bmapkit img.xz "$R$SMALL"
    pass "mode 2: to a loop device there, read back through NBD, and one too small refused"
    # a mounted file system on the disk there: refused both ways, nothing written
    require_tools mkfs.ext4
    mkfs.ext4 -q -F "$SMALL"
    mkdir mnt
    if mount -o ro "$SMALL" mnt 2>.mount.err; then
        at_exit "umount '$WORK/mnt' 2>/dev/null"
        sum=$(md5sum <"$SMALL")
        expect_fail 1 "^bmapkit: error: $R$SMALL: .*mounted" \
            "$BMAPKIT" copy -q "${REMOTE[@]}" ums.img "$R$SMALL"
        expect_fail 1 "^bmapkit: error: $R$SMALL: $SMALL is in use on $SSH_HOST \\($WORK/mnt\\) \\(stop using it first, or use --force" \
            "$BMAPKIT" copy -q --remote-bmapkit=/nonexistent/bmapkit ums.img "$R$SMALL"
        [ "$(md5sum <"$SMALL")" = "$sum" ] || fail "a mounted disk there was written"
        umount mnt
        pass "a mounted disk there is refused, with and without bmapkit there"
    else
        note_skip "cannot mount here: $(cat .mount.err)"
    fi
else
    note_skip "no loop devices here: $(cat .losetup.err)"
fi

# --- the UMS disk there (a fake tree, which the remote bmapkit is pointed at)
T=$WORK/tree
fake_tree "$T"
fake_ums "$T" sdb 8:16 0 1-2 0123456789
: >"$T/dev/sdb"
cat >remote-ums-bmapkit <<EOF
#!/bin/sh
BMAPKIT_SYSROOT="$T" exec "$BMAPKIT" "\$@"
EOF
chmod +x remote-ums-bmapkit
run_ok "$BMAPKIT" copy --remote-bmapkit="$WORK/remote-ums-bmapkit" ums.img "$R/ums:1-2"
cmp ums.img "$T/dev/sdb"
grep -q "^bmapkit: U-Boot UMS disk on $SSH_HOST (LUN 0) /dev/sdb: Linux UMS disk 0, 8.0 MiB, USB port 1-2, serial 0123456789$" .err ||
    { cat .err; fail "no identity line of the remote UMS disk"; }
expect_fail 1 "^bmapkit: error: $R/ums:7: " \
    "$BMAPKIT" copy -q --remote-bmapkit="$WORK/remote-ums-bmapkit" --wait 0 ums.img "$R/ums:7"
expect_fail 1 "^bmapkit: error: $R/ums: the UMS disk of $SSH_HOST is found by its bmapkit" \
    "$BMAPKIT" copy -q --remote-bmapkit=/nonexistent/bmapkit ums.img "$R/ums"
pass "the UMS disk there: written, named; a missing one and one without bmapkit refused"
