#!/usr/bin/env bash
# bmapkit copy from ssh:// images, bmaps and signatures over an sshd on 127.0.0.1: raw, .xz and .gz images with the bmap found next to them, --bmap over ssh, the reference's HOST:PATH (relative to the home folder) and the HOST:PORT/PATH form, a Host alias of an ssh configuration, and the failures (unknown host key, wrong key, nobody listening, missing file, directory, permission denied, the link cut mid-copy) as one line without the image head on the destination; a password in the URL reaches ssh through its askpass and shows nowhere.
source "$TESTS_DIR/lib.sh"
source "$TESTS_DIR/sshd_lib.sh"
require_tools python3 xz gzip cmp
cd "$WORK"

# An image of 12 MiB with 3 MiB mapped, its bmap, and compressed copies.
new_sparse img 12M
put_random img 0 1M
put_random img 5M 1M
put_random img 11M 1M
"$BMAPKIT" create -o img.bmap img 2>/dev/null
xz -k img
gzip -k img
mkdir dir

# first_mib_is_image FILE: the first MiB of FILE is the image's.
first_mib_is_image() {
    [ -f "$1" ] && cmp -s -n 1048576 img "$1"
}

# --- URLs are read before anything is connected
for bad in "ssh://host" "ssh://host:" "ssh://-oProxyCommand=x:img" \
    "ssh://u:p w@host:img" "ssh://us\$er@host:img" "ssh://host:0/img" "ssh://[::1" \
    "ssh://host:a"$'\n'"b"; do
    expect_fail 2 "bad ssh URL" "$BMAPKIT" copy -q "$bad" out
done
expect_fail 2 "bad ssh URL" "$BMAPKIT" copy -q --bmap "ssh://host" img out
expect_fail 2 "cannot go to an ssh:// DEST" "$BMAPKIT" copy -q ssh://host:img ssh://other/x
pass "bad ssh:// images and bmaps are usage errors"

SSHD_EXTRA_CONFIG="Match User bkpw$$
    PasswordAuthentication yes"
start_sshd
DIR=$(cd "$WORK" && pwd)
# The same folder relative to root's home on the "remote" host.
HOME_THERE=$(ssh -F "$SSH_CONFIG" "$SSH_HOST" pwd)
REL=$(python3 -c 'import os, sys; print(os.path.relpath(sys.argv[1], sys.argv[2]))' "$DIR" "$HOME_THERE")
R="ssh://$SSH_HOST"

# --- raw, .xz and .gz, the bmap found next to each over ssh
run_ok "$BMAPKIT" copy --json-events ev.json "$R$DIR/img" out1
same_as_image img img.bmap out1
json_events_check ev.json img.bmap ok >/dev/null
run_ok "$BMAPKIT" copy -d "$R:$REL/img.xz" out2
same_as_image img img.bmap out2
grep -q "found bmap $R:$REL/img.bmap over ssh" .err || { cat .err; fail "bmap not found next to the .xz"; }
if test_quick; then
    # The .gz decoder has its own tests; over ssh it reads the same stream as the .xz.
    note_skip "the .gz image over ssh (HOST:~/ path): not in the quick run (BMAPKIT_TEST_QUICK=1)"
    pass "raw and .xz images over ssh (absolute and HOST:relative paths), bmap found there"
else
    run_ok "$BMAPKIT" copy "$R:~/$REL/img.gz" out3
    same_as_image img img.bmap out3
    pass "raw, .xz and .gz images over ssh (absolute, HOST:relative and HOST:~/ paths), bmap found there"
fi

# --- the port form, through a configuration that knows 127.0.0.1 (not an alias)
cfg_any="$WORK/sshd/ssh_config_any"
sed "s/^Host .*/Host 127.0.0.1/; /HostName\|Port /d" "$SSH_CONFIG" >"$cfg_any"
cp img.bmap other.bmap
BMAPKIT_SSH_COMMAND="ssh -F $cfg_any" run_ok "$BMAPKIT" copy \
    --bmap "ssh://root@127.0.0.1:$SSH_PORT$DIR/other.bmap" "ssh://root@127.0.0.1:$SSH_PORT$DIR/img.xz" out4
