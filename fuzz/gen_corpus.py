#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write the seed corpus of fuzz_bmap_parse: small bmaps of every format version
(each in the layout that version uses, with its file checksum filled in) and a few
broken ones, so the fuzzer starts from inputs that reach deep into the parser.

Usage: gen_corpus.py [OUTPUT_DIR]   (default: corpus/fuzz_bmap_parse next to this file)
"""
import hashlib
import os
import sys

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


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "corpus", "fuzz_bmap_parse")
    os.makedirs(out, exist_ok=True)

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

    for name, data in seeds.items():
        assert len(data) < 8192, name
        with open(os.path.join(out, name + ".bmap"), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
