#!/bin/bash
# The Debian packages of debian/: built from a copy of the tree by dpkg-buildpackage,
# free of lintian errors, each file in its package, the package relations right (the
# bmaptool name replaces bmap-tools, simulated with apt); as root also installed, used
# (the command, and programs built with pkg-config) and purged, leaving the machine as
# it was.
# Usage: debian.sh SOURCE_DIR (BMAPKIT and TESTS_DIR set as for the command tests)

# shellcheck source-path=SCRIPTDIR source=../cli/lib.sh
. "$(dirname "$0")/../cli/lib.sh"

SRC=${1:?usage: debian.sh SOURCE_DIR}
# The installed command and programs must find the installed library, as on a user's
# machine, not the build's, which meson test puts first.
unset LD_LIBRARY_PATH
require_tools git tar dpkg-buildpackage dpkg-parsechangelog dpkg-architecture dpkg-deb \
    dpkg-query lintian apt-get pkg-config cc objdump strings cmp python3
started=$SECONDS

# ours_installed: the names of the bmapkit packages dpkg knows as not purged. Such
# packages found before the test would be overwritten, then purged: refuse to go on.
ours_installed() {
    dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' 'bmapkit*' 'libbmapkit*' \
        2>/dev/null | awk '$2 != "un" { printf "%s%s", sep, $1; sep = " " }' || true
}
installed=$(ours_installed)
if [ -n "$installed" ]; then
    fail "already on this machine: $installed; remove them first (this test installs and purges its own)"
fi
reference=$(dpkg-query -W -f='${db:Status-Abbrev}' bmap-tools 2>/dev/null) || true
[ "$reference" = "ii " ] || fail "bmap-tools is not installed (scripts/install-deps.sh installs it)"
pass "no bmapkit package installed before the test; bmap-tools is"

# ---------------------------------------------------------------- build

git -C "$SRC" rev-parse --git-dir >/dev/null 2>&1 || fail "$SRC is not a git checkout"
TREE="$WORK/src/bmapkit"
mkdir -p "$TREE"
# Tracked and new files, not build folders or what .gitignore leaves out; a tracked
# file deleted in the working tree is not copied.
git -C "$SRC" ls-files -z -co --exclude-standard |
    (cd "$SRC" && while IFS= read -r -d '' f; do
        if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi
    done) |
    tar -C "$SRC" --null --no-recursion -T - -cf - | tar -C "$TREE" -xf -
[ -x "$TREE/debian/rules" ] || fail "$SRC has no executable debian/rules"

VERSION=$(dpkg-parsechangelog -l "$TREE/debian/changelog" -S Version)
UPSTREAM=${VERSION%-*}
MA=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
build_start=$SECONDS
if ! (cd "$TREE" && dpkg-buildpackage -b -us -uc) >"$WORK/build.log" 2>&1; then
    tail -n 40 "$WORK/build.log"
    fail "dpkg-buildpackage -b -us -uc failed (whole log above the tail: $WORK/build.log)"
fi
pass "dpkg-buildpackage -b -us -uc built $VERSION in $((SECONDS - build_start)) s"

OUT="$WORK/src"
CHANGES="$OUT/bmapkit_${VERSION}_$(dpkg-architecture -qDEB_HOST_ARCH).changes"
[ -f "$CHANGES" ] || fail "no $CHANGES after the build"

