# Helpers shared by the command tests: temp dir, verdicts, sparse images, bmap checks.
# Sourced by every tests/cli/*.sh script; meson sets BMAPKIT and TESTS_DIR.

set -eEu -o pipefail
# The file-system and loop-device tools live in /usr/sbin, which a normal user's PATH
# may lack. The tests use the Debian tools scripts/install-deps.sh installs, first: a
# python3 of a version manager's shims (pyenv) costs up to a second a call on a busy
# machine, and lacks Debian's python3 modules.
PATH="/usr/bin:/bin:$PATH:/usr/sbin:/sbin"

if [ -z "${BMAPKIT:-}" ] || [ ! -x "$BMAPKIT" ]; then
    echo "FAIL: BMAPKIT must name the built bmapkit command (got '${BMAPKIT:-}')"
    exit 1
fi

TEST_NAME=$(basename "$0" .sh)
_CHECKS=0
_SKIPPING=0
_CLEANUPS=()

# ---------------------------------------------------------------- verdicts

# Print why the whole script is skipped and exit with the "skipped" status.
skip() {
    echo "SKIP: $*"
    _SKIPPING=1
    exit 77
}

# Print the failure and exit 1. Inside a command substitution stdout is captured, so
# the message goes to stderr there.
fail() {
    if [ "$BASHPID" != "$$" ]; then
        echo "FAIL: $*" >&2
    else
        echo "FAIL: $*"
    fi
    exit 1
}

# One passed check.
pass() {
    _CHECKS=$((_CHECKS + 1))
    echo "ok: $*"
}

# Whether the quick form of slow tests was asked for (the sanitizer run of scripts/test.sh
# sets BMAPKIT_TEST_QUICK=1; the normal build runs everything).
test_quick() {
    [ "${BMAPKIT_TEST_QUICK:-0}" = 1 ]
}

# A single case not run in this environment; the rest of the script goes on.
note_skip() {
    echo "skip: $*"
}

# require_tools TOOL...: fail unless every TOOL is a command here. The project's own
# install step provides them all, so a missing one is a failure, never a skip; skips
# are for what cannot be had (root, loop devices, a kernel feature).
require_tools() {
    local tool missing=()
    for tool in "$@"; do
        command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
    done
    case ${#missing[@]} in
        0) ;;
        1) fail "${missing[0]} is not installed (scripts/install-deps.sh installs it)" ;;
        *) fail "${missing[*]} are not installed (scripts/install-deps.sh installs them)" ;;
    esac
}

# Run "$@" at exit (in reverse order of registration), before the temp dir goes.
at_exit() {
    _CLEANUPS+=("$*")
}

