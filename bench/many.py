#!/usr/bin/env python3
"""Flashing several boards at once: the W0 bench image (.xz) written by one bmapkit
command to 1 and to N nbdkit memory exports (Unix sockets), each behind its own rate
filter (35 MB/s by default, about what a USB-2 UMS board takes).  The bar: N
destinations in at most 1.2 x the time of one, since the image is read, decoded and
checked once and every destination has its own writer.

Each export is read back afterwards (at full speed: the rate is lifted through the
filter's rate file) and compared with the image.  No root needed.

    python3 bench/many.py [--bmapkit PATH] [--count 4] [--rate 280000000] [--runs 1]
                          [--output bench/RESULTS-many.md]

The workload comes from bench.py:
    python3 bench/bench.py --prepare-only --workloads W0 --formats xz
"""
import argparse
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
TOP = BENCH.parent
W0 = BENCH / "work" / "full" / "W0-bar"


def mapped_bytes(bmap):
    t = bmap.read_text()
    bs = int(re.search(r"<BlockSize>\s*(\d+)", t).group(1))
    n = int(re.search(r"<MappedBlocksCount>\s*(\d+)", t).group(1))
    return n * bs


class Export:
    """An nbdkit memory export of SIZE bytes behind the rate filter, on a Unix socket."""

    def __init__(self, work, name, size, rate):
        self.sock = work / f"{name}.sock"
        self.ratefile = work / f"{name}.rate"
        self.rate = rate
        self.ratefile.write_text(rate + "\n")
        self.proc = subprocess.Popen(
            ["nbdkit", "-f", "-U", str(self.sock), "--filter=rate", "memory", str(size),
             f"rate={rate}", f"rate-file={self.ratefile}"])
        for _ in range(200):
            if self.sock.exists():
                break
            time.sleep(0.05)
        else:
            sys.exit(f"nbdkit did not start on {self.sock}")
        self.uri = f"nbd+unix:///?socket={self.sock}"

    def unlimited(self, on):
        self.ratefile.write_text(("1000G" if on else self.rate) + "\n")

    def holds(self, image, size):
        """Whether the export holds IMAGE, streamed out and compared without a copy."""
        dump = subprocess.Popen(["nbdcopy", self.uri, "-"], stdout=subprocess.PIPE)
        r = subprocess.run(["cmp", "-s", "-n", str(size), str(image), "-"], stdin=dump.stdout)
        dump.stdout.close()
        dump.wait()
        return r.returncode == 0

    def close(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait()


def one_run(args, n, image, bmap, xz, size):
    """Time one command writing N exports; returns (seconds, all hold the image)."""
    with tempfile.TemporaryDirectory(prefix="bmapkit-many-") as d:
        exports = [Export(Path(d), f"e{i}", size, args.rate) for i in range(n)]
        try:
            cmd = [args.bmapkit, "-q", "copy", "--bmap", str(bmap), str(xz)]
            cmd += [e.uri for e in exports]
            t = time.monotonic()
            r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            secs = time.monotonic() - t
            if r.returncode != 0:
                sys.exit(f"failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr}")
            for e in exports:
                e.unlimited(True)
            time.sleep(1.5)  # the filter rereads its rate file about once a second
            ok = all(e.holds(image, size) for e in exports)
        finally:
            for e in exports:
                e.close()
    return secs, ok


def loadavg():
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bmapkit", default=str(TOP / "build-bench" / "programs" / "bmapkit"))
    p.add_argument("--count", type=int, default=4, help="destinations of the second row")
    p.add_argument("--rate", default="280000000",
                   help="each export's rate in bits per second (nbdkit's syntax; default "
                   "280,000,000: 35 MB/s)")
    p.add_argument("--runs", type=int, default=1, help="runs of each row (the median counts)")
    p.add_argument("--bar", type=float, default=1.2)
    p.add_argument("--format", choices=("xz", "raw"), default="xz",
                   help="the image as .xz (default; decoded once for all) or raw")
    p.add_argument("--output", default=str(BENCH / "RESULTS-many.md"))
    args = p.parse_args()
    image, bmap, xz = W0 / "image.img", W0 / "image.bmap", W0 / "image.img.xz"
    if args.format == "raw":
        xz = image
    for f in (image, bmap, xz):
        if not f.exists():
            sys.exit(f"{f} is missing: python3 bench/bench.py --prepare-only --workloads W0 "
                     "--formats xz")
    size = image.stat().st_size
    mapped = mapped_bytes(bmap)
    link = float(args.rate) / 8
    rows = {}
    loads = []
    for n in (1, args.count):
        times = []
        for _ in range(args.runs):
            loads.append(loadavg())
            secs, ok = one_run(args, n, image, bmap, xz, size)
            print(f"{n} destination(s): {secs:6.1f} s  "
                  f"{'content ok' if ok else 'CONTENT DIFFERS'}  (load {loads[-1]})", flush=True)
            times.append((secs, ok))
        rows[n] = (statistics.median(t for t, _ in times), all(ok for _, ok in times),
                   [t for t, _ in times])
    ratio = rows[args.count][0] / rows[1][0]
    met = ratio <= args.bar
    print(f"{args.count} / 1 = {ratio:.2f} (bar <= {args.bar}: {'met' if met else 'MISSED'})")
    rev = subprocess.run(["git", "-C", str(TOP), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True).stdout.strip()
    lines = [
        "# Several destinations from one image",
        "",
        f"`python3 bench/many.py` on {time.strftime('%Y-%m-%d')}, bmapkit {rev}, "
        f"{platform.node()}, {os.cpu_count()} CPUs, kernel {platform.release()}; load "
        f"average at the start of each run: {', '.join(loads)}.",
        "",
        f"Image: W0 (1 GiB, {mapped / 2**20:.0f} MiB mapped) "
        + (f"as `.xz` ({xz.stat().st_size / 2**20:.0f} MiB)." if args.format == "xz"
           else "raw.")
        + f" Each destination: an nbdkit memory export "
        f"on a Unix socket behind its own `--filter=rate rate={args.rate}` "
        f"({link / 1e6:.1f} MB/s, an emulated USB-2 board); one `bmapkit copy` writes all "
        f"of them. Limit of one: mapped bytes / rate = {mapped / link:.1f} s. Every export "
        "was read back and compared with the image.",
        "",
        "| destinations | time (s) | runs | content |",
        "|---|---|---|---|",
    ]
    for n, (secs, ok, all_times) in rows.items():
        lines.append(f"| {n} | {secs:.1f} | {', '.join(f'{t:.1f}' for t in all_times)} | "
                     f"{'same' if ok else 'DIFFERS'} |")
    lines += ["", f"{args.count} destinations / 1: **{ratio:.2f}** (bar <= {args.bar}: "
              f"{'met' if met else 'MISSED'})."]
    Path(args.output).write_text("\n".join(lines) + "\n")
    print("written", args.output)
    return 0 if met and all(r[1] for r in rows.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
