#!/usr/bin/env bash
# A copy to a loop device killed with SIGKILL while the device's I/O settings are changed (root only): the settings stay changed with a record in /run/bmapkit/tuning, and the next copy puts them back with a warning; records of live owners are left, of replaced devices dropped unwritten, damaged ones removed without stopping the copy; without a record (not root) nothing is tuned.

# Every bmapkit that tunes reads /run/bmapkit/tuning, the other tests' ones too: this
# test runs in a mount namespace of its own with an empty /run, so that no other run
# puts back the records it makes, or is disturbed by them.
if [ "$(id -u)" -eq 0 ] && [ -z "${BMAPKIT_TEST_PRIVATE_RUN:-}" ] &&
    unshare --mount --propagation private true 2>/dev/null; then
    exec env BMAPKIT_TEST_PRIVATE_RUN=1 unshare --mount --propagation private bash "$0" "$@"
fi
source "$TESTS_DIR/lib.sh"
require_tools losetup unshare setpriv
[ "$(id -u)" -eq 0 ] || skip "loop devices and their sysfs settings need root"
[ -n "${BMAPKIT_TEST_PRIVATE_RUN:-}" ] || skip "no mount namespace of its own (unshare --mount) for a private /run"
mount -t tmpfs -o mode=0755 bmapkit-test-run /run 2>"$WORK/.mount.err" ||
    skip "cannot mount a tmpfs on /run in a private mount namespace: $(cat "$WORK/.mount.err")"
cd "$WORK"
MiB=$((1024 * 1024))
RECORDS=/run/bmapkit/tuning

# attach FILE: attach FILE to a free loop device, left in $LOOP; detached at exit if it
# is still FILE's.
attach() {
    LOOP=$(losetup -f --show "$1" 2>"$WORK/.losetup.err") || LOOP=
    [ -n "$LOOP" ] && [ -b "$LOOP" ] || return 1
    at_exit "losetup -j '$WORK/$1' | grep -q '^$LOOP:' && losetup -d '$LOOP'"
}

truncate -s 1M probe.img
attach probe.img || skip "losetup cannot attach a loop device here: $(cat .losetup.err)"

sys() { echo "/sys/class/block/$1/$2"; }
# The active scheduler of disk $1 (the bracketed entry), and its max_ratio.
sched_of() {
    local s
    s=$(cat "$(sys "$1" queue/scheduler)")
    if [[ $s == *"["* ]]; then
        s=${s#*[}
        s=${s%%]*}
    fi
    echo "${s// /}"
}
ratio_of() { cat "$(sys "$1" bdi/max_ratio)"; }
settings_of() { echo "$(sched_of "$1")/$(ratio_of "$1")"; }
# set_settings DISK SCHEDULER RATIO
set_settings() {
    echo "$2" >"$(sys "$1" queue/scheduler)"
    echo "$3" >"$(sys "$1" bdi/max_ratio)"
    [ "$(settings_of "$1")" = "$2/$3" ] || fail "$1: cannot set $2/$3, it is $(settings_of "$1")"
}
# Field 22 of /proc/PID/stat: the start time that tells a process from a later one
# with the same pid.
start_of() { sed 's/.*) //' "/proc/$1/stat" | cut -d ' ' -f 20; }
diskseq_of() { cat "$(sys "$1" diskseq)" 2>/dev/null || echo -; }
# write_record FILE DISK PID START SCHEDULER RATIO [DEV [DISKSEQ]]: a record as bmapkit
# writes it, saying that SCHEDULER and RATIO were DISK's before a copy set none and 1.
write_record() {
    local dev=${7:-$(cat "$(sys "$2" dev)")} seq=${8:-$(diskseq_of "$2")}
    mkdir -p "$RECORDS"
    {
        echo "bmapkit-tuning 1"
        echo "disk $2"
        echo "dev $dev"
        echo "diskseq $seq"
        echo "boot $(cat /proc/sys/kernel/random/boot_id)"
        echo "owner $3 $4"
        echo "set bdi/max_ratio $6 1"
        [ "$5" = none ] || echo "set queue/scheduler $5 none"
        echo end
    } >"$RECORDS/$1"
}
# put_back_line DISK PID SCHEDULER RATIO: the warning of a copy that puts them back.
put_back_line() {
    local what="bdi/max_ratio $4"
    [ "$3" = none ] || what+=", queue/scheduler $3"
    echo "bmapkit: warning: put back the I/O settings of $1 that process $2 changed for a copy and left behind when it ended: $what"
}
records() { ls -A "$RECORDS" 2>/dev/null | tr '\n' ' ' | sed 's/ $//'; }
dead_pid() {
    local p
    sh -c 'exit 0' &
    p=$!
    wait "$p"
    echo "$p"
}

