#!/bin/bash
# What "meson install" puts under a prefix works from there, with nothing else set:
# the command runs and finds its own library (a run path relative to itself, outside
# /usr), a program built with "pkg-config --cflags --libs bmapkit" and the run path the
# README gives runs against the installed library, the static archive links with
# "pkg-config --static --libs bmapkit", the headers are all there, and bmapkit(3)
# describes every public function, each name a link to it.
# The build is installed with --destdir; since the pkg-config file names its folders
# from ${prefix}, pointing that line at the copy is what an install to that folder gives.
# Usage: install-prefix.sh SOURCE_DIR BUILD_DIR [SANITIZERS]; BMAPKIT and TESTS_DIR as
# for the command tests.
. "$TESTS_DIR/lib.sh"
top=$1 build=$2 sanitize=${3:-none}
cc=${CC:-cc}
require_tools meson pkg-config readelf ldd "$cc" groff cmp sed
unset LD_LIBRARY_PATH PKG_CONFIG_LIBDIR PKG_CONFIG_SYSROOT_DIR

flags=()
# A library built with sanitizers needs their runtime in the program too.
[ "$sanitize" = none ] || flags+=("-fsanitize=$sanitize")

dest=$WORK/dest
meson install -C "$build" --no-rebuild --destdir "$dest" >"$WORK/install.log" 2>&1 ||
    { cat "$WORK/install.log"; fail "meson install --destdir failed"; }
pcs=$(find "$dest" -path '*/pkgconfig/bmapkit.pc')
[ "$(wc -w <<<"$pcs")" -eq 1 ] || fail "expected one installed bmapkit.pc, found: $pcs"
prefix=$(sed -n 's/^prefix=//p' "$pcs")
root=$dest$prefix
# shellcheck disable=SC2016 # the literal ${prefix} of the file
grep -q '^libdir=${prefix}/' "$pcs" && grep -q '^includedir=${prefix}/' "$pcs" ||
    fail "bmapkit.pc names a folder outside its prefix: $(cat "$pcs")"
sed -i "s|^prefix=.*|prefix=$root|" "$pcs"
export PKG_CONFIG_PATH=${pcs%/*}
libdir=$(pkg-config --variable=libdir bmapkit)
version=$(pkg-config --modversion bmapkit)
[ -e "$libdir/libbmapkit.so.0" ] && [ -e "$libdir/libbmapkit.a" ] ||
    fail "no libbmapkit.so.0 and libbmapkit.a in $libdir"
pass "installed under $prefix: bmapkit.pc $version, libbmapkit.so.0 and libbmapkit.a"

# loads_from PROGRAM: PROGRAM, as it is (no LD_LIBRARY_PATH), loads the prefix's library.
loads_from() {
    local got
    got=$(ldd "$1" | sed -n 's/^\s*libbmapkit\.so\.0 => \(\S*\) .*/\1/p')
    [ -n "$got" ] && [ "$(realpath "$got")" = "$(realpath "$libdir/libbmapkit.so.0")" ] ||
        fail "$1 does not load $libdir/libbmapkit.so.0: $(ldd "$1" | grep bmapkit)"
}

# The command.
readelf -d "$root/bin/bmapkit" >"$WORK/dyn"
if [ "$prefix" = /usr ]; then
    # A distribution's own directories: no run path at all.
    if grep -Eq '\((RPATH|RUNPATH)\)' "$WORK/dyn"; then
        fail "bin/bmapkit installed to /usr carries a run path: $(grep PATH "$WORK/dyn")"
    fi
    command=(env LD_LIBRARY_PATH="$libdir" "$root/bin/bmapkit")
    note_skip "the command installed to /usr has no run path; it is run with LD_LIBRARY_PATH"
else
    grep -q '(RUNPATH).*\[\$ORIGIN/' "$WORK/dyn" ||
        fail "bin/bmapkit has no run path relative to itself: $(grep -E 'R(UN)?PATH' "$WORK/dyn")"
    loads_from "$root/bin/bmapkit"
    command=("$root/bin/bmapkit")
fi
out=$("${command[@]}" --version)
[ "$out" = "bmapkit $version" ] || fail "bin/bmapkit --version printed '$out'"
pass "bin/bmapkit runs from the prefix and prints 'bmapkit $version'"

# The headers: all of them, and enough on their own (no -I into the source tree below).
diff <(cd "$top/include/bmapkit" && ls) <(cd "$root/include/bmapkit" && ls) >"$WORK/hdiff" ||
    fail "installed headers differ from include/bmapkit: $(cat "$WORK/hdiff")"

cd "$WORK"
new_sparse disk.img $((6 * 1024 * 1024))
put_random disk.img 0 200000
put_random disk.img $((3 * 1024 * 1024)) 700000

# A program linked against the shared library, with the run path the README gives:
# the example of bmapkit(3), taken from the installed page.
man3=$(find "$dest" -path '*/man3/bmapkit.3')
[ -n "$man3" ] || fail "bmapkit.3 is not installed"
awk '/^\.SH EXAMPLES/ {ex = 1} ex && /^\.EX$/ {on = 1; next} on && /^\.EE$/ {exit} on {print}' \
    "$man3" | sed -e 's/\\-/-/g' -e 's/\\e/\\/g' -e "s/\\\\(aq/'/g" -e 's/\\&//g' >mkbmap.c
