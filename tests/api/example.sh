#!/bin/bash
# The README's library example compiles against the public headers alone, links with
# the built library, and flashes an image with the bmap found next to it.
# Usage: example.sh SOURCE_DIR BUILD_LIB_DIR BMAPKIT [SANITIZERS]
set -eu
top=$1 libdir=$2 bmapkit=$3 sanitize=${4:-none}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The first C block after "## Library".
awk '/^## Library/ {lib = 1} lib && /^```c$/ {on = 1; next} on && /^```$/ {exit} on {print}' \
    "$top/README.md" >"$tmp/flash.c"
[ -s "$tmp/flash.c" ] || { echo "FAIL: no C example under '## Library' in README.md"; exit 1; }
flags=()
# A library built with sanitizers needs their runtime in the program too.
[ "$sanitize" = none ] || flags+=("-fsanitize=$sanitize")
${CC:-cc} -std=c17 -Wall -Wextra -Werror "${flags[@]}" -I "$top/include" "$tmp/flash.c" \
    -L "$libdir" -lbmapkit -Wl,-rpath,"$libdir" -o "$tmp/flash"

cd "$tmp"
head -c 300000 /dev/urandom >disk.img
truncate -s 4M disk.img
printf 'tail' | dd of=disk.img bs=1 seek=$((3 * 1024 * 1024)) conv=notrunc status=none
"$bmapkit" create -q -o disk.img.bmap disk.img
./flash disk.img out.img >out.txt
cmp disk.img out.img || { echo "FAIL: the example's copy differs from the image"; exit 1; }
grep -q 'ranges verified' out.txt || { echo "FAIL: unexpected output: $(cat out.txt)"; exit 1; }
# And a failure: one clear line, non-zero.
if ./flash missing.img out2.img 2>err.txt; then
    echo "FAIL: the example succeeded on a missing image"; exit 1
fi
grep -q '^flash: no bmap found for missing.img' err.txt ||
    { echo "FAIL: unexpected error: $(cat err.txt)"; exit 1; }
echo "ok: the README's example builds, flashes ($(cat out.txt)) and fails cleanly"
