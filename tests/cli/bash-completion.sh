#!/usr/bin/env bash
# The bash completion (data/bash-completion/bmapkit) in a bash of its own, as bash calls it: commands, every long option each command's --help shows and no other, option values, files for images and bmaps, disks and ums[:LUN] for copy's DEST (on a fake /sys), and the name bmaptool through bash-completion's loader.
source "$TESTS_DIR/lib.sh"
source "$TESTS_DIR/fake_sysfs.sh"
BASH_COMPLETION=/usr/share/bash-completion/bash_completion
COMPLETION=$TESTS_DIR/../../data/bash-completion/bmapkit
[ -r "$BASH_COMPLETION" ] || fail "$BASH_COMPLETION is missing (the bash-completion package; scripts/install-deps.sh installs it)"
[ -r "$COMPLETION" ] || fail "no completion file at $COMPLETION"
# The files offered are those of a folder of their own; the test's files are elsewhere.
mkdir "$WORK/files"
cd "$WORK/files"

# What bash gives a completion function for a command line with the cursor at its end:
# COMP_WORDS split at blanks and at runs of the word-break characters = and :, an empty
# last word after a blank.
cat >"$WORK/drive.sh" <<'EOF'
source "$1"
source "$2"
line=$3
words=()
for tok in $line; do
    while [[ $tok =~ ^([^:=]+|[:=]+)(.*)$ ]]; do
        words+=("${BASH_REMATCH[1]}")
        tok=${BASH_REMATCH[2]}
    done
