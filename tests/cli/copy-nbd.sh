#!/bin/bash
# bmapkit copy to NBD exports: nbdkit servers on Unix sockets and 127.0.0.1 ports, with
# TLS-PSK, and with faults (refused writes, failed flushes, a server that dies, a
# read-only or too small export). The server's request log shows what was written.
source "$TESTS_DIR/lib.sh"
source "$TESTS_DIR/sshd_lib.sh"
source "$TESTS_DIR/nbdkit_lib.sh"
require_tools nbdkit nbdcopy nbdinfo xz python3

cd "$WORK"
# A 48 MiB image: data at 0 (the head), at 1 MiB, and 6 MiB at 20 MiB; holes elsewhere.
new_sparse img 48M
put_random img 0 65536
put_random img $((1 << 20)) $((2 << 20))
put_random img $((20 << 20)) $((6 << 20))
$BMAPKIT -q create -o img.bmap img
xz -T2 -k -c img >img.xz
mapped=$(bmap_mapped_bytes img.bmap)

# written LOG: "offset+count" of every write request the server logged, one per line.
written() {
    python3 - "$1" <<'EOF'
import re, sys
for line in open(sys.argv[1]):
    m = re.search(r"Write id=\d+ offset=(0x[0-9a-f]+) count=(0x[0-9a-f]+)", line)
    if m and "..." in line:
        print(int(m.group(1), 16), int(m.group(2), 16))
EOF
}

# only_mapped LOG BMAP: every write lies inside a mapped range, and they cover the
# mapped bytes (the head's bytes are written twice: zeros first, the data last).
only_mapped() {
    written "$1" >"$WORK/.writes"
    python3 - "$WORK/.writes" "$2" "$mapped" <<'EOF'
import re, sys
writes = [tuple(map(int, l.split())) for l in open(sys.argv[1])]
text = open(sys.argv[2]).read()
bs = int(re.search(r"<BlockSize>\s*(\d+)", text).group(1))
ranges = []
for a, b in re.findall(r">\s*(\d+)(?:\s*-\s*(\d+))?\s*</Range>", text):
    ranges.append((int(a) * bs, (int(b or a) + 1) * bs))
for off, n in writes:
    if not any(s <= off and off + n <= e for s, e in ranges):
        sys.exit("write of %d bytes at %d is outside the mapped ranges" % (n, off))
covered = set()
total = 0
for off, n in writes:
    total += n
if total < int(sys.argv[3]):
    sys.exit("%d bytes written, the bmap maps %s" % (total, sys.argv[3]))
if total > int(sys.argv[3]) + (1 << 20):
    sys.exit("%d bytes written for %s mapped: more than the head twice" % (total, sys.argv[3]))
EOF
}

# export_equals NAME: the export holds the image over the image's size.
export_equals() {
    rm -f "$WORK/got.raw"
    nbdcopy "$(uri "$1")" "$WORK/got.raw"
    cmp -n "$(stat -c %s img)" img "$WORK/got.raw" || fail "export $1 does not hold the image"
}

# head_absent NAME: the export's first 64 KiB are not the image's.
head_absent() {
    nbdcopy "$(uri "$1")" "$WORK/head.raw"
    if cmp -s -n 65536 img "$WORK/head.raw"; then
        fail "export $1 holds the image's head after a failed copy"
    fi
}

# --- a raw image over a Unix socket: only mapped ranges, the image on the export.
serve --log mem memory 64M
run_ok $BMAPKIT copy img "$(uri mem)"
grep -q "wrote .* to nbd+unix" .err || { cat .err; fail "no summary naming the export"; }
only_mapped mem.log img.bmap
export_equals mem
pass "raw image to nbd+unix: only mapped ranges written, content equal"

# The head is written last: the last write is at offset 0.
last=$(written mem.log | tail -n 1)
[ "${last%% *}" = 0 ] || fail "the last write was at ${last%% *}, not the head"
grep -q "Flush" mem.log || fail "no flush was sent"
pass "head written last, then flushed"

