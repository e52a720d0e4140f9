#!/usr/bin/env python3
"""Benchmark bmapkit against the reference bmaptool and dd, side by side.

Usage: python3 bench/bench.py [--quick] [--runs N] [--only create|copy]
                              [--workloads W0,W1,...] [--dest tmpfs,disk,loop,slow|all]
                              [--formats raw,gz,...] [--bmapkit PATH]

Method
------
Workloads are made by this script from what is on the machine (no root needed)
under bench/work/<full|quick>/ and reused on later runs; each artefact has a
".stamp" file holding the parameters it was made with, and is rebuilt when they
change.  W0 "bar", W2 "fragmented" and W3 "huge" are sparse images with mapped
ranges at a seeded layout.  W0's ranges hold the bytes of real files of /usr,
one after the other in a stable order, so that it compresses like a root file
system; W2's and W3's hold os.urandom data (they are about range counts).  W1
"wic" is a partitioned disk image: MBR (sfdisk), a FAT partition (mkfs.vfat +
mcopy) and an ext4 partition made with `mkfs.ext4 -d` from real files of /usr,
each placed at its partition offset with `dd conv=sparse,notrunc`.  Compressed
variants are made with pigz, xz -T2, zstd, pbzip2 and lz4.

Destinations of the copy rows: a file on tmpfs, a file on disk, a loop device
backed by a file on disk (root) and "slow", an emulated USB-2 stick: an nbdkit
memory disk behind the rate filter (35 MB/s), exposed as a file by nbdfuse,
with a loop device on that file (root) because nbdfuse cannot resize its file,
which both bmap tools do to a regular file.

Every tool of a row gets the same input and the same destination path; the
destination is deleted (a file) or discarded (a block device) before every
run, and the tools run interleaved (A B C A B C ...), after one warm-up round
that is not counted.  Nothing is dropped from the page cache: inputs are warm,
so the figures measure each tool's own cost, not the disk's.  `sync` runs
(untimed) before each run.

For each run we record
  * wall time: from spawning the command to its exit;
  * CPU time: user + system from os.wait4() of the child.  The kernel adds the
    times of every descendant that was waited for; this script also makes
    itself a child subreaper, so descendants that were orphaned are reparented
    to it, and their CPU time is added when they are reaped (every command
    runs in a process group of its own, which is waited for);
  * peak RSS of the process tree: a thread reads VmRSS from /proc/<pid>/status
    of the child and of all its descendants every 10 ms and keeps the largest
    sum; ru_maxrss (largest single process of the tree) is reported too.
    Commands are started through GNU time (/usr/bin/time -f %M), whose report
    gives a ru_maxrss not inflated by this Python process (Linux keeps the
    peak RSS across exec); the wrapper's own RSS is left out of the sum.
Tables show medians over the counted runs, and ratios of medians.

Limits: each row is also compared with the stages it cannot avoid, measured
alone on the same machine: SHA-256 of the mapped bytes (`openssl dgst -sha256`
on one core, over a file holding only the mapped bytes), writing the mapped
bytes (`dd bs=4M conv=fsync` of that file to the same kind of destination) and,
for compressed inputs, what has to be decoded, with the fastest decoder at
hand: the whole stream (igzip or pigz, zstd, pbzip2, lz4), or for multi-block
xz only the blocks that hold mapped data, decoded by this script with Python's
lzma module on every core.  The slowest of them is the row's limit; "/limit"
is the row's wall time divided by it.  The stages are run in the row's own
rounds, each alone, right after the tools, so that a row and its limit see
the machine in the same state; the table of stages pools every row's samples.
A tool that hashes on several cores can go below 1.0 on a SHA-bound row.
Stages measured for information only (SHA-256 on all cores, a full
`xz -dc -T2`) are shown but do not make the limit.

A run that fails or passes --timeout (its process group is then killed) is
reported in the notes; medians cover the successful runs.
"""

import argparse
import ctypes
import datetime
import fcntl
import filecmp
import hashlib
import json
import lzma
import os
import platform
import random
import shutil
import signal
import stat
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
BLOCK = 4096
GEN_VERSION = 1  # bump to rebuild every workload

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
WORK_DIR = BENCH_DIR / "work"
TMPFS_DIR = Path("/dev/shm") / f"bmapkit-bench-{os.getuid()}"

# Workload parameters: full size and --quick size.
WORKLOADS = {
    "W0": dict(name="bar", kind="files", seed=0,
               full=dict(size=1 * GiB, mapped=512 * MiB, ranges=64),
               quick=dict(size=128 * MiB, mapped=64 * MiB, ranges=64)),
    "W1": dict(name="wic", kind="wic", seed=1,
               full=dict(size=3 * GiB, fat=64 * MiB, fat_files=16 * MiB,
                         files=650 * 1000 * 1000),
               quick=dict(size=256 * MiB, fat=64 * MiB, fat_files=4 * MiB,
                          files=48 * 1000 * 1000)),
    "W2": dict(name="fragmented", kind="random", seed=2,
               full=dict(size=4 * GiB, mapped=1 * GiB, ranges=110_000),
               quick=dict(size=512 * MiB, mapped=128 * MiB, ranges=20_000)),
    "W3": dict(name="huge", kind="random", seed=3, no_dd="dd would write the whole image",
               full=dict(size=256 * GiB, mapped=2 * GiB, ranges=50_000),
               quick=dict(size=16 * GiB, mapped=128 * MiB, ranges=5_000)),
}

# Compressed formats: how to make them, and the decoder people pipe into dd.
FORMATS = {
    "gz": dict(compress=["pigz", "-c"], decode=["pigz", "-dc"]),
    "xz": dict(compress=["xz", "-T2", "-c"], decode=["xz", "-dc", "-T2"]),
    "zst": dict(compress=["zstd", "-q", "-T2", "-c"], decode=["zstd", "-q", "-dc"]),
    "bz2": dict(compress=["pbzip2", "-p2", "-c"], decode=["pbzip2", "-p2", "-dc"]),
    "lz4": dict(compress=["lz4", "-q", "-c"], decode=["lz4", "-q", "-dc"]),
}
ALL_FORMATS = ["raw"] + list(FORMATS)
TOOLS = ["bmapkit", "bmaptool", "dd"]
ONE_CPU = "bmapkit-1cpu"  # bmapkit pinned to one core, in the xz rows on tmpfs

# Decoders of the "decode" stage: the fastest at hand, first found wins.  The
# dd rows keep the decoders of FORMATS, the ones people pipe into dd.
STAGE_DECODERS = {
    "gz": [["igzip", "-dc"], ["pigz", "-dc"]],
    "xz": [["xz", "-dc", "-T2"]],
    "zst": [["zstd", "-q", "-dc"]],
    "bz2": [["pbzip2", "-p2", "-dc"]],
    "lz4": [["lz4", "-q", "-dc"]],
}

# Destinations of the copy rows.  loop and slow need root and are run only
# when asked for (--dest all or by name).
DESTS = ["tmpfs", "disk", "loop", "slow"]
DEFAULT_DESTS = "tmpfs,disk"
SLOW_RATE = "280M"  # nbdkit rate filter, in bits per second: 35 MB/s, USB 2
SLOW_ROWS = {("W1", "raw"), ("W1", "xz")}  # rows run on slow without --slow-all
SLOW_PROBE = 256 * MiB  # written once with dd to measure the slow device
GNU_TIME = shutil.which("time")  # /usr/bin/time, Debian package "time"


# --------------------------------------------------------------------------
# Small helpers

def log(msg):
    print(msg, file=sys.stderr, flush=True)


def run(argv, **kw):
    """Run a preparation command; fail loudly."""
    kw.setdefault("check", True)
    return subprocess.run([str(a) for a in argv], **kw)


