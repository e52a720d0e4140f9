SUMMARY = "Intel Intelligent Storage Acceleration Library (ISA-L)"
DESCRIPTION = "Optimized low-level functions for storage: erasure codes, CRCs and \
igzip, the DEFLATE and gzip engine that bmapkit decodes gzip images with."
HOMEPAGE = "https://github.com/intel/isa-l"
SECTION = "libs"
LICENSE = "BSD-3-Clause"
LIC_FILES_CHKSUM = "file://LICENSE;md5=2476688d0948d4a3f7c69473a603540d"

# v2.31.1
SRC_URI = "git://github.com/intel/isa-l.git;protocol=https;branch=master;destsuffix=${BP}"
SRCREV = "c387163fcbca62701d646149564c550c78a4f985"

inherit autotools pkgconfig

# x86 builds assemble with nasm. Other CPUs need no assembler beyond the compiler: the
# library has assembly for aarch64 and ppc64le and portable C for the rest.
DEPENDS = "nasm-native"

# configure takes a set AS to be the nasm-compatible assembler, so it must not see the
# cross assembler the build environment exports.
AS[unexport] = "1"

# On x86, configure replaces LDFLAGS with its own; passing them with the compiler keeps
# the build's linker flags (GNU hash and the rest) for every variant.
HOST_CC_ARCH:append = " ${LDFLAGS}"

# bmapkit-native and nativesdk-bmapkit link it too.
BBCLASSEXTEND = "native nativesdk"