_on_exit() {
    local rc=$? i
    set +eE
    trap - ERR
    cd /
    for ((i = ${#_CLEANUPS[@]} - 1; i >= 0; i--)); do
        eval "${_CLEANUPS[i]}"
    done
    if [ -n "${WORK:-}" ] && [ -d "$WORK" ]; then
        chmod -R u+rwX "$WORK" 2>/dev/null
        rm -rf --one-file-system "$WORK"
    fi
    if [ "$rc" -eq 77 ] && [ "$_SKIPPING" -eq 0 ]; then
        echo "FAIL: unexpected exit status 77"
        rc=1
    fi
    if [ "$rc" -eq 0 ]; then
        echo "PASS: $TEST_NAME: $_CHECKS checks"
    fi
    exit "$rc"
}

_on_err() {
    local rc=$1 line=$2 cmd=$3
    if [ "$BASHPID" = "$$" ]; then
        echo "FAIL: line $line: '$cmd' exited with status $rc"
    fi
}

trap _on_exit EXIT
trap 'exit 130' INT TERM HUP
trap '_on_err $? $LINENO "$BASH_COMMAND"' ERR

WORK=$(mktemp -d "${TMPDIR:-/tmp}/bmapkit-$TEST_NAME.XXXXXX")

# ---------------------------------------------------------------- running the command

# expect_fail CODE PATTERN CMD...: CMD must exit with exactly CODE, print nothing on
# stdout, and print exactly one "bmapkit: error: ..." line matching PATTERN (grep -E).
# The only other stderr line allowed is the "Try '... --help'" hint of usage errors.
expect_fail() {
    local code=$1 pattern=$2 rc=0 errline
    shift 2
    "$@" >"$WORK/.ef.out" 2>"$WORK/.ef.err" || rc=$?
    if [ "$rc" -ne "$code" ]; then
        cat "$WORK/.ef.err"
        fail "expected exit status $code, got $rc: $*"
    fi
    if [ -s "$WORK/.ef.out" ]; then
        fail "expected nothing on stdout from: $*"
    fi
    if [ "$(grep -c '^bmapkit: error: ' "$WORK/.ef.err")" -ne 1 ]; then
        cat "$WORK/.ef.err"
        fail "expected exactly one 'bmapkit: error:' line from: $*"
    fi
    if grep -v -e '^bmapkit: error: ' -e "^Try 'bmapkit\( [a-z]*\)\? --help' for more information\.\$" \
        "$WORK/.ef.err" >/dev/null; then
        cat "$WORK/.ef.err"
        fail "unexpected extra stderr lines from: $*"
    fi
    errline=$(grep '^bmapkit: error: ' "$WORK/.ef.err")
    if grep -q 'internal error' <<<"$errline"; then
        fail "a library call failed without a message ($*): $errline"
    fi
    if ! grep -Eq -- "$pattern" <<<"$errline"; then
        fail "error message '$errline' does not match /$pattern/ ($*)"
    fi
}

# run_ok CMD...: CMD must succeed; its stdout and stderr are left in $WORK/.out and
# $WORK/.err.
run_ok() {
    local rc=0
    "$@" >"$WORK/.out" 2>"$WORK/.err" || rc=$?
    if [ "$rc" -ne 0 ]; then
        cat "$WORK/.err"
        fail "exit status $rc from: $*"
    fi
}

# attach_loop FILE [OPTIONS...]: attach FILE to a free loop device (with losetup's
# OPTIONS), left in $LOOP and detached at exit; returns 1 when that cannot be done
# here, the reason in $WORK/.losetup.err.
attach_loop() {
    local f=$1
    shift
    LOOP=$(losetup -f --show "$@" "$f" 2>"$WORK/.losetup.err") || LOOP=
    [ -n "$LOOP" ] && [ -b "$LOOP" ] || return 1
    at_exit "detach_loop_of '$LOOP' '$(realpath "$f")'"
}

# detach_loop_of DEVICE FILE: detach DEVICE if it still holds FILE. A test may have
# detached it itself, and a test running beside it may have the device by now.
detach_loop_of() {
    if [ "$(losetup -n -O BACK-FILE "$1" 2>/dev/null)" = "$2" ]; then
        losetup -d "$1" 2>/dev/null || true
    fi
}

# require_loop_devices WHAT_RAN: skip the rest of the script unless loop devices can be
# attached here (root, a free device); WHAT_RAN names the cases that ran before, for the
# skip line. A probe device stays attached until exit.
require_loop_devices() {
    [ "$(id -u)" -eq 0 ] || skip "loop devices need root ($1)"
    truncate -s 1M "$WORK/.loop-probe.img"
    attach_loop "$WORK/.loop-probe.img" ||
        skip "losetup cannot attach a loop device here: $(cat "$WORK/.losetup.err")"
}

# ---------------------------------------------------------------- servers

# free_tcp_port: a TCP port on 127.0.0.1 nobody listens on now.
free_tcp_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ---------------------------------------------------------------- bmapkit as bmaptool

# bmaptool_wrapper: bmapkit under the name bmaptool in $WORK/bin (put it first on PATH),
# behind a wrapper that appends each command line it runs with to $ARGV_LOG.
bmaptool_wrapper() {
    mkdir -p "$WORK/real" "$WORK/bin"
    ln -sf "$BMAPKIT" "$WORK/real/bmaptool"
    ARGV_LOG="$WORK/argv.log"
    cat >"$WORK/bin/bmaptool" <<EOF
#!/usr/bin/env bash
{ printf bmaptool; printf ' %q' "\$@"; echo; } >>'$ARGV_LOG'
exec '$WORK/real/bmaptool' "\$@"
EOF
    chmod +x "$WORK/bin/bmaptool"
}

# expect_argv LINE: the only command line recorded since the last call is LINE.
expect_argv() {
    local got
    got=$(cat "$ARGV_LOG" 2>/dev/null || true)
    rm -f "$ARGV_LOG"
    [ "$got" = "$1" ] || fail "bmaptool ran as '$got', expected '$1'"
}

# ---------------------------------------------------------------- building images

# Block size of the file system holding DIR, which is what create uses.
fs_block_size() {
    stat -f -c %S "$1"
}

# keeps_holes DIR: the file system of DIR keeps holes in sparse files.
keeps_holes() {
    local f="$1/.sparse-probe" blocks
    truncate -s 16M "$f"
    dd if=/dev/urandom of="$f" bs=4096 count=1 conv=notrunc status=none
    sync "$f"
    blocks=$(stat -c %b "$f")
    rm -f "$f"
    [ "$blocks" -lt $((8 * 1024 * 2)) ]
}

# Skip the script unless the file system of DIR keeps holes in sparse files.
require_sparse_support() {
    keeps_holes "$1" || skip "the file system of $1 does not keep holes in sparse files"
}

# new_sparse FILE SIZE: a file of SIZE bytes that is one hole.
new_sparse() {
    rm -f "$1"
    truncate -s "$2" "$1"
}

# put_random FILE OFFSET LENGTH: random bytes at byte OFFSET, size unchanged unless
# written past the end.
put_random() {
    dd if=/dev/urandom of="$1" bs=64K iflag=count_bytes,fullblock count="$3" \
        oflag=seek_bytes seek="$2" conv=notrunc status=none
}

# put_zeros FILE OFFSET LENGTH: written (allocated) zero bytes at byte OFFSET.
put_zeros() {
    dd if=/dev/zero of="$1" bs=64K iflag=count_bytes,fullblock count="$3" \
        oflag=seek_bytes seek="$2" conv=notrunc status=none
}

# put_byte FILE OFFSET HEX: the single byte 0xHEX at byte OFFSET.
put_byte() {
    printf '%b' "\\x$3" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# put_blocks FILE FIRST COUNT [BS]: random data in blocks FIRST..FIRST+COUNT-1.
put_blocks() {
    local bs=${4:-$BS}
    put_random "$1" $(($2 * bs)) $(($3 * bs))
}

# put_block_runs FILE BS "FIRST:COUNT ...": random data in each run of COUNT blocks
# from FIRST, all in one process (hundreds of dd runs take long, more so under ASan).
put_block_runs() {
    python3 - "$1" "$2" "$3" <<'EOF'
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
bs = int(sys.argv[2])
for run in sys.argv[3].split():
    first, count = (int(x) for x in run.split(":"))
    os.pwrite(fd, os.urandom(count * bs), first * bs)
os.close(fd)
EOF
}

# prealloc FILE OFFSET LENGTH: allocate without writing (unwritten extents).
prealloc() {
    fallocate -o "$2" -l "$3" "$1"
}

# ---------------------------------------------------------------- reading bmaps

# bmap_value BMAP NAME: the value of the element NAME, which must occur exactly once.
bmap_value() {
    local v
    v=$(sed -nE "s|^[[:space:]]*<$2>[[:space:]]*([^<[:space:]]+)[[:space:]]*</$2>[[:space:]]*\$|\\1|p" "$1")
    if [ -z "$v" ] || [ "$(wc -l <<<"$v")" -ne 1 ]; then
        fail "$1: expected one <$2> element, found: '$v'"
    fi
    echo "$v"
}

# bmap_ranges BMAP: one line per Range, "FIRST-LAST CHKSUM" ("-" for no chksum), with a
# single block N written as N-N. Fails on a Range line it cannot read.
bmap_ranges() {
    awk -v file="$1" '
        /^[[:space:]]*<Range[[:space:]>]/ {
            line = $0
            sum = "-"
            if (match(line, /chksum="[0-9a-f]*"/))
                sum = substr(line, RSTART + 8, RLENGTH - 9)
            if (!match(line, />[[:space:]]*[0-9]+[[:space:]]*(-[[:space:]]*[0-9]+[[:space:]]*)?<\/Range>[[:space:]]*$/)) {
                print "unreadable Range line in " file ": " line > "/dev/stderr"
                bad = 1
                exit 1
            }
            text = substr(line, RSTART + 1, RLENGTH - 9)
            gsub(/[[:space:]]/, "", text)
            n = split(text, ab, "-")
            if (n == 1) ab[2] = ab[1]
            printf "%d-%d %s\n", ab[1], ab[2], sum
        }
        END { exit bad }
    ' "$1"
}

# bmap_ranges_only BMAP: the ranges as "FIRST-LAST" words on one line.
bmap_ranges_only() {
    local r
    r=$(bmap_ranges "$1")
    awk '{ printf "%s%s", sep, $1; sep = " " } END { print "" }' <<<"$r"
}

# bmap_summary BMAP: the meaningful content, normalised, for comparing two bmaps.
bmap_summary() {
    local name
    for name in ImageSize BlockSize BlocksCount MappedBlocksCount; do
        echo "$name $(bmap_value "$1" "$name")"
    done
    bmap_ranges "$1"
}

# expect_ranges BMAP "A-B C-D ...": the bmap maps exactly these block ranges.
expect_ranges() {
    local got
    got=$(bmap_ranges_only "$1")
    if [ "$got" != "$2" ]; then
        fail "$1: ranges are '$got', expected '$2'"
    fi
}

# same_bmap_content A B: both bmaps have the same header values and ranges/checksums.
same_bmap_content() {
    if ! diff <(bmap_summary "$1") <(bmap_summary "$2") >"$WORK/.diff"; then
        head -40 "$WORK/.diff"
        fail "$1 and $2 differ"
    fi
}

# digest_of TYPE: hex digest of standard input with the system's TYPEsum tool.
digest_of() {
    local out
    out=$("$1sum")
    echo "${out%% *}"
}

# hex length of a digest of TYPE
digest_hex_len() {
    case $1 in
        md5) echo 32 ;; sha1) echo 40 ;; sha224) echo 56 ;;
        sha256) echo 64 ;; sha384) echo 96 ;; sha512) echo 128 ;;
        *) fail "unknown checksum type $1" ;;
    esac
}

