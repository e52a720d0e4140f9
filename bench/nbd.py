#!/usr/bin/env python3
"""Flashing over the network: the W0 bench image (.xz) written to an nbdkit memory
export behind the rate filter (100 Mbit/s by default), with and without a delay on
every write, by

  bmapkit   straight to the export (nbd+unix://),
  bmaptool  to the same export shown as a file by nbdfuse (the reference speaks no
            NBD), under a loop device, as bench.py's "slow" destination does,
  dd        xz -dc | dd to that loop device (every byte of the image),

and compared with the link's limit: mapped bytes / link rate.  Needs root (loop
devices, FUSE) for the bmaptool and dd rows; bmapkit's row runs without.  Each
result is checked: the export is read back (at full speed: the rate is lifted
through the filter's rate file) and compared with the image.

    python3 bench/nbd.py [--bmapkit PATH] [--rate 100000000] [--delay-ms 10]
                         [--tools bmapkit,bmaptool,dd] [--output bench/RESULTS-nbd.md]

The workload comes from bench.py:
    python3 bench/bench.py --prepare-only --workloads W0 --formats xz
"""
import argparse
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
TOP = BENCH.parent
W0 = BENCH / "work" / "full" / "W0-bar"
# nbdkit reads K, M and G as powers of 1024: 100M is 104,857,600 bits per second.
BITS = {"K": 2**10, "M": 2**20, "G": 2**30}


def rate_bits(text):
    return float(text[:-1]) * BITS[text[-1]] if text[-1] in BITS else float(text)


def mapped_bytes(bmap):
    import re
    t = bmap.read_text()
    bs = int(re.search(r"<BlockSize>\s*(\d+)", t).group(1))
    n = int(re.search(r"<MappedBlocksCount>\s*(\d+)", t).group(1))
    return n * bs


class Export:
    """An nbdkit memory export of SIZE bytes behind the rate (and delay) filter."""

    def __init__(self, work, size, rate, delay_ms):
        self.work = work
        self.sock = work / "nbd.sock"
        self.ratefile = work / "rate"
        self.ratefile.write_text(rate + "\n")
        args = ["nbdkit", "-f", "-U", str(self.sock), "--filter=rate"]
        if delay_ms:
            args += ["--filter=delay"]
        args += ["memory", str(size), f"rate={rate}", f"rate-file={self.ratefile}"]
        if delay_ms:
            args += [f"delay-write={delay_ms}ms"]
        self.proc = subprocess.Popen(args)
        for _ in range(100):
            if self.sock.exists():
                break
            time.sleep(0.05)
        self.uri = f"nbd+unix:///?socket={self.sock}"
        self.fuse = None
        self.loop = None

    def unlimited(self, on):
        # The filter rereads its rate file every second or so.
        self.ratefile.write_text(("1000G" if on else self.rate) + "\n")
        time.sleep(1.5)

    def as_loop(self):
        """The export as a block device: nbdfuse's file under a loop device."""
        mnt = self.work / "mnt"
        mnt.mkdir(exist_ok=True)
        self.fuse = subprocess.Popen(["nbdfuse", str(mnt / "disk"), self.uri])
        for _ in range(100):
            if (mnt / "disk").exists():
                break
            time.sleep(0.05)
        self.loop = subprocess.check_output(
            ["losetup", "-f", "--show", "--direct-io=on", str(mnt / "disk")], text=True).strip()
        return self.loop

    def close(self):
        if self.loop:
            subprocess.run(["losetup", "-d", self.loop])
        if self.fuse:
            subprocess.run(["fusermount3", "-u", str(self.work / "mnt")])
            self.fuse.wait()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait()


def run_timed(cmd, shell=False):
    t = time.monotonic()
    r = subprocess.run(cmd, shell=shell, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       text=True)
    if r.returncode != 0:
        sys.exit(f"failed ({r.returncode}): {cmd}\n{r.stderr}")
    return time.monotonic() - t


def check(export, image, size):
    """The export holds the image, read back at full speed."""
    export.unlimited(True)
    out = export.work / "readback.raw"
    subprocess.run(["nbdcopy", export.uri, str(out)], check=True)
    r = subprocess.run(["cmp", "-n", str(size), str(image), str(out)])
    out.unlink()
    export.unlimited(False)
    return r.returncode == 0