same_as_image img img.bmap out4
run_ok "$BMAPKIT" copy --bmap "$R:$REL/other.bmap" img out5
same_as_image img img.bmap out5
pass "ssh://USER@HOST:PORT/PATH, and --bmap over ssh with a remote and a local image"

# --- a Host alias with its own Port and IdentityFile, as in ~/.ssh/config
cat >"$WORK/alias_config" <<EOF
Host bk-alias
    HostName 127.0.0.1
    Port $SSH_PORT
    User root
    IdentityFile $WORK/sshd/client_key
    IdentitiesOnly yes
    UserKnownHostsFile $WORK/sshd/known_hosts
    StrictHostKeyChecking yes
    BatchMode yes
EOF
if test_quick; then
    # bmapkit hands the alias to ssh like any host: only ssh reads the configuration.
    note_skip "a copy through a Host alias: not in the quick run (BMAPKIT_TEST_QUICK=1)"
else
    BMAPKIT_SSH_COMMAND="ssh -F $WORK/alias_config" run_ok "$BMAPKIT" copy "ssh://bk-alias:$REL/img.xz" out6
    same_as_image img img.bmap out6
    pass "a Host alias of the ssh configuration (port, key, known hosts)"
fi

# --- a clearsigned-looking signature next to the bmap is found over ssh and checked
echo "not a signature" >img.bmap.asc
expect_fail 1 "signature $R$DIR/img.bmap.asc" "$BMAPKIT" copy -q "$R$DIR/img" bad1
rm img.bmap.asc
[ -e bad1 ] && fail "a destination was made although the signature was bad"
pass "a signature next to the bmap is found over ssh in the same round trip"

# --- failures: one line naming the URL and the cause, nothing of the image written
expect_fail 1 "^bmapkit: error: $R:$REL/nothing.img: no such file there" \
    "$BMAPKIT" copy -q "$R:$REL/nothing.img" bad2
expect_fail 1 "$R$DIR/dir: a directory there" "$BMAPKIT" copy -q "$R$DIR/dir" bad2
mv img.bmap img.bmap.keep
expect_fail 1 "no bmap found for $R$DIR/img.gz .*--nobmap" "$BMAPKIT" copy -q "$R$DIR/img.gz" bad2
mv img.bmap.keep img.bmap
expect_fail 1 "cannot read the bmap: $R:$REL/none.bmap: .*No such file" \
    "$BMAPKIT" copy -q --bmap "$R:$REL/none.bmap" "$R:$REL/img.xz" bad2
[ -e bad2 ] && fail "a failed copy made its destination"
: >unknown_hosts
if test_quick; then
    # ssh refuses all three alike (status 255 and a line of its own), which bmapkit relays
    # the same way: the quick run keeps the one that needs no handshake.
    note_skip "an unknown host key and a wrong key: not in the quick run (BMAPKIT_TEST_QUICK=1)"
else
    sed "s|UserKnownHostsFile .*|UserKnownHostsFile $WORK/unknown_hosts|" "$WORK/alias_config" >"$WORK/strict_config"
    BMAPKIT_SSH_COMMAND="ssh -F $WORK/strict_config" expect_fail 1 \
        "ssh://bk-alias:img.xz.*Host key verification failed" "$BMAPKIT" copy -q ssh://bk-alias:img.xz bad3
    echo "unknown host key: $(grep error: "$WORK/.ef.err")"
    ssh-keygen -q -t ed25519 -N '' -f "$WORK/other_key"
    sed "s|IdentityFile .*|IdentityFile $WORK/other_key|" "$WORK/alias_config" >"$WORK/wrongkey_config"
    BMAPKIT_SSH_COMMAND="ssh -F $WORK/wrongkey_config" expect_fail 1 \
        "ssh://bk-alias:img.xz.*Permission denied" "$BMAPKIT" copy -q ssh://bk-alias:img.xz bad3
