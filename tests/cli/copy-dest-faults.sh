#!/usr/bin/env bash
# bmapkit copy to a real block device whose I/O fails (root only): a loop device on a file that nbdfuse serves from an nbdkit server, which fails writes at a chosen or a random offset, with EIO or ENOSPC, fails flushes, vanishes mid-copy or fails the reads of --readback, and fails beside two files written at once. Every case exits 1 with one error line naming the device and what failed, and the image's first MiB is not on the device afterwards.
source "$TESTS_DIR/lib.sh"

require_tools nbdkit nbdfuse fusermount3 losetup timeout
[ "$(id -u)" -eq 0 ] || skip "loop devices and FUSE mounts need root"
[ -c /dev/fuse ] || skip "there is no /dev/fuse: FUSE is not available here"
cd "$WORK"
MiB=$((1024 * 1024))

truncate -s 1M probe.img
PROBE=$(losetup -f --show probe.img 2>.losetup.err) ||
    skip "losetup cannot attach a loop device here: $(cat .losetup.err)"
losetup -d "$PROBE"

# The image: its whole first MiB is data, so a written head makes the device's first
# MiB equal the image's; two more ranges after it.
new_sparse img $((8 * MiB))
put_random img 0 "$MiB"
put_random img "$MiB" $((2 * MiB))
put_random img $((6 * MiB)) "$MiB"
"$BMAPKIT" create -q -o img.bmap img
head -c "$MiB" img >img.head
head -c $((16 * MiB)) /dev/zero | tr '\0' '\245' >pattern.store

# The server: an nbdkit sh plugin whose disk is the file STORE in its control folder
# $FAULT_DIR. It logs every write and flush to "log" and every fault it injects to
# "injected"; files in the folder turn faults on:
#   fail-write "FIRST END ERRNO": writes overlapping bytes FIRST..END-1 fail with ERRNO;
#   fail-flush WHEN:              flushes fail (EIO) from the first one on (WHEN "any"),
#                                 once data past the first MiB was written ("data"),
#                                 or once the head was written after that ("head");
#   fail-read-after-head:         once the head was written after the other data and
#                                 then flushed, every read fails (EIO);
#   vanish-at N WHO:              at the Nth write past the first MiB, WHO (nbdkit or
#                                 nbdfuse) is killed, as if the device were unplugged.
cat >plugin.sh <<'EOF'
#!/usr/bin/env bash
d=$FAULT_DIR
# inject ERRNO WHAT...: log the fault, fail the request with ERRNO.
inject() {
    echo "$*" >>"$d/injected"
    echo "$1 injected fault" >&2
    exit 1
}
case $1 in
    get_size) stat -c %s "$d/store" ;;
    can_write | can_flush) exit 0 ;;
    can_trim | can_zero | can_extents | can_multi_conn) exit 3 ;;
    can_fua) echo none ;;
    pread)
        [ ! -e "$d/reads-fail" ] || inject EIO pread "$4" "$3"
        dd if="$d/store" bs=64K iflag=skip_bytes,count_bytes skip="$4" count="$3" status=none ;;
    pwrite)
        echo "pwrite $4 $3" >>"$d/log"
        if [ -e "$d/fail-write" ]; then
            read -r lo hi err <"$d/fail-write"
            if [ "$4" -lt "$hi" ] && [ $(($4 + $3)) -gt "$lo" ]; then
                cat >/dev/null
                inject "$err" pwrite "$4" "$3"
            fi
        fi
        if [ "$4" -ge 1048576 ]; then
            touch "$d/high-written"
            if [ -e "$d/vanish-at" ]; then
                read -r n who <"$d/vanish-at"
                if [ "$(awk '$1 == "pwrite" && $2 >= 1048576' "$d/log" | wc -l)" -ge "$n" ]; then
                    # Gone for good; this write still completes, to no one.
                    rm -f "$d/vanish-at"
                    echo "vanish $who at pwrite $4" >>"$d/injected"
                    kill -KILL "$(cat "$d/$who.pid")"
                fi
            fi
        elif [ -e "$d/high-written" ]; then
            touch "$d/head-written"
        fi
        dd of="$d/store" bs=64K iflag=fullblock oflag=seek_bytes seek="$4" conv=notrunc status=none ;;
    flush)
        echo flush >>"$d/log"
        if [ -e "$d/fail-flush" ]; then
            when=$(cat "$d/fail-flush")
            case $when in
                any) inject EIO flush "$when" ;;
                data) [ ! -e "$d/high-written" ] || inject EIO flush "$when" ;;
                head) [ ! -e "$d/head-written" ] || inject EIO flush "$when" ;;
            esac
        fi
        if [ -e "$d/fail-read-after-head" ] && [ -e "$d/head-written" ]; then
            touch "$d/reads-fail"
        fi ;;
    *) exit 2 ;;
