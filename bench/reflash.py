#!/usr/bin/env python3
"""Re-flashing only what changed: the W0 bench image (.xz) written to an emulated USB
stick, once in full and once with --skip-unchanged over the previous image, after 5% of
its mapped data changed.

The stick is an nbdkit export of a file in /dev/shm behind stock filters:

  blocksize maxdata=256K   requests cut into pieces of at most 256 KiB,
  noparallel               one request at a time, as a stick's controller does,
  delay delay-write=D ms   a fixed cost per written piece (256 KiB / WRITE),
  rate rate=READ           every byte, read or written, at the read rate (a write's
                           bytes pass while it waits out its delay),

so a read goes at READ (35 MB/s by default: what a USB-2 link carries) and a 256 KiB
write takes 256 KiB / WRITE, where WRITE is READ divided by a factor (5 by default, the
emulated stick of the bar: a USB-2 stick or a U-Boot UMS board over USB 2 reads at the
link's speed and writes several times slower; each factor is a row). nbdkit 1.32's rate
filter has one rate for reads and writes (their buckets are apart, the rate is the
same), so the write rate comes from the delay; a small write costs as much as 256 KiB,
as on a real stick, whose small writes are dear too.

    python3 bench/reflash.py [--bmapkit PATH] [--read-mbps 35] [--read-factors 5,3]
                             [--runs 3] [--scatter few|all]
                             [--output bench/RESULTS-reflash.md]

The workload comes from bench.py:
    python3 bench/bench.py --prepare-only --workloads W0 --formats xz
"""
import argparse
import json
import os
import platform
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
TOP = BENCH.parent
W0 = BENCH / "work" / "full" / "W0-bar"
PIECE = 256 << 10


def ranges_of(bmap):
    t = bmap.read_text()
    bs = int(re.search(r"<BlockSize>\s*(\d+)", t).group(1))
    out = []
    for a, b in re.findall(r">\s*(\d+)(?:\s*-\s*(\d+))?\s*</Range>", t):
        out.append((int(a) * bs, (int(b or a) + 1) * bs))
    return out


