#!/usr/bin/env python3
"""A/B: two bmapkit binaries copying the same inputs to tmpfs, interleaved.

Used to check that a change to the code costs no speed: each round runs both binaries
on every input, in alternating order, so drifts of the machine's load hit both alike.
Reports the median wall time of each, their ratio (new / old) and the spread, as
markdown. Inputs come from bench.py's workloads (run `bench.py --prepare-only` first).

    python3 bench/ab.py --old OLD/bmapkit --new build-bench/programs/bmapkit \\
        [--workload W0-bar] [--formats raw,gz,xz,zst] [--runs 10] [--output FILE]
"""
import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
WORK_DIR = BENCH_DIR / "work" / "full"
TMPFS_DIR = Path("/dev/shm") / f"bmapkit-ab-{os.getuid()}"
SUFFIX = {"raw": "", "gz": ".gz", "xz": ".xz", "zst": ".zst", "bz2": ".bz2", "lz4": ".lz4"}


def cpu_of_children():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def copy_once(binary, image, bmap, dest):
    """Wall and CPU time of one copy; the destination is removed before and after."""
    dest.unlink(missing_ok=True)
    cpu = cpu_of_children()
    start = time.monotonic()
    r = subprocess.run([binary, "copy", "-q", "--bmap", str(bmap), str(image), str(dest)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    took = time.monotonic() - start
    cpu = cpu_of_children() - cpu
    dest.unlink(missing_ok=True)
    if r.returncode != 0:
        sys.exit(f"ab: {binary} failed on {image}: {r.stderr.decode().strip()}")
    return took, cpu


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--old", required=True, help="the binary before the change")
    p.add_argument("--new", required=True, help="the binary after the change")
    p.add_argument("--workload", default="W0-bar", help="folder under bench/work/full")
    p.add_argument("--formats", default="raw,gz,xz,zst")
    p.add_argument("--runs", type=int, default=10, help="rounds (each runs both)")
    p.add_argument("--output", help="also write the markdown table here")
    a = p.parse_args()

    wdir = WORK_DIR / a.workload
    image, bmap = wdir / "image.img", wdir / "image.bmap"
    if not bmap.exists():
        sys.exit(f"ab: {bmap} is missing; run bench.py --prepare-only --workloads "
                 f"{a.workload.split('-')[0]} first")
    TMPFS_DIR.mkdir(parents=True, exist_ok=True)
    dest = TMPFS_DIR / "dest.img"
    formats = a.formats.split(",")
    times = {(f, who): [] for f in formats for who in ("old", "new")}
    cpus = {(f, who): [] for f in formats for who in ("old", "new")}
    bins = {"old": a.old, "new": a.new}
    for f in formats:  # one untimed round each, so both start with warm caches
        for who in ("old", "new"):
            copy_once(bins[who], Path(str(image) + SUFFIX[f]), bmap, dest)
    for r in range(a.runs):
        for f in formats:
            order = ("old", "new") if r % 2 == 0 else ("new", "old")
            for who in order:
                t, c = copy_once(bins[who], Path(str(image) + SUFFIX[f]), bmap, dest)
                times[(f, who)].append(t)
                cpus[(f, who)].append(c)
        print(f"ab: round {r + 1} of {a.runs} done", file=sys.stderr)

    lines = [
        f"# A/B: {a.workload} to tmpfs, {a.runs} interleaved rounds",
        "",
        f"- Date: {time.strftime('%Y-%m-%d %H:%M %Z')}; machine: {platform.node()}, "
        f"{os.cpu_count()} CPUs, kernel {platform.release()}",
        f"- old: `{a.old}`; new: `{a.new}`",
        "",
        "Wall time (median of the rounds) and CPU time (user + system, median):",
        "",
        "| input | old wall (s) | new wall (s) | new / old | old min-max | new min-max "
        "| old CPU (s) | new CPU (s) | new / old |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for f in formats:
        o, n = times[(f, "old")], times[(f, "new")]
        mo, mn = statistics.median(o), statistics.median(n)
        co, cn = statistics.median(cpus[(f, "old")]), statistics.median(cpus[(f, "new")])
        lines.append(f"| {f} | {mo:.3f} | {mn:.3f} | {mn / mo:.3f} | "
                     f"{min(o):.3f}-{max(o):.3f} | {min(n):.3f}-{max(n):.3f} "
                     f"| {co:.3f} | {cn:.3f} | {cn / co:.3f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if a.output:
        Path(a.output).write_text(text)


if __name__ == "__main__":
    main()