# The package files by package name; deb PKG: the file of PKG.
declare -A DEB
for d in "$OUT"/*.deb; do
    DEB[$(dpkg-deb -f "$d" Package)]=$d
done
deb() {
    echo "${DEB[$1]}"
}

# files PKG: its paths, without the leading "./", a symlink as "PATH -> TARGET";
# folders left out. (Outputs go through files and variables, not into "grep -q":
# under pipefail, a writer cut short by grep's early exit would fail the pipeline.)
files() {
    local list="$WORK/files.$1"
    if [ ! -f "$list" ]; then
        dpkg-deb -c "$(deb "$1")" >"$list.raw"
        awk '{ $1 = $2 = $3 = $4 = $5 = ""; sub(/^ +/, ""); sub(/^\.\//, ""); print }' \
            "$list.raw" | grep -v '/$' >"$list"
    fi
    cat "$list"
}

# has PKG LINE: PKG holds exactly LINE (as files prints it).
has() {
    local list
    list=$(files "$1")
    grep -qxF -- "$2" <<<"$list" || fail "$1 does not hold '$2'"
}

# ---------------------------------------------------------------- the packages

# The library's package is named after the soname of the shared object it holds.
lib_debs=()
for d in "$OUT"/*.deb; do
    list=$(dpkg-deb -c "$d")
    if grep -qE "usr/lib/$MA/libbmapkit\.so\.[0-9]+\.[0-9]+\.[0-9]+\$" <<<"$list"; then
        lib_debs+=("$d")
    fi
done
[ "${#lib_debs[@]}" -eq 1 ] || fail "expected one package with the shared library, found: ${lib_debs[*]}"
lib_deb=${lib_debs[0]}
dpkg-deb -x "$lib_deb" "$WORK/lib-x"
soname=$(objdump -p "$WORK"/lib-x/usr/lib/"$MA"/libbmapkit.so.*.*.* | awk '$1 == "SONAME" { print $2 }')
[[ $soname =~ ^libbmapkit\.so\.([0-9]+)$ ]] || fail "unexpected soname '$soname'"
LIB=libbmapkit${BASH_REMATCH[1]}
[ "$(dpkg-deb -f "$lib_deb" Package)" = "$LIB" ] ||
    fail "the shared library ($soname) is in $(dpkg-deb -f "$lib_deb" Package), not in $LIB"

got=$(printf '%s\n' "${!DEB[@]}" | grep -v -- '-dbgsym$' | sort | xargs)
want=$(printf '%s\n' bmapkit bmapkit-bmaptool libbmapkit-dev "$LIB" | sort | xargs)
[ "$got" = "$want" ] || fail "built packages are '$got', expected '$want'"
pass "packages: $got (the library's named after its soname $soname)"

if ! lintian --fail-on error "$CHANGES" >"$WORK/lintian.log" 2>&1; then
    cat "$WORK/lintian.log"
    fail "lintian reports errors on $(basename "$CHANGES")"
fi
grep -E '^[EW]: ' "$WORK/lintian.log" || true
pass "lintian: no errors ($(grep -c '^W: ' "$WORK/lintian.log" || true) warnings)"

# What goes where.
has "$LIB" "usr/lib/$MA/libbmapkit.so.$UPSTREAM"
has "$LIB" "usr/lib/$MA/$soname -> libbmapkit.so.$UPSTREAM"
has libbmapkit-dev "usr/lib/$MA/libbmapkit.so -> $soname"
has libbmapkit-dev "usr/lib/$MA/libbmapkit.a"
has libbmapkit-dev "usr/lib/$MA/pkgconfig/bmapkit.pc"
got=$(files libbmapkit-dev | sed -n 's|^usr/include/bmapkit/||p' | sort | xargs)
want=$(cd "$TREE/include/bmapkit" && printf '%s\n' *.h | sort | xargs)
[ "$got" = "$want" ] || fail "libbmapkit-dev has the headers '$got', the tree '$want'"
has bmapkit usr/bin/bmapkit
has bmapkit usr/share/man/man1/bmapkit.1.gz
has bmapkit-bmaptool "usr/bin/bmaptool -> bmapkit"
has bmapkit-bmaptool "usr/share/man/man1/bmaptool.1.gz -> bmapkit.1.gz"
list=$(files bmapkit)
if grep bmaptool <<<"$list"; then
    fail "bmapkit holds the bmaptool name (above), which bmap-tools has too"
fi
# Every path by the rule of the package it belongs in; what the build installed but no
# package took already failed the build (dh_missing).
for pkg in bmapkit bmapkit-bmaptool libbmapkit-dev "$LIB"; do
    for path in $(files "$pkg" | sed 's/ -> .*//'); do
        case $path in
            usr/share/doc/"$pkg"/* | usr/share/lintian/overrides/"$pkg") want=$pkg ;;
            usr/bin/bmaptool | usr/share/man/man1/bmaptool.* | \
                usr/share/bash-completion/completions/bmaptool) want=bmapkit-bmaptool ;;
            usr/bin/* | usr/share/man/man1/* | usr/share/bash-completion/completions/* | \
                lib/udev/rules.d/* | usr/lib/udev/rules.d/*) want=bmapkit ;;
            usr/include/* | usr/share/man/man3/* | usr/lib/"$MA"/libbmapkit.a | \
                usr/lib/"$MA"/libbmapkit.so | usr/lib/"$MA"/pkgconfig/*) want=libbmapkit-dev ;;
            usr/lib/"$MA"/libbmapkit.so.*) want=$LIB ;;
            *) fail "$pkg holds $path, which no rule of this test places" ;;
        esac
        [ "$want" = "$pkg" ] || fail "$path is in $pkg, it belongs in $want"
    done
done
all=$(for pkg in bmapkit bmapkit-bmaptool libbmapkit-dev "$LIB"; do files "$pkg"; done)
echo "among them: $(grep -c '^usr/share/bash-completion/' <<<"$all") completion," \
    "$(grep -cE '^(usr/)?lib/udev/rules\.d/' <<<"$all") udev and" \
    "$(grep -c '^usr/share/man/man3/' <<<"$all") man3 files"
pass "each file in its package: library, headers/.so/.a/.pc, command, bmaptool name"

# Relations.
field() { dpkg-deb -f "$(deb "$1")" "$2"; }
# relation PKG FIELD ITEM: ITEM is one of the comma-separated relations of FIELD.
relation() {
    local value
    value=$(field "$1" "$2")
    tr ',' '\n' <<<"$value" | sed 's/^ *//; s/ *$//' >"$WORK/.relations"
    grep -qxF -- "$3" "$WORK/.relations" || fail "$1: $2 is '$value', without '$3'"
}
relation bmapkit-bmaptool Depends "bmapkit (= $VERSION)"
relation bmapkit-bmaptool Provides bmap-tools
relation bmapkit-bmaptool Conflicts bmap-tools
relation bmapkit-bmaptool Replaces bmap-tools
relation libbmapkit-dev Depends "$LIB (= $VERSION)"
value=$(field bmapkit Depends)
grep -qE "(^|, )$LIB \(>= $UPSTREAM\)" <<<"$value" ||
    fail "bmapkit depends on '$value', not on $LIB (>= $UPSTREAM)"