# --- --readback reads through NBD.
run_ok $BMAPKIT copy --readback img "$(uri mem)"
grep -q "read back 3 range(s) from nbd+unix" .err || { cat .err; fail "no read-back report"; }
grep -q "Read id=" mem.log || fail "read-back sent no read requests"
pass "--readback reads the ranges back through NBD"
stop mem

# --- an xz image over TCP on 127.0.0.1.
port=$(free_tcp_port)
nbdkit -i 127.0.0.1 -p "$port" -P "$WORK/tcp.pid" memory 64M || fail "nbdkit on port $port"
at_exit "kill \$(cat '$WORK/tcp.pid' 2>/dev/null) 2>/dev/null"
run_ok $BMAPKIT copy --bmap img.bmap img.xz "nbd://127.0.0.1:$port/"
nbdcopy "nbd://127.0.0.1:$port/" got.raw
cmp -n "$(stat -c %s img)" img got.raw || fail "nbd:// export does not hold the image"
pass "xz image to nbd://127.0.0.1:$port"
kill "$(cat tcp.pid)"

# --- TLS with a pre-shared key.
printf 'alice:%s\n' "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" >keys.psk
printf 'alice:%s\n' "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" >wrong.psk
chmod 600 keys.psk wrong.psk
port=$(free_tcp_port)
nbdkit -i 127.0.0.1 -p "$port" -P "$WORK/tls.pid" --tls=require --tls-psk="$WORK/keys.psk" \
    memory 64M || fail "nbdkit with TLS"
at_exit "kill \$(cat '$WORK/tls.pid' 2>/dev/null) 2>/dev/null"
run_ok $BMAPKIT copy img "nbds://alice@127.0.0.1:$port/?tls-psk-file=$WORK/keys.psk"
nbdcopy "nbds://alice@127.0.0.1:$port/?tls-psk-file=$WORK/keys.psk" got.raw
cmp -n "$(stat -c %s img)" img got.raw || fail "TLS export does not hold the image"
pass "nbds:// with TLS-PSK"
expect_fail 1 "cannot connect to nbds://alice@127\.0\.0\.1:$port/.*" \
    $BMAPKIT copy img "nbds://alice@127.0.0.1:$port/?tls-psk-file=$WORK/wrong.psk"
pass "a wrong pre-shared key: refused, one line"
expect_fail 1 "cannot connect to nbd://127\.0\.0\.1:$port/" \
    $BMAPKIT copy img "nbd://127.0.0.1:$port/"
pass "plain NBD to a server that requires TLS: refused, one line"
kill "$(cat tls.pid)"

# --- nobody listening.
port=$(free_tcp_port)
expect_fail 1 "cannot connect to nbd://127\.0\.0\.1:$port/: .*Connection refused" \
    $BMAPKIT copy img "nbd://127.0.0.1:$port/"
pass "connection refused: one line"

# --- too small, read-only, removable-only: refused before any write.
serve --log small memory 8M
expect_fail 1 "destination nbd\+unix:.* is too small: 8388608 bytes, the image needs 50331648; nothing was written" \
    $BMAPKIT copy img "$(uri small)"
[ -z "$(written small.log)" ] || fail "writes reached a too small export"
stop small
serve --log ro -r memory 64M
expect_fail 1 "the export is read-only" $BMAPKIT copy img "$(uri ro)"
stop ro
serve --log rem memory 64M
expect_fail 1 "is an NBD export, not a removable disk" $BMAPKIT copy --removable-device img "$(uri rem)"
[ -z "$(written rem.log)" ] || fail "writes reached the export with --removable-device"
stop rem
pass "too small, read-only and --removable-device: refused, nothing written"