def remove(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def fmt_bytes(n):
    for unit, size in (("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if n >= size:
            return f"{n / size:.4g} {unit}"
    return f"{n} B"


def fmt_s(x):
    if x is None:
        return "—"
    return f"{x:.3f}" if x < 10 else f"{x:.1f}"


def fmt_ratio(a, b):
    if a is None or b is None or b == 0:
        return "—"
    return f"{a / b:.2f}"


def md_table(headers, rows):
    """A markdown table with padded columns, readable as plain text too."""
    cells = [list(map(str, headers))] + [list(map(str, r)) for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(cells[0]), sep] + [line(r) for r in cells[1:]])


# --------------------------------------------------------------------------
# Artefacts with stamps

def ensure(path, params, make):
    """Build PATH with make(tmp_path) unless its stamp matches PARAMS."""
    path = Path(path)
    stamp = path.with_name(path.name + ".stamp")
    want = json.dumps(dict(params, gen=GEN_VERSION), sort_keys=True)
    if path.exists() and stamp.exists() and stamp.read_text() == want:
        return path
    remove(stamp)
    remove(path)
    tmp = path.with_name(path.name + ".tmp")
    remove(tmp)
    log(f"  making {path.relative_to(BENCH_DIR)}")
    t0 = time.monotonic()
    make(tmp)
    os.rename(tmp, path)
    stamp.write_text(want)
    log(f"  made {path.name} in {time.monotonic() - t0:.1f} s")
    return path


def derived(params, source):
    """Stamp parameters of an artefact made from SOURCE: rebuilt with it."""
    st = os.stat(source)
    return dict(params, source=Path(source).name, mtime_ns=st.st_mtime_ns,
                bytes=st.st_size)


# --------------------------------------------------------------------------
# Sparse images at a seeded layout (W0, W2, W3)

def split_blocks(total, parts, rng, minimum):
    """Split TOTAL blocks into PARTS random sizes, each at least MINIMUM."""
    free = total - parts * minimum
    if free < 0:
        raise ValueError("layout does not fit")
    weights = [rng.uniform(0.2, 1.8) for _ in range(parts)]
    scale = free / sum(weights)
    sizes = [minimum + int(w * scale) for w in weights]
    for i in rng.sample(range(parts), total - sum(sizes)):
        sizes[i] += 1
    return sizes


def random_layout(size, mapped, nranges, seed):
    """(offset, length) of NRANGES data ranges spread over the image."""
    rng = random.Random(seed)
    nblocks, mblocks = size // BLOCK, mapped // BLOCK
    lengths = split_blocks(mblocks, nranges, rng, 1)
    gaps = split_blocks(nblocks - mblocks, nranges + 1, rng, 1)
    layout, pos = [], 0
    for gap, length in zip(gaps, lengths):
        pos += gap
        layout.append((pos * BLOCK, length * BLOCK))
        pos += length
    return layout


def write_image(path, size, layout, fill):
    """A sparse file of SIZE bytes with fill(n) at each (offset, length) of LAYOUT."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.ftruncate(fd, size)
        for offset, length in layout:
            done = 0
            while done < length:
                n = min(4 * MiB, length - done)
                os.pwrite(fd, fill(n), offset + done)
                done += n
        os.fsync(fd)
    finally:
        os.close(fd)


def write_random_image(path, size, layout):
    write_image(path, size, layout, os.urandom)


def make_random_image(tmp, p, seed):
    layout = random_layout(p["size"], p["mapped"], p["ranges"], seed)
    write_random_image(tmp, p["size"], layout)


def make_files_image(tmp, p, seed):
    """W0: the seeded layout filled with the bytes of the files of /usr."""
    layout = random_layout(p["size"], p["mapped"], p["ranges"], seed)
    write_image(tmp, p["size"], layout, file_bytes("/usr"))


# --------------------------------------------------------------------------
# Real files of /usr (W0's data) and the partitioned disk image (W1)

def usr_files(root, budget):
    """Regular files under ROOT in a stable order, until BUDGET bytes."""
    seen, total = set(), 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if not os.path.isfile(path) or os.path.islink(path):
                continue
            if (st.st_dev, st.st_ino) in seen or not os.access(path, os.R_OK):
                continue
            seen.add((st.st_dev, st.st_ino))
            yield path, st.st_size
            total += st.st_size
            if total >= budget:
                return


def file_chunks(root):
    """The contents of the files of usr_files(ROOT), in pieces, cycled forever."""
    while True:
        produced = False
        for path, _ in usr_files(root, float("inf")):
            try:
                with open(path, "rb") as f:
                    while chunk := f.read(4 * MiB):
                        produced = True
                        yield chunk
            except OSError:
                continue
        if not produced:
            raise RuntimeError(f"no readable file under {root}")


def file_bytes(root):
    """A function that returns the next N bytes of file_chunks(ROOT)."""
    chunks, pending = file_chunks(root), memoryview(b"")
    def take(n):
        nonlocal pending
        out = bytearray()
        while len(out) < n:
            if not pending:
                pending = memoryview(next(chunks))
            part = pending[:n - len(out)]
            out += part
            pending = pending[len(part):]
        return bytes(out)
    return take


def place(src, dest):
    """Hard-link SRC into the staging tree (copy when linking fails)."""
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    try:
        os.link(src, dest)
    except OSError:
        shutil.copyfile(src, dest)


def stage_tree(stage, budget):
    shutil.rmtree(stage, ignore_errors=True)
    for path, _ in usr_files("/usr", budget):
        place(path, os.path.join(stage, path.lstrip("/")))


def make_fat(path, size, budget, tmpdir):
    run(["mkfs.vfat", "-C", "-n", "BOOT", "-i", "626d6b74", path, size // KiB],
        stdout=subprocess.DEVNULL)
    flat = tmpdir / "fat-files"
    shutil.rmtree(flat, ignore_errors=True)
    flat.mkdir()
    for i, (src, _) in enumerate(usr_files("/usr/lib", budget)):
        shutil.copyfile(src, flat / f"file{i:04d}.bin")
    files = sorted(flat.iterdir())
    if files:
        run(["mcopy", "-i", path, "-Q"] + files + ["::/"])
    shutil.rmtree(flat)


def make_ext4(path, size, stage):
    with open(path, "wb") as f:
        f.truncate(size)
    run(["mkfs.ext4", "-q", "-F", "-L", "rootfs",
         "-U", "626d6b74-0000-4000-8000-000000000001", "-d", stage, path])


def partition(path, fat_start, fat_size, root_start):
    script = (f"label: dos\nlabel-id: 0x626d6b74\n"
              f"start={fat_start // 512}, size={fat_size // 512}, type=c, bootable\n"
              f"start={root_start // 512}, type=83\n")
    run(["sfdisk", "-q", "--no-reread", "--no-tell-kernel", path],
        input=script.encode(), stdout=subprocess.DEVNULL)


def dd_into(src, dest, offset):
    run(["dd", f"if={src}", f"of={dest}", f"bs={BLOCK}", f"seek={offset // BLOCK}",
         "conv=sparse,notrunc", "status=none"])


def make_wic_image(tmp, p, wdir):
    fat_start = 1 * MiB
    root_start = fat_start + p["fat"]
    with open(tmp, "wb") as f:
        f.truncate(p["size"])
    partition(tmp, fat_start, p["fat"], root_start)
    fat, root, stage = wdir / "fat.part", wdir / "root.part", wdir / "rootfs"
    remove(fat)
    make_fat(fat, p["fat"], p["fat_files"], wdir)
    stage_tree(stage, p["files"])
    make_ext4(root, p["size"] - root_start, stage)
    dd_into(fat, tmp, fat_start)
    dd_into(root, tmp, root_start)
    for scratch in (fat, root):
        remove(scratch)
    shutil.rmtree(stage)
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())


# --------------------------------------------------------------------------
# bmap files

def parse_bmap(path):
    """(image size, block size, [(first, last, checksum)]) of a bmap file."""
    root = ET.parse(path).getroot()
    size = int(root.findtext("ImageSize").strip())
    bsize = int(root.findtext("BlockSize").strip())
    ranges = []
    for r in root.iter("Range"):
        text = r.text.strip()
        first, _, last = text.partition("-")
        ranges.append((int(first), int(last or first), r.get("chksum")))
    return size, bsize, ranges


def write_mapped_bytes(image, bmap, tmp):
    """Concatenate the mapped bytes of IMAGE into TMP."""
    size, bsize, ranges = parse_bmap(bmap)
    with open(image, "rb") as src, open(tmp, "wb") as dst:
        for first, last, _ in ranges:
            start, end = first * bsize, min((last + 1) * bsize, size)
            src.seek(start)
            while start < end:
                chunk = src.read(min(4 * MiB, end - start))
                dst.write(chunk)
                start += len(chunk)
        os.fsync(dst.fileno())


# --------------------------------------------------------------------------
# xz blocks: the stage "decode the xz blocks that hold mapped data"
#
# An independent implementation of what bmapkit does with a multi-block xz
# file: the block list comes from `xz --robot --list -vv`, each block's LZMA2
# data is decoded raw by Python's lzma module (liblzma), on every core.

def xz_blocks(path):
    """The blocks of an xz file, from `xz --robot --list -vv`."""
    out = run(["xz", "--robot", "--list", "-vv", path], stdout=subprocess.PIPE,
              text=True).stdout
    blocks = []
    for line in out.splitlines():
        f = line.split("\t")
        if f[0] != "block":
            continue
        # stream, block in stream, block in file, compressed offset, uncompressed
        # offset, total size, uncompressed size, ratio, check, check value, header
        # size, flags, compressed data size, memory needed, filter chain
        blocks.append(dict(offset=int(f[4]), uoffset=int(f[5]), usize=int(f[7]),
                           header=int(f[11]), data=int(f[13])))
    return blocks


def lzma2_dict_size(header):
    """Dictionary size from an xz block header whose only filter is LZMA2."""
    if len(header) < 8 or (header[0] + 1) * 4 != len(header):
        raise ValueError("not an xz block header")
    pos = 2

    def varint():
        nonlocal pos
        value, shift = 0, 0
        while True:
            byte = header[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value

    flags = header[1]
    if flags & 0x40:
        varint()  # compressed size
    if flags & 0x80:
        varint()  # uncompressed size
    if flags & 0x03:
        raise ValueError("filter chain is not LZMA2 alone")
    if varint() != 0x21 or varint() != 1:
        raise ValueError("filter is not LZMA2")
    bits = header[pos] & 0x3F
    if bits > 40:
        raise ValueError("bad LZMA2 dictionary size")
    return 0xFFFFFFFF if bits == 40 else (2 | (bits & 1)) << (bits // 2 + 11)


def needed_blocks(blocks, size, bsize, ranges):
    """The blocks whose uncompressed span meets a mapped range."""
    spans = sorted((f * bsize, min((l + 1) * bsize, size)) for f, l, _ in ranges)
    needed, i = [], 0
    for b in sorted(blocks, key=lambda b: b["uoffset"]):
        start, end = b["uoffset"], b["uoffset"] + b["usize"]
        while i < len(spans) and spans[i][1] <= start:
            i += 1
        if i < len(spans) and spans[i][0] < end:
            needed.append(b)
    return needed


def decode_lzma2(data, dict_size, keep=False):
    """(length, bytes if KEEP) of raw LZMA2 DATA decoded to its end marker."""
    d = lzma.LZMADecompressor(lzma.FORMAT_RAW,
                              filters=[{"id": lzma.FILTER_LZMA2, "dict_size": dict_size}])
    total, parts = 0, []
    out = d.decompress(data, max_length=MiB)
    while True:
        total += len(out)
        if keep:
            parts.append(out)
        if d.eof:
            return total, b"".join(parts)
        if d.needs_input:
            raise ValueError("LZMA2 data ends early")
        out = d.decompress(b"", max_length=MiB)


def make_xz_plan(tmp, xz, image, bmap):
    """Write the needed blocks of XZ as JSON, after checking the decoder on two."""
    size, bsize, ranges = parse_bmap(bmap)
    blocks = xz_blocks(xz)
    needed = needed_blocks(blocks, size, bsize, ranges)
    jobs = []
    with open(xz, "rb") as f, open(image, "rb") as img:
        for b in needed:
            header = os.pread(f.fileno(), b["header"], b["offset"])
            jobs.append([b["offset"] + b["header"], b["data"], lzma2_dict_size(header),
                         b["usize"]])
        # The stage is honest only if this decoder gives the image's bytes: check
        # the first and the last block.
        for i in sorted({0, len(jobs) - 1}) if jobs else []:
            b, job = needed[i], jobs[i]
            n, out = decode_lzma2(os.pread(f.fileno(), job[1], job[0]), job[2], keep=True)
            if n != b["usize"] or out != os.pread(img.fileno(), b["usize"], b["uoffset"]):
                raise RuntimeError(f"{xz}: block at {b['offset']} does not decode to the "
                                   "image's bytes")
    Path(tmp).write_text(json.dumps(dict(file=Path(xz).name, blocks=jobs, total=len(blocks),
                                         bytes=sum(j[3] for j in jobs))))


def cpu_count():
    return len(os.sched_getaffinity(0))


# Helper commands, run by the stages as `python3 bench.py --HELPER ARGS`.  They
# time their own work, so that starting Python and importing this file (about
# 0.1 s) is not counted; they print "seconds S" on standard output.  Their
# processes are forked by hand: multiprocessing.Pool alone costs some 0.2 s.

def fan_out(jobs, work, nproc):
    """Sum of work(job) over JOBS, run by NPROC forked processes that take the
    next job as they finish one."""
    jobs_r, jobs_w = os.pipe()
    res_r, res_w = os.pipe()
    pids = []
    for _ in range(nproc):
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                os.close(jobs_w)
                os.close(res_r)
                total = 0
                while index := os.read(jobs_r, 4):  # 4 bytes are read whole
                    total += work(jobs[struct.unpack("I", index)[0]])
                os.write(res_w, struct.pack("Q", total))
            except BaseException as e:
                print(f"bench helper: {e!r}", file=sys.stderr)
                code = 1
            os._exit(code)
        pids.append(pid)
    os.close(jobs_r)
    os.close(res_w)
    os.write(jobs_w, b"".join(struct.pack("I", i) for i in range(len(jobs))))
    os.close(jobs_w)
    failed = sum(os.waitpid(pid, 0)[1] != 0 for pid in pids)
    with os.fdopen(res_r, "rb") as f:
        results = f.read()
    if failed:
        sys.exit(f"bench helper: {failed} of {nproc} processes failed")
    return sum(struct.unpack(f"{len(results) // 8}Q", results))


def helper_decode_xz_blocks(plan_path):
    """Decode the blocks of a plan (make_xz_plan) on every core, output discarded."""
    plan = json.loads(Path(plan_path).read_text())
    jobs = sorted(plan["blocks"], key=lambda j: -j[1])  # the longest first
    fd = os.open(Path(plan_path).parent / plan["file"], os.O_RDONLY)

    def work(job):
        offset, length, dict_size, usize = job
        n, _ = decode_lzma2(os.pread(fd, length, offset), dict_size)
        if n != usize:
            raise ValueError(f"block at {offset} decodes to {n} bytes, not {usize}")
        return n

    t0 = time.perf_counter()
    done = fan_out(jobs, work, min(cpu_count(), max(len(jobs), 1)))
    elapsed = time.perf_counter() - t0
    if done != plan["bytes"]:
        sys.exit(f"bench helper: decoded {done} bytes, not {plan['bytes']}")
    print(f"seconds {elapsed:.6f}")


def helper_sha256_parts(path, parts):
    """SHA-256 of PATH cut in PARTS equal pieces, one process each."""
    n, size = int(parts), os.path.getsize(path)
    fd = os.open(path, os.O_RDONLY)

    def work(piece):
        start, end = piece
        h, buf = hashlib.sha256(), bytearray(4 * MiB)
        view = memoryview(buf)
        while start < end:
            got = os.preadv(fd, [view[:min(len(buf), end - start)]], start)
            if got <= 0:
                raise OSError(f"{path}: short read at {start}")
            h.update(view[:got])
            start += got
        h.hexdigest()
        return piece[1] - piece[0]

    t0 = time.perf_counter()
    done = fan_out([(size * i // n, size * (i + 1) // n) for i in range(n)], work, n)
    elapsed = time.perf_counter() - t0
    if done != size:
        sys.exit(f"bench helper: hashed {done} bytes, not {size}")
    print(f"seconds {elapsed:.6f}")


HELPERS = {"--decode-xz-blocks": helper_decode_xz_blocks,
           "--sha256-parts": helper_sha256_parts}


def helper_argv(name, *args):
    return [sys.executable, Path(__file__).resolve(), name] + list(args)


# --------------------------------------------------------------------------
# Workloads

@dataclass
class Workload:
    id: str
    name: str
    kind: str
    seed: int
    params: dict
    dir: Path
    image: Path = None
    bmap: Path = None
    mapped_file: Path = None
    image_size: int = 0
    mapped_bytes: int = 0
    nranges: int = 0
    no_dd: str = ""
    inputs: dict = field(default_factory=dict)
    xz_plan_file: Path = None
    xz_needed: tuple = (0, 0, 0)  # needed blocks, all blocks, their uncompressed bytes

    def prepare(self, bmaptool, need_mapped):
        self.dir.mkdir(parents=True, exist_ok=True)
        make = {"random": lambda t: make_random_image(t, self.params, self.seed),
                "files": lambda t: make_files_image(t, self.params, self.seed),
                "wic": lambda t: make_wic_image(t, self.params, self.dir)}[self.kind]
        self.image = ensure(self.dir / "image.img", self.params, make)
        self.inputs["raw"] = self.image
        self.bmap = ensure(self.dir / "image.bmap", derived(self.params, self.image),
                           lambda t: run([bmaptool, "create", "-o", t, self.image]))
        size, bsize, ranges = parse_bmap(self.bmap)
        self.image_size, self.nranges = size, len(ranges)
        self.mapped_bytes = sum(min((l + 1) * bsize, size) - f * bsize for f, l, _ in ranges)
        if need_mapped:
            self.mapped_file = ensure(self.dir / "mapped.bin", derived(self.params, self.bmap),
                                      lambda t: write_mapped_bytes(self.image, self.bmap, t))

    def compressed(self, fmt):
        if fmt not in self.inputs:
            spec = FORMATS[fmt]
            def make(tmp):
                with open(tmp, "wb") as out:
                    run(spec["compress"] + [self.image], stdout=out)
            self.inputs[fmt] = ensure(self.dir / f"image.img.{fmt}",
                                      derived(dict(self.params, fmt=spec["compress"]),
                                              self.image), make)
        return self.inputs[fmt]

    def xz_plan(self):
        """The needed blocks of the xz input (JSON), rebuilt with it or the bmap."""
        if self.xz_plan_file is None:
            xz = self.compressed("xz")
            params = dict(derived(self.params, xz),
                          bmap_mtime_ns=os.stat(self.bmap).st_mtime_ns)
            self.xz_plan_file = ensure(self.dir / "image.img.xz.blocks", params,
                                       lambda t: make_xz_plan(t, xz, self.image, self.bmap))
            plan = json.loads(self.xz_plan_file.read_text())
            self.xz_needed = (len(plan["blocks"]), plan["total"], plan["bytes"])
        return self.xz_plan_file


def make_workloads(ids, scale):
    out = []
    for wid in ids:
        spec = WORKLOADS[wid]
        out.append(Workload(wid, spec["name"], spec["kind"], spec["seed"],
                            dict(spec[scale], kind=spec["kind"]),
                            WORK_DIR / scale / f"{wid}-{spec['name']}",
                            no_dd=spec.get("no_dd", "")))
    return out


# --------------------------------------------------------------------------
# Measuring one command

def become_subreaper():
    """Let orphaned descendants be reparented to us, so we can reap them."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


def read_status(pid):
    """(ppid, VmRSS in KiB) of PID, or None when it is gone."""
    ppid, rss = None, 0
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"PPid:"):
                    ppid = int(line.split()[1])
                elif line.startswith(b"VmRSS:"):
                    rss = int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return ppid, rss


class TreeSampler(threading.Thread):
    """Largest sum of VmRSS over a process and its descendants.

    Descendants are found by parent pid.  Only pids >= the root's are looked
    at (new processes get larger pids unless the pid counter wraps), and a
    process stays a member once seen, also after it is reparented.
    """

    def __init__(self, root, count_root=True, interval=0.01):
        super().__init__(daemon=True)
        self.root, self.count_root, self.interval = root, count_root, interval
        self.members = {root}
        self.peak_kib = 0
        self.done = threading.Event()

    def sample(self):
        total = 0
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            pid = int(name)
            if pid < self.root and pid not in self.members:
                continue
            st = read_status(pid)
            if st and (pid in self.members or st[0] in self.members):
                self.members.add(pid)
                if pid != self.root or self.count_root:
                    total += st[1]
        self.peak_kib = max(self.peak_kib, total)

    def run(self):
        while not self.done.is_set():
            self.sample()
            self.done.wait(self.interval)

    def finish(self):
        self.done.set()
        self.join()
        return self.peak_kib


@dataclass
class Sample:
    wall: float
    cpu: float
    tree_rss_kib: int
    maxrss_kib: int
    rc: int
    err: str = ""


def reap_orphans(pgid):
    """Wait for reparented descendants; return their summed CPU and max RSS.

    Only the command's process group is waited for: the benchmark has children
    of its own that outlive every run (nbdfuse, for the slow destination).
    """
    cpu, maxrss = 0.0, 0
    while True:
        try:
            _, _, ru = os.wait4(-pgid, 0)
        except ChildProcessError:
            return cpu, maxrss
        cpu += ru.ru_utime + ru.ru_stime
        maxrss = max(maxrss, ru.ru_maxrss)


def wrap(argv, report):
    """Run ARGV under GNU time, which writes its child's ru_maxrss to REPORT.

    Linux carries a process's peak RSS across exec, so a child forked from
    this (large) Python process would report at least our own peak; a child
    forked from the small GNU time reports its own.
    """
    if not GNU_TIME:
        return argv
    return [GNU_TIME, "-q", "-f", "%M", "-o", report] + argv


def wrapped_maxrss(report, ru):
    if not GNU_TIME:
        return ru.ru_maxrss
    try:
        return int(Path(report).read_text().split()[-1])
    except (OSError, ValueError, IndexError):
        return 0


class Watchdog:
    """Kill the process group of PID (the whole tree) after TIMEOUT seconds."""

    def __init__(self, pid, timeout):
        self.pid, self.fired = pid, False
        self.timer = threading.Timer(timeout, self.kill)
        self.timer.start()

    def kill(self):
        self.fired = True
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def cancel(self):
        self.timer.cancel()


def measure(argv, timeout, stdout=subprocess.DEVNULL):
    """Run ARGV once and measure it (see the module docstring)."""
    with tempfile.TemporaryFile() as err, tempfile.NamedTemporaryFile() as rep:
        cmd = [str(a) for a in wrap(argv, rep.name)]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=stdout, stderr=err, start_new_session=True)
        sampler = TreeSampler(proc.pid, count_root=not GNU_TIME)
        sampler.start()
        watchdog = Watchdog(proc.pid, timeout)
        try:
            _, status, ru = os.wait4(proc.pid, 0)
        except BaseException:
            watchdog.cancel()
            watchdog.kill()
            raise
        wall = time.perf_counter() - t0
        watchdog.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        ocpu, omax = reap_orphans(proc.pid)
        peak = sampler.finish()
        err.seek(0)
        text = err.read().decode(errors="replace")
        if watchdog.fired:
            text += f"\ntimed out after {timeout} s: killed"
        maxrss = max(wrapped_maxrss(rep.name, ru), omax)
    return Sample(wall, ru.ru_utime + ru.ru_stime + ocpu, peak, maxrss,
                  proc.returncode or (-9 if watchdog.fired else 0), text)