value=$(field bmapkit Conflicts)
[ -z "$value" ] || fail "bmapkit conflicts with '$value'"
pass "bmapkit-bmaptool: Depends bmapkit (= $VERSION), Provides/Conflicts/Replaces bmap-tools"

# The -dev package pulls in the development files of everything its pkg-config file
# names for --cflags (Requires.private) and for static links (Libs.private).
dpkg-deb -x "$(deb libbmapkit-dev)" "$WORK/dev-x"
pc="$WORK/dev-x/usr/lib/$MA/pkgconfig/bmapkit.pc"
dev_depends=$(field libbmapkit-dev Depends | tr ',' '\n' | sed 's/^ *//; s/ .*//')
# owner PATH: the package that owns PATH, or nothing.
owner() {
    local o
    o=$(dpkg-query -S "$1" 2>/dev/null) || return 0
    o=$(grep -v '^diversion' <<<"$o" | sed -n '1s/: .*//p')
    echo "${o%%:*}"
}
checked=0
# Modules are separated by commas; a module may carry a version ("libcurl >= 7.84").
for mod in $(sed -n 's/^Requires\.private://p' "$pc" | tr ',' '\n' | awk '{ print $1 }'); do
    dir=$(pkg-config --variable=pcfiledir "$mod") || fail "pkg-config does not know $mod"
    pkg=$(owner "$dir/$mod.pc")
    [ -n "$pkg" ] || pkg=$(owner "$(readlink -f "$dir/$mod.pc")")
    [ -n "$pkg" ] || fail "no installed package owns $dir/$mod.pc"
    grep -qxF "$pkg" <<<"$dev_depends" ||
        fail "bmapkit.pc requires $mod (package $pkg), libbmapkit-dev does not depend on it"
    checked=$((checked + 1))
