#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Print the SONAME of a shared library (following the development symlink), so that
the build loads at run time exactly the library it was compiled against. Reads the ELF
file itself: it works for any target of a cross build, with no binutils needed."""
import struct
import sys

SHT_DYNAMIC = 6
DT_NULL, DT_SONAME = 0, 14


def soname(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF":
        raise ValueError("not an ELF file")
    wide = data[4] == 2
    end = "<" if data[5] == 1 else ">"
    if wide:
        shoff, = struct.unpack_from(end + "Q", data, 0x28)
        shentsize, shnum = struct.unpack_from(end + "HH", data, 0x3A)
        shdr, dyn = end + "IIQQQQIIQQ", end + "qQ"
    else:
        shoff, = struct.unpack_from(end + "I", data, 0x20)
        shentsize, shnum = struct.unpack_from(end + "HH", data, 0x2E)
        shdr, dyn = end + "IIIIIIIIII", end + "iI"
    sections = [struct.unpack_from(shdr, data, shoff + i * shentsize) for i in range(shnum)]
    for _name, kind, _flags, _addr, offset, size, link, _info, _align, entsize in sections:
        if kind != SHT_DYNAMIC:
            continue
        strtab = sections[link][4]
        for pos in range(offset, offset + size, entsize):
            tag, value = struct.unpack_from(dyn, data, pos)
            if tag == DT_NULL:
                break
            if tag == DT_SONAME:
                text = data[strtab + value:data.index(b"\0", strtab + value)]
                return text.decode()
    raise ValueError("no SONAME")


def main():
    for path in sys.argv[1:]:
        try:
            print(soname(path))
        except (OSError, ValueError, struct.error, IndexError) as e:
            sys.exit(f"elf-soname: {path}: {e}")


if __name__ == "__main__":
    main()