# --------------------------------------------------------------------------
# Statistics

@dataclass
class Stats:
    wall: float
    wall_min: float
    wall_max: float
    cpu: float
    tree_rss_mib: float
    maxrss_mib: float
    runs: int


def summarize(samples):
    if not samples:
        return None
    med = lambda xs: statistics.median(xs)
    walls = [s.wall for s in samples]
    return Stats(med(walls), min(walls), max(walls), med([s.cpu for s in samples]),
                 med([s.tree_rss_kib for s in samples]) / KiB,
                 med([s.maxrss_kib for s in samples]) / KiB, len(samples))


# --------------------------------------------------------------------------
# Destinations
#
# tmpfs and disk are directories: each row writes a file there, deleted before
# every run.  loop and slow are block devices set up for the whole benchmark:
# loop is a loop device on a sparse file on disk; slow is a loop device on the
# file that nbdfuse makes of an nbdkit memory disk behind the rate filter.  A
# device is discarded before every run instead (holes in the loop's file, trims
# of the memory disk), so every tool starts from the same empty device.

BLKGETSIZE64, BLKDISCARD = 0x80081272, 0x1277


def is_block_device(path):
    try:
        return stat.S_ISBLK(os.stat(path).st_mode)
    except OSError:
        return False


def discard(dev):
    """Discard the whole of block device DEV; quietly nothing if it cannot."""
    fd = os.open(dev, os.O_WRONLY)
    try:
        size = struct.unpack("Q", fcntl.ioctl(fd, BLKGETSIZE64, b"\0" * 8))[0]
        fcntl.ioctl(fd, BLKDISCARD, struct.pack("QQ", 0, size))
    except OSError:
        pass
    finally:
        os.close(fd)