done
for flag in $(sed -n 's/^Libs\.private://p' "$pc"); do
    case $flag in
        -l*) ;;
        *) continue ;;
    esac
    # The development package is the one that owns the link lib*.so.
    pkg=
    for d in "/usr/lib/$MA" "/lib/$MA" /usr/lib /lib; do
        pkg=$(owner "$d/lib${flag#-l}.so")
        [ -z "$pkg" ] || break
    done
    [ -n "$pkg" ] || fail "bmapkit.pc links $flag, no installed package owns lib${flag#-l}.so"
    grep -qxF "$pkg" <<<"$dev_depends" ||
        fail "bmapkit.pc links $flag (package $pkg), libbmapkit-dev does not depend on it"
    checked=$((checked + 1))
done
[ "$checked" -gt 0 ] || fail "$pc names no private requirements, which the library has"
pass "libbmapkit-dev depends on the $checked packages its bmapkit.pc needs"

# The libraries libbmapkit loads when first needed (libcurl, libnbd, libarchive) are not
# linked, so dpkg-shlibdeps cannot see them: the package of each must be in Depends.
lib_depends=$(field "$LIB" Depends | tr ',' '\n' | sed 's/^ *//; s/ .*//')
loaded=$(strings "$WORK"/lib-x/usr/lib/"$MA"/libbmapkit.so.*.*.* |
    grep -xE 'lib(curl|nbd|archive)\.so\.[0-9]+' | sort -u)
[ "$(wc -l <<<"$loaded")" -eq 3 ] || fail "expected three run-time libraries in $soname, found: $loaded"
for so in $loaded; do
    pkg=
    for d in "/usr/lib/$MA" "/lib/$MA"; do
        pkg=$(owner "$d/$so")
        [ -z "$pkg" ] || break
    done
    [ -n "$pkg" ] || fail "$soname loads $so, which no installed package owns"
    grep -qxF "$pkg" <<<"$lib_depends" || fail "$soname loads $so (package $pkg), $LIB does not depend on it"
done
pass "$LIB depends on the packages of the libraries it loads: $(xargs <<<"$loaded")"

# ---------------------------------------------------------------- replacing bmap-tools

# apt's resolver, simulated (no root needed, nothing changes): the command alone sits
# next to bmap-tools; with the bmaptool name, bmap-tools goes and a package that needs
# bmap-tools is satisfied by bmapkit-bmaptool.
mkdir -p "$WORK/needs/DEBIAN"
cat >"$WORK/needs/DEBIAN/control" <<EOF
Package: bmapkit-test-needs-bmap-tools
Version: 1.0
Architecture: all
Maintainer: bmapkit tests <tests@bmapkit.invalid>
Depends: bmap-tools
Description: a package that needs bmap-tools
 Made by tests/pkg/debian.sh, never installed.
EOF
dpkg-deb --build "$WORK/needs" "$WORK/needs.deb" >/dev/null
simulate() {
    apt-get install --simulate --no-download "$@" >"$WORK/apt.log" 2>&1 || {
        cat "$WORK/apt.log"
        fail "apt-get install --simulate $* failed"
    }
}
simulate "$(deb "$LIB")" "$(deb bmapkit)"
if grep '^Remv ' "$WORK/apt.log"; then
    fail "installing bmapkit would remove the packages above"