# --- a write the server fails at a chosen byte: an eval plugin over a file.
truncate -s 64M disk.raw
cat >pwrite.sh <<'EOF'
#!/bin/sh
# $3 count, $4 offset
if [ "$4" -ge "$FAIL_AT" ]; then echo "EIO injected write failure" >&2; exit 1; fi
dd of="$DISK" bs=64K oflag=seek_bytes seek="$4" iflag=count_bytes,fullblock count="$3" conv=notrunc status=none
EOF
chmod +x pwrite.sh
serve_faulty() {
    FAIL_AT=$1 DISK=$WORK/disk.raw serve --log faulty eval \
        get_size='echo 67108864' \
        pread='dd if="$DISK" bs=64K iflag=skip_bytes,count_bytes skip="$4" count="$3" status=none' \
        pwrite="$WORK/pwrite.sh \"\$@\"" flush="${2:-exit 0}" can_flush='exit 0' \
        thread_model='echo serialize_requests'
}
put_random disk.raw 0 65536
serve_faulty $((21 << 20))
expect_fail 1 "the server failed the write of [0-9]+ bytes at byte [0-9]+: Input/output error; .* holds an incomplete copy .* without the image's first MiB" \
    $BMAPKIT -q copy img "$(uri faulty)"
cmp -s -n 65536 img disk.raw && fail "the image's head reached the disk after a failed write"
pass "a write failed by the server: one line with the state, head not written"
stop faulty

# --- a flush the server fails: every write arrives, the flush is refused.
put_random disk.raw 0 65536
serve_faulty $((1 << 40)) 'echo "EIO injected flush failure" >&2; exit 1'
expect_fail 1 "the server failed the flush: Input/output error; nothing of the image was written to .*, but zeros may have replaced the mapped part of its first MiB" $BMAPKIT -q copy img "$(uri faulty)"
cmp -s -n 65536 img disk.raw && fail "the image's head reached the disk after a failed flush"
pass "a failed flush: exit 1, one line, head not written"
stop faulty

# --- the server dies mid-copy (every write delayed so the copy is still running).
serve --log dying --filter=delay memory 64M delay-write=300ms
$BMAPKIT copy img "$(uri dying)" >dying.out 2>dying.err &
copy=$!
sleep 1
stop dying
rc=0
wait "$copy" || rc=$?
[ "$rc" -eq 1 ] || { cat dying.err; fail "copy to a server that died exited $rc"; }
[ "$(grep -c '^bmapkit: error: ' dying.err)" -eq 1 ] || { cat dying.err; fail "not one error line"; }
pass "the server dies mid-copy: exit 1, one line"

# --- latency: writes go out several at a time (the log shows overlapping requests).
# A second per write is long enough for even a sanitizer build to send the next one
# before the first is answered; a client that waits for each reply never overlaps.
serve --log slow --filter=delay memory 64M delay-write=1000ms
run_ok $BMAPKIT copy img "$(uri slow)"
python3 - "$WORK/slow.log" <<'EOF' || fail "writes were sent one at a time"
import re, sys
open_now, most = 0, 0
for line in open(sys.argv[1]):
    if re.search(r"Write id=\d+ .*\.\.\.$", line.rstrip()):
        open_now += 1
        most = max(most, open_now)
    elif re.search(r"Write id=\d+ .*return=", line):
        open_now -= 1
sys.exit(0 if most >= 2 else 1)
EOF
export_equals slow
pass "writes overlap behind a slow server"
stop slow

# --- the file plugin behind the rate filter (a slow link): the server's file holds
# the image, holes where the bmap maps nothing.
truncate -s 64M target.raw
serve --log file --filter=rate file "$WORK/target.raw" rate=200M
run_ok $BMAPKIT copy img.xz "$(uri file)"
cmp -n "$(stat -c %s img)" img target.raw || fail "the file plugin's file does not hold the image"
only_mapped file.log img.bmap
pass "xz image to nbdkit's file plugin behind a rate filter"
stop file