def change(image, ranges, share, scatter, seed):
    """Overwrite SHARE of the mapped bytes with random data, in pieces of 16 KiB to
    1 MiB: in ranges picked at random that hold four times as much ("few"), or over
    all ranges ("all"). Returns (bytes changed, ranges touched)."""
    rng = random.Random(seed)
    mapped = sum(e - s for s, e in ranges)
    want = int(mapped * share)
    pool = list(ranges)
    if scatter == "few":
        rng.shuffle(pool)
        chosen, held = [], 0
        for r in pool:
            chosen.append(r)
            held += r[1] - r[0]
            if held >= 4 * want:
                break
        pool = chosen
    covered = set()
    touched = set()
    fd = os.open(image, os.O_WRONLY)
    weights = [e - s for s, e in pool]
    while len(covered) * 4096 < want:
        s, e = rng.choices(pool, weights)[0]
        n = rng.randrange(4, 257) * 4096
        n = min(n, e - s)
        o = s + rng.randrange(0, (e - s - n) // 4096 + 1) * 4096
        os.pwrite(fd, rng.randbytes(n), o)
        covered.update(range(o // 4096, (o + n) // 4096))
        touched.add(s)
    os.close(fd)
    return len(covered) * 4096, len(touched)


class Stick:
    """nbdkit over the file DISK, with the filters of the module's doc."""

    def __init__(self, work, disk, read_rate, write_rate):
        self.sock = work / f"stick-{time.monotonic_ns()}.sock"
        # The rate filter's bucket fills while a write waits out its delay, so the
        # delay alone sets a piece's time (measured: subtracting the transfer time
        # gave writes 20% above the rate asked for).
        delay = PIECE / write_rate
        self.delay_ms = round(delay * 1000)
        args = ["nbdkit", "-f", "-U", str(self.sock), "--filter=blocksize",
                "--filter=noparallel", "--filter=delay", "--filter=rate",
                "file", str(disk), f"maxdata={PIECE}", f"delay-write={self.delay_ms}ms",
                f"rate={int(read_rate * 8)}", "burstiness=0.1"]
        self.proc = subprocess.Popen(args)
        for _ in range(200):
            if self.sock.exists():
                break
            time.sleep(0.05)
        self.uri = f"nbd+unix:///?socket={self.sock}"

    def close(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait()
        if self.sock.exists():
            self.sock.unlink()


def timed(cmd):
    t = time.monotonic()
    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        sys.exit(f"failed ({r.returncode}): {' '.join(map(str, cmd))}\n{r.stderr}")
    return time.monotonic() - t


def one_run(args, work, start_image, new, bmap, xz, read_rate, write_rate, skip):
    disk = work / "stick.img"
    if disk.exists():
        disk.unlink()
    if start_image:
        subprocess.run(["cp", "--sparse=always", str(start_image), str(disk)], check=True)
    else:
        with open(disk, "wb") as f:
            f.truncate(new.stat().st_size)
    stick = Stick(work, disk, read_rate, write_rate)
    events = work / "events.json"
    try:
        cmd = [args.bmapkit, "-q", "copy", "--json-events", str(events), "--bmap", str(bmap),
               str(xz), stick.uri]
        if skip:
            cmd.insert(3, "--skip-unchanged")
        secs = timed(cmd)
    finally:
        stick.close()
    done = json.loads(events.read_text().splitlines()[-1])
    ok = subprocess.run(["cmp", str(new), str(disk)]).returncode == 0
    return secs, done, ok, stick.delay_ms


def stick_rates(work, size, read_rate, write_rate):
    """What the stick does with nbdcopy: 128 MiB written, then read."""
    disk = work / "probe.img"
    with open(disk, "wb") as f:
        f.truncate(size)
    src = work / "probe.src"
    with open(src, "wb") as f:
        f.write(os.urandom(1 << 20) * 128)
    stick = Stick(work, disk, read_rate, write_rate)
    try:
        t = time.monotonic()
        subprocess.run(["nbdcopy", "--connections=1", "--flush", str(src), stick.uri],
                       check=True)
        w = (128 << 20) / (time.monotonic() - t)
        t = time.monotonic()
        # Every byte, holes too: a stick has no holes to skip.
        subprocess.run(["nbdcopy", "--connections=1", "--no-extents", stick.uri, "null:"],
                       check=True)
        r = size / (time.monotonic() - t)
    finally:
        stick.close()
        disk.unlink()
        src.unlink()
    return w, r


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bmapkit", default=str(TOP / "build-bench" / "programs" / "bmapkit"))
    p.add_argument("--w0", default=str(W0), help="folder of bench.py's W0 workload")
    p.add_argument("--read-mbps", type=float, default=35.0, help="read rate, MB/s")
    p.add_argument("--read-factors", default="5,3", help="read rate / write rate, each a row")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--share", type=float, default=0.05, help="share of mapped bytes changed")
    p.add_argument("--scatter", default="few", choices=["few", "all"])
    p.add_argument("--xz-level", default="-6")
    p.add_argument("--work", default="/dev/shm/bmapkit-reflash",
                   help="the changed image and its .xz, kept for the next run (RAM)")
    p.add_argument("--output", default=str(BENCH / "RESULTS-reflash.md"))
    args = p.parse_args()
    w0 = Path(args.w0)
    image, bmap0 = w0 / "image.img", w0 / "image.bmap"
    for f in (image, bmap0):
        if not f.exists():
            sys.exit(f"{f} is missing: python3 bench/bench.py --prepare-only --workloads W0")
    load0 = os.getloadavg()
    read_rate = args.read_mbps * 1e6
    if True:
        work = Path(args.work)
        work.mkdir(exist_ok=True)
        new = work / "new.img"
        bmap = work / "new.bmap"
        xz = work / "new.img.xz"
        stamp = work / "stamp"
        ranges = ranges_of(bmap0)
        mapped = sum(e - s for s, e in ranges)
        params = json.dumps([str(image), image.stat().st_mtime_ns, args.share, args.scatter,
                             args.xz_level])
        if stamp.exists() and stamp.read_text().split("\n")[0] == params:
            changed, touched = map(int, stamp.read_text().split("\n")[1].split())
            print("reusing", work, flush=True)
        else:
            stamp.unlink(missing_ok=True)
            subprocess.run(["cp", "--sparse=always", str(image), str(new)], check=True)
            changed, touched = change(new, ranges, args.share, args.scatter, 18)
            subprocess.run([args.bmapkit, "-q", "create", "-o", str(bmap), str(new)],
                           check=True)
            t = time.monotonic()
            with open(xz, "wb") as f:
                subprocess.run(["xz", "-T2", args.xz_level, "-c", str(new)], stdout=f,
                               check=True)
            print(f"xz in {time.monotonic() - t:.0f} s", flush=True)
            stamp.write_text(f"{params}\n{changed} {touched}\n")
        print(f"changed {changed / 2**20:.1f} MiB of {mapped / 2**20:.0f} MiB mapped in "
              f"{touched} of {len(ranges)} ranges; xz {xz.stat().st_size / 2**20:.0f} MiB",
              flush=True)
        new_ranges = len(ranges_of(bmap))
        rows = []
        for factor in [float(x) for x in args.read_factors.split(",")]:
            write_rate = read_rate / factor
            wr, rr = stick_rates(work, 256 << 20, read_rate, write_rate)
            print(f"read {factor:g}x: stick writes {wr / 1e6:.1f} MB/s, reads "
                  f"{rr / 1e6:.1f} MB/s", flush=True)
            full, re_, info = [], [], None
            for run in range(args.runs):
                s1, d1, ok1, delay = one_run(args, work, None, new, bmap, xz, read_rate,
                                             write_rate, False)
                s2, d2, ok2, _ = one_run(args, work, image, new, bmap, xz, read_rate,
                                         write_rate, True)
                if not (ok1 and ok2):
                    sys.exit("the stick does not hold the new image after a run")
                full.append(s1)
                re_.append(s2)
                info = (d2, delay)
                print(f"  run {run + 1}: full {s1:.1f} s, re-flash {s2:.1f} s "
                      f"({s2 / s1:.2f}), wrote {d2['bytes_written'] / 2**20:.1f} MiB, "
                      f"skipped {d2['ranges_skipped']} ranges", flush=True)
            mf, mr = statistics.median(full), statistics.median(re_)
            rows.append((factor, wr, rr, info[1], full, re_, mf, mr, info[0]))
    load1 = os.getloadavg()
    rev = subprocess.run(["git", "-C", str(TOP), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True).stdout.strip()
    lines = [
        "# Re-flashing only what changed",
        "",
        f"`python3 bench/reflash.py --read-mbps {args.read_mbps:g} --read-factors "
        f"{args.read_factors} --runs {args.runs} --xz-level {args.xz_level} "
        f"--scatter {args.scatter}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"bmapkit {rev}, {platform.node()}, {os.cpu_count()} CPUs, kernel "
        f"{platform.release()}. Load average {load0[0]:.1f} at the start, {load1[0]:.1f} "
        "at the end.",
        "",
        f"Image: W0 (1 GiB, {mapped / 2**20:.0f} MiB mapped in {len(ranges)} ranges) with "
        f"{changed / 2**20:.1f} MiB ({100 * changed / mapped:.1f}% of the mapped bytes) "
        f"overwritten in pieces of 16 KiB to 1 MiB in {touched} ranges, as `.xz` "
        f"(`xz -T2 {args.xz_level}`). Full flash: `bmapkit copy` of it to an empty stick. "
        "Re-flash: `bmapkit copy --skip-unchanged` of it to a stick holding the W0 image. "
        "Each result was compared with the image.",
        "",
        f"Stick: nbdkit `file` (in /dev/shm) behind `blocksize maxdata={PIECE >> 10}K`, "
        "`noparallel`, `delay delay-write=D` and `rate rate=READ burstiness=0.1`: "
        f"reads at {args.read_mbps:g} MB/s, written pieces of 256 KiB at that rate divided "
        "by the factor of the row (see the script's doc). Rates as nbdcopy sees them are "
        "in the table.",
        "",
        "Floors, from the measured rates: a full flash cannot take less than mapped / write "
        "rate; a re-flash that reads the stick, not less than mapped / read rate + written "
        "/ write rate. Their ratio is the best any re-flash that reads the device can do.",
        "",
        "| read / write | stick write / read, measured (MB/s) | delay per piece | "
        "full flash (s) | re-flash (s) | ratio | bar <= 0.3 | floors: full, re-flash (s) | "
        "ratio of floors | written by the re-flash | ranges skipped |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for factor, wr, rr, delay, full, re_, mf, mr, d in rows:
        ratio = mr / mf
        floor_full = mapped / wr
        floor_re = mapped / rr + d["bytes_written"] / wr
        lines.append(
            f"| {factor:g} | {wr / 1e6:.1f} / {rr / 1e6:.1f} | {delay} ms | "
            f"{mf:.1f} ({', '.join(f'{x:.1f}' for x in full)}) | "
            f"{mr:.1f} ({', '.join(f'{x:.1f}' for x in re_)}) | {ratio:.2f} | "
            f"{'met' if ratio <= 0.3 else 'missed'} | {floor_full:.1f}, {floor_re:.1f} | "
            f"{floor_re / floor_full:.2f} | {d['bytes_written'] / 2**20:.1f} MiB | "
            f"{d['ranges_skipped']} of {new_ranges} |")
    Path(args.output).write_text("\n".join(lines) + "\n")
    print("written", args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
