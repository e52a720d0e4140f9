#!/bin/bash
# The exported symbols of libbmapkit.so are exactly the functions the public headers
# declare with BK_API, and exactly those the version script lists, all under its node.
# Usage: symbols.sh SOURCE_DIR LIBRARY
set -u
top=$1 lib=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

grep -h '^BK_API' "$top"/include/bmapkit/*.h |
    sed -E 's/^BK_API[^(]*[ *]([a-z_0-9]+)\(.*/\1/' | sort >"$tmp/declared"
sed -n '/global:/,/local:/p' "$top/lib/bmapkit.map" | grep -E '^\s+[a-z_0-9]+;' |
    tr -d ' ;' | sort >"$tmp/mapped"
nm -D --defined-only "$lib" | awk '$2 ~ /^[TtWwDdBbRr]$/ {print $3}' >"$tmp/raw"
grep -v '^BMAPKIT_' "$tmp/raw" | sed 's/@.*//' | sort >"$tmp/exported"

status=0
if [ "$(wc -l <"$tmp/declared")" -lt 10 ]; then
    echo "FAIL: found only $(wc -l <"$tmp/declared") BK_API declarations"; status=1
fi
if ! diff -u "$tmp/declared" "$tmp/exported" >"$tmp/d1"; then
    echo "FAIL: exported symbols differ from the BK_API declarations (- declared, + exported):"
    cat "$tmp/d1"; status=1
fi
if ! diff -u "$tmp/declared" "$tmp/mapped" >"$tmp/d2"; then
    echo "FAIL: lib/bmapkit.map differs from the BK_API declarations (- declared, + listed):"
    cat "$tmp/d2"; status=1
fi
nm -D --defined-only --with-symbol-versions "$lib" >"$tmp/versioned"
# Every exported function carries the version node.
if grep -E ' [TW] bk_' "$tmp/versioned" | grep -qv '@@BMAPKIT_'; then
    echo "FAIL: exported functions without the BMAPKIT_ version node:"
    grep -E ' [TW] bk_' "$tmp/versioned" | grep -v '@@BMAPKIT_'; status=1
fi
[ $status -eq 0 ] && echo "ok: $(wc -l <"$tmp/declared") public functions, exported and versioned"
exit $status
