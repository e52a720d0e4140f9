#!/bin/sh
# Install what is missing, build, and run the whole test suite: a normal build, an
# AddressSanitizer + UndefinedBehaviorSanitizer build, the threaded tests under
# ThreadSanitizer, a short run of each fuzz target, and (as root) the install step and
# the demo on a fresh minimal Debian. Ends with one line "N passed, N failed[, N skipped]".
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

sh scripts/install-deps.sh all || { echo "0 passed, 1 failed"; exit 1; }

out="$top/build-test"
rm -rf "$out"
mkdir -p "$out"
status=0

# A build step that fails counts as one failed test.
build() {
    dir="$1"
    shift
    if ! "$@" >"$out/$dir.setup.log" 2>&1 || ! ninja -C "$out/$dir" >"$out/$dir.build.log" 2>&1; then
        echo "build $dir failed:"
        tail -n 30 "$out/$dir.setup.log" "$out/$dir.build.log" 2>/dev/null
        echo "build-$dir FAIL" >>"$out/extra.txt"
        status=1
        return 1
    fi
}

# run_suite DIR [env VAR=VALUE...]: the whole suite of one build.
run_suite() {
    dir="$1"
    shift
    echo "== tests: $dir"
    "$@" meson test -C "$out/$dir" --print-errorlogs --num-processes 2 || status=1
}

: >"$out/extra.txt"

build normal meson setup "$out/normal" -Dtests=enabled && run_suite normal

# The sanitizer build runs the slow tests in their quick form (BMAPKIT_TEST_QUICK: fewer
# ways of reading the same damaged file, fewer variants of one format, the ssh tests
# without the cases ssh fails alike, no remote block devices, a shorter corruption sweep):
# the normal build above ran them whole, and what the sanitizers look for is in the C
# paths the quick forms still take. BMAPKIT_TEST_QUICK=0 runs them whole here too.
build sanitize env ASAN_OPTIONS=detect_leaks=1 meson setup "$out/sanitize" -Dtests=enabled \
    -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug \
    -Dc_args=-fno-sanitize-recover=all &&
    run_suite sanitize env BMAPKIT_TEST_QUICK="${BMAPKIT_TEST_QUICK:-1}" \
        SWEEP_SECONDS="${SWEEP_SECONDS:-25}"

# ThreadSanitizer over the tests that drive the threaded parts: the copy pipeline, the
# parallel xz, zstd and bzip2 decoders, and bmap creation's hashing threads.
if build thread meson setup "$out/thread" -Dtests=enabled -Db_sanitize=thread \
    -Db_lundef=false -Dbuildtype=debugoptimized; then
    echo "== tests: thread (ThreadSanitizer)"
    TSAN_OPTIONS=halt_on_error=1 meson test -C "$out/thread" --print-errorlogs \
        --num-processes 2 copy-corrupt copy-verify-first copy-stream-gaps copy-readback \
        test_copy test_copy_faults decode-xz-indexed decode-zstd-indexed decode-bzip2 create-basic || status=1
fi

# Fuzz targets: built with clang, each run briefly from its seed corpus.
if build fuzz env CC=clang meson setup "$out/fuzz" -Dtests=disabled -Dfuzz=enabled \
    -Db_sanitize=address,undefined -Db_lundef=false \
    -Dc_args=-fsanitize=fuzzer-no-link -Dwerror=true; then
    for target in "$out"/fuzz/fuzz/fuzz_*; do
        [ -f "$target" ] && [ -x "$target" ] || continue
        name=$(basename "$target")
        corpus="$out/corpus-$name"
        mkdir -p "$corpus"
        cp "$top/fuzz/corpus/$name"/* "$corpus"/ 2>/dev/null
        echo "== fuzz: $name (${FUZZ_SECONDS:-30} s)"
        if "$target" -max_total_time="${FUZZ_SECONDS:-30}" -max_len=65536 "$corpus" \
            >"$out/$name.log" 2>&1; then
            echo "$name PASS" >>"$out/extra.txt"
        else
            tail -n 40 "$out/$name.log"
            echo "$name FAIL" >>"$out/extra.txt"
            status=1
        fi
    done
fi

# The README's quick start on a minimal Debian made on the spot: the install step and
# the demo (the whole suite there is scripts/check-fresh.sh without --quick).
if [ "$(id -u)" -eq 0 ]; then
    echo "== check-fresh --quick"
    if sh "$top/scripts/check-fresh.sh" --quick >"$out/check-fresh-quick.log" 2>&1; then
        echo "check-fresh-quick PASS" >>"$out/extra.txt"
        sed -n '/^== check-fresh: results/,$p' "$out/check-fresh-quick.log"
    else
        tail -n 40 "$out/check-fresh-quick.log"
        echo "check-fresh-quick FAIL" >>"$out/extra.txt"
        status=1
    fi
else
    echo "check-fresh-quick SKIP debootstrap, mount and chroot need root" >>"$out/extra.txt"
fi

python3 "$top/scripts/test-summary.py" "$out" || status=1
exit $status