esac
EOF
chmod +x plugin.sh

# wait_for TEST...: wait up to 10 s for "test TEST..." to hold.
wait_for() {
    local _
    for _ in $(seq 100); do
        test "$@" && return 0
        sleep 0.1
    done
    return 1
}

# stop_stack DIR: detach the loop device, unmount, stop both servers; safe to repeat.
stop_stack() {
    local dir=$1 pid
    # Detaching waits for the device's I/O: should that hang, stop the servers first.
    if [ -s "$dir/loop" ] && ! timeout 10 losetup -d "$(cat "$dir/loop")" 2>/dev/null; then
        for pid in "$dir/nbdfuse.pid" "$dir/nbdkit.pid"; do
            if [ -s "$pid" ]; then
                kill -KILL "$(cat "$pid")" 2>/dev/null || true
            fi
        done
        timeout 10 losetup -d "$(cat "$dir/loop")" 2>/dev/null || true
    fi
    rm -f "$dir/loop"
    if grep -q " $dir/mnt " /proc/mounts; then
        fusermount3 -u "$dir/mnt" 2>/dev/null || fusermount3 -u -z "$dir/mnt" 2>/dev/null || true
    fi
    for pid in "$dir/nbdfuse.pid" "$dir/nbdkit.pid"; do
        if [ -s "$pid" ]; then
            kill "$(cat "$pid")" 2>/dev/null || true
        fi
    done
    rm -f "$dir/nbdfuse.pid" "$dir/nbdkit.pid"
}