grep -q 'bk_create_bmap' mkbmap.c || fail "no example program under EXAMPLES in bmapkit.3"
# shellcheck disable=SC2046 # pkg-config's output is a list of words
"$cc" -std=c17 -Wall -Wextra -Werror "${flags[@]}" mkbmap.c \
    $(pkg-config --cflags --libs bmapkit) -Wl,-rpath,"$libdir" -o mkbmap
loads_from ./mkbmap
run_ok ./mkbmap disk.img mk.bmap
"${command[@]}" create -q -o ref.bmap disk.img
cmp mk.bmap ref.bmap || fail "the example of bmapkit(3) wrote another bmap than 'bmapkit create'"
grep -q "^disk.img: $(bmap_mapped_bytes ref.bmap) bytes mapped in 2 ranges " "$WORK/.out" ||
    fail "unexpected output of the example: $(cat "$WORK/.out")"
pass "the example of bmapkit(3) builds with pkg-config and -rpath, runs, writes the same bmap as the command"

# The static archive, the other libraries shared: pkg-config --static must name all
# that libbmapkit.a needs, or the link fails.
# shellcheck disable=SC2046
"$cc" -std=c17 -Wall -Wextra -Werror "${flags[@]}" "$top/examples/flash.c" \
    $(pkg-config --cflags bmapkit) \
    $(pkg-config --static --libs bmapkit | sed 's/-lbmapkit/-l:libbmapkit.a/') \
    -o flash-static 2>"$WORK/link.err" || { cat "$WORK/link.err"; fail "static link failed"; }
if readelf -d flash-static | grep -q 'NEEDED.*libbmapkit'; then
    fail "flash-static still loads libbmapkit.so"
fi
# libcurl, libnbd and libarchive are loaded by the library when first used: neither the
# pkg-config file nor a program linked from it names them.
lazy=$( (pkg-config --print-requires-private bmapkit; pkg-config --static --libs bmapkit) |
    { grep -oE 'libcurl|libnbd|libarchive|-lcurl|-lnbd|-larchive' || true; } | sort -u | xargs)
[ -z "$lazy" ] || fail "bmapkit.pc names what the library loads itself: $lazy"
needed=$(readelf -d flash-static | { grep -oE 'lib(curl|nbd|archive)\.so[.0-9]*' || true; } | xargs)
[ -z "$needed" ] || fail "flash-static links $needed"
run_ok ./flash-static -b mk.bmap disk.img out.img
cmp disk.img out.img || fail "flash-static's copy differs from the image"
pass "examples/flash.c links libbmapkit.a with 'pkg-config --static --libs bmapkit' (no libcurl, libnbd or libarchive) and flashes"

# The manual pages: every BK_API function of the installed headers has a prototype and
# an entry in bmapkit(3) and a name in section 3 that leads there; every function the
# page declares exists; the page formats without warnings and carries the version.
[ -n "$(find "$dest" -path '*/man1/bmapkit.1')" ] || fail "bmapkit.1 is not installed"
grep -h '^BK_API' "$root"/include/bmapkit/*.h |
    sed -E 's/^BK_API[^(]*[ *]([a-z_0-9]+)\(.*/\1/' | sort >functions
grep -h '^static inline' "$root"/include/bmapkit/*.h |
    sed -E 's/^static inline[^(]*[ *]([a-z_0-9]+)\(.*/\1/' | sort >inline
[ "$(wc -l <functions)" -ge 80 ] || fail "found only $(wc -l <functions) BK_API functions"
awk 'prev == ".TP" && $1 == ".B" && $2 ~ /^bk_/ {print $2} {prev = $0}' "$man3" | sort -u >entries
grep -oE '\bbk_[a-z_0-9]+\(' "$man3" | tr -d '(' | sort -u >declared
missing=()
while read -r f; do
    grep -qx "$f" entries || missing+=("$f (no entry)")
    grep -qx "$f" declared || missing+=("$f (no prototype)")
    link="${man3%/*}/$f.3"
    [ "$(readlink -f "$link")" = "$(readlink -f "$man3")" ] || missing+=("$f (no $f.3)")
done <functions
[ ${#missing[@]} -eq 0 ] || fail "bmapkit(3) lacks: ${missing[*]}"
stale=$(sort -u functions inline | comm -13 - declared)
[ -z "$stale" ] || fail "bmapkit(3) declares functions the headers do not: $stale"
groff -man -ww -z "$man3" 2>"$WORK/groff.err"
[ ! -s "$WORK/groff.err" ] || fail "bmapkit.3 formats with warnings: $(cat "$WORK/groff.err")"
grep -q "^\.TH BMAPKIT 3 [0-9-]* \"bmapkit $version\"" "$man3" ||
    fail "bmapkit.3 is not marked as version $version: $(grep '^\.TH' "$man3")"
pass "bmapkit(3) describes all $(wc -l <functions) functions, each with its link, formats cleanly"