truncate -s 16M a.back b.back
attach a.back || fail "cannot attach a.back"
A=$LOOP
NA=${A#/dev/}
attach b.back || fail "cannot attach b.back"
B=$LOOP
NB=${B#/dev/}
[ -w "$(sys "$NA" bdi/max_ratio)" ] || skip "$A has no writable bdi/max_ratio here"
# A scheduler other than "none" when the kernel offers one, so that a scheduler left at
# "none" is noticed.
SCHED=$(sed 's/[][]//g' "$(sys "$NA" queue/scheduler)" 2>/dev/null | tr ' ' '\n' |
    grep -v -x -e none -e '' | head -n 1) || true
if [ -z "$SCHED" ]; then
    SCHED=none
    note_skip "loop devices offer no scheduler but none here: only bdi/max_ratio is checked"
fi

new_sparse img $((4 * MiB))
put_random img 0 "$MiB"
put_random img $((3 * MiB)) 65536
gen_bmap 2.0 img img.bmap
SIZE=$(stat -c %s img)

# --- SIGKILL while tuned: the settings stay changed, and the record says how they were
set_settings "$NA" "$SCHED" 37
mkfifo fifo
exec 3<>fifo
# One MiB and then nothing: the copy waits for the rest with the settings changed.
head -c "$MiB" img >&3 &
feeder=$!
"$BMAPKIT" copy --bmap img.bmap fifo "$A" >kill.out 2>kill.err &
pid=$!
for _ in $(seq 500); do
    [ "$(settings_of "$NA")" = none/1 ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.02
done
[ "$(settings_of "$NA")" = none/1 ] || { cat kill.err; fail "$A: the copy never set none/1, settings $(settings_of "$NA")"; }
kill -KILL "$pid"
rc=0
wait "$pid" || rc=$?
kill "$feeder" 2>/dev/null || true
wait "$feeder" 2>/dev/null || true
exec 3>&-
[ "$rc" -eq 137 ] || fail "the copy was not killed by SIGKILL: status $rc"
[ "$(settings_of "$NA")" = none/1 ] || fail "$A: settings $(settings_of "$NA") after SIGKILL, expected none/1 left"
START=$(records | sed -n "s/^$NA\.$pid\.\([0-9]*\)\$/\1/p")
[ -n "$START" ] || fail "no record $NA.$pid.START in $RECORDS: '$(records)'"
write_record expected "$NA" "$pid" "$START" "$SCHED" 37
diff "$RECORDS/expected" "$RECORDS/$NA.$pid.$START" >.diff || { cat .diff; fail "the record of the killed copy differs from the expected one"; }
rm "$RECORDS/expected"
pass "SIGKILL while tuned: $A left at none/1 with the record $NA.$pid.$START of $SCHED/37"

# --- the next copy puts them back, says so, and removes the record
run_ok "$BMAPKIT" copy --bmap img.bmap img "$A"
cmp -n "$SIZE" img "$A" || fail "$A: the copy after the killed one differs from the image"
[ "$(settings_of "$NA")" = "$SCHED/37" ] || fail "$A: settings $(settings_of "$NA") after the next copy, expected $SCHED/37"
[ -z "$(records)" ] || fail "records left after the next copy: $(records)"
want=$(put_back_line "$NA" "$pid" "$SCHED" 37)
[ "$(grep -c 'put back' .err)" -eq 1 ] && grep -qxF "$want" .err || { cat .err; fail "no warning '$want'"; }
pass "the next copy put back $SCHED/37 on $A, removed the record and warned: ${want#bmapkit: warning: }"
run_ok "$BMAPKIT" copy --bmap img.bmap img "$A"
[ "$(settings_of "$NA")" = "$SCHED/37" ] && [ -z "$(records)" ] || fail "$A: a normal copy left $(settings_of "$NA"), records '$(records)'"
! grep -q 'put back' .err || { cat .err; fail "a warning about putting back after a normal copy"; }
pass "a normal copy restores $SCHED/37 itself and leaves no record, no warning"

# --- a live owner's record is left alone; once the owner is gone it is put back
sleep 600 &
live=$!
at_exit "kill $live 2>/dev/null"
live_start=$(start_of "$live")
set_settings "$NB" none 1
write_record "$NB.$live.$live_start" "$NB" "$live" "$live_start" "$SCHED" 42
run_ok "$BMAPKIT" copy --bmap img.bmap img "$A"
[ "$(records)" = "$NB.$live.$live_start" ] || fail "the record of a live owner became '$(records)'"
[ "$(settings_of "$NB")" = none/1 ] || fail "$B: settings of a live owner changed to $(settings_of "$NB")"
! grep -q "$NB" .err || { cat .err; fail "a warning about $B, whose owner is alive"; }
# The same pid with another start time is a later process: the owner is gone.
write_record "$NB.reused" "$NB" "$live" $((live_start + 1)) "$SCHED" 42
run_ok "$BMAPKIT" copy --bmap img.bmap img "$A"
[ "$(records)" = "$NB.$live.$live_start" ] || fail "records '$(records)' after a record of a reused pid"
[ "$(settings_of "$NB")" = "$SCHED/42" ] || fail "$B: the record of a reused pid was not put back: $(settings_of "$NB")"
grep -qxF "$(put_back_line "$NB" "$live" "$SCHED" 42)" .err || { cat .err; fail "no warning for the reused pid's record"; }
set_settings "$NB" none 1
kill "$live"
wait "$live" 2>/dev/null || true
run_ok "$BMAPKIT" copy --bmap img.bmap img "$A"
[ -z "$(records)" ] || fail "the record of an ended owner was left: $(records)"
[ "$(settings_of "$NB")" = "$SCHED/42" ] || fail "$B: settings $(settings_of "$NB") after its owner ended, expected $SCHED/42"
grep -qxF "$(put_back_line "$NB" "$live" "$SCHED" 42)" .err || { cat .err; fail "no warning for $B"; }
pass "a live owner's record left alone (also on another disk than the copy's); put back once it ended, or when its pid belongs to a later process"

# --- a record of another device under the same name is dropped without writing
dead=$(dead_pid)
set_settings "$NB" none 1
dev=$(cat "$(sys "$NB" dev)")
write_record other-number "$NB" "$dead" 1 "$SCHED" 42 "${dev%:*}:$((${dev#*:} + 1000))"
run_ok "$BMAPKIT" copy --bmap img.bmap img "$A"
[ -z "$(records)" ] && [ "$(settings_of "$NB")" = none/1 ] ||
    fail "record of another device number: records '$(records)', $B at $(settings_of "$NB")"
seq=$(diskseq_of "$NB")
if [ "$seq" = - ]; then
    note_skip "no diskseq in sysfs (kernel before 5.15): a replugged device with the same number cannot be told"
else
    write_record replugged "$NB" "$dead" 1 "$SCHED" 42 "$dev" $((seq - 1))
    run_ok "$BMAPKIT" copy --bmap img.bmap img "$A"
    [ -z "$(records)" ] && [ "$(settings_of "$NB")" = none/1 ] ||
        fail "record of an earlier diskseq: records '$(records)', $B at $(settings_of "$NB")"
fi
! grep -q "$NB" .err || { cat .err; fail "a warning about a record of another device"; }
pass "records of another device named $NB (number $dev+1000, diskseq $seq-1) dropped, $B left at none/1"

# --- damaged records are removed with a warning, and the copy goes on
echo garbage >"$RECORDS/garbage"
write_record whole "$NB" "$dead" 1 "$SCHED" 42
head -c 60 "$RECORDS/whole" >"$RECORDS/cut"
rm "$RECORDS/whole"
set_settings "$NB" none 1
run_ok "$BMAPKIT" copy --bmap img.bmap img "$A"
cmp -n "$SIZE" img "$A" || fail "$A: the copy with damaged records differs from the image"
grep -qxF "bmapkit: warning: removed the damaged I/O tuning record $RECORDS/garbage: line 1: not a bmapkit tuning record" .err &&
    grep -qxF "bmapkit: warning: removed the damaged I/O tuning record $RECORDS/cut: cut short: no newline at the end" .err ||
    { cat .err; fail "no warnings about the damaged records"; }
[ -z "$(records)" ] || fail "damaged records left: $(records)"
[ "$(settings_of "$NB")" = none/1 ] && [ "$(settings_of "$NA")" = "$SCHED/37" ] ||
    fail "settings after damaged records: $B $(settings_of "$NB"), $A $(settings_of "$NA")"
pass "damaged records removed with a warning each, the copy done, nothing written from them"

# --- without the right to write a record (not root), nothing is tuned
chmod 755 "$WORK"
if ! setpriv --reuid nobody --regid nogroup --clear-groups test -x "$BMAPKIT"; then
    # A build in a folder only root can enter, such as /root in a fresh chroot.
    note_skip "user nobody cannot run $BMAPKIT here: the case without a record is not run"
    exit 0
fi
chown nobody "$A"
at_exit "chown root '$A'"
rc=0
setpriv --reuid nobody --regid nogroup --clear-groups "$BMAPKIT" copy --bmap img.bmap img "$A" \
    >nobody.out 2>nobody.err || rc=$?
chown root "$A"
[ "$rc" -eq 0 ] || { cat nobody.err; fail "copy as nobody: status $rc"; }
cmp -n "$SIZE" img "$A" || fail "$A: the copy as nobody differs from the image"
grep -qxF "bmapkit: warning: I/O settings of $NA left unchanged: they cannot be recorded in $RECORDS for a later run to put them back if this one dies: Permission denied" nobody.err &&
    [ "$(grep -c 'warning' nobody.err)" -eq 1 ] || { cat nobody.err; fail "copy as nobody: not exactly the one warning about the record"; }
[ "$(settings_of "$NA")" = "$SCHED/37" ] || fail "$A: settings $(settings_of "$NA") after a copy as nobody"
[ -z "$(records)" ] || fail "records after a copy as nobody: $(records)"
pass "as nobody: one warning, settings left as they are, copy done"