fi
grep -q '^Inst bmapkit ' "$WORK/apt.log" || { cat "$WORK/apt.log"; fail "apt would not install bmapkit"; }
pass "apt: bmapkit installs next to bmap-tools"

simulate "$(deb "$LIB")" "$(deb bmapkit)" "$(deb bmapkit-bmaptool)" "$WORK/needs.deb"
for line in '^Remv bmap-tools ' '^Inst bmapkit-bmaptool ' '^Inst bmapkit-test-needs-bmap-tools '; do
    grep -q "$line" "$WORK/apt.log" || { cat "$WORK/apt.log"; fail "apt's plan lacks /$line/"; }
done
if grep -E '^(Inst|Remv) ' "$WORK/apt.log" | grep -vE ' (bmap-tools|bmapkit|bmapkit-bmaptool|bmapkit-test-needs-bmap-tools|'"$LIB"') '; then
    fail "apt's plan changes other packages (above)"
fi
if grep -q '^Inst bmap-tools ' "$WORK/apt.log"; then
    fail "apt would install bmap-tools next to bmapkit-bmaptool"
fi
pass "apt: bmapkit-bmaptool removes bmap-tools and satisfies a dependency on it"

# ---------------------------------------------------------------- installed

if [ "$(id -u)" -ne 0 ]; then
    echo "build, lintian and package checks took $((SECONDS - started)) s"
    skip "installing the packages needs root (the build, lintian and package checks passed)"
fi

# Purged at exit whatever happens; bmap-tools is left alone (the tests use it).
at_exit "dpkg --purge bmapkit libbmapkit-dev $LIB >/dev/null 2>&1"
if ! dpkg -i "$(deb "$LIB")" "$(deb libbmapkit-dev)" "$(deb bmapkit)" >"$WORK/dpkg.log" 2>&1; then
    cat "$WORK/dpkg.log"
    fail "dpkg -i of $LIB, libbmapkit-dev and bmapkit failed"
fi
for pkg in "$LIB" libbmapkit-dev bmapkit bmap-tools; do
    [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg")" = "ii " ] || fail "$pkg is not installed"
done
pass "dpkg -i $LIB libbmapkit-dev bmapkit: installed, bmap-tools still there"

# uses_installed_lib PROGRAM: PROGRAM loads the library of the package (through /lib or
# /usr/lib, the same folder on a merged /usr).
uses_installed_lib() {
    local libs path
    libs=$(ldd "$1")
    path=$(awk -v s="$soname" '$1 == s { print $3 }' <<<"$libs")
    [ -n "$path" ] && [ "$(readlink -f "$path")" = "$(readlink -f "/usr/lib/$MA/$soname")" ] ||
        fail "$1 loads '$path', not the installed /usr/lib/$MA/$soname"
}

run_ok /usr/bin/bmapkit --version
installed_version=$(cat "$WORK/.out")
run_ok "$BMAPKIT" --version
[ "$installed_version" = "$(cat "$WORK/.out")" ] ||
    fail "installed bmapkit says '$installed_version', the tree's '$(cat "$WORK/.out")'"
[ "$installed_version" = "bmapkit $UPSTREAM" ] ||
    fail "installed bmapkit says '$installed_version', the package is $VERSION"
uses_installed_lib /usr/bin/bmapkit
pass "/usr/bin/bmapkit --version: $installed_version, with /usr/lib/$MA/$soname"

cd "$WORK"
new_sparse img 8M
put_random img 0 65536
put_random img $((3 * 1024 * 1024)) 100000
put_random img $((8 * 1024 * 1024 - 4096)) 4096
run_ok /usr/bin/bmapkit create -o img.bmap img
check_bmap img.bmap img
run_ok /usr/bin/bmapkit copy --bmap img.bmap img copy.img
same_as_image img img.bmap copy.img
pass "installed bmapkit: create and copy of a sparse image, the copy equal and as sparse"