def clear(path):
    """Make PATH as new before a run: delete a file, discard a block device."""
    if is_block_device(path):
        discard(path)
    else:
        remove(path)


def losetup_attach(path):
    r = run(["losetup", "--find", "--show", path], stdout=subprocess.PIPE, text=True)
    return r.stdout.strip()


def losetup_detach_all(path):
    """Detach every loop device on PATH (left by an interrupted run)."""
    r = subprocess.run(["losetup", "-j", str(path)], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, text=True)
    for line in r.stdout.splitlines():
        subprocess.run(["losetup", "-d", line.split(":")[0]], stderr=subprocess.DEVNULL)


def mounted(path):
    """True when something is mounted at PATH (also a FUSE mount whose daemon died)."""
    with open("/proc/self/mounts") as f:
        return any(line.split()[1].replace("\\040", " ") == str(path) for line in f)


def fuse_unmount(mnt):
    """Unmount the FUSE file system at MNT (busy for a moment after a loop device
    on it was detached); True when it is gone."""
    for _ in range(50):
        if not mounted(mnt):
            return True
        subprocess.run(["fusermount3", "-u", str(mnt)], stderr=subprocess.DEVNULL)
        time.sleep(0.1)
    subprocess.run(["fusermount3", "-u", "-z", str(mnt)], stderr=subprocess.DEVNULL)
    return not mounted(mnt)


def dest_missing(kind):
    """Why the destination KIND cannot be set up here, or ""."""
    if kind not in ("loop", "slow"):
        return ""
    if os.geteuid() != 0:
        return "needs root (loop devices)"
    need = ["losetup"] + (["nbdkit", "nbdfuse", "fusermount3"] if kind == "slow" else [])
    missing = [c for c in need if not shutil.which(c)]
    if missing:
        return f"{', '.join(missing)} not found (apt-get install nbdkit libnbd-bin fuse3)"
    if kind == "slow" and not os.path.exists("/dev/fuse"):
        return "no /dev/fuse"
    return ""


