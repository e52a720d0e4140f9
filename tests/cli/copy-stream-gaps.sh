#!/usr/bin/env bash
# bmapkit copy from a pipe: large holes between ranges are read and skipped, a stream
# longer or shorter than the bmap's image size is refused.
source "$TESTS_DIR/lib.sh"

require_sparse_support "$WORK"
cd "$WORK"
MiB=$((1024 * 1024))

# Small ranges that share a ring slot, then holes much larger than a slot: skipping a
# hole must never use more scratch space than the slot has left.
new_sparse gaps.img $((96 * MiB + 1000))
put_random gaps.img 0 4096
put_random gaps.img $((2 * MiB)) $((5 * MiB))
put_random gaps.img $((7 * MiB + 8192)) 4096
put_random gaps.img $((39 * MiB)) $((MiB))
put_random gaps.img $((95 * MiB)) $((MiB + 1000))
run_ok "$BMAPKIT" create gaps.img -o gaps.bmap

for run in 1 2 3; do
    rm -f out.img
    cat gaps.img | run_ok "$BMAPKIT" copy -q --bmap gaps.bmap - out.img
    same_as_image gaps.img gaps.bmap out.img
done
pass "piped image with holes larger than a buffer copies exactly (3 runs)"

rm -f out.img
expect_fail 1 "longer than" "$BMAPKIT" copy -q --bmap gaps.bmap - out.img < <(cat gaps.img gaps.img)
pass "a stream longer than ImageSize is refused"

expect_fail 1 "ends at byte" "$BMAPKIT" copy -q --bmap gaps.bmap - out.img < <(head -c $((90 * MiB)) gaps.img)
pass "a stream shorter than ImageSize is refused"
