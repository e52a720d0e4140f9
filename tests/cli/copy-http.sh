#!/bin/bash
# bmapkit copy from http:// and file: URLs: an nginx the test starts on a free 127.0.0.1
# port serves a raw image, its bmap, a multi-block .xz and a .gz. Its access log records
# the bytes it sent for each request, so the test checks that only mapped data is fetched.
# Also: a server without ranges, 404, a password in the URL, nobody listening, a file
# replaced and a server killed during the copy.
source "$TESTS_DIR/lib.sh"
source "$TESTS_DIR/nginx_lib.sh"
require_tools nginx xz gzip zstd openssl python3

cd "$WORK"
# A 64 MiB image: data at 0 (the head), 2 MiB at 8 MiB, 4 MiB at 40 MiB; holes elsewhere.
new_sparse img 64M
put_random img 0 65536
put_random img $((8 << 20)) $((2 << 20))
put_random img $((40 << 20)) $((4 << 20))
$BMAPKIT -q create -o img.bmap img
mapped=$(bmap_mapped_bytes img.bmap)
mkdir -p www/plain www/norange www/auth www/slow
# The xz holds other data where the bmap has holes (as a file system's free blocks do),
# so that fetching only the blocks with mapped data is much less than the whole file.
cp img full
put_random full $((16 << 20)) $((16 << 20))
xz -T2 --block-size=1MiB -c full >www/plain/img.xz
gzip -c img >www/plain/img.gz
cp img img.bmap www/plain/
for d in norange auth slow; do cp img img.bmap www/$d/; done
htpass=$(openssl passwd -apr1 secret)
echo "user:$htpass" >htpasswd

# /slow/ is slow enough that a copy still sends requests a second or more after it began.
nginx_server port --root www --log access.log 'sendfile on;' \
    'location /norange/ { max_ranges 0; }' \
    "location /auth/ { auth_basic \"images\"; auth_basic_user_file $WORK/htpasswd; }" \
    'location /slow/ { limit_rate 64k; }'
# A forward proxy for http_proxy: it fetches what it is asked for from the server above.
nginx_server pport --log proxy.log 'sendfile on;' "location / { proxy_pass http://127.0.0.1:$port; }"
start_nginx
url="http://127.0.0.1:$port"

# sent PATH: bytes nginx sent for every request of PATH since the log was cleared.
sent() {
    awk -v p="$1" '$2 == p { s += $4 } END { print s + 0 }' access.log
}
clear_log() { : >access.log; }
same_image() {
    cmp -n "$(stat -c %s img)" img "$1" || fail "$1 does not hold the image ($2)"
    rm -f "$1"
}
head_absent() {
    if cmp -s -n 65536 img "$1"; then fail "$1 holds the image's head after a failed copy"; fi
}
# xz_needed XZ BMAP: compressed bytes of the xz blocks that hold data BMAP maps.
xz_needed() {
    xz --robot -lvv "$1" | python3 -c '
import sys
bs, ranges = int(sys.argv[1]), sys.argv[2].split()
areas = [(int(r.split("-")[0]) * bs, (int(r.split("-")[-1]) + 1) * bs) for r in ranges]
total = 0
for line in sys.stdin:
    f = line.split("\t")
    if f[0] == "block":
        u, us, cs = int(f[5]), int(f[7]), int(f[6])
        if any(s < u + us and u < e for s, e in areas):
            total += cs
print(total)' "$(bmap_value "$2" BlockSize)" "$(bmap_ranges_only "$2")"
}

# --- raw with the bmap found next to it: only mapped bytes fetched.
clear_log
run_ok $BMAPKIT copy "$url/plain/img" out.raw
same_image out.raw "raw over http"
got=$(sent /plain/img)
# The mapped bytes once each (several requests in flight, gaps merged only within 1/256
# of them), plus the first request's 64 KiB and the headers.
limit=$((mapped * 101 / 100 + 128 * 1024))
[ "$got" -le "$limit" ] || fail "raw: nginx sent $got bytes for $mapped mapped (limit $limit)"
[ "$(grep -c 'GET /plain/img 206' access.log)" -gt 4 ] ||
    fail "raw: the mapped areas were not fetched by several requests"
grep -Eq "GET /plain/img.bmap 20[06]" access.log || fail "the bmap was not fetched over http"
pass "raw over http with the bmap found there: $got bytes sent for $mapped mapped"

# --- multi-block xz, its bmap found as img.bmap after img.xz.bmap: the index, then only
# the blocks holding mapped data.
clear_log
run_ok $BMAPKIT copy "$url/plain/img.xz" out.raw
grep -q "HEAD /plain/img.xz.bmap 404" access.log || fail 'img.xz.bmap was not looked for'
same_image out.raw "xz over http"
got=$(sent /plain/img.xz)
size=$(stat -c %s www/plain/img.xz)
[ "$got" -lt $((size / 2)) ] || cat access.log
[ "$got" -lt $((size / 2)) ] || fail "xz: nginx sent $got bytes of a $size-byte file"
# Each needed block once, plus the index, the first request's 64 KiB and the headers.
needed=$(xz_needed www/plain/img.xz img.bmap)
[ "$got" -le $((needed + 192 * 1024)) ] ||
    fail "xz: nginx sent $got bytes for $needed bytes of needed blocks"
