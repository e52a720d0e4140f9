#!/usr/bin/env python3
"""Flashing from an HTTP server: the W0 bench image (1 GiB, 512 MiB mapped), raw and
.xz, served by an nginx this script starts on a free 127.0.0.1 port, copied to a file
on tmpfs by

  bmapkit   the URL of the image, --bmap the URL of its bmap,
  bmaptool  the same URLs (the reference reads http URLs too),
  curl|dd   curl of the image into dd (curl | xz -dc | dd for the .xz): every byte,
  local     bmapkit from the local file (a control: what the network adds),

with the median time of a few runs, the bytes nginx sent for the image (from its access
log) over the mapped bytes, and bmapkit's time over the reference's. Each copy is
compared with the image.

    python3 bench/http.py [--bmapkit PATH] [--runs 3] [--quick] [--w0 DIR]
                          [--formats raw,xz] [--tools bmapkit,bmaptool,curl,local]
                          [--output bench/RESULTS-http.md]

The workload comes from bench.py:
    python3 bench/bench.py --prepare-only --workloads W0 --formats xz
"""
import argparse
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
TOP = BENCH.parent
W0 = BENCH / "work" / "full" / "W0-bar"
# The issue-15 bars: raw bytes served / mapped, and bmapkit time / reference time.
BAR_BYTES = 1.01
BAR_TIME = 0.6


def mapped_bytes(bmap):
    t = bmap.read_text()
    bs = int(re.search(r"<BlockSize>\s*(\d+)", t).group(1))
    n = int(re.search(r"<MappedBlocksCount>\s*(\d+)", t).group(1))
    return n * bs


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Server:
    """nginx in the foreground on 127.0.0.1:PORT serving ROOT, logging bytes sent."""

    def __init__(self, work, root):
        self.work = work
        self.root = root
        self.port = free_port()
        self.log = work / "access.log"
        conf = work / "nginx.conf"
        (work / "tmp").mkdir()
        conf.write_text(f"""daemon off;
master_process off;
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/error.log;
events {{ worker_connections 256; }}
http {{
    log_format sent '$uri $status $bytes_sent';
    access_log {self.log} sent;
    client_body_temp_path {work}/tmp;
    default_type application/octet-stream;
    sendfile on;
    server {{ listen 127.0.0.1:{self.port}; root {root}; }}
}}
""")
        self.proc = subprocess.Popen(["nginx", "-p", str(work), "-e", str(work / "error.log"),
                                      "-c", str(conf)])
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        self.close()
        sys.exit(f"nginx did not start: {(work / 'error.log').read_text()}")

    def url(self, name):
        return f"http://127.0.0.1:{self.port}/{name}"

    def clear(self):
        self.log.write_text("")

    def sent(self, name):
        total = 0
        for line in self.log.read_text().splitlines():
            f = line.split()
            if len(f) == 3 and f[0] == "/" + name:
                total += int(f[2])
        return total

    def close(self):
        self.proc.terminate()
        self.proc.wait()


def command(tool, fmt, srv, bmapkit, dest):
    name = "image.img" + (".xz" if fmt == "xz" else "")
    bmap = srv.url("image.bmap")
    if tool == "bmapkit":
        return [bmapkit, "-q", "copy", "--bmap", bmap, srv.url(name), dest], False
    if tool == "bmaptool":
        return ["bmaptool", "-q", "copy", "--bmap", bmap, srv.url(name), dest], False
    if tool == "local":
        return [bmapkit, "-q", "copy", "--bmap", str(srv.root / "image.bmap"),
                str(srv.root / name), dest], False
    unpack = " | xz -dc -T2" if fmt == "xz" else ""
    return (f"curl -sf '{srv.url(name)}'{unpack} | dd of='{dest}' bs=4M iflag=fullblock "
            "status=none", True)


def one_run(tool, fmt, srv, args, image, size):
    """Seconds, bytes sent for the image, and whether the copy holds the image."""
    name = "image.img" + (".xz" if fmt == "xz" else "")
    with tempfile.TemporaryDirectory(dir="/dev/shm", prefix="bmapkit-http-") as d:
        dest = str(Path(d) / "out.img")
        cmd, shell = command(tool, fmt, srv, args.bmapkit, dest)
        srv.clear()
        t = time.monotonic()
        r = subprocess.run(cmd, shell=shell, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           text=True, timeout=args.timeout)
        secs = time.monotonic() - t
        if r.returncode != 0:
            sys.exit(f"failed ({r.returncode}): {cmd}\n{r.stderr}")
        time.sleep(0.1)  # the last log lines
        sent = srv.sent(name)
        ok = subprocess.run(["cmp", "-n", str(size), str(image), dest]).returncode == 0
    return secs, sent, ok