def setup_loop(ctx, size):
    """A loop device on a sparse file of SIZE bytes on disk."""
    backing = WORK_DIR / ctx.scale / "loop" / "backing.img"
    backing.parent.mkdir(parents=True, exist_ok=True)
    losetup_detach_all(backing)
    remove(backing)
    with open(backing, "wb") as f:
        f.truncate(size)
    ctx.loop_backing = backing
    dev = losetup_attach(backing)
    ctx.devices["loop"] = dev
    ctx.dest_notes.append(f"loop: {dev} (`losetup --find --show`) on a sparse "
                          f"{fmt_bytes(size)} file on {fs_type(backing)}, {backing}")


def setup_slow(ctx, size):
    """An nbdkit memory disk of SIZE bytes at SLOW_RATE, through nbdfuse and a loop."""
    mnt = WORK_DIR / ctx.scale / "slow"
    losetup_detach_all(mnt / "disk")
    fuse_unmount(mnt)
    mnt.mkdir(parents=True, exist_ok=True)
    log_path = WORK_DIR / ctx.scale / "nbdfuse.log"
    argv = ["nbdfuse", mnt / "disk", "--command", "nbdkit", "-s", "--filter=rate",
            "memory", str(size), f"rate={SLOW_RATE}"]
    with open(log_path, "wb") as log_file:
        # A session of its own: Ctrl-C stops the benchmark, which then unmounts.
        proc = subprocess.Popen([str(a) for a in argv], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=log_file,
                                start_new_session=True)
    ctx.nbdfuse = (proc, mnt, log_path)
    deadline = time.monotonic() + 20
    while not (mnt / "disk").exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"nbdfuse did not start: {read_or(log_path, '')[-300:]}")
        time.sleep(0.05)
    dev = losetup_attach(mnt / "disk")
    ctx.devices["slow"] = dev
    # Measure what a writer gets: dd of SLOW_PROBE bytes, after the device was
    # idle (so with the rate filter's burst of 2 s, as every run gets).
    discard(dev)
    os.sync()
    t0 = time.perf_counter()
    run(["dd", "if=/dev/zero", f"of={dev}", "bs=4M", f"count={SLOW_PROBE // (4 * MiB)}",
         "conv=fsync", "status=none"])
    ctx.slow_rate = SLOW_PROBE / (time.perf_counter() - t0)
    discard(dev)
    ctx.dest_notes.append(
        f"slow: {dev} (`losetup`) on {mnt / 'disk'}, the file nbdfuse makes of "
        f"`nbdkit -s --filter=rate memory {size} rate={SLOW_RATE}` "
        f"({int(SLOW_RATE[:-1]) / 8:g} MB/s nominal); measured with "
        f"`dd bs=4M conv=fsync` of {fmt_bytes(SLOW_PROBE)}: "
        f"{ctx.slow_rate / 1e6:.1f} MB/s")


def teardown(ctx):
    """Undo setup_slow and setup_loop, delete the destination directories."""
    if ctx.nbdfuse:
        proc, mnt, log_path = ctx.nbdfuse
        if "slow" in ctx.devices:
            subprocess.run(["losetup", "-d", ctx.devices.pop("slow")],
                           stderr=subprocess.DEVNULL)
        if not fuse_unmount(mnt):
            log(f"bench: could not unmount {mnt}")
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        try:
            mnt.rmdir()
            if not log_path.stat().st_size:
                remove(log_path)
        except OSError:
            pass
        ctx.nbdfuse = None
    if ctx.loop_backing:
        ctx.devices.pop("loop", None)
        losetup_detach_all(ctx.loop_backing)
        remove(ctx.loop_backing)
        shutil.rmtree(ctx.loop_backing.parent, ignore_errors=True)
        ctx.loop_backing = None
    shutil.rmtree(TMPFS_DIR, ignore_errors=True)
    shutil.rmtree(ctx.dest_dirs["disk"], ignore_errors=True)


def space_problem(ctx, kind, dest, size):
    """Why SIZE bytes would not fit the destination, or ""."""
    if kind == "slow":
        with open("/proc/meminfo") as f:
            avail = next(int(l.split()[1]) * KiB for l in f if l.startswith("MemAvailable:"))
        if size > avail * 0.5:
            return (f"the memory disk would hold {fmt_bytes(size)}, "
                    f"{fmt_bytes(avail)} available")
        return ""
    where = ctx.loop_backing.parent if kind == "loop" else dest.parent
    free = shutil.disk_usage(where).free
    if size > free * 0.9:
        return f"needs {fmt_bytes(size)}, {fmt_bytes(free)} free"
    return ""


# --------------------------------------------------------------------------
# Rows (cases) and stages

@dataclass
class Tool:
    name: str
    argv: list
    cleanup: list  # paths made new (clear()) before every run and at the end
    skip: str = ""


@dataclass
class Case:
    label: str
    workload: Workload
    op: str
    fmt: str
    dest: str
    tools: list
    stages: list  # the stages that make the limit
    runs: int = 0
    info: list = field(default_factory=list)  # stages shown for information
    samples: dict = field(default_factory=dict)
    failures: dict = field(default_factory=dict)  # tool -> [messages]
    attempts: dict = field(default_factory=dict)  # tool -> runs tried
    check: str = ""
    # The limit's stages, measured in the row's own rounds: key -> samples, label.
    stage_samples: dict = field(default_factory=dict)
    stage_labels: dict = field(default_factory=dict)
    failed_stages: set = field(default_factory=set)


class Context:
    def __init__(self, args):
        self.args = args
        self.scale = "quick" if args.quick else "full"
        self.bmapkit = Path(args.bmapkit).resolve()
        self.bmaptool = args.reference
        self.dest_dirs = {"tmpfs": TMPFS_DIR / "dest",
                          "disk": WORK_DIR / self.scale / "dest"}
        self.devices = {}  # loop, slow -> /dev/loopN
        self.dest_notes = []  # what the devices are, for the machine section
        self.loop_backing = None
        self.nbdfuse = None  # (process, mount point, its log)
        self.slow_rate = None
        self.stage_results = {}  # key -> (label, summary of stage_pool[key], bytes)
        self.stage_pool = {}  # key -> samples of the stage from every row

    def dest_path(self, kind, name):
        if kind in self.devices:
            return Path(self.devices[kind])
        d = self.dest_dirs[kind]
        d.mkdir(parents=True, exist_ok=True)
        return d / name

    def runs(self, dest):
        """Counted runs of a row or stage on DEST: fewer on slow."""
        return min(self.args.runs, self.args.slow_runs) if dest == "slow" else self.args.runs


def dd_argv(src, fmt, dest):
    dd = 'dd of="$2" bs=4M conv=fsync status=none'
    if fmt == "raw":
        return ["dd", f"if={src}", f"of={dest}", "bs=4M", "conv=fsync", "status=none"]
    decoder = " ".join(FORMATS[fmt]["decode"])
    return ["sh", "-c", f'{decoder} "$1" | {dd}', "sh", src, dest]


def create_case(ctx, wl):
    outs = {t: TMPFS_DIR / f"create-{t}.bmap" for t in ("bmapkit", "bmaptool")}
    tools = [Tool("bmapkit", [ctx.bmapkit, "create", "-o", outs["bmapkit"], wl.image],
                  [outs["bmapkit"]]),
             Tool("bmaptool", [ctx.bmaptool, "create", "-o", outs["bmaptool"], wl.image],
                  [outs["bmaptool"]])]
    return Case(f"create {wl.id} {wl.name}", wl, "create", "raw", "—", tools,
                [("sha256", wl.id)], ctx.args.runs, [("sha256-all", wl.id)])


def one_cpu_tool(argv, dest):
    """bmapkit pinned to one core: its decoder and hash threads follow the mask."""
    first = min(os.sched_getaffinity(0))
    skip = ("taskset not found (util-linux)" if not shutil.which("taskset") else
            "only one core usable" if cpu_count() < 2 else "")
    return Tool(ONE_CPU, ["taskset", "-c", str(first)] + argv, [dest], skip)


def copy_case(ctx, wl, fmt, dest_kind):
    src = wl.inputs["raw"] if fmt == "raw" else wl.compressed(fmt)
    dest = ctx.dest_path(dest_kind, f"copy-{wl.id}.img")
    bmap = ["--bmap", wl.bmap]
    copy = [ctx.bmapkit, "copy"] + bmap + [src, dest]
    tools = [Tool("bmapkit", copy, [dest]),
             Tool("bmaptool", [ctx.bmaptool, "copy"] + bmap + [src, dest], [dest]),
             Tool("dd", dd_argv(src, fmt, dest), [dest],
                  wl.no_dd or space_problem(ctx, dest_kind, dest, wl.image_size))]
    if fmt == "xz" and dest_kind == "tmpfs":
        tools.append(one_cpu_tool(copy, dest))
    stages = [("sha256", wl.id), ("write", wl.id, dest_kind)]
    info = [("sha256-all", wl.id)]
    if fmt == "xz":
        # bmapkit decodes only the blocks that hold mapped data; a full decode is
        # shown for information.
        stages.append(("xz-needed", wl.id))
        info.append(("decode", wl.id, fmt))
        if not ctx.args.no_limits:
            wl.xz_plan()
    elif fmt != "raw":
        stages.append(("decode", wl.id, fmt))
    return Case(f"copy {wl.id} {wl.name} {fmt} → {dest_kind}", wl, "copy", fmt,
                dest_kind, tools, stages, ctx.runs(dest_kind), info)


