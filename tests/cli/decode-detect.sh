#!/usr/bin/env bash
# Format detection by content: zstd and lz4 files that open with a skippable frame, from
# a file and from a pipe, and the legacy lz4 format refused by name.
source "$TESTS_DIR/lib.sh"

require_sparse_support "$WORK"
cd "$WORK"
require_tools zstd lz4 python3

new_sparse img $((2 * 1024 * 1024 + 1000))
put_random img 0 8192
put_random img $((1024 * 1024)) $((300 * 1024))
put_random img $((2 * 1024 * 1024)) 1000
run_ok "$BMAPKIT" create img -o img.bmap

# skippable FILE TOOL: FILE is a skippable frame followed by TOOL's compressed image.
skippable() {
    python3 - "$1" <<'PYEOF'
import struct, sys
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<II", 0x184D2A53, 7) + b"comment")
PYEOF
    "$2" -q -c img >>"$1"
}

for tool in zstd lz4; do
    skippable "skip.$tool.bin" "$tool"
    rm -f out.img
    run_ok "$BMAPKIT" copy --bmap img.bmap "skip.$tool.bin" out.img
    same_as_image img img.bmap out.img
    rm -f out.img
    run_ok "$BMAPKIT" copy --bmap img.bmap - out.img <"skip.$tool.bin"
    cmp img out.img || fail "$tool with a leading skippable frame, from a pipe: differs"
    pass "$tool file opening with a skippable frame: detected, from a file and a pipe"
done

lz4 -q -l -c img >legacy.lz4
expect_fail 1 'lz4.*legacy' "$BMAPKIT" copy --nobmap legacy.lz4 out.img
pass "legacy lz4 format: refused by name"
