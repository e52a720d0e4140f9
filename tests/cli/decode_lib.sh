# Helpers shared by the decode-*.sh tests, sourced after lib.sh. Each test makes
# disk.img and its bmap disk.img.bmap in $WORK, sets FORMAT to the name bmapkit gives
# the format in its messages, and sets PIPE_DIFFERS=1 when reading the format from a
# pipe takes another way through bmapkit than reading it from a file.

MiB=$((1024 * 1024))
END='([^0-9]|$)' # the end of a number in a pattern

# copy_ok NAME ARGS...: bmapkit copy -q ARGS... out.img succeeds and out.img equals the
# image byte for byte and hole for hole.
copy_ok() {
    local name=$1
    shift
    rm -f out.img
    run_ok "$BMAPKIT" copy -q "$@" out.img
    same_as_image disk.img disk.img.bmap out.img
    pass "$name"
}

# nobmap_ok NAME FILE: --nobmap copies all of FILE's image.
nobmap_ok() {
    rm -f out.img
    run_ok "$BMAPKIT" copy -q --nobmap "$2" out.img
    cmp disk.img out.img || fail "$1: --nobmap copy differs from the image"
    pass "$1: --nobmap"
}

# piped_ok NAME FILE ARGS...: cat FILE | bmapkit copy -q ARGS... - out.img succeeds and
# gives the image (hole for hole too, with a bmap).
piped_ok() {
    local name=$1 file=$2
    shift 2
    rm -f out.img
    cat "$file" | run_ok "$BMAPKIT" copy -q "$@" - out.img
    if [[ " $* " == *" --nobmap "* ]]; then
        cmp disk.img out.img || fail "$name: copy from a pipe differs from the image"
    else
        same_as_image disk.img disk.img.bmap out.img
    fi
    pass "$name"
}

# copy_fails NAME PATTERN ARGS...: bmapkit copy -q ARGS... out.img exits non-zero with one
# "bmapkit: error:" line that names the format and matches PATTERN (grep -Ei), and
# leaves no complete copy: out.img is not created, or the message says it lacks the
# image's first MiB (or got nothing) and it indeed does not hold it. A flipped byte
# may instead be caught first by a range checksum of the bmap (exit 3): PATTERN
# "|verify" allows that.
copy_fails() {
    local name=$1 pattern=$2 rc=0 line
    shift 2
    rm -f out.img
    "$BMAPKIT" copy -q "$@" out.img >.out 2>.err || rc=$?
    [ "$rc" -ne 0 ] || fail "$name: exit status 0 from: copy $*"
    [ ! -s .out ] || fail "$name: output on stdout"
    if [ "$(grep -c '^bmapkit: error: ' .err)" -ne 1 ] || [ "$(wc -l <.err)" -ne 1 ]; then
        cat .err
        fail "$name: expected exactly one 'bmapkit: error:' line"
    fi
    line=$(cat .err)
    if [ "$rc" -eq 3 ] && [[ $pattern == *"|verify" ]]; then
        grep -Eq 'blocks [0-9]+-[0-9]+ .*do not match the bmap' <<<"$line" ||
            fail "$name: exit 3 but '$line'"
    else
        [ "$rc" -eq 1 ] || fail "$name: exit status $rc, expected 1: $line"
        grep -qi -- ": $FORMAT: " <<<"$line" || fail "$name: '$line' does not name $FORMAT"
        grep -Eqi -- "${pattern%|verify}" <<<"$line" ||
            fail "$name: '$line' does not match /${pattern%|verify}/"
    fi
    if [ -e out.img ]; then
        grep -Eq "nothing was written|without the image's first MiB" <<<"$line" ||
            fail "$name: '$line' does not say out.img is incomplete"
        if cmp -s -n "$MiB" disk.img out.img; then
            fail "$name: the failed copy holds the image's first MiB"
        fi
    fi
}

# damaged NAME FILE PATTERN: FILE fails with the bmap, with --nobmap and from standard
# input (and from a pipe, where that takes another way). The quick run leaves out
# standard input redirected from the file (read like the file itself) and the pipe with
# --nobmap: each damaged file still goes through the decoder from a file and a pipe.
damaged() {
    local name=$1 file=$2 pattern=$3 ways="bmap, --nobmap, stdin"
    if test_quick && [ -z "${_DAMAGED_NOTED:-}" ]; then
        note_skip "damaged files not read from a redirected standard input$([ "${PIPE_DIFFERS:-0}" = 1 ] &&
            echo ", nor piped with --nobmap") (BMAPKIT_TEST_QUICK=1)"
        _DAMAGED_NOTED=1
    fi
    copy_fails "$name, bmap" "$pattern" --bmap disk.img.bmap "$file"
    copy_fails "$name, --nobmap" "${pattern%|verify}" --nobmap "$file"
    if test_quick; then
        ways="bmap, --nobmap"
    else
        copy_fails "$name, stdin" "$pattern" --bmap disk.img.bmap - <"$file"
    fi
    if [ "${PIPE_DIFFERS:-0}" = 1 ]; then
        copy_fails "$name, pipe" "$pattern" --bmap disk.img.bmap - < <(cat "$file")
        test_quick ||
            copy_fails "$name, pipe, --nobmap" "${pattern%|verify}" --nobmap - < <(cat "$file")
        ways+=", pipe"
    fi
    pass "$name: fails naming $FORMAT ($ways)"
}

# flip FILE OFFSET OUT: OUT is FILE with the byte at OFFSET inverted.
flip() {
    local old
    cp "$1" "$3"
    old=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
    put_byte "$3" "$2" "$(printf '%02x' $((old ^ 0xff)))"
}

# damaged_middle_and_end FILE [WHAT]: FILE with its middle byte inverted, and FILE with
# a line of garbage after it, both fail (WHAT starts the checks' names).
damaged_middle_and_end() {
    local file=$1 what=${2:+$2, } size ext=${1##*.}
    size=$(stat -c %s "$file")
    flip "$file" $((size / 2)) "flipped.$ext"
    damaged "${what}one byte flipped at $((size / 2))" "flipped.$ext" "corrupt|verify"
    { cat "$file" && printf 'garbage\n'; } >"trailing.$ext"
    damaged "${what}trailing garbage" "trailing.$ext" "trailing data.* at byte $size$END"
}