def stage_decoder(fmt):
    """The first decoder of STAGE_DECODERS[FMT] found on the machine."""
    choices = STAGE_DECODERS[fmt]
    return next((d for d in choices if shutil.which(d[0])), choices[-1])


def stage_command(ctx, key, workloads):
    """(label, argv, paths cleared first, bytes handled, times itself) of a stage."""
    wl = workloads[key[1]]
    if key[0] == "sha256":
        return ("SHA-256 of mapped bytes (openssl, 1 core)",
                ["openssl", "dgst", "-sha256", wl.mapped_file], [], wl.mapped_bytes, False)
    if key[0] == "sha256-all":
        n = cpu_count()
        return (f"SHA-256 of mapped bytes on all cores (hashlib, i.e. OpenSSL, {n} "
                f"processes on 1/{n} each)",
                helper_argv("--sha256-parts", wl.mapped_file, str(n)), [],
                wl.mapped_bytes, True)
    if key[0] == "write":
        dest = ctx.dest_path(key[2], "stage-write.bin")
        return (f"write mapped bytes → {key[2]} (dd bs=4M conv=fsync)",
                ["dd", f"if={wl.mapped_file}", f"of={dest}", "bs=4M", "conv=fsync",
                 "status=none"], [dest], wl.mapped_bytes, False)
    if key[0] == "xz-needed":
        plan = wl.xz_plan()
        needed, total, nbytes = wl.xz_needed
        return (f"decode the xz blocks that hold mapped data ({needed} of {total} blocks, "
                f"Python lzma, {cpu_count()} processes)",
                helper_argv("--decode-xz-blocks", plan), [], nbytes, True)
    decoder = stage_decoder(key[2])
    return (f"decode {key[2]} ({' '.join(decoder)})",
            decoder + [wl.compressed(key[2])], [], wl.image_size, False)


# --------------------------------------------------------------------------
# Running

def run_once(ctx, argv, cleanup, stdout=subprocess.DEVNULL):
    """Clear CLEANUP, flush dirty pages, then measure ARGV."""
    for path in cleanup:
        clear(path)
    os.sync()
    return measure(argv, ctx.args.timeout, stdout)


def self_timed(sample, out):
    """Replace the wall time of SAMPLE by the "seconds S" a helper printed."""
    out.seek(0)
    for line in out.read().decode(errors="replace").splitlines():
        if line.startswith("seconds "):
            sample.wall = float(line.split()[1])
            return
    if sample.rc == 0:
        sample.rc, sample.err = 1, sample.err + "\nno time reported"


def run_stage_once(ctx, command):
    """One measurement of a stage (as stage_command describes it)."""
    _, argv, cleanup, _, timed = command
    with tempfile.TemporaryFile() as out:
        s = run_once(ctx, argv, cleanup, out if timed else subprocess.DEVNULL)
        if timed:
            self_timed(s, out)
    return s


def pool_stage(ctx, key, command, samples):
    """Add SAMPLES of a stage to the table of stages (all rows' samples together)."""
    label, _, _, nbytes, _ = command
    pooled = ctx.stage_pool.setdefault(key, [])
    pooled += samples
    ctx.stage_results[key] = (label, summarize(pooled), nbytes)


def run_stage(ctx, key, workloads):
    """A stage shown for information: measured once, in rounds of its own."""
    if key in ctx.stage_results:
        return ctx.stage_results[key]
    command = stage_command(ctx, key, workloads)
    label, cleanup = command[0], command[2]
    samples = []
    for i in range(ctx.args.runs + 1):
        s = run_stage_once(ctx, command)
        if s.rc != 0:
            log(f"  stage failed: {label}: {s.err.strip()[-300:]}")
            samples = []
            break
        if i:
            samples.append(s)
    for path in cleanup:
        clear(path)
    pool_stage(ctx, key, command, samples)
    st = ctx.stage_results[key][1]
    log(f"  stage {label} [{key[1]}]: {fmt_s(st.wall if st else None)} s")
    return ctx.stage_results[key]


MAX_FAILURES = 2  # a tool that failed this often is not run again in the row


def last_line(text):
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    return lines[-1][:200] if lines else "(no message)"


def run_tool(ctx, case, t, counted):
    """One run of tool T in CASE; returns a short note for the progress line."""
    case.attempts[t.name] = case.attempts.get(t.name, 0) + 1
    s = run_once(ctx, t.argv, t.cleanup)
    if s.rc != 0:
        case.failures.setdefault(t.name, []).append(f"exit {s.rc}: {last_line(s.err)}")
        log(f"  {t.name} FAILED: {case.failures[t.name][-1]}")
        return f"{t.name} FAILED"
    if counted:
        case.samples[t.name].append(s)
    return f"{t.name} {s.wall:.3f}s"


def run_case(ctx, case, workloads):
    """Interleaved rounds: warm-up, then --runs counted rounds. Each round also runs
    the stages of the row's limit, one after the other, so that the row and its limit
    are measured under the same conditions of the machine."""
    log(f"== {case.label}")
    active = [t for t in case.tools if not t.skip]
    for t in active:
        case.samples[t.name] = []
    stages = [] if ctx.args.no_limits else case.stages
    commands = {key: stage_command(ctx, key, workloads) for key in stages}
    for key in stages:
        case.stage_samples[key] = []
        case.stage_labels[key] = commands[key][0]
    failed = case.failed_stages
    for rnd in range(case.runs + 1):
        line = [run_tool(ctx, case, t, rnd > 0) for t in active
                if len(case.failures.get(t.name, [])) < MAX_FAILURES]
        for key in stages:
            if key in failed:
                continue
            s = run_stage_once(ctx, commands[key])
            if s.rc != 0:
                log(f"  stage failed: {commands[key][0]}: {s.err.strip()[-300:]}")
                failed.add(key)
                case.stage_samples[key] = []
                continue
            if rnd > 0:
                case.stage_samples[key].append(s)
            line.append(f"{key[0]} {s.wall:.3f}s")
        log(f"  {'warm-up' if rnd == 0 else f'run {rnd}'}: " + ", ".join(line))
    for key in stages:
        for path in commands[key][2]:
            clear(path)
        pool_stage(ctx, key, commands[key], case.stage_samples[key])
    finish_case(case)


def finish_case(case):
    """Compare the two bmaps of a create row, then delete what is left."""
    if case.op == "create":
        case.check = compare_bmaps(*(t.cleanup[0] for t in case.tools))
    for t in case.tools:
        for path in t.cleanup:
            clear(path)


def compare_bmaps(mine, ref):
    try:
        a, b = parse_bmap(mine), parse_bmap(ref)
    except (OSError, ET.ParseError, AttributeError, ValueError) as e:
        return f"could not compare the bmaps ({e})"
    if a == b:
        return f"same {len(a[2])} ranges and checksums as bmaptool"
    return (f"DIFFERENT from bmaptool: {len(a[2])} vs {len(b[2])} ranges, "
            f"size {a[0]} vs {b[0]}, block size {a[1]} vs {b[1]}")


# --------------------------------------------------------------------------
# Probing what bmapkit copy supports