done
[[ $line == *' ' ]] && words+=('')
COMP_WORDS=("${words[@]}")
COMP_CWORD=$((${#words[@]} - 1))
COMP_LINE=$line
COMP_POINT=${#line}
COMPREPLY=()
_bmapkit "${COMP_WORDS[0]}" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
for w in "${COMPREPLY[@]}"; do
    printf '%s\n' "$w"
done
EOF

# complete LINE: the completions offered at the end of LINE, sorted, one per line.
complete_line() {
    bash --norc --noprofile "$WORK/drive.sh" "$BASH_COMPLETION" "$COMPLETION" "$1" 2>"$WORK/.drive.err" |
        LC_ALL=C sort || fail "the completion failed for '$1': $(cat "$WORK/.drive.err")"
    if [ -s "$WORK/.drive.err" ]; then
        fail "the completion printed errors for '$1': $(cat "$WORK/.drive.err")"
    fi
}

# words TEXT...: the words, sorted, one per line.
words() {
    printf '%s\n' "$@" | LC_ALL=C sort
}

# expect LINE WORDS...: exactly WORDS are offered at the end of LINE.
expect() {
    local line=$1 got want
    shift
    got=$(complete_line "$line")
    want=$(words "$@")
    [ "$got" = "$want" ] || fail "'$line<TAB>' offers [$(echo $got)], expected [$(echo $want)]"
}

# expect_has LINE WORDS...: WORDS are among what is offered at the end of LINE.
expect_has() {
    local line=$1 got w
    shift
    got=$(complete_line "$line")
    for w in "$@"; do
        grep -qxF -- "$w" <<<"$got" || fail "'$line<TAB>' does not offer '$w' (offers [$(echo $got)])"
    done
}

# expect_lacks LINE WORDS...: none of WORDS is offered at the end of LINE.
expect_lacks() {
    local line=$1 got w
    shift
    got=$(complete_line "$line")
    for w in "$@"; do
        if grep -qxF -- "$w" <<<"$got"; then
            fail "'$line<TAB>' offers '$w' (offers [$(echo $got)])"
        fi
    done
}

# help_long_options HELP-TEXT: the long options an option line of the help defines.
# Option lines start with at most 6 blanks ("  -q, --quiet", "      --bmap BMAP",
# "  --version"); the lines of a description are indented further.
help_long_options() {
    sed -nE 's/^ {2,6}(-[A-Za-z], )?(--[a-z0-9][a-z0-9-]*).*/\2/p' <<<"$1" | LC_ALL=C sort -u
}

# --- commands: those the help lists, and nothing else
help=$("$BMAPKIT" --help)
commands=$(sed -n '/^Commands:/,/^$/p' <<<"$help" | sed -nE 's/^  ([a-z]+)  .*/\1/p' | LC_ALL=C sort)
[ -n "$commands" ] || fail "no commands found in 'bmapkit --help'"
expect "bmapkit " $commands
expect "bmapkit cr" create
expect "bmapkit -q " $commands
expect "bmaptool " $commands
pass "commands after 'bmapkit ': $(echo $commands), as --help lists them"

# --- options: every long option of each --help, and no other
global=$(help_long_options "$help")
got=$(complete_line "bmapkit --")
[ "$got" = "$global" ] || fail "'bmapkit --<TAB>' offers [$(echo $got)], --help shows [$(echo $global)]"
for cmd in $commands; do
    cmd_help=$("$BMAPKIT" "$cmd" --help)
    want=$(help_long_options "$cmd_help")
    [ "$(wc -l <<<"$want")" -ge 3 ] || fail "too few options found in 'bmapkit $cmd --help': [$(echo $want)]"
    got=$(complete_line "bmapkit $cmd --")
    missing=$(comm -23 <(echo "$want") <(echo "$got"))
    extra=$(comm -13 <(echo "$want") <(echo "$got"))
    [ -z "$missing" ] || fail "'bmapkit $cmd --<TAB>' lacks what --help shows: $(echo $missing)"
    [ -z "$extra" ] || fail "'bmapkit $cmd --<TAB>' offers what --help does not show: $(echo $extra)"
    # The short options too, offered after a single dash.
    shorts=$(sed -nE 's/^ {2}(-[A-Za-z]), --.*/\1/p' <<<"$cmd_help")
    expect_has "bmapkit $cmd -" $shorts
    pass "'bmapkit $cmd --': the $(wc -l <<<"$want") long options of its --help, nothing else; short ones after '-'"
done
expect "bmapkit copy --no-" --no-sig-verify --no-tune --no-verify
pass "options are filtered by the prefix typed"

# --- files for images, bmaps and signatures
mkdir sub
touch a.img b.img.xz a.img.bmap s.bmap.asc a.img.bmap.asc a.img.bmap.sig notes.txt
expect "bmapkit copy " a.img a.img.bmap a.img.bmap.asc a.img.bmap.sig b.img.xz notes.txt \
    s.bmap.asc sub
expect "bmapkit copy b" b.img.xz
expect "bmapkit create a" a.img a.img.bmap a.img.bmap.asc a.img.bmap.sig
expect "bmapkit copy --bmap " a.img.bmap a.img.bmap.asc s.bmap.asc sub
expect "bmapkit copy --bmap=a" a.img.bmap a.img.bmap.asc
expect "bmapkit copy --bmap-sig a" a.img.bmap.asc a.img.bmap.sig
expect "bmapkit copy --nobmap --bmap-sig a.img.bmap.sig --bmap a" a.img.bmap a.img.bmap.asc
expect "bmapkit create -o a" a.img.bmap
expect "bmapkit copy --json-events " - a.img a.img.bmap a.img.bmap.asc a.img.bmap.sig b.img.xz \
    notes.txt s.bmap.asc sub
pass "files for IMAGE, .bmap and .bmap.asc for --bmap, .asc and .sig for --bmap-sig, '-' for --json-events"

# --- values and positions
checksums=$("$BMAPKIT" create --help | sed -nE 's/^ +--checksum-type T +//p' | tr -d ',' |
    sed 's/ (default)//')
[ -n "$checksums" ] || fail "no checksum types found in 'bmapkit create --help'"
expect "bmapkit create --checksum-type " $checksums
expect "bmapkit create --checksum-type=sha2" sha224 sha256
expect "bmapkit copy --wait " # a number
expect "bmapkit create a.img " # one image only
expect "bmapkit list " # no arguments
expect "bmapkit copy -- -" # after "--", no options (and no file starts with "-")
pass "option values: checksum types of --help, nothing for numbers; no word past the last argument"

# --- copy's DEST: ums, ums:LUN of each UMS disk present, the disks "bmapkit list" shows
R=$WORK/root
fake_tree "$R"
fake_ums "$R" sdb 8:16 0 1-2 0123456789
fake_ums "$R" sdc 8:32 12 1-3
fake_usb_stick "$R" sdd 8:48 1-4 Linux "File-Stor Gadget"
fake_usb_stick "$R" sde 8:64 1-5 SanDisk "Ultra Fit"
fake_part "$R" sde sde1 8:65 1000
fake_disk "$R" nvme0n1 259:0 1000215216 pci0000:00/0000:00:1d.0/0000:3d:00.0/nvme/nvme0 0 - "Samsung SSD"
fake_disk "$R" mmcblk0 179:0 30000000 platform/mmc0/mmc0:0001 1 - -
fake_disk "$R" mmcblk0boot0 179:8 8192 platform/mmc0/mmc0:0001 1 - -
fake_disk "$R" zram0 252:0 8000000 virtual 0 - -
fake_disk "$R" loop1 7:1 0 virtual 0 - -
fake_disk "$R" loop2 7:2 2048 virtual 0 - -
mkdir "$R/sys/class/block/loop2/loop"
echo /srv/disk.img >"$R/sys/class/block/loop2/loop/backing_file"
disks=(/dev/sdb /dev/sdc /dev/sdd /dev/sde /dev/nvme0n1 /dev/mmcblk0 /dev/loop2)
export BMAPKIT_SYSROOT=$R
# The same disks as the command's own list (the completion cannot run it: a list
# may put back I/O settings that a dead copy left, nothing for a TAB key to do).
listed=$("$BMAPKIT" list --json 2>"$WORK/list.err" | python3 -c 'import json, sys; print("\n".join(sorted(d["path"] for d in json.load(sys.stdin))))')
[ "$listed" = "$(words "${disks[@]}")" ] || fail "the fake machine's list is [$(echo $listed)], not [${disks[*]}]"
expect "bmapkit copy a.img " ums ums:0 ums:12 "${disks[@]}" a.img a.img.bmap a.img.bmap.asc \
    a.img.bmap.sig b.img.xz notes.txt s.bmap.asc sub
expect "bmapkit copy a.img u" ums ums:0 ums:12
# After the colon bash replaces only what follows it.
expect "bmapkit copy a.img ums:" 0 12
expect "bmapkit copy a.img ums:1" 12
# Under /dev/ the files there come too (/dev/disk/by-id/... names are common).
expect_has "bmapkit copy --bmap a.img.bmap a.img /dev/s" /dev/sdb /dev/sdc /dev/sdd /dev/sde
expect_has "bmapkit copy a.img /dev/l" /dev/loop2
expect "bmapkit copy --ums=" 0 12
expect "bmapkit copy --ums " a.img a.img.bmap a.img.bmap.asc a.img.bmap.sig b.img.xz notes.txt \
    s.bmap.asc sub
expect "bmapkit copy --ums a.img " # --ums is the destination
expect "bmapkit copy a.img ums " # two arguments given
pass "copy's DEST: ums, ums:0 and ums:12 of the two UMS disks, the disks 'bmapkit list' shows, files"
unset BMAPKIT_SYSROOT

# --- ssh://HOST: the hosts of ssh's configuration, for DEST and for list's operand
mkdir -p "$WORK/home/.ssh"
printf 'Host zz-board1\n    HostName 192.0.2.1\nHost zz-board2 *\n    User root\n' \
    >"$WORK/home/.ssh/config"
real_home=$HOME
export HOME=$WORK/home
# After the colon of "ssh:" bash replaces only what follows it.
expect "bmapkit copy a.img ssh://zz-" //zz-board1 //zz-board2
expect "bmapkit copy --bmap a.img.bmap a.img ssh://root@zz-board1" //root@zz-board1
expect "bmapkit list --json ssh://zz-b" //zz-board1 //zz-board2
expect "bmapkit copy a.img ssh://zz-board1/" # a path on the other host
expect "bmapkit list ssh://zz-board1 " # one operand only
expect "bmapkit copy --remote-bmapkit " # a program on the other host
export HOME=$real_home
pass "ssh://HOST from ssh's configuration for copy's DEST and list's operand, with USER@"
# On this machine's own /sys, from an empty folder: ums, and block devices only (other
# tests attach and detach loop devices meanwhile, so no exact list).
mkdir "$WORK/empty"
cd "$WORK/empty"
offered=$(complete_line "bmapkit copy a.img ")
grep -qx ums <<<"$offered" || fail "'bmapkit copy a.img <TAB>' does not offer ums: [$(echo $offered)]"
for dev in $offered; do
    [ "$dev" = ums ] || [ "${dev#ums:}" != "$dev" ] || [ -b "$dev" ] ||
        fail "'bmapkit copy a.img <TAB>' offers $dev, which is not a block device here"
done
cd "$WORK/files"
pass "on this machine's /sys: ums and block devices ($(echo $offered))"

# --- bmaptool: bash-completion's loader finds the file by the command's name; the
# installed "bmaptool" is a link to "bmapkit", as meson installs them.
mkdir -p "$WORK/bc/completions"
cp "$COMPLETION" "$WORK/bc/completions/bmapkit"
ln -s bmapkit "$WORK/bc/completions/bmaptool"
load() {
    BASH_COMPLETION_USER_DIR=$WORK/bc bash --norc --noprofile -c \
        'source "$1"; __load_completion "$2"; echo "loaded: $?"; complete -p bmapkit bmaptool 2>/dev/null; true' \
        - "$BASH_COMPLETION" "$1"
}
out=$(load bmaptool)
grep -qx 'loaded: 0' <<<"$out" && grep -qx 'complete -F _bmapkit bmaptool' <<<"$out" ||
    fail "bmaptool: the loader did not register the completion: $out"
out=$(load bmapkit)
grep -qx 'loaded: 0' <<<"$out" && grep -qx 'complete -F _bmapkit bmapkit' <<<"$out" ||
    fail "bmapkit: the loader did not register the completion: $out"
if grep -q bmaptool <<<"$out"; then
    fail "loading bmapkit's completion took the name bmaptool, which may be another program: $out"
fi
pass "the loader registers bmaptool through the link, and bmapkit's file alone leaves that name alone"
