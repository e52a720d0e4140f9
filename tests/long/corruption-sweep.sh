#!/usr/bin/env bash
# Corruption sweep: images of every supported format with random byte flips, truncations and trailing garbage, copied with their bmap (and with --nobmap where the format checks its data) from a file, standard input and a pipe. No false success: every copy either exits 0 with the image's mapped data on the destination, or exits 1 or 3 with one error line and without the image's first MiB on the destination. (One more outcome is right: with --nobmap from standard input, a file whose magic number was damaged is no format any more and is copied as the raw bytes it is.)
#
# Usage (from the source tree, after building into build/):
#   tests/long/corruption-sweep.sh                      # quick: about a minute
#   SWEEP_SECONDS=1800 tests/long/corruption-sweep.sh   # long: half an hour
#   SWEEP_SEED=N ...                                    # the same cases again
#   SWEEP_REPLAY=FORMAT:SEED ...                        # one case, verbosely
# SWEEP_SECONDS (default 50) is the time spent on cases, shared by the formats in
# turn; SWEEP_CASES stops after that many cases instead; SWEEP_JOBS (default 2) copies
# run at once. A failing case prints the FORMAT:SEED that replays it.
here=$(cd "$(dirname "$0")" && pwd)
: "${TESTS_DIR:=$here/../cli}"
: "${BMAPKIT:=$here/../../build/programs/bmapkit}"
export TESTS_DIR BMAPKIT
# Thousands of copies: in memory when there is a tmpfs for it.
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
    export TMPDIR=/dev/shm
fi
source "$TESTS_DIR/lib.sh"

require_tools python3 gzip bzip2 pbzip2 xz zstd lz4 lzop zip tar split
cd "$WORK"