fi
NOPORT=$(free_tcp_port)
sed "s|Port .*|Port $NOPORT|" "$WORK/alias_config" >"$WORK/noport_config"
BMAPKIT_SSH_COMMAND="ssh -F $WORK/noport_config" expect_fail 1 \
    "ssh://bk-alias:img.xz.*Connection refused" "$BMAPKIT" copy -q ssh://bk-alias:img.xz bad3
[ -e bad3 ] && fail "a failed connection made its destination"
if test_quick; then
    pass "missing file, directory, no bmap, nobody listening: one line each"
else
    pass "missing file, directory, no bmap, unknown host key, wrong key, nobody listening: one line each"
fi

# --- the link cut mid-copy: the image comes from a FIFO that stalls after 6 MiB
mkfifo slow.img
(
    head -c 6M img
    exec sleep 60
) >slow.img &
WRITER=$!
at_exit "kill $WRITER 2>/dev/null"
cfg_proxy=$(ssh_proxy_config "$WORK/counts")
BMAPKIT_SSH_COMMAND="ssh -F $cfg_proxy" "$BMAPKIT" copy -q --nobmap "$R$DIR/slow.img" cut.img \
    >cut.out 2>cut.err &
COPY=$!
# The proxy of the connection that carries the image: the one past 6 MB downstream.
for i in $(seq 600); do
    big=$(awk '$2 > 6000000 { n = FILENAME; sub(/.*\./, "", n); print n; exit }' \
        "$WORK"/counts.[0-9]* 2>/dev/null) || true
    [ -n "$big" ] && break
    sleep 0.1
done
[ -n "$big" ] || fail "the proxy never carried 6 MB of the image"
kill "$big"
rc=0
wait "$COPY" || rc=$?
[ "$rc" -eq 1 ] || { cat cut.err; fail "a cut link gave exit status $rc, not 1"; }
[ "$(wc -l <cut.err)" -eq 1 ] || { cat cut.err; fail "a cut link gave more than one line"; }
grep -q "^bmapkit: error: $R$DIR/slow.img: .*status 255" cut.err || { cat cut.err; fail "the cut link's line"; }
cat cut.err
first_mib_is_image cut.img && fail "a cut link left the image's head on the destination"
kill "$WRITER" 2>/dev/null || true
pass "a link cut mid-copy fails in one line, without the image head"

# --- stopped with SIGTERM while ssh streams: exit 4, and no ssh left running
mkfifo slow2.img
(
    head -c 6M img
    exec sleep 60
) >slow2.img &
WRITER=$!
at_exit "kill $WRITER 2>/dev/null"
"$BMAPKIT" copy -q --nobmap "$R$DIR/slow2.img" term.img 2>term.err &
COPY=$!
kids=
for i in $(seq 300); do
    kids=$(pgrep -P "$COPY" || true)
    [ -n "$kids" ] && [ -s term.img ] && break
    sleep 0.1
done
[ -n "$kids" ] || fail "bmapkit started no ssh for the image"
kids="$kids $(for k in $kids; do pgrep -P "$k" || true; done)"
kill -TERM "$COPY"
rc=0
wait "$COPY" || rc=$?
[ "$rc" -eq 4 ] || { cat term.err; fail "SIGTERM during an ssh copy gave exit status $rc, not 4"; }
# The stream is stalled for a minute: bmapkit must not wait for it to move again.
kill -0 "$WRITER" 2>/dev/null || fail "bmapkit stopped only once the stalled stream moved again"
sleep 0.5
for k in $kids; do
    if [ -e "/proc/$k" ] && ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$k/stat"; then
        fail "process $k ($(cat "/proc/$k/comm")) of the ssh image outlived bmapkit"
    fi