pass "multi-block xz over http: $got of $size bytes sent, $needed in the needed blocks"

# --- an xz whose every block holds mapped data: no more than streaming the file (the
# index and the first request aside).
new_sparse all 16M
for ((i = 0; i < 16; i++)); do put_random all $((i << 20)) $((512 << 10)); done
$BMAPKIT -q create -o www/plain/all.bmap all
xz -T2 --block-size=1MiB -c all >www/plain/all.xz
clear_log
run_ok $BMAPKIT copy "$url/plain/all.xz" out.all
cmp all out.all || fail "all.xz over http: the copy differs from the image"
got=$(sent /plain/all.xz)
size=$(stat -c %s www/plain/all.xz)
[ "$got" -le $((size * 102 / 100 + 64 * 1024)) ] ||
    fail "xz with every block needed: nginx sent $got bytes of a $size-byte file"
rm -f out.all
pass "xz with every block needed over http: $got bytes sent for a $size-byte file"

# --- zstd: streamed, each byte once (finding the frames would fetch about as much).
zstd -q -T2 -c full >www/plain/img.zst
clear_log
run_ok $BMAPKIT copy --bmap "$url/plain/img.bmap" "$url/plain/img.zst" out.raw
same_image out.raw "zst over http"
got=$(sent /plain/img.zst)
size=$(stat -c %s www/plain/img.zst)
[ "$got" -le $((size + 128 * 1024)) ] || fail "zst: nginx sent $got bytes of a $size-byte file"
pass "zstd over http: $got bytes sent for a $size-byte file"

# --- one request in flight gives the same image from the same bytes as several.
clear_log
run_ok $BMAPKIT copy --requests 1 "$url/plain/img" out.raw
same_image out.raw "raw over http, one request at a time"
one=$(sent /plain/img)
[ "$one" -le "$limit" ] || fail "raw, one request at a time: nginx sent $one bytes"
pass "one request at a time: the same image, $one bytes sent"
expect_fail 2 "--requests takes a number from 1 to 32" $BMAPKIT copy --requests 0 "$url/plain/img" out.raw
expect_fail 2 "--requests takes a number from 1 to 32" $BMAPKIT copy --requests 33 "$url/plain/img" out.raw
pass "--requests out of range: a usage error"

# --- gzip: streamed.
run_ok $BMAPKIT copy --bmap "$url/plain/img.bmap" "$url/plain/img.gz" out.raw
same_image out.raw "gz over http"
pass "gzip over http"

# --- the other stream paths work over http as from a local file: bzip2, lz4, a
# single-block xz, tar and zip archives.
require_tools bzip2 lz4 tar zip
bzip2 -c img >www/plain/s.img.bz2
lz4 -q -c img >www/plain/s.img.lz4
xz -T1 -c img >www/plain/s.img.xz
tar -cf www/plain/s.tar img
zip -q www/plain/s.zip img
for f in s.img.bz2 s.img.lz4 s.img.xz s.tar s.zip; do
    run_ok $BMAPKIT copy --bmap "$url/plain/img.bmap" "$url/plain/$f" out.raw
    same_image out.raw "$f over http"
done
pass "bzip2, lz4, single-block xz, tar and zip over http"

# --- damaged streams over http: one error line naming the URL, no image head written.
gz_size=$(stat -c %s www/plain/img.gz)
head -c $((gz_size / 2)) www/plain/img.gz >www/plain/cut.img.gz
cp www/plain/img.gz www/plain/flip.img.gz
printf '\125' | dd of=www/plain/flip.img.gz bs=1 seek=$((gz_size / 2)) conv=notrunc status=none
cmp -s www/plain/img.gz www/plain/flip.img.gz && fail "the byte flip changed nothing"
for f in cut.img.gz flip.img.gz; do
    : >out.raw
    expect_fail 1 "$url/plain/$f" $BMAPKIT copy -q --bmap "$url/plain/img.bmap" "$url/plain/$f" out.raw
    head_absent out.raw
done
pass "a cut and a damaged .gz over http: one line naming the URL, no image head"

# --- a server that ignores ranges: the image is streamed.
clear_log
run_ok $BMAPKIT copy "$url/norange/img" out.raw
same_image out.raw "server without ranges"
grep -q "GET /norange/img 200" access.log || fail "no plain GET of the image without ranges"
pass "a server without ranges streams the image"