# The image, the same bytes every run: a first MiB of text with random bytes among it,
# a hole, half a MiB random and half text, a hole, and a partial last block.
python3 - <<'EOF'
import random
rng = random.Random(20240601)
POOL = [b"block ", b"map ", b"image\n", b"copy ", b"flash ", b"disk ", b"sector "]
POOL += [b"0x%04x " % rng.randrange(65536) for _ in range(500)]
def text(n):
    return b"".join(rng.choices(POOL, k=n // 4))[:n]
img = bytearray(768 * 4096 + 1000)
head = bytearray(text(1 << 20))
for _ in range(2000):
    head[rng.randrange(len(head))] = rng.randrange(256)
img[0:1 << 20] = head
img[384 * 4096:512 * 4096] = rng.randbytes(128 * 4096)
img[512 * 4096:640 * 4096] = text(128 * 4096)
img[768 * 4096:] = rng.randbytes(1000)
open("disk.img", "wb").write(img)
EOF
BS=4096 gen_bmap 2.0 disk.img disk.img.bmap sha256 "0-255 384-639 768-768"
touch -d @0 disk.img

# One file per format, made by the format's own tool, reproducibly.
cp disk.img raw.img
gzip -n -c disk.img >gz.img.gz
bzip2 -c disk.img >bz2.img.bz2
pbzip2 -b1 -c disk.img >bz2-streams.img.bz2
xz -c disk.img >xz.img.xz
xz -T2 --block-size=262144 -c disk.img >xz-blocks.img.xz
zstd -q -c disk.img >zst.img.zst
split -b 500000 disk.img part.
for p in part.*; do zstd -q -c "$p"; done >zst-frames.img.zst
rm -f part.*
lz4 -q -c disk.img >lz4.img.lz4
lzop -c <disk.img >lzo.img.lzo
TZ=UTC zip -q -X zip.img.zip disk.img
tar --mtime=@0 --owner=0 --group=0 --numeric-owner -cf tar.img.tar disk.img
[ "$(xz --robot -l xz-blocks.img.xz | awk '$1 == "totals" {print $3}')" -gt 4 ] ||
    fail "xz-blocks.img.xz does not have several blocks"
[ "$(zstd -lv zst-frames.img.zst 2>/dev/null | awk '/Zstandard Frames/ {print $4}')" -gt 4 ] ||
    fail "zst-frames.img.zst does not have several frames"
[ "$(grep -c -a -o 'BZh[1-9]1AY&SY' bz2-streams.img.bz2)" -gt 4 ] ||
    fail "bz2-streams.img.bz2 does not have several streams"

# The sweep itself.
cat >sweep.py <<'EOF'
import hashlib, os, random, subprocess, sys, threading, time

MIB = 1 << 20
bmapkit = os.environ["BMAPKIT"]
image = open("disk.img", "rb").read()
RANGES = [(0, 255), (384, 639), (768, 768)]
# FORMAT: (file, whether its stream checks the data it holds, so that --nobmap must
# catch damage too). Raw data and tar have no data checksum: with --nobmap a flipped
# byte is copied as it is, which is right.
FORMATS = {
    "raw": ("raw.img", False),
    "gz": ("gz.img.gz", True),
    "bz2": ("bz2.img.bz2", True),
    "bz2-streams": ("bz2-streams.img.bz2", True),
    "xz": ("xz.img.xz", True),
    "xz-blocks": ("xz-blocks.img.xz", True),
    "zst": ("zst.img.zst", True),
    "zst-frames": ("zst-frames.img.zst", True),
    "lz4": ("lz4.img.lz4", True),
    "lzo": ("lzo.img.lzo", True),
    "zip": ("zip.img.zip", True),
    "tar": ("tar.img.tar", False),
}
DATA = {name: open(f, "rb").read() for name, (f, _) in FORMATS.items()}


def position(rng, size):
    """Anywhere, but often in the first or last KiB, where headers and indexes are."""
    r = rng.random()
    if r < 0.25:
        return rng.randrange(min(size, 1024))
    if r < 0.5:
        return size - 1 - rng.randrange(min(size, 1024))
    return rng.randrange(size)


def plan(fmt, seed):
    """The case SEED of FMT: the damaged bytes, how they are read, with or without bmap."""
    rng = random.Random(f"{fmt}:{seed}")
    data = bytearray(DATA[fmt])
    kind = rng.choices(["flip", "truncate", "garbage"], [6, 3, 1])[0]
    if kind == "flip":
        spots = sorted({position(rng, len(data)) for _ in range(rng.choice([1, 1, 1, 2, 3, 8]))})
        for p in spots:
            data[p] ^= rng.randrange(1, 256)
        what = "flip at " + ",".join(map(str, spots))
    elif kind == "truncate":
        cut = position(rng, len(data))
        del data[cut:]
        what = f"cut at {cut}"
    else:
        extra = rng.choice([1, 4, 512, 70000])
        data += rng.randbytes(extra) if rng.random() < 0.5 else b"\0" * extra
        what = f"{extra} bytes of garbage after byte {len(DATA[fmt])}"
    how = rng.choices(["file", "stdin", "pipe"], [6, 2, 2])[0]
    nobmap = FORMATS[fmt][1] and rng.random() < 0.25
    return bytes(data), kind, what, how, nobmap


def run_case(fmt, seed, work, verbose=False):
    """Returns (kind, outcome, problem): problem is None or (category, text)."""
    data, kind, what, how, nobmap = plan(fmt, seed)
    src = os.path.join(work, "case" + FORMATS[fmt][0][FORMATS[fmt][0].index("."):])
    out = os.path.join(work, "out.img")
    with open(src, "wb") as f:
        f.write(data)
    if os.path.exists(out):
        os.unlink(out)
    args = [bmapkit, "copy", "-q"] + (["--nobmap"] if nobmap else ["--bmap", "disk.img.bmap"])
    args += [src if how == "file" else "-", out]
    desc = f"{what}, {how}, {'--nobmap' if nobmap else 'bmap'}"
    if verbose:
        print(f"case {fmt}:{seed}: {desc}\n  {' '.join(args)}" + ("" if how == "file" else f" < {src}"))
    try:
        if how == "pipe":
            feeder = subprocess.Popen(["cat", src], stdout=subprocess.PIPE)
            p = subprocess.run(args, stdin=feeder.stdout, capture_output=True, timeout=120)
            feeder.stdout.close()
            feeder.wait()
        else:
            stdin = open(src, "rb") if how == "stdin" else subprocess.DEVNULL
            p = subprocess.run(args, stdin=stdin, capture_output=True, timeout=120)
    except subprocess.TimeoutExpired:
        return kind, "hang", ("crash", f"{desc}: no exit within 120 s")
    err = p.stderr.decode(errors="replace")
    if verbose:
        print(f"  exit {p.returncode}\n  " + err.replace("\n", "\n  ").rstrip())
    got = open(out, "rb").read() if os.path.exists(out) else None
    if p.returncode == 0:
        # Damage to the magic number leaves bytes that no format claims: without a name
        # to go by (standard input) they are a raw image, copied as they are, which is
        # what --nobmap asks for. (With a name or a bmap the copy is refused.)
        if nobmap and how != "file" and got == data and got != image:
            return kind, "exit 0 as raw", None
        if got is None or len(got) != len(image):
            return kind, "exit 0", ("false success", f"{desc}: exit 0 but the destination has {None if got is None else len(got)} bytes, the image {len(image)}")
        if nobmap:
            if got != image:
                return kind, "exit 0", ("false success", f"{desc}: exit 0 but the destination differs from the image")
        else:
            for a, b in RANGES:
                if got[a * 4096:(b + 1) * 4096] != image[a * 4096:(b + 1) * 4096]:
                    return kind, "exit 0", ("false success", f"{desc}: exit 0 but blocks {a}-{b} differ from the image")
        if p.stdout or err:
            return kind, "exit 0", ("message", f"{desc}: exit 0 with output {p.stdout[:200]!r} {err[:300]!r}")
        return kind, "exit 0", None
    outcome = f"exit {p.returncode}"
    if p.returncode < 0 or p.returncode not in (1, 3):
        return kind, outcome, ("crash", f"{desc}: exit status {p.returncode} (a crash or a wrong status): {err[:500]!r}")
    lines = err.splitlines()
    if len(lines) != 1 or not lines[0].startswith("bmapkit: error: ") or p.stdout:
        return kind, outcome, ("message", f"{desc}: expected one error line, got {err[:500]!r} {p.stdout[:200]!r}")
    if "internal error" in lines[0]:
        return kind, outcome, ("message", f"{desc}: a library call failed without a message: {lines[0]}")
    if got is not None and got[:MIB] == image[:MIB]:
        return kind, outcome, ("head", f"{desc}: failed ({lines[0]}) with the image's first MiB on the destination")
    return kind, outcome, None


def main():
    replay = os.environ.get("SWEEP_REPLAY")
    if replay:
        fmt, seed = replay.rsplit(":", 1)
        if fmt not in FORMATS:
            sys.exit(f"unknown format {fmt}; one of {' '.join(FORMATS)}")
        os.makedirs("w0", exist_ok=True)
        _, outcome, problem = run_case(fmt, int(seed), "w0", verbose=True)
        print(f"{outcome}: {problem[0]}: {problem[1]}" if problem else f"{outcome}: as it should be")
        sys.exit(1 if problem else 0)

    seconds = float(os.environ.get("SWEEP_SECONDS", "50"))
    max_cases = int(os.environ.get("SWEEP_CASES", "0"))
    jobs = int(os.environ.get("SWEEP_JOBS", "2"))
    master = int(os.environ.get("SWEEP_SEED") or random.SystemRandom().randrange(1 << 31))
    print(f"sweep: SWEEP_SEED={master}, {seconds:g} s" + (f" or {max_cases} cases" if max_cases else "") + f", {jobs} jobs")
    rng = random.Random(master)
    order = list(FORMATS)
    lock = threading.Lock()
    counts = {}
    problems = []
    state = {"next": 0}
    deadline = time.monotonic() + seconds

    def take():
        with lock:
            i = state["next"]
            if (max_cases and i >= max_cases) or (not max_cases and time.monotonic() >= deadline):
                return None
            state["next"] = i + 1
            return order[i % len(order)], rng.randrange(1 << 40)

    def worker(n):
        work = f"w{n}"
        os.makedirs(work, exist_ok=True)
        while True:
            case = take()
            if case is None:
                return
            fmt, seed = case
            kind, outcome, problem = run_case(fmt, seed, work)
            with lock:
                c = counts.setdefault(fmt, {})
                key = kind + " " + (problem[0].upper() if problem else outcome)
                c[key] = c.get(key, 0) + 1
                if problem:
                    problems.append((fmt, seed, problem[0]))
                    print(f"FAILING CASE {fmt}:{seed} ({problem[0]}): {problem[1]}\n"
                          f"  replay: SWEEP_REPLAY={fmt}:{seed} {sys.argv[1]}", flush=True)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    total = 0
    print(f"{'format':<12} {'cases':>6}  outcomes (mutation, result: count)")
    for fmt in order:
        c = counts.get(fmt, {})
        n = sum(c.values())
        total += n
        print(f"{fmt:<12} {n:>6}  " + ", ".join(f"{k}: {v}" for k, v in sorted(c.items())))
    cat = {k: sum(1 for p in problems if p[2] == k) for k in ("false success", "crash", "message", "head")}
    print(f"sweep: {total} cases, {len(problems)} failing: {cat['false success']} false successes, "
          f"{cat['crash']} crashes, hangs or wrong statuses, {cat['message']} unclear messages, "
          f"{cat['head']} heads left after a failure; SWEEP_SEED={master}")
    if total < len(order):
        print("sweep: too few cases to cover every format")
        sys.exit(1)
    sys.exit(1 if problems else 0)


main()
EOF
python3 sweep.py "$0" || fail "the corruption sweep found failing cases (see above)"
pass "no false success, crash or unclear failure in the sweep"