done
first_mib_is_image term.img && fail "an interrupted copy left the image's head"
kill "$WRITER" 2>/dev/null || true
pass "SIGTERM while the ssh stream stalls: exit 4 at once, ssh stopped, no image head"

# --- a user of its own: permission denied, and a password in the URL
U=bkpw$$
PW='pa:ss@w%rd!'
useradd -M -d "$WORK/uhome" -s /bin/sh "$U" || fail "cannot add the test user $U"
at_exit "userdel $U 2>/dev/null"
mkdir -p uhome
chown "$U" uhome
chmod 755 "$WORK"
echo "$U:$PW" | chpasswd
cp img.xz uhome/
cp img.bmap uhome/
cp img uhome/secret.img
chmod 600 uhome/secret.img
cat >"$WORK/pw_config" <<EOF
Host bk-pw
    HostName 127.0.0.1
    Port $SSH_PORT
    UserKnownHostsFile $WORK/sshd/known_hosts
    StrictHostKeyChecking yes
    PubkeyAuthentication no
    PreferredAuthentications password,keyboard-interactive
EOF
PWURL="ssh://$U:pa%3Ass@w%25rd!@bk-pw:img.xz"
unset SSH_AUTH_SOCK DISPLAY
# A wrapper that records the argument lists ssh gets, and whether its askpass is set.
cat >"$WORK/sshwrap" <<WRAP
#!/bin/sh
printf '%s\n' "\$*" >>"$WORK/ssh_argv"
printf '%s\n' "\$SSH_ASKPASS_REQUIRE \$SSH_ASKPASS" >>"$WORK/ssh_askpass"
exec ssh "\$@"
WRAP
chmod +x "$WORK/sshwrap"
BMAPKIT_SSH_COMMAND="$WORK/sshwrap -F $WORK/pw_config" run_ok "$BMAPKIT" copy -d --json-events pw.json \
    "$PWURL" pwout </dev/null
same_as_image img img.bmap pwout
[ "$(wc -l <"$WORK/ssh_argv")" -eq 3 ] || fail "expected 3 ssh calls (probe, bmap, image): $(cat "$WORK/ssh_argv")"
grep -qF "pa:ss" "$WORK/ssh_argv" && fail "the password is on ssh's command line"
grep -qvx "force $(readlink -f "$BMAPKIT")" "$WORK/ssh_askpass" &&
    fail "ssh's askpass is not this bmapkit: $(cat "$WORK/ssh_askpass")"
grep -q "Accepted password for $U" "$SSH_LOG" || fail "sshd did not log a password login for $U"
cat .out .err pw.json >all
grep -qF "pa:ss" all && fail "the password shows in the output"
grep -qF "pa%3Ass" all && fail "the password shows in the output (as written)"
grep -qF "ssh://$U@bk-pw:img.xz" all || fail "the URL without its password is not in the output"
pass "a password in the URL logs in through ssh's askpass and shows in no message or event"

BMAPKIT_SSH_COMMAND="ssh -F $WORK/pw_config" expect_fail 1 \
    "^bmapkit: error: ssh://$U@bk-pw:img.xz: .*Permission denied" \
    "$BMAPKIT" copy -q --json-events pwbad.json "ssh://$U:Wr0ngPw@bk-pw:img.xz" pwbad </dev/null
grep -qF "Wr0ngPw" "$WORK/.ef.err" pwbad.json && fail "the wrong password shows in the output"
BMAPKIT_SSH_COMMAND="ssh -F $WORK/pw_config" expect_fail 1 \
    "ssh://$U@bk-pw:secret.img: permission denied there" \
    "$BMAPKIT" copy -q --nobmap "ssh://$U:pa%3Ass@w%25rd!@bk-pw:secret.img" pwbad </dev/null
[ -e pwbad ] && fail "a failed login made its destination"
pass "a wrong password and a file the user may not read: one line each, no password"