# A program built against the installed headers and library, through pkg-config.
[ "$(pkg-config --variable=pcfiledir bmapkit)" = "/usr/lib/$MA/pkgconfig" ] ||
    fail "pkg-config finds bmapkit.pc in '$(pkg-config --variable=pcfiledir bmapkit)'"
cat >prog.c <<'EOF'
#include <bmapkit/bmapkit.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* Print the library's version and the mapped blocks of the bmap ARGV[1]. */
int main(int argc, char **argv)
{
    char headers[32];
    struct bk_error err;
    snprintf(headers, sizeof headers, "%d.%d.%d", BK_VERSION_MAJOR, BK_VERSION_MINOR,
             BK_VERSION_PATCH);
    if (argc != 2 || strcmp(headers, bk_version()) != 0) {
        fprintf(stderr, "prog: headers %s, library %s\n", headers, bk_version());
        return 1;
    }
    struct bk_bmap *bmap = bk_bmap_parse_file(argv[1], &err);
    if (!bmap) {
        fprintf(stderr, "prog: %s\n", err.msg);
        return 1;
    }
    printf("%s %" PRIu64 "\n", bk_version(), bk_bmap_mapped_blocks(bmap));
    bk_bmap_free(bmap);
    return 0;
}
EOF
want="$UPSTREAM $(bmap_value img.bmap MappedBlocksCount)"
# shellcheck disable=SC2046
run_ok cc -std=c17 -Wall -Wextra -Werror prog.c $(pkg-config --cflags --libs bmapkit) -o prog
uses_installed_lib ./prog
run_ok ./prog img.bmap
[ "$(cat .out)" = "$want" ] || fail "prog printed '$(cat .out)', expected '$want'"
pass "a program built with pkg-config --cflags --libs bmapkit runs: $want"

# The static library with what pkg-config --static adds.
static_libs=$(pkg-config --static --libs bmapkit | sed 's/-lbmapkit\b//')
# shellcheck disable=SC2046,SC2086
run_ok cc -std=c17 -Wall -Wextra -Werror prog.c $(pkg-config --cflags bmapkit) \
    -Wl,-Bstatic -lbmapkit -Wl,-Bdynamic $static_libs -o prog-static
libs=$(ldd ./prog-static)
if grep -q libbmapkit <<<"$libs"; then
    fail "prog-static still loads the shared library"
fi
run_ok ./prog-static img.bmap
[ "$(cat .out)" = "$want" ] || fail "prog-static printed '$(cat .out)', expected '$want'"
pass "the same program linked with libbmapkit.a and pkg-config --static --libs runs"

# Gone again, and bmap-tools untouched.
if ! dpkg --purge bmapkit libbmapkit-dev "$LIB" >"$WORK/dpkg.log" 2>&1; then
    cat "$WORK/dpkg.log"
    fail "dpkg --purge failed"
fi
left=$(ours_installed)
[ -z "$left" ] || fail "still known to dpkg after the purge: $left"
for pkg in "$LIB" libbmapkit-dev bmapkit; do
    for path in $(files "$pkg" | sed 's/ -> .*//'); do
        [ ! -e "/$path" ] && [ ! -L "/$path" ] || fail "/$path of $pkg is still there after the purge"
    done
done
cache=$(ldconfig -p)
if grep libbmapkit <<<"$cache"; then
    fail "the dynamic linker's cache still lists the library (above)"
fi
[ "$(dpkg-query -W -f='${db:Status-Abbrev}' bmap-tools)" = "ii " ] || fail "bmap-tools is gone"
pass "purged: no bmapkit package or file left, bmap-tools still installed"
echo "the whole test took $((SECONDS - started)) s"
