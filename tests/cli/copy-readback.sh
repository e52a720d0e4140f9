#!/usr/bin/env bash
# bmapkit copy --readback to regular files: ranges read back and counted, partial last block, JSON readback_checked.
source "$TESTS_DIR/lib.sh"

require_sparse_support "$WORK"
cd "$WORK"
[ "$BS" -eq 4096 ] || skip "the test images assume 4096-byte blocks, $WORK has $BS"
MiB=$((1024 * 1024))

# full.img: ranges inside and after the first MiB, the partial last block holding data.
new_sparse full.img $((MiB + 1000))
put_blocks full.img 0 2
put_blocks full.img 50 10
put_blocks full.img 200 20
put_random full.img $((256 * 4096)) 1000
# tail.img: a partial last block of a single range of one short block.
new_sparse tail.img $((3 * MiB + 100))
put_blocks tail.img 300 5
put_random tail.img $((768 * 4096)) 100

for img in full.img tail.img; do
    n=$(data_ranges "$img" 4096 | wc -w)
    for v in 2.0 1.1 1.3; do
        gen_bmap "$v" "$img" "$img.$v.bmap"
        [ "$(bmap_range_count "$img.$v.bmap")" -eq "$n" ] || fail "unexpected ranges in $img.$v.bmap"
        rm -f out.img
        run_ok "$BMAPKIT" copy --readback --bmap "$img.$v.bmap" "$img" out.img
        same_as_image "$img" "$img.$v.bmap" out.img
        grep -Eq "^bmapkit: read back $n range\(s\) from out\.img" .err ||
            { cat .err; fail "$img, bmap $v: no report of $n ranges read back"; }
        if grep -q '^bmapkit: warning:' .err; then cat .err; fail "$img: unexpected warning"; fi
        pass "$img, bmap $v: --readback reports $n range(s) read back"
    done
    rm -f out.img
    run_ok "$BMAPKIT" copy --readback --json-events ev.json --bmap "$img.2.0.bmap" "$img" out.img
    json_events_check ev.json "$img.2.0.bmap" ok >/dev/null || fail "$img: json events with --readback"
    got=$(python3 -c 'import json,sys; print([json.loads(l) for l in open(sys.argv[1])][-1]["readback_checked"])' ev.json)
    [ "$got" -eq "$n" ] || fail "$img: readback_checked $got, expected $n"
    got=$(python3 -c 'import json,sys; print([json.loads(l) for l in open(sys.argv[1])][-1]["readback_failed"])' ev.json)
    [ "$got" -eq 0 ] || fail "$img: readback_failed $got, expected 0"
    pass "$img: JSON done event has readback_checked $n, readback_failed 0"
    # Without --readback nothing is read back.
    rm -f out.img
    run_ok "$BMAPKIT" copy --json-events ev.json --bmap "$img.2.0.bmap" "$img" out.img
    got=$(python3 -c 'import json,sys; print([json.loads(l) for l in open(sys.argv[1])][-1]["readback_checked"])' ev.json)
    [ "$got" -eq 0 ] || fail "$img: readback_checked $got without --readback"
    pass "$img: without --readback, readback_checked is 0"
done

# --readback-retries implies read-back
rm -f out.img
run_ok "$BMAPKIT" copy --readback-retries 2 --bmap full.img.2.0.bmap full.img out.img
grep -q "^bmapkit: read back 4 range(s)" .err || { cat .err; fail "--readback-retries did not read back"; }
pass "--readback-retries 2: reads back"
expect_fail 2 'readback-retries' "$BMAPKIT" copy -q --readback-retries x --bmap full.img.2.0.bmap full.img out.img
pass "--readback-retries x: usage error"

# standard input: the checksums come from the bmap, so read-back works without re-reading the image
rm -f out.img
run_ok "$BMAPKIT" copy --readback --bmap full.img.2.0.bmap - out.img <full.img
grep -q "^bmapkit: read back 4 range(s)" .err || { cat .err; fail "--readback from stdin did not read back"; }
cmp full.img out.img || fail "--readback from stdin: copy differs"
pass "--readback with the image on standard input"

# read-back needs checksums: a 1.0 bmap cannot be read back, and must not be reported as checked
gen_bmap 1.0 full.img full.img.1.0.bmap
rm -f out.img
rc=0
"$BMAPKIT" copy --readback --bmap full.img.1.0.bmap full.img out.img >.out 2>.err || rc=$?
[ "$rc" -ne 0 ] || { cat .err; fail "--readback with a 1.0 bmap succeeded although nothing can be checked"; }
grep -q '^bmapkit: error: .*checksum' .err || { cat .err; fail "--readback with 1.0: no error about checksums"; }
pass "--readback with a bmap without checksums: error (exit $rc)"

# --nobmap: there is nothing to compare with: a usage error, never a false read-back claim
rm -f out.img
expect_fail 2 'nobmap' "$BMAPKIT" copy -q --readback --nobmap full.img out.img
[ ! -e out.img ] || fail "--readback --nobmap: out.img was created"
pass "--readback --nobmap: usage error, nothing created"
