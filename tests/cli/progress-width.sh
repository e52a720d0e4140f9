#!/usr/bin/env bash
# bmapkit copy's progress bar on a terminal: each redraw fits in the terminal's width
# less one column (80, 60, 44, 40 and 20 columns, a window resized during the copy, a
# terminal that tells no width and COLUMNS), parts left out in order, and the bar stays
# on one line of the screen instead of scrolling. The copies run at once in tmux, each
# under script(1) which records every byte written to its terminal; each image comes from
# a FIFO that a writer fills over about three seconds, so that the bar is redrawn a
# dozen times.
source "$TESTS_DIR/lib.sh"

require_tools tmux script stty python3
cd "$WORK"
MiB=$((1024 * 1024))

# 12 MiB of data in 24 MiB, as 768 ranges: the copy reports its progress in steps.
new_sparse img $((24 * MiB))
python3 - img <<'EOF'
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
for off in range(0, 24 << 20, 32768):
    os.pwrite(fd, os.urandom(16384), off)
os.close(fd)
EOF
"$BMAPKIT" create -q img -o img.bmap
[ "$(bmap_range_count img.bmap)" -eq 768 ] || fail "expected 768 ranges in img.bmap"

# The writer of the FIFO: the image in 64 KiB pieces over SECONDS.
cat >feed.py <<'EOF'
import sys, time
data = open(sys.argv[1], "rb").read()
step, seconds = 65536, float(sys.argv[3])
pieces = len(data) // step
with open(sys.argv[2], "wb") as out:
    for i in range(pieces):
        out.write(data[i * step:(i + 1) * step])
        out.flush()
        time.sleep(seconds / pieces)
EOF

TMUX_SOCK="$WORK/tmux.sock"
tmx() {
    tmux -S "$TMUX_SOCK" -f /dev/null "$@"
}
at_exit "tmux -S '$TMUX_SOCK' kill-server 2>/dev/null"

# start_copy NAME COLS [SETUP]: start copying the image from a slowly fed FIFO in a tmux
# window of COLS columns, SETUP (shell commands) run first on the terminal. The copies
# mostly wait on their feeders, so all of them run at once, each with files of its own.
# COPY_ARGS replaces "--bmap img.bmap".
start_copy() {
    local name=$1 cols=$2 setup=${3:-}
    rm -f "$name".*
    mkfifo "$name.fifo"
    cat >"$name.sh" <<EOF
$setup
python3 feed.py img $name.fifo 3 &
"$BMAPKIT" copy ${COPY_ARGS:---bmap img.bmap} $name.fifo $name.img
echo \$? >"$WORK/$name.status"
EOF
    tmx new-session -d -s "$name" -x "$cols" -y 24 \
        "cd '$WORK' && script -q -e -f -c 'sh $name.sh' $name.raw; sleep 600"
}

# finish_copies NAME...: wait for the copies NAME... started by start_copy; leaves
# everything written to each terminal in NAME.raw, the screen with its history in
# NAME.pane, and fails unless every copy succeeded. The window of copy RESIZE (if set) is
# narrowed to RESIZE_TO columns once the bar was drawn three times; RESIZE.cut is then the
# size of RESIZE.raw half a second after the resize.
finish_copies() {
    local name i left
    for i in $(seq 600); do
        left=0
        for name in "$@"; do
            [ -e "$name.status" ] || left=1
        done
        [ "$left" = 0 ] && break
        if [ -n "${RESIZE:-}" ] && [ ! -e "$RESIZE.cut" ] && [ -e "$RESIZE.raw" ] &&
            [ "$(tr -cd '\r' <"$RESIZE.raw" | wc -c)" -ge 3 ]; then
            tmx resize-window -t "$RESIZE" -x "$RESIZE_TO" -y 24
            sleep 0.5
            stat -c %s "$RESIZE.raw" >"$RESIZE.cut"
        fi
        sleep 0.1
    done
    for name in "$@"; do
        [ -e "$name.status" ] || fail "$name: the copy did not end within a minute"
    done
    sleep 0.3
    for name in "$@"; do
        tmx capture-pane -p -J -S - -t "$name" >"$name.pane"
        tmx kill-session -t "$name"
        [ "$(cat "$name.status")" = 0 ] || { cat "$name.pane"; fail "$name: the copy failed"; }
        cmp img "$name.img" || fail "$name: the copy differs from the image"
    done
}

# draws NAME [FROM]: each redraw of the bar in NAME.raw (from byte FROM on), one a line:
# the text between a carriage return and the erase-to-end-of-line that ends it.
draws() {
    python3 - "$1.raw" "${2:-0}" <<'EOF'
import re, sys
raw = open(sys.argv[1], "rb").read()[int(sys.argv[2]):].decode("utf-8", "replace")
for m in re.finditer(r"\r([^\r\n\x1b]*)\x1b\[K", raw):
    print(m.group(1))
EOF
}

# check_width NAME COLS [FROM]: at least 5 redraws, none wider than COLS - 1, the last
# at 100%; prints the last.
check_width() {
    local name=$1 cols=$2 n long
    draws "$name" "${3:-0}" >"$name.draws"
    n=$(wc -l <"$name.draws")
    [ "$n" -ge 5 ] || { cat -A "$name.raw" | head -20; fail "$name: only $n redraws of the bar"; }
    long=$(awk -v max=$((cols - 1)) 'length($0) > max' "$name.draws")
    [ -z "$long" ] || fail "$name: redraws wider than $((cols - 1)) columns: $(head -3 <<<"$long")"
    tail -n 1 "$name.draws" | grep -q '100%' || fail "$name: the last redraw is not at 100%: $(tail -n 1 "$name.draws")"
    tail -n 1 "$name.draws"
}

