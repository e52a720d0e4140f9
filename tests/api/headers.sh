#!/bin/bash
# Every public header compiles on its own, as C17 and as C++17, with the warnings the
# project builds with: a program may include any one of them first.
# Usage: headers.sh SOURCE_DIR
set -u
top=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cc=${CC:-cc}
cxx=${CXX:-c++}
if ! command -v "$cxx" >/dev/null; then
    echo "FAIL: no C++ compiler ($cxx); scripts/install-deps.sh installs g++"
    exit 1
fi
status=0 count=0
for h in "$top"/include/bmapkit/*.h; do
    name=$(basename "$h")
    printf '#include "bmapkit/%s"\n#include "bmapkit/%s"\nint main(void) { return 0; }\n' \
        "$name" "$name" >"$tmp/t.c"
    cp "$tmp/t.c" "$tmp/t.cc"
    if ! "$cc" -std=c17 -Wall -Wextra -Werror -Wpedantic -Wshadow -Wconversion \
        -Wstrict-prototypes -I "$top/include" -c "$tmp/t.c" -o "$tmp/t.o" 2>"$tmp/err"; then
        echo "FAIL: $name does not compile alone as C17:"; cat "$tmp/err"; status=1
    fi
    if ! "$cxx" -std=c++17 -Wall -Wextra -Werror -Wpedantic -Wshadow -Wconversion \
        -I "$top/include" -c "$tmp/t.cc" -o "$tmp/t.o" 2>"$tmp/err"; then
        echo "FAIL: $name does not compile alone as C++17:"; cat "$tmp/err"; status=1
    fi
    count=$((count + 1))
done
[ $count -ge 10 ] || { echo "FAIL: only $count public headers found"; status=1; }
[ $status -eq 0 ] && echo "ok: $count public headers compile alone as C17 and C++17"
exit $status