# check_bmap BMAP IMAGE [TYPE|none]: BMAP is a well-formed bmap 2.0 of IMAGE as create
# writes it: layout, header values, its own checksum, maximal ascending ranges and
# every range checksum (of TYPE, default sha256; "none" when there must be none)
# recomputed here from the image bytes.
check_bmap() {
    local bmap=$1 image=$2 type=${3:-sha256}
    local size bs count mapped ctype fsum zeros hexlen sumtype

    [ "$(head -n 1 "$bmap")" = '<?xml version="1.0" ?>' ] || fail "$bmap: bad first line"
    grep -q '^<bmap version="2\.0">$' "$bmap" || fail "$bmap: no <bmap version=\"2.0\"> line"
    [ "$(tail -n 1 "$bmap")" = '</bmap>' ] || fail "$bmap: does not end with </bmap>"
    [ -z "$(tail -c 1 "$bmap")" ] || fail "$bmap: no final newline"
    if grep -q $'\r' "$bmap"; then fail "$bmap: has CR characters"; fi
    [ "$(grep -c '^    <BlockMap>$' "$bmap")" -eq 1 ] || fail "$bmap: expected one <BlockMap> line"

    size=$(bmap_value "$bmap" ImageSize)
    bs=$(bmap_value "$bmap" BlockSize)
    count=$(bmap_value "$bmap" BlocksCount)
    mapped=$(bmap_value "$bmap" MappedBlocksCount)
    ctype=$(bmap_value "$bmap" ChecksumType)
    fsum=$(bmap_value "$bmap" BmapFileChecksum)

    [ "$size" -eq "$(stat -c %s "$image")" ] || fail "$bmap: ImageSize $size is not the size of $image"
    [ "$bs" -gt 0 ] || fail "$bmap: BlockSize $bs"
    [ "$count" -eq $(((size + bs - 1) / bs)) ] || fail "$bmap: BlocksCount $count for $size bytes"

    # The file checksum: the digest of the file with its value replaced by zeros.
    sumtype=$ctype
    [ "$type" = none ] || [ "$ctype" = "$type" ] || fail "$bmap: ChecksumType $ctype, expected $type"
    hexlen=$(digest_hex_len "$ctype")
    [ "${#fsum}" -eq "$hexlen" ] || fail "$bmap: BmapFileChecksum has ${#fsum} digits"
    zeros=$(printf "%${hexlen}s" "" | tr ' ' 0)
    want=$(sed "0,/$fsum/s//$zeros/" "$bmap" | digest_of "$ctype")
    [ "$want" = "$fsum" ] || fail "$bmap: BmapFileChecksum $fsum does not match the file ($want)"

    # The ranges and their checksums, recomputed from the image bytes in one process
    # (a bmap may have thousands of ranges).
    bmap_ranges "$bmap" >"$WORK/.ranges"
    python3 - "$WORK/.ranges" "$image" "$bs" "$count" "$type" "$mapped" "$hexlen" \
        >"$WORK/.check" <<'EOF' || fail "$bmap: $(cat "$WORK/.check")"
import hashlib, sys
ranges, image, bs, count, ctype, mapped, hexlen = sys.argv[1:8]
bs, count, mapped, hexlen = int(bs), int(count), int(mapped), int(hexlen)
prev, total = -2, 0
with open(ranges) as rf, open(image, "rb") as img:
    for line in rf:
        rng, chk = line.split()
        first, last = (int(x) for x in rng.split("-"))
        def bad(msg):
            print("range %s %s" % (rng, msg))
            sys.exit(1)
        if first > last:
            bad("is descending")
        if first <= prev + 1:
            bad("overlaps or touches the previous one (ranges must be maximal)")
        if last >= count:
            bad("is past block %d" % (count - 1))
        prev = last
        total += last - first + 1
        if ctype == "none":
            if chk != "-":
                bad("has a chksum with --no-checksum")
            continue
        if len(chk) != hexlen:
            bad("has chksum '%s', not a digest of this type" % chk)
        # Reading stops at the end of the image: a partial last block hashes its real bytes.
        img.seek(first * bs)
        want = hashlib.new(ctype, img.read((last - first + 1) * bs)).hexdigest()
        if chk != want:
            bad("has chksum %s, the image bytes give %s" % (chk, want))
if mapped != total:
    print("MappedBlocksCount %d, ranges hold %d blocks" % (mapped, total))
    sys.exit(1)
EOF
}