def one_row(tool, args, scenario_delay, image, bmap, xz, size):
    with tempfile.TemporaryDirectory(dir="/dev/shm", prefix="bmapkit-nbd-") as d:
        ex = Export(Path(d), size, args.rate, scenario_delay)
        ex.rate = args.rate
        try:
            if tool == "bmapkit":
                secs = run_timed([args.bmapkit, "-q", "copy", "--bmap", str(bmap), str(xz),
                                  ex.uri])
            elif tool == "bmaptool":
                dev = ex.as_loop()
                secs = run_timed(["bmaptool", "-q", "copy", "--bmap", str(bmap), str(xz), dev])
            else:
                dev = ex.as_loop()
                secs = run_timed(f"xz -dc -T2 '{xz}' | dd of={dev} bs=4M oflag=direct "
                                 "iflag=fullblock status=none conv=fsync", shell=True)
            ok = check(ex, image, size)
        finally:
            ex.close()
    return secs, ok


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bmapkit", default=str(TOP / "build-bench" / "programs" / "bmapkit"))
    p.add_argument("--rate", default="100000000",
                   help="link rate in bits per second (nbdkit's syntax; default 100 Mbit/s)")
    p.add_argument("--delay-ms", type=int, default=10, help="delay per write, second scenario")
    p.add_argument("--tools", default="bmapkit,bmaptool,dd")
    p.add_argument("--output", default=str(BENCH / "RESULTS-nbd.md"))
    args = p.parse_args()
    image, bmap, xz = W0 / "image.img", W0 / "image.bmap", W0 / "image.img.xz"
    for f in (image, bmap, xz):
        if not f.exists():
            sys.exit(f"{f} is missing: python3 bench/bench.py --prepare-only --workloads W0 "
                     "--formats xz")
    tools = args.tools.split(",")
    if os.getuid() != 0:
        tools = [t for t in tools if t == "bmapkit"]
        print("not root: only the bmapkit rows (loop devices and FUSE need root)")
    size = image.stat().st_size
    mapped = mapped_bytes(bmap)
    link = rate_bits(args.rate) / 8
    limit = mapped / link
    rows = []
    for delay, bar in ((0, 1.1), (args.delay_ms, 1.25)):
        for tool in tools:
            secs, ok = one_row(tool, args, delay, image, bmap, xz, size)
            ratio = secs / limit
            print(f"delay {delay} ms  {tool:9s} {secs:7.1f} s  {ratio:5.2f} x limit  "
                  f"{'content ok' if ok else 'CONTENT DIFFERS'}", flush=True)
            rows.append((delay, tool, secs, ratio, ok, bar if tool == "bmapkit" else None))
    rev = subprocess.run(["git", "-C", str(TOP), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True).stdout.strip()
    lines = [
        "# Flashing to an NBD export over a limited link",
        "",
        f"`python3 bench/nbd.py` on {time.strftime('%Y-%m-%d')}, bmapkit {rev}, "
        f"{platform.node()}, {os.cpu_count()} CPUs, kernel {platform.release()}.",
        "",
        f"Image: W0 (1 GiB, {mapped / 2**20:.0f} MiB mapped) as `.xz` "
        f"({xz.stat().st_size / 2**20:.0f} MiB). Export: nbdkit memory behind "
        f"`--filter=rate rate={args.rate}` ({link / 1e6:.1f} MB/s); with the delay, also "
        f"`--filter=delay delay-write=N ms`. Limit: mapped bytes / link rate = "
        f"{limit:.1f} s. bmapkit writes to the export itself; bmaptool and dd write to a "
        "loop device on nbdfuse's file of the same export. Each result was read back "
        "and compared with the image.",
        "",
        "| delay per write | tool | time (s) | x limit | bar | content |",
        "|---|---|---|---|---|---|",
    ]
    for delay, tool, secs, ratio, ok, bar in rows:
        verdict = "" if bar is None else (f"<= {bar} {'met' if ratio <= bar else 'MISSED'}")
        lines.append(f"| {delay} ms | {tool} | {secs:.1f} | {ratio:.2f} | {verdict} | "
                     f"{'same' if ok else 'DIFFERS'} |")
    Path(args.output).write_text("\n".join(lines) + "\n")
    print("written", args.output)
    return 0 if all(r[4] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