def machine():
    load = os.getloadavg()
    return (f"{platform.node()}, {os.cpu_count()} CPUs, kernel {platform.release()}, "
            f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} at the start")


def table(rows, mapped):
    lines = ["| input | tool | median time (s) | runs (s) | bytes served / mapped (last run) | "
             "x reference | bars | content |", "|---|---|---|---|---|---|---|---|"]
    ref = {fmt: statistics.median(t) for fmt, tool, t, s, ok in rows if tool == "bmaptool"}
    for fmt, tool, times, sent, ok in rows:
        med = statistics.median(times)
        ratio = med / ref[fmt] if fmt in ref else None
        bars = []
        if tool == "bmapkit" and ratio is not None:
            bars.append(f"time <= {BAR_TIME}: {'met' if ratio <= BAR_TIME else 'MISSED'}")
        if tool == "bmapkit" and fmt == "raw":
            met = sent / mapped <= BAR_BYTES
            bars.append(f"bytes <= {BAR_BYTES}: {'met' if met else 'MISSED'}")
        lines.append(f"| {fmt} | {tool} | {med:.2f} | {' '.join(f'{x:.2f}' for x in times)} | "
                     f"{sent / mapped:.4f} | {'' if ratio is None else f'{ratio:.2f}'} | "
                     f"{'; '.join(bars)} | {'same' if ok else 'DIFFERS'} |")
    return lines


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bmapkit", default=str(TOP / "build-bench" / "programs" / "bmapkit"))
    p.add_argument("--w0", default=str(W0), help="the W0 workload's folder")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="one run of each row")
    p.add_argument("--formats", default="raw,xz")
    p.add_argument("--tools", default="bmapkit,bmaptool,curl,local")
    p.add_argument("--timeout", type=int, default=900)
    p.add_argument("--output", default=None,
                   help="results file (default bench/RESULTS-http.md; quick: "
                        "bench/work/RESULTS-http-quick.md)")
    args = p.parse_args()
    runs = 1 if args.quick else args.runs
    out = Path(args.output or (BENCH / "work" / "RESULTS-http-quick.md" if args.quick
                               else BENCH / "RESULTS-http.md"))
    w0 = Path(args.w0)
    image, bmap, xz = w0 / "image.img", w0 / "image.bmap", w0 / "image.img.xz"
    for f in (image, bmap, xz):
        if not f.exists():
            sys.exit(f"{f} is missing: python3 bench/bench.py --prepare-only --workloads W0 "
                     "--formats xz")
    for tool in ("nginx", "curl", "bmaptool", "xz", "dd"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is needed")
    size, mapped = image.stat().st_size, mapped_bytes(bmap)
    started = machine()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bmapkit-http-srv-") as d:
        work = Path(d)
        root = work / "www"
        root.mkdir()
        for f in (image, bmap, xz):
            (root / f.name).symlink_to(f.resolve())
        srv = Server(work, root)
        try:
            for fmt in args.formats.split(","):
                for tool in args.tools.split(","):
                    times, sent, ok = [], 0, True
                    for _ in range(runs):
                        secs, sent, good = one_run(tool, fmt, srv, args, image, size)
                        times.append(secs)
                        ok = ok and good
                        print(f"{fmt:4s} {tool:9s} {secs:7.2f} s  {sent / mapped:.4f} x mapped"
                              f"  {'same' if good else 'DIFFERS'}", flush=True)
                    rows.append((fmt, tool, times, sent, ok))
        finally:
            srv.close()
    rev = subprocess.run(["git", "-C", str(TOP), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True).stdout.strip()
    if subprocess.run(["git", "-C", str(TOP), "status", "--porcelain", "--untracked-files=no"],
                      capture_output=True, text=True).stdout.strip():
        rev += " with changes not committed"
    lines = [
        "# Flashing from an HTTP server on 127.0.0.1",
        "",
        f"`python3 bench/http.py{' --quick' if args.quick else ''}` on "
        f"{time.strftime('%Y-%m-%d %H:%M')}, bmapkit {rev}, {started}.",
        "",
        f"Image: W0 ({size / 2**30:.0f} GiB, {mapped / 2**20:.0f} MiB mapped), raw and `.xz` "
        f"({xz.stat().st_size / 2**20:.0f} MiB), served by nginx (sendfile) on 127.0.0.1; "
        f"copied to a file on tmpfs; {runs} run(s) per row. Bytes served: what nginx sent "
        "for the image file (its access log), over the mapped bytes; the bmap is fetched "
        "by every tool and not counted (0 for the local row). Bars (issue 15): raw bytes served <= "
        f"{BAR_BYTES} x mapped, time <= {BAR_TIME} x the reference's (raw and .xz).",
        "",
    ] + table(rows, mapped)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print("written", out)
    return 0 if all(r[4] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
