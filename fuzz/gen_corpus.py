#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write the seed corpora of the fuzz targets, one folder per target, so that each
fuzzer starts from inputs that reach deep into its parser:

- fuzz_bmap_parse: small bmaps of every format version (each in the layout that
  version uses, with its file checksum filled in) and a few broken ones;
- fuzz_xz_index, fuzz_zstd_frames, fuzz_lzop, fuzz_archive, fuzz_format_stack: small
  images compressed or archived by the real tools (xz, zstd, lzop, tar, zip, gzip,
  bzip2, lz4), in the layouts the decoders treat differently, and damaged copies.

The tools' outputs are deterministic (fixed names, times and owners), so running this
again gives the same files as long as the tools' versions do not change what they write.

Usage: gen_corpus.py [OUTPUT_DIR]   (default: corpus/ next to this file)
"""
import hashlib
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import tempfile

HEX_LEN = {"sha1": 40, "sha224": 56, "sha256": 64, "sha384": 96, "sha512": 128, "md5": 32}


def layout_of(version):
    if version in ("1.0", "1.1", "1.2", "1.3"):
        return version
    return "2.0"


def generate(version="2.0", image_size=100000, block_size=4096, ranges=((0, 1), (3, 5), (9, 9)),
             hash_name="sha256", digests=True, crlf=False):
    layout = layout_of(version)
    if layout in ("1.1", "1.2", "1.3"):
        hash_name, attr = "sha1", "sha1"
    else:
        attr = "chksum"
    blocks = -(-image_size // block_size) if block_size else 0
    mapped = sum(b - a + 1 for a, b in ranges)

    lines = ['<?xml version="1.0" ?>', "<!-- seed for fuzz_bmap_parse -->",
             f'<bmap version="{version}">',
             f"    <ImageSize> {image_size} </ImageSize>",
             f"    <BlockSize> {block_size} </BlockSize>",
             f"    <BlocksCount> {blocks} </BlocksCount>"]
    mapped_line = f"    <MappedBlocksCount> {mapped} </MappedBlocksCount>"
    if layout != "1.2":
        lines.append(mapped_line)
    placeholder = None
    if layout == "2.0":
        placeholder = "0" * HEX_LEN[hash_name]
        lines.append(f"    <ChecksumType> {hash_name} </ChecksumType>")
        lines.append(f"    <BmapFileChecksum> {placeholder} </BmapFileChecksum>")
    elif layout == "1.3":
        placeholder = "0" * 40
        lines.append(f"    <BmapFileSHA1> {placeholder} </BmapFileSHA1>")
    lines.append("    <BlockMap>")
    for i, (a, b) in enumerate(ranges):
        text = f"{a}" if a == b else f"{a}-{b}"
        if digests and layout != "1.0":
            d = hashlib.new(hash_name, f"range {i}".encode()).hexdigest()
            lines.append(f'        <Range {attr}="{d}"> {text} </Range>')
        else:
            lines.append(f"        <Range> {text} </Range>")
    lines.append("    </BlockMap>")
    if layout == "1.2":
        lines.append(mapped_line)
    lines.append("</bmap>")

    eol = "\r\n" if crlf else "\n"
    doc = (eol.join(lines) + eol).encode()
    if placeholder:
        # The writer's procedure: hash with the value all zeros, then put the digest there.
        alg = "sha1" if layout == "1.3" else hash_name
        digest = hashlib.new(alg, doc).hexdigest().encode()
        doc = doc.replace(placeholder.encode(), digest, 1)
    return doc


def bmap_seeds():
    seeds = {}
    for v in ("1.0", "1.1", "1.2", "1.3", "1.4", "2.0", "2.5"):
        seeds[f"valid-v{v}"] = generate(version=v)
    for h in HEX_LEN:
        seeds[f"valid-2.0-{h}"] = generate(hash_name=h)
    seeds["valid-2.0-no-chksum"] = generate(digests=False)
    seeds["valid-2.0-crlf"] = generate(crlf=True)
    seeds["valid-2.0-empty-map"] = generate(ranges=())
    seeds["valid-2.0-partial-last"] = generate(image_size=4097, block_size=4096,
                                               ranges=((0, 1),))
    seeds["valid-2.0-many"] = generate(image_size=4096 * 400, ranges=tuple(
        (3 * i, 3 * i + i % 2) for i in range(40)), digests=False)
    seeds["valid-1.2-many"] = generate(version="1.2", image_size=512 * 100, block_size=512,
                                       ranges=tuple((2 * i, 2 * i) for i in range(30)))

    # Broken on purpose: each fails a different check.
    seeds["invalid-v3.0"] = generate(version="3.0")
    seeds["invalid-v1.7"] = generate(version="1.7")
    seeds["invalid-checksum"] = generate().replace(b"seed for", b"Seed for")
    seeds["invalid-descending"] = generate(ranges=((0, 1), (5, 3)))
    seeds["invalid-beyond-end"] = generate(image_size=8192, ranges=((0, 2),))
    seeds["invalid-truncated"] = generate()[:300]
    seeds["invalid-doctype"] = (b'<?xml version="1.0"?>\n<!DOCTYPE bmap [<!ENTITY a "aaaa">]>\n'
                                b'<bmap version="2.0"><ImageSize>&a;</ImageSize></bmap>\n')
    seeds["invalid-wrong-root"] = generate().replace(b"<bmap ", b"<bmop ").replace(
        b"</bmap>", b"</bmop>")

    return {name + ".bmap": data for name, data in seeds.items()}


# --- compressed and archived images ---------------------------------------------------

# A fixed time for every file and archive member, so the tools write the same bytes.
MTIME = 1000000000
# The most a seed may take: small seeds keep the fuzzers fast.
SEED_MAX = 8192


def image(size, seed):
    """A small disk image: text, a run of zeros (a hole) and some noise, over and over."""
    rnd = random.Random(seed)
    out = bytearray()
    i = 0
    while len(out) < size:
        out += f"bmapkit fuzz seed, block {i}\n".encode() * 6
        out += bytes(300)
        out += rnd.randbytes(16)
        i += 1
    return bytes(out[:size])


def noise(size, seed):
    """Bytes that do not compress: stored blocks, raw zstd blocks."""
    return random.Random(seed).randbytes(size)


def flipped(data, at):
    """DATA with the byte at AT (from the end when negative) damaged."""
    b = bytearray(data)
    b[at] ^= 0x55
    return bytes(b)


def tar_without_pid(data):
    """GNU tar names a pax sparse member after its process id: make that 0, and the
    header checksum right again."""
    b = bytearray(data)
    for m in re.finditer(rb"GNUSparseFile\.(\d+)", data):
        b[m.start(1):m.end(1)] = b"0" * (m.end(1) - m.start(1))
        h = m.start() - m.start() % 512
        b[h + 148:h + 156] = b" " * 8
        b[h + 148:h + 156] = b"%06o\0 " % sum(b[h:h + 512])
    return bytes(b)


def zip_encrypted(data):
    """The zip file DATA with its members marked encrypted (bit 0 of their flags): zip -P
    would write random bytes."""
    b = bytearray(data)
    for magic, flags_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = b.find(magic)
        while at >= 0:
            b[at + flags_at] |= 1
            at = b.find(magic, at + 4)
    return bytes(b)


def skippable(payload, nibble=0):
    """A zstd skippable frame (magic 0x184D2A5?, little-endian size, payload)."""
    return struct.pack("<II", 0x184D2A50 | nibble, len(payload)) + payload


class Tools:
    """The real compressors and archivers, run in a scratch folder WORK."""

    def __init__(self, work):
        self.work = work

    def run(self, *cmd, data=None):
        env = dict(os.environ, TZ="UTC")  # zip stores local time
        return subprocess.run(cmd, cwd=self.work, input=data, env=env, check=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE).stdout

    def put(self, name, data, mode=0o644):
        path = os.path.join(self.work, name)
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, mode)
        os.utime(path, (MTIME, MTIME))
        return name

    def xz(self, data, *opts):
        # Preset 0: a 256 KiB dictionary, where the default's 8 MiB would slow every run.
        return self.run("xz", "-c", "-q", "-0", *opts, data=data)

    def zstd(self, data, *opts):
        # From a file, so that the frame records its content size.
        return self.run("zstd", "-q", "-c", *opts, self.put("part", data))

    def lzop(self, data, *opts):
        return self.run("lzop", "-c", *opts, self.put("image", data))

    def gzip(self, data):
        return self.run("gzip", "-n", "-c", data=data)

    def bzip2(self, data):
        return self.run("bzip2", "-c", data=data)

    def tar(self, *names, fmt="ustar", opts=()):
        # pax headers would otherwise record access times and the process id.
        pax = ("--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime",)
        return self.run("tar", "-c", "-f", "-", "-b", "1", f"--format={fmt}", "--owner=0",
                        "--group=0", "--numeric-owner", f"--mtime=@{MTIME}", "--sort=name",
                        *(pax if fmt == "pax" else ()), *opts, *names)

    def zip(self, *names, opts=(), data=None):
        """A zip file written to a file (sizes in the local headers)."""
        path = os.path.join(self.work, "out.zip")
        if os.path.exists(path):
            os.remove(path)
        self.run("zip", "-q", "-X", *opts, "out.zip", *names, data=data)
        with open(path, "rb") as f:
            return f.read()

    def zip_streamed(self, *names):
        """A zip file written to a pipe: sizes and CRCs in data descriptors after the data."""
        return self.run("zip", "-q", "-X", "-", *names)


def xz_seeds(t):
    img = image(24 * 1024, seed=1)
    blocks = t.xz(img, "-T2", "--block-size=4096")
    return {
        "valid-blocks.xz": blocks,
        # One thread writes no sizes in the block headers: the index alone gives them.
        "valid-blocks-t1.xz": t.xz(img, "-T1", "--block-size=4096"),
        "valid-blocks-crc32.xz": t.xz(img, "-T2", "--block-size=8192", "-C", "crc32"),
        "valid-blocks-sha256.xz": t.xz(img, "-T2", "--block-size=8192", "-C", "sha256"),
        "valid-blocks-no-check.xz": t.xz(img, "-T2", "--block-size=8192", "-C", "none"),
        "valid-single-block.xz": t.xz(img, "-T1"),
        "valid-two-streams-padded.xz": blocks + bytes(8) + t.xz(img[:5000], "-T2",
                                                                 "--block-size=1024"),
        "valid-empty.xz": t.xz(b""),
        "invalid-truncated.xz": blocks[:-7],
        "invalid-trailing-garbage.xz": blocks + b"junk",
        "invalid-padding.xz": blocks + bytes(3),
        "invalid-index.xz": flipped(blocks, -20),
        "invalid-block-data.xz": flipped(blocks, 100),
    }


def zstd_seeds(t):
    img = image(30 * 1024, seed=2)
    parts = [t.zstd(img[:10000]), t.zstd(img[10000:20000]), t.zstd(img[20000:])]
    frames = b"".join(parts)
    return {
        "valid-frames.zst": frames,
        "valid-frames-no-check.zst": t.zstd(img[:15000], "--no-check") + t.zstd(img[15000:],
                                                                                 "--no-check"),
        "valid-frames-levels.zst": t.zstd(img[:10000], "-1") + t.zstd(img[10000:], "-19"),
        "valid-frames-skippable.zst": (skippable(b"bmapkit") + parts[0] + skippable(b"", 15)
                                       + parts[1]),
        "valid-frames-empty-frame.zst": parts[0] + t.zstd(b"") + parts[1],
        # A long run of zeros makes RLE blocks, noise raw ones.
        "valid-frames-rle-raw.zst": t.zstd(bytes(300 * 1024)) + t.zstd(noise(3000, 2)),
        "valid-single-frame.zst": t.zstd(img),
        # Read from a pipe, zstd does not know the size and the frame does not record it.
        "valid-no-content-size.zst": t.run("zstd", "-q", "-c", data=img[:8000]) + parts[1],
        "invalid-truncated.zst": frames[:-5],
        "invalid-trailing-garbage.zst": frames + b"junk",
        "invalid-content-size.zst": flipped(frames, len(parts[0]) + 5),
        "invalid-block-data.zst": flipped(frames, len(parts[0]) // 2),
        "invalid-skippable-truncated.zst": frames + skippable(bytes(100))[:50],
    }


def lzop_seeds(t):
    img = image(20 * 1024, seed=3)
    plain = t.lzop(img)
    return {
        "valid.lzo": plain,
        "valid-fast.lzo": t.lzop(img, "-1"),
        "valid-best.lzo": t.lzop(img, "-9"),
        "valid-crc32.lzo": t.lzop(img, "--crc32"),
        "valid-no-checksum.lzo": t.lzop(img, "--no-checksum"),
        "valid-stored.lzo": t.lzop(noise(3000, 3)),
        # Blocks of 256 KiB, the last one short.
        "valid-blocks.lzo": t.lzop(bytes(600 * 1024)),
        "valid-two-files.lzo": t.lzop(img[:6000]) + t.lzop(img[6000:9000]),
        "valid-zero-padding.lzo": plain + bytes(64),
        "valid-empty.lzo": t.lzop(b""),
        "invalid-truncated.lzo": plain[:-9],
        "invalid-header-checksum.lzo": flipped(plain, 30),
        "invalid-block-data.lzo": flipped(plain, len(plain) // 2),
        "invalid-trailing-garbage.lzo": plain + b"junk",
    }


def archive_seeds(t):
    img = image(3 * 1024, seed=4)
    t.put("disk.img", img)
    t.put("other.img", image(1000, seed=5))
    t.put("x" * 120 + ".img", img[:2000])
    os.makedirs(os.path.join(t.work, "d"), exist_ok=True)
    os.utime(os.path.join(t.work, "d"), (MTIME, MTIME))
    for name, target in (("link", "disk.img"),):
        if not os.path.lexists(os.path.join(t.work, name)):
            os.symlink(target, os.path.join(t.work, name))
    if not os.path.exists(os.path.join(t.work, "hard")):
        os.link(os.path.join(t.work, "disk.img"), os.path.join(t.work, "hard"))
    # A sparse member: data, a 1 MiB hole, data.
    with open(os.path.join(t.work, "sparse.img"), "wb") as f:
        f.write(img[:1024])
        f.seek(1 << 20)
        f.write(img[:1024])
    os.utime(os.path.join(t.work, "sparse.img"), (MTIME, MTIME))

    tar = t.tar("disk.img")
    stored = t.zip("disk.img", opts=("-0",))
    return {
        "valid.tar": tar,
        # Directories and links come before the image; the hard link after it has no data.
        "valid-gnu-dir-link-first.tar": t.tar("d", "link", "disk.img", "hard", fmt="gnu"),
        "valid-pax-long-name.tar": t.tar("x" * 120 + ".img", fmt="pax"),
        "valid-gnu-sparse.tar": t.tar("sparse.img", fmt="gnu", opts=("--sparse",)),
        "valid-pax-sparse.tar": tar_without_pid(t.tar("sparse.img", fmt="pax",
                                                      opts=("--sparse",))),
        "valid-two-files.tar": t.tar("disk.img", "other.img"),
        "valid-stored.zip": stored,
        "valid-deflated.zip": t.zip("disk.img", "other.img", opts=("-9",)),
        "valid-streamed.zip": t.zip_streamed("disk.img"),
        "valid-dir-first.zip": t.zip("d", "disk.img"),
        "valid-comment.zip": t.zip("disk.img", opts=("-z",), data=b"a comment\n"),
        "invalid-encrypted.zip": zip_encrypted(stored),
        "invalid-truncated.tar": tar[:-700],
        "invalid-header-checksum.tar": flipped(tar, 100),
        "invalid-no-regular-file.tar": t.tar("d", "link"),
        "invalid-truncated.zip": stored[:-30],
        "invalid-crc.zip": flipped(stored, 30 + len("disk.img") + 10),
        "invalid-trailing-garbage.zip": stored + b"junk",
    }


def format_stack_seeds(t):
    img = image(16 * 1024, seed=6)
    t.put("disk.img", img[:3000])
    tar = t.tar("disk.img")
    gz = t.gzip(img)
    return {
        "raw.img": img[:4096],
        "gzip.gz": gz,
        "gzip-two-members.gz": t.gzip(img[:8000]) + t.gzip(img[8000:]),
        # pbzip2's layout: several streams, decoded in parallel from a file.
        "bzip2-two-streams.bz2": t.bzip2(img[:8000]) + t.bzip2(img[8000:]),
        "xz-blocks.xz": t.xz(img, "-T2", "--block-size=4096"),
        "xz-single-block.xz": t.xz(img, "-T1"),
        "zstd-frames.zst": t.zstd(img[:8000]) + t.zstd(img[8000:]),
        "zstd-skippable-first.zst": skippable(b"meta") + t.run("zstd", "-q", "-c", data=img),
        "lz4.lz4": t.run("lz4", "-q", "-c", data=img),
        "lz4-legacy.lz4": t.run("lz4", "-q", "-l", "-c", data=img),
        "lzop.lzo": t.lzop(img),
        "zip.zip": t.zip("disk.img"),
        "tar.tar": tar,
        "tar-gzip.tar.gz": t.gzip(tar),
        "tar-xz-blocks.tar.xz": t.xz(tar, "-T2", "--block-size=2048"),
        "tar-zstd-frames.tar.zst": t.zstd(tar[:2000]) + t.zstd(tar[2000:]),
        "gzip-truncated.gz": gz[:-10],
        "bzip2-damaged.bz2": flipped(t.bzip2(img), 200),
        "lz4-trailing-garbage.lz4": t.run("lz4", "-q", "-c", data=img) + b"junk",
        "xz-blocks-damaged.xz": flipped(t.xz(img, "-T2", "--block-size=4096"), 300),
    }


TARGETS = {
    "fuzz_bmap_parse": lambda t: bmap_seeds(),
    "fuzz_xz_index": xz_seeds,
    "fuzz_zstd_frames": zstd_seeds,
    "fuzz_lzop": lzop_seeds,
    "fuzz_archive": archive_seeds,
    "fuzz_format_stack": format_stack_seeds,
}


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "corpus")
    for tool in ("xz", "zstd", "lzop", "gzip", "bzip2", "lz4", "tar", "zip"):
        if not shutil.which(tool):
            sys.exit(f"gen_corpus.py: {tool} is needed to make the seeds")
    with tempfile.TemporaryDirectory() as work:
        for target, make in TARGETS.items():
            folder = os.path.join(out, target)
            os.makedirs(folder, exist_ok=True)
            for name, data in make(Tools(work)).items():
                assert len(data) <= SEED_MAX, f"{target}/{name}: {len(data)} bytes"
                with open(os.path.join(folder, name), "wb") as f:
                    f.write(data)


if __name__ == "__main__":
    main()
