#!/bin/bash
# bmapkit copy from ftp:// URLs: a vsftpd the test starts on a free 127.0.0.1 port
# (standalone, anonymous, passive mode on 127.0.0.1, a configuration of its own). A raw
# image with its bmap found next to it, read with REST at the mapped ranges only (the
# FTP commands in vsftpd's log say where each transfer started); an .xz; a file that is
# not there; a password in the URL, used and never shown.
source "$TESTS_DIR/lib.sh"
require_tools vsftpd python3 xz
[ "$(id -u)" -eq 0 ] || skip "vsftpd runs its anonymous sessions in a chroot, which needs root"

cd "$WORK"
# A 64 MiB image: 64 KiB at 0 (the head), 2 MiB at 8 MiB, 1 MiB at 40 MiB.
new_sparse img 64M
put_random img 0 65536
put_random img $((8 << 20)) $((2 << 20))
put_random img $((40 << 20)) $((1 << 20))
$BMAPKIT -q create -o img.bmap img
mapped=$(bmap_mapped_bytes img.bmap)
bs=$(bmap_value img.bmap BlockSize)
# The anonymous root and the empty folder of vsftpd's unprivileged process: owned by
# root and not writable by others, as vsftpd demands; the files readable by everyone.
mkdir -p ftp/sub empty
cp img img.bmap ftp/
xz -T2 --block-size=1MiB -c img >ftp/img.xz
chmod 755 ftp ftp/sub empty
chmod 644 ftp/img ftp/img.bmap ftp/img.xz

# A free port, and a run of 16 free ports for passive data connections.
read -r port pasv <<<"$(python3 - <<'EOF'
import random, socket
def free(p):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
        return True
    except OSError:
        return False
    finally:
        s.close()
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
for _ in range(200):
    base = random.randrange(20000, 60000)
    if all(free(p) for p in range(base, base + 16)) and not base <= port < base + 16:
        print(port, base)
        break
EOF
)"
[ -n "$pasv" ] || fail "no run of free ports for passive mode"
cat >vsftpd.conf <<EOF
listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
listen_port=$port
background=NO
anonymous_enable=YES
local_enable=NO
write_enable=NO
anon_root=$WORK/ftp
no_anon_password=NO
anon_world_readable_only=YES
pasv_enable=YES
pasv_address=127.0.0.1
pasv_min_port=$pasv
pasv_max_port=$((pasv + 15))
connect_from_port_20=NO
secure_chroot_dir=$WORK/empty
seccomp_sandbox=NO
isolate=NO
isolate_network=NO
xferlog_enable=YES
xferlog_std_format=NO
vsftpd_log_file=$WORK/vsftpd.log
log_ftp_protocol=YES
pam_service_name=vsftpd
EOF
vsftpd "$WORK/vsftpd.conf" >vsftpd.out 2>&1 &
echo $! >vsftpd.bg
at_exit "kill \$(cat '$WORK/vsftpd.bg') 2>/dev/null; wait \$(cat '$WORK/vsftpd.bg') 2>/dev/null"
for ((i = 0; i < 200; i++)); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null && break
    sleep 0.1
done
[ "$i" -lt 200 ] || { cat vsftpd.out; fail "vsftpd did not start on port $port"; }
url="ftp://127.0.0.1:$port"

# retrieved FILE: "OFFSET" of every RETR of FILE, from the REST before it in the same
# session (0 without one).
retrieved() {
    python3 - vsftpd.log "$1" <<'EOF'
import re, sys
rest = {}
for line in open(sys.argv[1], errors="replace"):
    m = re.search(r'\[pid (\d+)\].*FTP command: Client "[^"]*", "(REST|RETR) ?(.*)"$', line.rstrip("\n"))
    if not m:
        continue
    pid, cmd, arg = m.groups()
    if cmd == "REST":
        rest[pid] = int(arg)
    elif arg.lstrip("/") == sys.argv[2]:
        print(rest.pop(pid, 0))
    else:
        rest.pop(pid, None)
EOF
}

# --- a raw image, the bmap found next to it: transfers start only in mapped data.
: >vsftpd.log
rm -f out
run_ok $BMAPKIT copy --json-events ev.json "$url/img" out
same_as_image img img.bmap out
grep -q 'OK DOWNLOAD: .*"/img.bmap"' vsftpd.log || fail "the bmap was not fetched over ftp"
offsets=$(retrieved img)
[ -n "$offsets" ] || { cat vsftpd.log; fail "no RETR of img in vsftpd's log"; }
ranges=$(bmap_ranges_only img.bmap)
for off in $offsets; do
    inside=
    for r in $ranges; do
        if [ "$off" -ge $((${r%-*} * bs)) ] && [ "$off" -le $((${r#*-} * bs + bs - 1)) ]; then
            inside=1
        fi
    done
    [ -n "$inside" ] || fail "a transfer of img started at byte $off, outside the mapped ranges ($ranges)"
done
fetched=$(python3 -c 'import json, sys; print(json.loads(open(sys.argv[1]).readlines()[-1])["fetched"])' ev.json)
limit=$((mapped * 105 / 100 + 128 * 1024))
[ "$fetched" -le "$limit" ] || fail "$fetched bytes fetched for $mapped mapped (limit $limit)"
pass "raw image over ftp: $(wc -w <<<"$offsets") transfers, all from mapped data (REST); $fetched bytes fetched for $mapped mapped"

# --- an xz, its bmap found as img.bmap.
rm -f out
run_ok $BMAPKIT copy "$url/img.xz" out
same_as_image img img.bmap out
pass "xz over ftp, bmap img.bmap found next to it"

# --- a file that is not there: one line with the URL, non-zero.
expect_fail 1 "$url/none\.img: " $BMAPKIT -q copy --nobmap "$url/none.img" out
expect_fail 1 "$url/sub/none\.img: " $BMAPKIT -q copy --nobmap "$url/sub/none.img" out
expect_fail 1 "$url/none\.bmap" $BMAPKIT -q copy --bmap "$url/none.bmap" "$url/img" out
pass "a file that is not there: $(sed 's/^bmapkit: error: //' "$WORK/.ef.err")"

# --- a password in the URL: used, never in the output or the events.
: >vsftpd.log
rm -f out
auth="ftp://anonymous:secret@127.0.0.1:$port"
$BMAPKIT -d copy --json-events ev.json "$auth/img" out >out.log 2>&1 ||
    { cat out.log; fail "copy with a password in the URL failed"; }
same_as_image img img.bmap out
grep -q "anonymous@127.0.0.1:$port/img" out.log || fail "the URL is not shown without its password"
grep -q '"PASS ' vsftpd.log || fail "no password was sent to vsftpd"
! grep -q secret out.log ev.json || fail "the password appears in the output or the events"
expect_fail 1 "anonymous@127\.0\.0\.1:$port/none\.img" \
    $BMAPKIT copy --nobmap --json-events ev.json "$auth/none.img" out
! grep -q secret "$WORK/.ef.err" ev.json || fail "the password appears in an error or its event"
pass "a password in an ftp URL is used and never shown"
