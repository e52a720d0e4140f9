#!/bin/bash
# bmapkit copy from https:// URLs: a CA and a certificate for 127.0.0.1 made here with
# openssl, nginx with TLS on a free 127.0.0.1 port. Without --ca-file the system's CAs
# do not know the test CA: the copy fails before DEST is touched; with it the copy
# verifies, the bmap found over https. A wrong CA, a certificate for another name, a CA
# file that does not exist; the bytes fetched in the JSON events.
source "$TESTS_DIR/lib.sh"
source "$TESTS_DIR/nginx_lib.sh"
require_tools nginx openssl python3 xz

cd "$WORK"
# A 32 MiB image: 64 KiB at 0 (the head), 2 MiB at 8 MiB, 1 MiB at 20 MiB.
new_sparse img 32M
put_random img 0 65536
put_random img $((8 << 20)) $((2 << 20))
put_random img $((20 << 20)) $((1 << 20))
$BMAPKIT -q create -o img.bmap img
size=$(stat -c %s img)
mkdir -p www
cp img img.bmap www/
xz -T2 --block-size=1MiB -c img >www/img.xz

# make_ca NAME: a CA key and self-signed certificate, NAME.key and NAME.pem.
make_ca() {
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=bmapkit test $1" \
        -keyout "$1.key" -out "$1.pem" -addext basicConstraints=critical,CA:TRUE \
        -addext keyUsage=critical,keyCertSign,cRLSign 2>openssl.err ||
        { cat openssl.err; fail "openssl could not make the CA $1"; }
}
# make_cert NAME CA SAN: a server key and certificate signed by CA for SAN.
make_cert() {
    openssl req -newkey rsa:2048 -nodes -subj "/CN=$1" -keyout "$1.key" -out "$1.csr" \
        2>openssl.err || { cat openssl.err; fail "openssl could not make the request $1"; }
    printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$3" >"$1.ext"
    openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial -days 2 \
        -extfile "$1.ext" -out "$1.pem" 2>openssl.err ||
        { cat openssl.err; fail "openssl could not sign $1"; }
}
make_ca ca
make_ca other
make_cert server ca IP:127.0.0.1
make_cert wrongname ca DNS:elsewhere.invalid

# One log for both servers, each line starting with the port that answered.
NGINX_LOG_FORMAT="\$server_port $NGINX_LOG_FORMAT"
nginx_server port --root www --ssl server.pem server.key --log access.log
nginx_server port2 --root www --ssl wrongname.pem wrongname.key --log access.log
start_nginx
url="https://127.0.0.1:$port"

# A DEST that already holds something: a failed copy must leave it as it was.
python3 -c 'import sys; sys.stdout.buffer.write(b"\xa5" * (1 << 20))' >dest.orig
fresh_dest() { cp dest.orig out; }
dest_untouched() { cmp -s dest.orig out || fail "DEST was changed by a copy that failed ($1)"; }

# --- without --ca-file: the system's CAs do not know the test CA.
fresh_dest
expect_fail 1 "$url/img: .*(certificate|SSL).*" $BMAPKIT -q copy "$url/img" out
grep -Eiq 'certificate' "$WORK/.ef.err" || fail "the error does not name the certificate problem"
dest_untouched "no --ca-file"
pass "without --ca-file: $(sed 's/^bmapkit: error: //' "$WORK/.ef.err")"

# --- with --ca-file: copied and verified, the bmap found next to the image over https.
: >access.log
rm -f out
run_ok $BMAPKIT copy --ca-file ca.pem "$url/img" out
same_as_image img img.bmap out
grep -Eq "^$port GET /img.bmap 20[06]" access.log || fail "the bmap was not fetched over https"
grep -q "verified 3 of 3 range" .err || { cat .err; fail "the copy over https was not verified"; }
pass "--ca-file: raw image over https, bmap found there, verified"

# --- an xz and --bmap over https; the bytes fetched in the JSON events.
rm -f out
run_ok $BMAPKIT copy --ca-file ca.pem --json-events ev.json --bmap "$url/img.bmap" "$url/img.xz" out
same_as_image img img.bmap out
json_events_check ev.json img.bmap ok >/dev/null || fail "events of the copy over https"
fetched=$(python3 - ev.json "$(stat -c %s www/img.xz)" <<'EOF'
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
size = int(sys.argv[2])
done = ev[-1]
f = done.get("fetched")
if done["event"] != "done" or type(f) is not int or not 0 < f <= size:
    sys.exit("done event %r: fetched must be a number from 1 to %d" % (done, size))
prog = [e.get("fetched") for e in ev if e["event"] == "progress"]
if not prog or any(type(x) is not int for x in prog) or prog != sorted(prog) or prog[-1] > f:
    sys.exit("progress events: fetched %r" % prog)
if any("fetched" in e for e in ev if e["event"] not in ("progress", "done")):
    sys.exit("fetched in another event")
print(f)
EOF
) || fail "the bytes fetched in the events"
pass "xz and --bmap over https: done event fetched $fetched of $(stat -c %s www/img.xz) bytes"

# A local image: no fetched member.
rm -f out
run_ok $BMAPKIT copy --json-events ev.json img out
! grep -q '"fetched"' ev.json || fail "a local image's events carry fetched"
pass "a local image's events have no fetched member"

# --- a CA that did not sign the server's certificate.
fresh_dest
expect_fail 1 "$url/img: .*certificate" $BMAPKIT -q copy --ca-file other.pem "$url/img" out
dest_untouched "wrong CA"
pass "a wrong --ca-file: $(sed 's/^bmapkit: error: //' "$WORK/.ef.err")"

# --- the right CA, a certificate for another name.
fresh_dest
expect_fail 1 "127\.0\.0\.1:$port2/img: .*(name|127\.0\.0\.1)" \
    $BMAPKIT -q copy --ca-file ca.pem "https://127.0.0.1:$port2/img" out
dest_untouched "certificate for another name"
pass "a certificate for another name: $(sed 's/^bmapkit: error: //' "$WORK/.ef.err")"

# --- a CA file that is not there, or a directory: named with the option.
fresh_dest
expect_fail 1 "--ca-file $WORK/none\.pem: No such file" \
    $BMAPKIT copy --ca-file "$WORK/none.pem" "$url/img" out
expect_fail 1 "--ca-file $WORK: Is a directory" $BMAPKIT copy --ca-file "$WORK" "$url/img" out
dest_untouched "missing CA file"
pass "a --ca-file that does not exist or is a directory: named with the option"