# one_line NAME COLS: the screen (wrapped lines joined) holds the bar on one line only,
# which fits.
one_line() {
    local lines
    lines=$(grep -c '[0-9]%' "$1.pane" || true)
    [ "$lines" -eq 1 ] || { cat "$1.pane"; fail "$1: $lines lines of the screen hold the bar, expected 1"; }
    [ "$(grep '[0-9]%' "$1.pane" | awk '{ print length($0) }')" -le $(($2 - 1)) ] ||
        fail "$1: the bar's line on the screen is wider than $(($2 - 1)) columns"
}

# Every copy at once; the checks below read what each left.
start_copy w80 80
start_copy w60 60
start_copy w44 44
start_copy w40 40
start_copy w20 20
start_copy resize 80
start_copy cols0 80 'stty cols 0 rows 0; export COLUMNS=45'
start_copy nocols 100 'stty cols 0 rows 0; unset COLUMNS'
for cols in 80 25; do
    COPY_ARGS=--nobmap start_copy "unknown$cols" "$cols"
done
RESIZE=resize RESIZE_TO=50 finish_copies w80 w60 w44 w40 w20 resize cols0 nocols unknown80 unknown25

# --- full width: every part, the bar at its widest that fits
last=$(check_width w80 80)
one_line w80 80
grep -Eq '^\[#+\] 100%  +12\.0 MiB / 12\.0 MiB  .*/s  ETA ' <<<"$last" || fail "80 columns: last redraw '$last'"
pass "80 columns: $(wc -l <w80.draws) redraws, all within 79 columns, on one line: '$last'"

# --- narrower: the rate goes first, then the time left, then the bar, then the bytes
last=$(check_width w60 60)
one_line w60 60
grep -Eq '^\[#{10,}\] 100%  +12\.0 MiB / 12\.0 MiB  ETA ' <<<"$last" && ! grep -q '/s' <<<"$last" ||
    fail "60 columns: last redraw '$last'"
pass "60 columns: no rate, bar and time left kept: '$last'"

last=$(check_width w44 44)
one_line w44 44
grep -Eq '^\[#{10,}\] 100%  +12\.0 MiB / 12\.0 MiB *$' <<<"$last" || fail "44 columns: last redraw '$last'"
pass "44 columns: no time left, a short bar and the bytes: '$last'"

last=$(check_width w40 40)
one_line w40 40
grep -Eq '^100%  +12\.0 MiB / 12\.0 MiB *$' <<<"$last" || fail "40 columns: last redraw '$last'"
pass "40 columns: no bar, percent and bytes: '$last'"

last=$(check_width w20 20)
one_line w20 20
grep -Eq '^100%$' <<<"$last" || fail "20 columns: last redraw '$last'"
pass "20 columns: the percent only"

# --- a window narrowed during the copy: the redraws after it fit the new width
[ -e resize.cut ] || fail "the window was not resized during the copy"
check_width resize 50 "$(cat resize.cut)" >/dev/null
draws resize | awk 'length($0) > 49' | grep -q . || fail "resize: no redraw was wider than 49 columns before the resize"
pass "window narrowed from 80 to 50 columns during the copy: the later redraws fit in 49"

# --- a terminal that tells no width (a serial console reports 0): COLUMNS, else 80
last=$(check_width cols0 45)
grep -Eq '^\[#{10,}\] 100%' <<<"$last" || fail "COLUMNS=45: last redraw '$last'"
pass "terminal without a width, COLUMNS=45: redraws within 44 columns"
last=$(check_width nocols 80)
awk 'length($0) > 70' nocols.draws | grep -q . || fail "no width and no COLUMNS: redraws much narrower than 80 columns"
pass "terminal without a width, no COLUMNS: redraws within 79 columns"

# --- the amount to copy unknown (--nobmap, the image from a FIFO): bytes and rate only
for cols in 80 25; do
    draws "unknown$cols" >"unknown$cols.draws"
    [ "$(wc -l <"unknown$cols.draws")" -ge 5 ] || fail "unknown size, $cols columns: too few redraws"
    ! awk -v max=$((cols - 1)) 'length($0) > max' "unknown$cols.draws" | grep -q . ||
        fail "unknown size, $cols columns: redraws wider than $((cols - 1)) columns"
    [ "$(grep -c '^copied ' "unknown$cols.pane")" -eq 1 ] ||
        { cat "unknown$cols.pane"; fail "unknown size, $cols columns: the bar is not on one line"; }
    if [ "$cols" = 80 ]; then
        want='^copied [0-9.]+ (bytes|KiB|MiB) +[0-9.]+ (bytes|KiB|MiB)/s$'
    else
        want='^copied [0-9.]+ (bytes|KiB|MiB) *$'
    fi
    bad=$(grep -Ev "$want" "unknown$cols.draws" | head -1 || true)
    [ -z "$bad" ] || fail "unknown size, $cols columns: redraw '$bad'"
    pass "unknown size, $cols columns: '$(tail -n 1 "unknown$cols.draws")'"
done