def copy_available(ctx):
    r = subprocess.run([str(ctx.bmapkit), "copy", "--help"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return r.returncode == 0


def probe_formats(ctx, wanted):
    """Formats that bmapkit copy accepts, tried on a tiny image."""
    pdir = TMPFS_DIR / "probe"
    shutil.rmtree(pdir, ignore_errors=True)
    pdir.mkdir(parents=True)
    image, bmap, dest = pdir / "tiny.img", pdir / "tiny.bmap", pdir / "dest.img"
    write_random_image(image, 1 * MiB, [(64 * KiB, 64 * KiB), (512 * KiB, 128 * KiB)])
    run([ctx.bmaptool, "create", "-o", bmap, image], stderr=subprocess.DEVNULL)
    ok = []
    for fmt in wanted:
        src = image
        if fmt != "raw":
            src = pdir / f"tiny.img.{fmt}"
            with open(src, "wb") as out:
                run(FORMATS[fmt]["compress"] + [image], stdout=out)
        remove(dest)
        r = subprocess.run([str(ctx.bmapkit), "copy", "--bmap", str(bmap), str(src),
                            str(dest)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if r.returncode == 0 and dest.exists() and filecmp.cmp(image, dest, shallow=False):
            ok.append(fmt)
    shutil.rmtree(pdir, ignore_errors=True)
    return ok


# --------------------------------------------------------------------------
# Machine description

def first_line(argv):
    try:
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "not found"
    lines = [l.strip() for l in r.stdout.decode(errors="replace").splitlines() if l.strip()]
    return lines[0].strip("* ") if lines else "?"


def cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


def mem_total():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return fmt_bytes(int(line.split()[1]) * KiB)
    return "?"


def read_or(path, default="?"):
    try:
        return Path(path).read_text().strip()
    except OSError:
        return default


def fs_type(path):
    """File system type of PATH, from the longest matching mount point."""
    path, best = os.path.realpath(path), ("", "?")
    with open("/proc/self/mounts") as f:
        for line in f:
            fields = line.split()
            mnt = fields[1].replace("\\040", " ")
            inside = path == mnt or path.startswith(mnt.rstrip("/") + "/")
            if inside and len(mnt) >= len(best[0]):
                best = (mnt, fields[2])
    return best[1]


def bmapkit_revision():
    r = subprocess.run(["git", "-C", str(REPO_DIR), "describe", "--always", "--dirty"],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return r.stdout.strip() or "unknown"


def stale_binary(binary):
    """True when a source file of the checkout is newer than BINARY and its library."""
    # The command links the shared library of its build: a change in lib/ relinks
    # only the library.
    built_files = [Path(binary)] + list((Path(binary).parent.parent / "lib").glob("libbmapkit.so*"))
    built = max(p.stat().st_mtime for p in built_files if p.exists())
    sources = [p for d in ("lib", "programs") for p in (REPO_DIR / d).rglob("*.[ch]")]
    return any(p.stat().st_mtime > built for p in sources)


def machine_description(ctx):
    tools = [
        ("bmapkit", f"{first_line([str(ctx.bmapkit), '--version'])} "
                    f"(checkout at git {bmapkit_revision()}, {ctx.bmapkit})"),
        ("bmaptool", f"{first_line([ctx.bmaptool, '--version'])} ({ctx.bmaptool})"),
        ("dd", first_line(["dd", "--version"])),
        ("openssl", first_line(["openssl", "version"])),
        ("pigz", first_line(["pigz", "--version"])),
        ("igzip", first_line(["igzip", "-V"])),
        ("xz", first_line(["xz", "--version"])),
        ("zstd", first_line(["zstd", "--version"])),
        ("pbzip2", first_line(["pbzip2", "--version"])),
        ("lz4", first_line(["lz4", "--version"])),
        ("mke2fs", first_line(["mkfs.ext4", "-V"])),
        ("python", sys.version.split()[0]),
    ]
    if ctx.nbdfuse:
        tools += [("nbdkit", first_line(["nbdkit", "--version"])),
                  ("nbdfuse", first_line(["nbdfuse", "--version"]))]
    cores = os.cpu_count()
    usable = len(os.sched_getaffinity(0))
    lines = [
        f"- CPU: {cpu_model()}, {cores} logical cores ({usable} usable)",
        f"- Memory: {mem_total()}",
        f"- Kernel: {platform.system()} {platform.release()} {platform.machine()}",
        f"- Debian: {read_or('/etc/debian_version')}",
        f"- Work directory: {WORK_DIR} ({fs_type(BENCH_DIR)}); tmpfs: {TMPFS_DIR.parent} "
        f"({fs_type(TMPFS_DIR.parent)})",
        "- Tools: " + "; ".join(f"{n}: {v}" for n, v in tools),
    ]
    lines += [f"- Destination {n}" for n in ctx.dest_notes]
    return "\n".join(lines)


# --------------------------------------------------------------------------
# Report

def case_limit(ctx, case):
    """(seconds, label) of the slowest stage of CASE."""
    best = None
    for key in case.stages:
        st = summarize(case.stage_samples.get(key, []))
        if st and (best is None or st.wall > best[0]):
            best = (st.wall, case.stage_labels[key].split(" (")[0])
    if best and case.failed_stages:
        # The limit leaves out what could not be measured: say so next to it.
        best = (best[0], best[1] + "; " + ", ".join(k[0] for k in case.failed_stages)
                + " FAILED")
    return best or (None, "—")


def tool_stats(case, name):
    return summarize(case.samples.get(name, []))


def tool_cell(case, name, why=False):
    """Median wall time of a tool, or why there is none."""
    t = next((t for t in case.tools if t.name == name), None)
    if t is None:
        return "n/a"
    if t.skip:
        return f"skipped ({t.skip})" if why else "skipped"
    st = tool_stats(case, name)
    if st is None:
        return "FAILED"
    nfail = len(case.failures.get(name, []))
    return fmt_s(st.wall) + (f" ({nfail} failed)" if nfail else "")


def summary_table(ctx, cases):
    rows = []
    for c in cases:
        bk, ref, dd = (tool_stats(c, n) for n in TOOLS)
        lim, lim_label = case_limit(ctx, c)
        g = lambda st, attr: getattr(st, attr) if st else None
        rows.append([c.label, tool_cell(c, "bmapkit"), tool_cell(c, "bmaptool"),
                     tool_cell(c, "dd"), f"{fmt_s(lim)} ({lim_label})",
                     fmt_ratio(g(bk, "wall"), g(ref, "wall")),
                     fmt_ratio(g(bk, "cpu"), g(ref, "cpu")),
                     fmt_ratio(g(bk, "tree_rss_mib"), g(ref, "tree_rss_mib")),
                     fmt_ratio(g(bk, "wall"), g(dd, "wall")),
                     fmt_ratio(g(bk, "wall"), lim), fmt_ratio(g(ref, "wall"), lim)])
    return md_table(["Row", "bmapkit s", "bmaptool s", "dd s", "limit s (stage)",
                     "bmapkit/bmaptool wall", "bmapkit/bmaptool CPU",
                     "bmapkit/bmaptool RSS", "bmapkit/dd wall", "bmapkit/limit",
                     "bmaptool/limit"], rows)


def detail_table(ctx, cases):
    rows = []
    for c in cases:
        lim, _ = case_limit(ctx, c)
        for name in TOOLS + [ONE_CPU]:
            st = tool_stats(c, name)
            if st is None:
                if any(t.name == name for t in c.tools):
                    rows.append([c.label, name, tool_cell(c, name, why=True),
                                 "", "", "", "", ""])
                continue
            nfail = len(c.failures.get(name, []))
            rows.append([c.label, name + (f" ({nfail} failed)" if nfail else ""),
                         f"{fmt_s(st.wall)} ({fmt_s(st.wall_min)}–{fmt_s(st.wall_max)})",
                         fmt_s(st.cpu), f"{st.tree_rss_mib:.1f}", f"{st.maxrss_mib:.1f}",
                         st.runs, fmt_ratio(st.wall, lim)])
    return md_table(["Row", "Tool", "wall s median (min–max)", "CPU s", "peak RSS tree MiB",
                     "ru_maxrss MiB", "runs", "/limit"], rows)


def stage_table(ctx, cases):
    limits = {key for c in cases for key in c.stages}
    failed = {key for c in cases for key in c.failed_stages}
    rows = []
    for key, (label, st, nbytes) in sorted(ctx.stage_results.items(),
                                           key=lambda item: item[0][1]):
        role = "limit" if key in limits else "information"
        if st is None:
            rows.append([key[1], label, role, fmt_bytes(nbytes), "FAILED", ""])
            continue
        rows.append([key[1], label, role, fmt_bytes(nbytes),
                     fmt_s(st.wall) + (" (FAILED in some rows)" if key in failed else ""),
                     f"{nbytes / st.wall / 1e6:.0f}"])
    return md_table(["Workload", "Stage", "Used for", "Bytes", "median s", "MB/s"], rows)


def workload_table(workloads):
    rows = [[w.id, w.name, fmt_bytes(w.image_size), fmt_bytes(w.mapped_bytes),
             f"{100 * w.mapped_bytes / w.image_size:.1f}%", w.nranges,
             ", ".join(sorted(w.inputs))] for w in workloads]
    return md_table(["Id", "Name", "Image", "Mapped", "Mapped %", "bmap ranges",
                     "Inputs"], rows)


def failure_note(case, name, msgs):
    rest = " (medians use the others)" if case.samples.get(name) else ""
    return (f"- {case.label}: {name} failed {len(msgs)} of {case.attempts[name]} "
            f"runs{rest}; last: {msgs[-1]}")


def one_cpu_note(case):
    """How bmapkit pinned to one core compares with bmapkit, in an xz row."""
    one, full = tool_stats(case, ONE_CPU), tool_stats(case, "bmapkit")
    if one is None or full is None:
        return None
    return (f"{case.label}: bmapkit on one core (`taskset -c`, so one decoder and one "
            f"hash thread) {fmt_s(one.wall)} s, bmapkit on {cpu_count()} cores "
            f"{fmt_s(full.wall)} s: 1 core/{cpu_count()} cores wall "
            f"{fmt_ratio(one.wall, full.wall)}, CPU {fmt_ratio(one.cpu, full.cpu)}")


def report(ctx, workloads, cases, notes):
    a = ctx.args
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    checks = [f"- {c.label}: {c.check}" for c in cases if c.check]
    fails = [failure_note(c, n, msgs) for c in cases for n, msgs in c.failures.items()]
    scaling = [f"- {n}" for n in map(one_cpu_note, cases) if n]
    slow = [c for c in cases if c.dest == "slow"]
    slow_runs = (f" ({slow[0].runs} on the slow destination, and its write stage)"
                 if slow and slow[0].runs != a.runs else "")
    parts = [
        "# bmapkit benchmark results", "",
        f"{date}. Command: `python3 bench/bench.py {' '.join(sys.argv[1:])}`. "
        f"{ctx.scale} sizes; {a.runs} counted runs per tool{slow_runs} after one warm-up "
        "round, interleaved; medians and ratios of medians (< 1 means bmapkit needs "
        "less). Warm page cache; destination file deleted, or destination device "
        "discarded, before every run. See README.md.", "",
        "## Machine", "", machine_description(ctx), "",
        "## Workloads", "", workload_table(workloads), "",
        "## Summary", "", summary_table(ctx, cases), "",
        "## Per tool", "", detail_table(ctx, cases), "",
    ]
    if ctx.stage_results:
        parts += ["## Stages alone (limits)", "", stage_table(ctx, cases), ""]
    if checks or fails or scaling or notes:
        parts += (["## Notes", ""] + checks + fails + scaling + [f"- {n}" for n in notes]
                  + [""])
    return "\n".join(parts)


# --------------------------------------------------------------------------
# Main

def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="small workloads, 3 runs: a smoke test")
    p.add_argument("--runs", type=int, help="counted runs per tool (default 5, quick 3)")
    p.add_argument("--only", choices=["create", "copy"], help="only these rows")
    p.add_argument("--workloads", default="W0,W1,W2,W3",
                   help="comma-separated ids or names (default all)")
    p.add_argument("--dest", default=DEFAULT_DESTS,
                   help=f"copy destinations (default {DEFAULT_DESTS}): {','.join(DESTS)} "
                        "or all; loop and slow need root")
    p.add_argument("--slow-runs", type=int, default=5,
                   help="counted runs on the slow destination (default 5, as elsewhere; fewer saves time)")
    p.add_argument("--slow-all", action="store_true",
                   help="every copy row also on slow (default: W1 raw and xz only)")
    p.add_argument("--formats", default=",".join(ALL_FORMATS),
                   help="copy inputs of W0 and W1 (default all): " + ",".join(ALL_FORMATS))
    p.add_argument("--bmapkit", default=str(REPO_DIR / "build-bench/programs/bmapkit"),
                   help="bmapkit binary (default build-bench/programs/bmapkit)")
    p.add_argument("--reference", default=shutil.which("bmaptool") or "bmaptool",
                   help="reference bmaptool (default from PATH)")
    p.add_argument("--timeout", type=float,
                   help="seconds before one run is killed and its tool marked failed "
                        "(default 900, quick 30)")
    p.add_argument("--no-limits", action="store_true", help="skip the stage measurements")
    p.add_argument("--prepare-only", action="store_true",
                   help="make the workloads and inputs the rows need, then stop")
    p.add_argument("--output", help="results file (default bench/RESULTS.md, "
                                    "quick: bench/work/RESULTS-quick.md)")
    a = p.parse_args()
    if a.runs is None:
        a.runs = 3 if a.quick else 5
    if a.timeout is None:
        a.timeout = 30 if a.quick else 900
    a.workloads = resolve_workloads(p, a.workloads)
    a.dest = DESTS if a.dest.strip() == "all" else check_list(p, a.dest, DESTS, "--dest")
    a.formats = check_list(p, a.formats, ALL_FORMATS, "--formats")
    if a.runs < 1 or a.slow_runs < 1:
        p.error("--runs and --slow-runs must be at least 1")
    return a


def resolve_workloads(p, text):
    names = {spec["name"]: wid for wid, spec in WORKLOADS.items()}
    out = []
    for item in text.split(","):
        item = item.strip()
        wid = item.upper() if item.upper() in WORKLOADS else names.get(item.lower())
        if wid is None:
            p.error(f"unknown workload {item!r} (W0..W3 or {', '.join(names)})")
        out.append(wid)
    return out


def check_list(p, text, allowed, opt):
    items = [x.strip() for x in text.split(",") if x.strip()]
    bad = [x for x in items if x not in allowed]
    if bad:
        p.error(f"{opt}: unknown {', '.join(bad)} (choose from {', '.join(allowed)})")
    return items


def check_tools(ctx):
    if not ctx.bmapkit.is_file():
        sys.exit(f"bench: no bmapkit at {ctx.bmapkit}; build it with\n"
                 "  meson setup build-bench -Dtests=disabled -Dbuildtype=release && "
                 "ninja -C build-bench\nor pass --bmapkit PATH")
    if not shutil.which(ctx.bmaptool):
        sys.exit("bench: the reference bmaptool is missing (apt-get install bmap-tools)")


def plan_copy(ctx, workloads, notes):
    """Copy rows, when bmapkit copy exists, for the formats it accepts."""
    a = ctx.args
    if a.only == "create":
        return []
    if not copy_available(ctx):
        notes.append("copy rows skipped: `bmapkit copy --help` does not exit 0")
        return []
    wanted = [f for f in a.formats if f == "raw" or shutil.which(FORMATS[f]["compress"][0])]
    supported = probe_formats(ctx, wanted)
    missing = [f for f in a.formats if f not in supported]
    if missing:
        notes.append(f"copy rows skipped for {', '.join(missing)}: bmapkit copy did not "
                     "reproduce a tiny image in that format (or its compressor is missing)")
    rows = []
    for wl in workloads:
        fmts = [f for f in supported if wl.kind == "wic" or wl.id == "W0" or f == "raw"]
        for fmt in fmts:
            for dest in a.dest:
                if dest != "slow" or a.slow_all or (wl.id, fmt) in SLOW_ROWS:
                    rows.append((wl, fmt, dest))
    if "slow" in a.dest and not a.slow_all:
        notes.append("slow destination: only the rows "
                     + ", ".join(f"{w} {f}" for w, f in sorted(SLOW_ROWS))
                     + " (when selected), as every run there writes at USB-2 speed; "
                     "--slow-all runs every row there")
    for dest in ("loop", "slow"):
        sizes = [wl.image_size for wl, _, d in rows if d == dest]
        if not sizes:
            continue
        why = dest_missing(dest)
        if not why:
            try:
                size = -(-max(sizes + [SLOW_PROBE]) // MiB) * MiB
                (setup_loop if dest == "loop" else setup_slow)(ctx, size)
            except (OSError, RuntimeError, subprocess.CalledProcessError) as e:
                why = f"could not be set up: {e}"
        if why:
            notes.append(f"{dest} rows skipped: {why}")
            rows = [r for r in rows if r[2] != dest]
    return [copy_case(ctx, wl, fmt, dest) for wl, fmt, dest in rows]


def setup_notes(ctx):
    """Caveats about this run that belong in the results."""
    notes = []
    if not become_subreaper():
        notes.append("could not become a child subreaper: CPU time of orphaned "
                     "descendants is not counted")
    if stale_binary(ctx.bmapkit):
        notes.append(f"{ctx.bmapkit} is older than some sources of the checkout: the "
                     "git revision above may not be what was measured; rebuild it")
    if not GNU_TIME:
        notes.append("GNU time is missing (apt-get install time): ru_maxrss includes "
                     "the benchmark's own RSS")
    return notes


def run_all(ctx, workloads, cases):
    by_id = {wl.id: wl for wl in workloads}
    for case in cases:
        run_case(ctx, case, by_id)
        if not ctx.args.no_limits:
            for key in case.info:
                run_stage(ctx, key, by_id)


def write_results(ctx, text):
    a = ctx.args
    out = Path(a.output) if a.output else (
        WORK_DIR / "RESULTS-quick.md" if a.quick else BENCH_DIR / "RESULTS.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)
    log(f"written to {out}")


def terminate(signum, frame):
    """SIGTERM and SIGHUP end the run like Ctrl-C: devices are still undone."""
    raise KeyboardInterrupt(f"signal {signum}")


def main():
    if len(sys.argv) > 1 and sys.argv[1] in HELPERS:
        return HELPERS[sys.argv[1]](*sys.argv[2:])
    a = parse_args()
    ctx = Context(a)
    check_tools(ctx)
    notes = setup_notes(ctx)
    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGHUP, terminate)
    TMPFS_DIR.mkdir(parents=True, exist_ok=True)
    try:
        workloads = make_workloads(a.workloads, ctx.scale)
        log(f"preparing workloads ({ctx.scale}) under {WORK_DIR / ctx.scale}")
        for wl in workloads:
            wl.prepare(ctx.bmaptool, need_mapped=not a.no_limits)
        cases = [create_case(ctx, wl) for wl in workloads] if a.only != "copy" else []
        cases += plan_copy(ctx, workloads, notes)
        if a.prepare_only:
            log("workloads and inputs are ready; nothing measured (--prepare-only)")
            return
        run_all(ctx, workloads, cases)
        text = report(ctx, workloads, cases, notes)
    finally:
        teardown(ctx)
    write_results(ctx, text)


if __name__ == "__main__":
    main()