# --- a proxy from the environment: the image's host is one only the proxy reaches.
: >proxy.log
run_ok env http_proxy="http://127.0.0.1:$pport" no_proxy= NO_PROXY= \
    $BMAPKIT copy "http://images.invalid:$port/plain/img" out.raw
same_image out.raw "through http_proxy"
grep -q "GET /plain/img 206" proxy.log || { cat proxy.log; fail "the image did not go through the proxy"; }
grep -q "/plain/img.bmap 20[06]" proxy.log || fail "the bmap was not looked for through the proxy"
pass "http_proxy from the environment: the image and its bmap through the proxy"

# --- credentials from ~/.netrc.
mkdir -p home
printf 'machine 127.0.0.1\nlogin user\npassword secret\n' >home/.netrc
chmod 600 home/.netrc
run_ok env HOME="$WORK/home" $BMAPKIT copy "$url/auth/img" out.raw
same_image out.raw "credentials from ~/.netrc"
grep -q "secret" "$WORK/.err" && fail "the password from ~/.netrc was printed"
pass "credentials for the server from ~/.netrc"

# --- 404: one line with the URL and the status.
expect_fail 1 "$url/plain/none\.img.*404" $BMAPKIT copy --nobmap "$url/plain/none.img" out.raw
expect_fail 1 "$url/plain/none\.bmap.*404" \
    $BMAPKIT copy --bmap "$url/plain/none.bmap" "$url/plain/img" out.raw
pass "404 of the image or the bmap: one line with the URL and the status"

# --- a password in the URL: used, never shown (messages, debug, JSON events).
auth="http://user:secret@127.0.0.1:$port/auth"
rm -f out.raw
$BMAPKIT -d copy --json-events ev.json "$auth/img" out.raw >out.log 2>&1 ||
    { cat out.log; fail "copy with a password in the URL failed"; }
same_image out.raw "password in the URL"
grep -q "user@127.0.0.1" out.log || fail "the URL is not shown without its password"
! grep -q secret out.log ev.json || fail "the password appears in the output or events"
expect_fail 1 "user@127\.0\.0\.1.*404" $BMAPKIT copy --nobmap --json-events ev.json "$auth/none" out.raw
! grep -q secret "$WORK/.ef.err" ev.json || fail "the password appears in an error or its event"
expect_fail 1 "127\.0\.0\.1:$port/auth/img.*401" $BMAPKIT copy --nobmap \
    "http://user:wrong@127.0.0.1:$port/auth/img" out.raw
! grep -q wrong "$WORK/.ef.err" || fail "a wrong password appears in the error"
pass "a password in the URL is used and never shown"

# --- nobody listening.
dead=$(free_tcp_port)
expect_fail 1 "127\.0\.0\.1:$dead/img.*(onnect|refused)" $BMAPKIT copy --nobmap \
    "http://127.0.0.1:$dead/img" out.raw
pass "nobody listening: one line naming the URL and the cause"

# --- file: URLs, both forms, with the bmap found next to the image.
run_ok $BMAPKIT copy "file:$WORK/img" out.raw
same_image out.raw "file:/abs"
run_ok $BMAPKIT copy "file://$WORK/img" out.raw
same_image out.raw "file:///abs"
run_ok $BMAPKIT copy --bmap "file://$WORK/img.bmap" "file://$WORK/www/plain/img.xz" out.raw
same_image out.raw "file: URL of an xz with a file: bmap"
pass "file: URLs"

# --- the file replaced on the server during the copy: an error, no head written.
rm -f out.raw
$BMAPKIT copy "$url/slow/img" out.raw >slow.log 2>&1 &
copier=$!
sleep 1
cp img www/slow/img.new
touch -d '2001-01-01' www/slow/img.new
mv www/slow/img.new www/slow/img
rc=0
wait $copier || rc=$?
[ "$rc" -ne 0 ] || { cat slow.log access.log; fail "a file replaced during the copy went unnoticed"; }
grep -q "^bmapkit: error: .*slow/img.*changed on the server" slow.log ||
    { cat slow.log; fail "no error about the changed file"; }
head_absent out.raw
pass "a file replaced during the copy: $(grep -o 'changed on the server.*' slow.log | head -c 80)"

# --- the server killed during the copy: an error naming the bytes received.
cp img www/slow/img
rm -f out.raw
$BMAPKIT copy "$url/slow/img" out.raw >kill.log 2>&1 &
copier=$!
sleep 1
stop_nginx
rc=0
wait $copier || rc=$?
[ "$rc" -ne 0 ] || fail "a copy whose server died succeeded"
[ "$(grep -c '^bmapkit: error: ' kill.log)" -eq 1 ] || { cat kill.log; fail "not one error line"; }
grep -Eq "^bmapkit: error: .*slow/img.*[0-9]+ bytes received" kill.log ||
    { cat kill.log; fail "the error does not say the bytes received"; }
head_absent out.raw
pass "the server killed during the copy: $(grep '^bmapkit: error' kill.log)"