# ---------------------------------------------------------------- the reference tool

# data_ranges FILE BS: the blocks of FILE that hold data, by SEEK_DATA/SEEK_HOLE,
# as "A-B" words on one line (blocks partly holding data count).
data_ranges() {
    python3 - "$1" "$2" <<'EOF'
import errno, os, sys
path, bs = sys.argv[1], int(sys.argv[2])
fd = os.open(path, os.O_RDONLY)
size = os.fstat(fd).st_size
pos, out = 0, []
while pos < size:
    try:
        data = os.lseek(fd, pos, os.SEEK_DATA)
    except OSError as e:
        if e.errno == errno.ENXIO:
            break
        raise
    hole = min(os.lseek(fd, data, os.SEEK_HOLE), size)
    a, b = data // bs, (hole + bs - 1) // bs - 1
    if out and a <= out[-1][1] + 1:
        out[-1][1] = max(out[-1][1], b)
    else:
        out.append([a, b])
    pos = hole
print(" ".join("%d-%d" % (a, b) for a, b in out))
EOF
}

# bmaptool_copy_check IMAGE BMAP: the reference copies IMAGE with BMAP to a new file
# (verifying every range checksum on the way); the copy equals IMAGE byte for byte and
# holds data exactly in the bmap's ranges, holes everywhere else. The copy is made next
# to IMAGE, on a file system with the same block size.
bmaptool_copy_check() {
    local image=$1 bmap=$2 copy bs got want
    copy="$(dirname "$image")/.copy-of-$(basename "$image")"
    rm -f "$copy"
    if ! bmaptool -q copy --bmap "$bmap" "$image" "$copy" 2>"$WORK/.bt.err"; then
        cat "$WORK/.bt.err"
        fail "bmaptool copy refused $bmap"
    fi
    cmp "$image" "$copy" || fail "bmaptool copy with $bmap does not reproduce $image"
    bs=$(bmap_value "$bmap" BlockSize)
    got=$(data_ranges "$copy" "$bs")
    want=$(bmap_ranges_only "$bmap")
    [ "$got" = "$want" ] || fail "copy made with $bmap has data in '$got', the bmap maps '$want'"
    rm -f "$copy"
}