# start_stack NAME: a 16 MiB store filled with 0xA5, served by nbdkit on a Unix socket,
# mounted by nbdfuse as NAME/mnt/disk, attached to a loop device with direct I/O so that
# nothing is cached between the device and the server. Sets DIR and LOOP.
start_stack() {
    DIR=$WORK/$1
    mkdir -p "$DIR/mnt"
    at_exit "stop_stack '$DIR'"
    cp pattern.store "$DIR/store"
    : >"$DIR/log"
    : >"$DIR/injected"
    FAULT_DIR=$DIR nbdkit -f --exit-with-parent --unix "$DIR/sock" sh "$WORK/plugin.sh" \
        2>"$DIR/nbdkit.err" &
    echo $! >"$DIR/nbdkit.pid"
    disown # killed on purpose in some cases: no job report
    wait_for -S "$DIR/sock" || fail "$1: nbdkit did not start: $(cat "$DIR/nbdkit.err")"
    nbdfuse -P "$DIR/nbdfuse.ready" "$DIR/mnt/disk" --unix "$DIR/sock" 2>"$DIR/nbdfuse.err" &
    echo $! >"$DIR/nbdfuse.pid"
    disown
    if ! wait_for -s "$DIR/nbdfuse.ready"; then
        # Only a refused mount is a missing feature; anything else is the test's fault.
        if [ "$1" = control ] && grep -Eqi 'fuse|mount' "$DIR/nbdfuse.err" &&
            ! grep -q 'nbd_' "$DIR/nbdfuse.err"; then
            skip "nbdfuse cannot mount a FUSE file system here: $(cat "$DIR/nbdfuse.err")"
        fi
        fail "$1: nbdfuse did not start: $(cat "$DIR/nbdfuse.err") $(cat "$DIR/nbdkit.err")"
    fi
    LOOP=$(losetup -f --show --direct-io=on "$DIR/mnt/disk" 2>"$DIR/losetup.err") ||
        fail "$1: cannot attach $DIR/mnt/disk: $(cat "$DIR/losetup.err")"
    echo "$LOOP" >"$DIR/loop"
    # Attaching flushes the file: the log starts with the copy.
    : >"$DIR/log"
    if [ "$(cat "/sys/block/${LOOP#/dev/}/loop/dio" 2>/dev/null)" != 1 ]; then
        [ "$1" != control ] || skip "the loop driver here cannot use direct I/O on a FUSE file"
        fail "$1: $LOOP does not use direct I/O"
    fi
}

# head_state DIR: what the store's first MiB holds: image, zeros, pattern or mixed.
head_state() {
    if cmp -s -n "$MiB" img.head "$1/store"; then
        echo image
    elif cmp -s -n "$MiB" /dev/zero "$1/store"; then
        echo zeros
    elif cmp -s -n "$MiB" pattern.store "$1/store"; then
        echo pattern
    else
        echo mixed
    fi
}

# fault_case NAME CODE PATTERN INJECTED -- ARGS...: bmapkit copy -q ARGS --bmap
# img.bmap img LOOP exits CODE with one error line naming the device and matching
# PATTERN (DEV in it stands for the device), the server's log of injected faults
# matches INJECTED (the fault was hit), and the image's first MiB is not in the store.
fault_case() {
    local name=$1 code=$2 pattern=$3 injected=$4 state
    shift 5 # NAME CODE PATTERN INJECTED --
    pattern=${pattern//DEV/$LOOP}
    expect_fail "$code" "^bmapkit: error: $LOOP: $pattern" \
        timeout -k 5 60 "$BMAPKIT" copy -q "$@" --bmap img.bmap img "$LOOP"
    grep -Eq "$injected" "$DIR/injected" ||
        fail "$name: the injected fault log '$(tr '\n' ';' <"$DIR/injected")' lacks /$injected/"
    state=$(head_state "$DIR")
    [ "$state" != image ] || fail "$name: the image's first MiB is on $LOOP after: $(cat "$WORK/.ef.err")"
    pass "$name: exit $code, first MiB: $state; $(cat "$WORK/.ef.err")"
}

# without_fault NAME ARGS...: on the same stack with the fault taken away, the same copy
# succeeds and the head is written: the failure came from the fault alone.
without_fault() {
    local name=$1
    shift
    rm -f "$DIR"/fail-* "$DIR"/*-written "$DIR/reads-fail"
    run_ok timeout -k 5 60 "$BMAPKIT" copy -q "$@" --bmap img.bmap img "$LOOP"
    [ "$(head_state "$DIR")" = image ] || fail "$name, without the fault: the head is not the image's"
    pass "$name, without the fault: the same copy succeeds"
}

# --- no fault: the stack itself copies and reads back correctly
start_stack control
run_ok timeout -k 5 60 "$BMAPKIT" copy -q --readback --bmap img.bmap img "$LOOP"
# The mapped blocks hold the image's bytes, all others still the pattern.
IBS=$(bmap_value img.bmap BlockSize)
pos=0
end=$((16 * MiB / IBS))
for r in $(bmap_ranges_only img.bmap) "$end-$((end - 1))"; do
    a=$((${r%-*} * IBS)) b=$(((${r#*-} + 1) * IBS))
    cmp -s -i "$pos:$pos" -n $((a - pos)) pattern.store "$DIR/store" ||
        fail "control: the store's bytes $pos-$((a - 1)) are not the pattern any more"
    [ "$b" -le "$a" ] || cmp -s -i "$a:$a" -n $((b - a)) img "$DIR/store" ||
        fail "control: the store's bytes $a-$((b - 1)) are not the image's"
    pos=$b
done
[ ! -s "$DIR/injected" ] || fail "control: faults were injected: $(cat "$DIR/injected")"
grep -q '^flush' "$DIR/log" || fail "control: no flush reached the server"
stop_stack "$DIR"
pass "no fault ($LOOP over nbdfuse and nbdkit, direct I/O): copy and --readback succeed, mapped blocks only"

# Writes are buffered in the device's page cache, so a failed write may come back
# from writing (with its offset) or from the flush after it.
WRITE_FAILED='(write failed at byte [0-9]+|flushing written data failed)'
INCOMPLETE="(nothing was written to DEV|nothing of the image was written to DEV, but zeros may have replaced the mapped part of its first MiB|DEV holds an incomplete copy .* without the image's first MiB)"

# --- EIO at a chosen offset: in the second range
start_stack eio-chosen
echo "$((2 * MiB + 4096)) $((2 * MiB + 8192)) EIO" >"$DIR/fail-write"
fault_case "EIO writing byte $((2 * MiB + 4096))" 1 "$WRITE_FAILED: Input/output error; $INCOMPLETE" \
    '^EIO pwrite ' --
without_fault "EIO at a chosen offset"
stop_stack "$DIR"

# --- EIO at a random mapped offset (FAULT_SEED replays one)
SEED=${FAULT_SEED:-$RANDOM}
RANDOM=$SEED
read -r -a BLOCKS <<<"$(for r in $(bmap_ranges_only img.bmap); do seq "${r%-*}" "${r#*-}"; done | tr '\n' ' ')"
IBS=$(bmap_value img.bmap BlockSize)
OFF=$((BLOCKS[RANDOM % ${#BLOCKS[@]}] * IBS + RANDOM % IBS))
echo "random write fault: FAULT_SEED=$SEED, byte $OFF"
start_stack eio-random
echo "$OFF $((OFF + 1)) EIO" >"$DIR/fail-write"
fault_case "EIO writing byte $OFF (FAULT_SEED=$SEED)" 1 "$WRITE_FAILED: Input/output error; $INCOMPLETE" \
    '^EIO pwrite ' --
without_fault "EIO at a random offset"
stop_stack "$DIR"

# --- ENOSPC: a thin device whose space ends at 6 MiB. The kernel's write-back reports
# the failed pages as EIO, so either errno may come back.
start_stack enospc
echo "$((6 * MiB)) $((16 * MiB)) ENOSPC" >"$DIR/fail-write"
fault_case "ENOSPC writing past 6 MiB" 1 "$WRITE_FAILED: (No space left on device|Input/output error); $INCOMPLETE" \
    '^ENOSPC pwrite ' --
without_fault ENOSPC
stop_stack "$DIR"

# --- flush errors: from the first flush on (the one after the head was cleared), from
# the one after the data, and only the last one, after the head was written.
start_stack flush-any
echo any >"$DIR/fail-flush"
fault_case "every flush fails" 1 "flushing written data failed: Input/output error; $INCOMPLETE" \
    '^EIO flush any$' --
without_fault "every flush fails"
stop_stack "$DIR"
start_stack flush-data
echo data >"$DIR/fail-flush"
fault_case "the flush after the data fails" 1 "flushing written data failed: Input/output error; $INCOMPLETE" \
    '^EIO flush data$' --
without_fault "the flush after the data fails"
stop_stack "$DIR"
# The head is written and flushed last; when that flush fails, the head is cleared
# again, and where that cannot be made durable either, the message says the device
# may hold it (it must never claim the head is absent while it may be there).
start_stack flush-head
echo head >"$DIR/fail-flush"
fault_case "the flush after the head fails" 1 \
    "flushing written data failed: Input/output error; DEV (may hold|holds an incomplete copy .* without) the image's first MiB" \
    '^EIO flush head$' --
without_fault "the flush after the head fails"
stop_stack "$DIR"

# --- the device vanishes mid-copy: the server or the FUSE daemon killed at the second
# write past the first MiB.
for who in nbdkit nbdfuse; do
    start_stack "vanish-$who"
    echo "2 $who" >"$DIR/vanish-at"
    fault_case "$who killed mid-copy" 1 "$WRITE_FAILED: [^;]+; $INCOMPLETE" \
        "^vanish $who at pwrite" --
    stop_stack "$DIR"
done

# --- reads fail during --readback, after every write (the head too) reached the store
start_stack readback
touch "$DIR/fail-read-after-head"
fault_case "reads fail during --readback" 1 "read-back failed at byte [0-9]+: Input/output error" \
    '^EIO pread ' -- --readback
[ "$(head_state "$DIR")" = zeros ] || fail "read-back failure: the head was not cleared again"
without_fault "reads fail during --readback" --readback
stop_stack "$DIR"

# --- several destinations: this device fails at a chosen offset while two files beside
# it are written, read back and verified; one error line, naming the device.
start_stack many
echo "$((2 * MiB + 4096)) $((2 * MiB + 8192)) EIO" >"$DIR/fail-write"
rm -f many-a.img many-b.img
rc=0
timeout -k 5 60 "$BMAPKIT" copy --readback --bmap img.bmap img many-a.img "$LOOP" many-b.img \
    >many.out 2>many.err || rc=$?
[ "$rc" = 1 ] || { cat many.err; fail "several destinations: exit $rc, expected 1"; }
[ "$(grep -c '^bmapkit: error: ' many.err)" = 1 ] &&
    grep -Eq "^bmapkit: error: $LOOP: $WRITE_FAILED" many.err ||
    { cat many.err; fail "several destinations: not one error line naming $LOOP"; }
grep -Eq '^EIO pwrite ' "$DIR/injected" || fail "several destinations: the fault was not hit"
nranges=$(bmap_ranges_only img.bmap | wc -w)
for f in many-a.img many-b.img; do
    cmp img "$f" || fail "several destinations: $f does not hold the image"
    grep -q "^bmapkit: $f: wrote [0-9.]* MiB in [0-9.]* s, verified, read back $nranges range(s)$" many.err ||
        { cat many.err; fail "several destinations: $f is not reported verified"; }
done
[ "$(head_state "$DIR")" != image ] || fail "several destinations: the image's first MiB is on $LOOP"
stop_stack "$DIR"
pass "several destinations: $LOOP fails mid-way; exit 1, one line naming it, two files verified"