BS=$(fs_block_size "$WORK")

# ---------------------------------------------------------------- copy tests

# gen_bmap VERSION IMAGE OUT [CHECKSUM_TYPE] [RANGES]: write a bmap of format VERSION
# (1.0 .. 2.x, or any "MAJOR.MINOR" laid out as 2.0) for IMAGE with block size $BS.
# RANGES ("A-B C-D ...") defaults to the image's data blocks (SEEK_DATA). CHECKSUM_TYPE
# (1.4 and 2.x only, default sha256) names the hash of the ranges and of the file.
gen_bmap() {
    python3 - "$1" "$2" "$3" "${4:-sha256}" "${5:-}" "$BS" <<'EOF'
import errno, hashlib, os, sys
ver, image, out, ctype, ranges_arg, bs = sys.argv[1:7]
bs = int(bs)
size = os.path.getsize(image)
count = (size + bs - 1) // bs
if ranges_arg:
    ranges = [tuple(int(x) for x in (w.split("-") * 2)[:2]) for w in ranges_arg.split()]
else:
    ranges, pos = [], 0
    fd = os.open(image, os.O_RDONLY)
    while pos < size:
        try:
            data = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError as e:
            if e.errno == errno.ENXIO:
                break
            raise
        hole = min(os.lseek(fd, data, os.SEEK_HOLE), size)
        a, b = data // bs, (hole + bs - 1) // bs - 1
        if ranges and a <= ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], max(ranges[-1][1], b))
        else:
            ranges.append((a, b))
        pos = hole
    os.close(fd)
major, minor = (int(x) for x in ver.split("."))
new = major >= 2 or (major, minor) >= (1, 4)
if major == 1 and minor == 0:
    attr, rtype = None, None
elif not new:
    attr, rtype = "sha1", "sha1"
else:
    attr, rtype = "chksum", ctype
with open(image, "rb") as f:
    img = f.read()
mapped = sum(b - a + 1 for a, b in ranges)
mbc = "    <MappedBlocksCount> %d </MappedBlocksCount>\n" % mapped
L = ['<?xml version="1.0" ?>\n',
     "<!-- test bmap, format %s -->\n" % ver,
     '<bmap version="%s">\n' % ver,
     "    <ImageSize> %d </ImageSize>\n" % size,
     "    <BlockSize> %d </BlockSize>\n" % bs,
     "    <BlocksCount> %d </BlocksCount>\n" % count]
if (major, minor) != (1, 2):
    L.append(mbc)
fname = None
if (major, minor) == (1, 3):
    fname, ftype = "BmapFileSHA1", "sha1"
elif new:
    L.append("    <ChecksumType> %s </ChecksumType>\n" % ctype)
    fname, ftype = "BmapFileChecksum", ctype
zeros = ""
if fname:
    zeros = "0" * (2 * hashlib.new(ftype).digest_size)
    L.append("    <%s> %s </%s>\n" % (fname, zeros, fname))
L.append("    <BlockMap>\n")
for a, b in ranges:
    text = "%d" % a if a == b else "%d-%d" % (a, b)
    if attr:
        h = hashlib.new(rtype, img[a * bs:min((b + 1) * bs, size)]).hexdigest()
        L.append('        <Range %s="%s"> %s </Range>\n' % (attr, h, text))
    else:
        L.append("        <Range> %s </Range>\n" % text)
L.append("    </BlockMap>\n")
if (major, minor) == (1, 2):
    L.append(mbc)
L.append("</bmap>\n")
doc = "".join(L).encode()
if fname:
    digest = hashlib.new(ftype, doc).hexdigest().encode()
    tag = ("<%s> %s </%s>" % (fname, zeros, fname)).encode()
    doc = doc.replace(tag, tag.replace(zeros.encode(), digest), 1)
with open(out, "wb") as f:
    f.write(doc)
EOF
}

# bmap_mapped_bytes BMAP: the number of image bytes its ranges cover (partial last block
# counted by its real length).
bmap_mapped_bytes() {
    local size bs r first last total=0
    size=$(bmap_value "$1" ImageSize)
    bs=$(bmap_value "$1" BlockSize)
    for r in $(bmap_ranges_only "$1"); do
        first=${r%-*}
        last=${r#*-}
        if [ $(((last + 1) * bs)) -gt "$size" ]; then
            total=$((total + size - first * bs))
        else
            total=$((total + (last - first + 1) * bs))
        fi
    done
    echo "$total"
}

# bmap_range_count BMAP: the number of Range elements.
bmap_range_count() {
    bmap_ranges_only "$1" | wc -w
}

# same_as_image IMAGE BMAP COPY: COPY equals IMAGE byte for byte, and holds data exactly
# in the blocks the bmap maps (holes everywhere else).
same_as_image() {
    local got want
    cmp "$1" "$3" || fail "$3 differs from $1"
    got=$(data_ranges "$3" "$(bmap_value "$2" BlockSize)")
    want=$(bmap_ranges_only "$2")
    [ "$got" = "$want" ] || fail "$3 has data in '$got', the bmap $2 maps '$want'"
}

# done_field EVENTS NAME: member NAME of the last event (done) in the JSON events file.
done_field() {
    python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().splitlines()[-1])[sys.argv[2]])' "$1" "$2"
}

# json_events_check FILE BMAP ok|failed [EXIT]: FILE holds JSON lines only, the first a
# "start" event and the last a "done" event. For "ok": as many "range" events with status
# "verified" as BMAP has ranges, progress percents rising to 100, and the done event's
# bytes_written equal to the mapped bytes and ranges_verified to the range count. For
# "failed": the last two events are "error" and "done" with status "failed" and exit EXIT.
json_events_check() {
    python3 - "$1" "$3" "${4:-0}" "$(bmap_mapped_bytes "$2")" "$(bmap_range_count "$2")" <<'EOF'
import json, sys
path, want, code, mapped, nranges = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
def bad(msg):
    print("json events in %s: %s" % (path, msg), file=sys.stderr)
    sys.exit(1)
ev = []
with open(path) as f:
    for n, line in enumerate(f, 1):
        try:
            e = json.loads(line)
        except ValueError as x:
            bad("line %d does not parse (%s): %r" % (n, x, line))
        if not isinstance(e, dict) or "event" not in e:
            bad("line %d is not an event object" % n)
        ev.append(e)
if not ev:
    bad("no events")
if ev[0]["event"] != "start":
    bad("first event is %r, not start" % ev[0]["event"])
done = ev[-1]
if done["event"] != "done":
    bad("last event is %r, not done" % done["event"])
if sum(1 for e in ev if e["event"] == "done") != 1:
    bad("more than one done event")
if want == "ok":
    ranges = [e for e in ev if e["event"] == "range" and e.get("status") == "verified"]
    if len(ranges) != nranges:
        bad("%d verified range events, the bmap has %d ranges" % (len(ranges), nranges))
    if done.get("status") != "ok" or done.get("exit") != 0:
        bad("done event is not ok: %r" % done)
    if done.get("bytes_written") != mapped:
        bad("bytes_written %r, the bmap maps %d bytes" % (done.get("bytes_written"), mapped))
    if done.get("ranges_verified") != nranges:
        bad("ranges_verified %r, expected %d" % (done.get("ranges_verified"), nranges))
    if any(e["event"] == "error" for e in ev):
        bad("an error event in a successful copy")
    pct = [e["percent"] for e in ev if e["event"] == "progress"]
    if pct and (pct != sorted(pct) or pct[0] != 0 or pct[-1] != 100 or min(pct) < 0):
        bad("progress percents %r do not rise from 0 to 100" % pct)
else:
    if len(ev) < 2 or ev[-2]["event"] != "error":
        bad("the event before done is not error")
    if done.get("status") != "failed" or done.get("exit") != code:
        bad("done event %r, expected status failed, exit %d" % (done, code))
    if not ev[-2].get("message"):
        bad("the error event has no message")
print(len(ev))
EOF
}
