SUMMARY = "Create bmap files and flash disk images with them, a drop-in for bmaptool"
DESCRIPTION = "bmapkit writes disk images to block devices, copying only the blocks \
a bmap file marks as mapped and checking them against the bmap's checksums. It \
decompresses gzip, bzip2, xz, zstd, lz4, lzop and archive images in-process, creates \
bmaps, and takes the same command line and bmap format as bmaptool."
SECTION = "console/utils"
LICENSE = "MIT"
LIC_FILES_CHKSUM = "file://LICENSE;md5=5953276fcd0a4f5bb7d4abf2c7521753"

# Where the sources come from. Both are weak so that one line each in local.conf points
# the target, native and nativesdk builds at another clone (keep the protocol= and
# branch= parameters) or another commit.
BMAPKIT_GIT_URI ?= "git://git.example.org/bmapkit.git;protocol=https;branch=main"
BMAPKIT_SRCREV ?= "75e45037d9ccf1cb87d84f117465741293cb8081"
SRCREV = "${BMAPKIT_SRCREV}"
PV = "0.2.90+git"

# Unpacked into ${BP}, which is where S points by default in every release the layer
# supports; so S is not set here.
SRC_URI = "${BMAPKIT_GIT_URI};destsuffix=${BP}"

# One recipe per library that meson.build asks for (tests/yocto/check-layer.py
# compares the two); isa-l comes from this layer, the others from openembedded-core.
DEPENDS = "expat openssl isa-l zlib bzip2 xz zstd lz4 xxhash lzo libarchive"

# bash-completion: the completion goes where the bash-completion recipe says, in
# ${PN}-bash-completion.
inherit meson pkgconfig bash-completion

# Distribution compilers bring warnings of their own: they must not stop a build.
# The udev rules go where OpenEmbedded keeps them, whether udev is in the sysroot or not.
EXTRA_OEMESON = "-Dtests=disabled -Dfuzz=disabled -Dwerror=false \
                 -Dudevrulesdir=${nonarch_base_libdir}/udev/rules.d"

# gpgme: check OpenPGP signatures of bmaps (runs gpg, hence gnupg-gpg).
# curl: images and bmaps from http, https and ftp URLs.
# nbd: write to NBD exports; needs a libnbd recipe, which no public layer has yet.
# bmaptool-name: also install the command as "bmaptool".
PACKAGECONFIG ??= "${BMAPKIT_DEFAULT_PACKAGECONFIG}"
BMAPKIT_DEFAULT_PACKAGECONFIG = "gpgme curl"
# The build host's copy only creates bmaps for image builds: no signature checks.
BMAPKIT_DEFAULT_PACKAGECONFIG:class-native = ""
PACKAGECONFIG[gpgme] = "-Dgpgme=enabled,-Dgpgme=disabled,gpgme,gnupg-gpg"
PACKAGECONFIG[curl] = "-Dcurl=enabled,-Dcurl=disabled,curl,libcurl"
PACKAGECONFIG[nbd] = "-Dnbd=enabled,-Dnbd=disabled,libnbd,libnbd"
PACKAGECONFIG[bmaptool-name] = "-Dinstall_bmaptool_name=true,-Dinstall_bmaptool_name=false"

# libcurl, libnbd and libarchive are loaded when first needed, not linked, so the
# automatic shared-library dependencies do not see them: they are named here and in
# the PACKAGECONFIG lines above.
RDEPENDS:${PN} += "libarchive"

# The switch that makes image builds run bmapkit (README.md): with
#   PREFERRED_PROVIDER_bmaptool-native = "bmapkit-native"
# in local.conf or a distro conf, the native recipe provides bmaptool-native (for
# CONVERSION_DEPENDS_bmap and wic's dependencies) and installs the "bmaptool" name.
# Without it the recipe stays out of bmaptool's way: no second provider, and no second
# ${bindir}/bmaptool in a sysroot that also holds bmaptool-native.
BMAPKIT_IS_BMAPTOOL = "${@'1' if d.getVar('PREFERRED_PROVIDER_bmaptool-native') == 'bmapkit-native' else '0'}"
BMAPKIT_BMAPTOOL_NATIVE = "${@'bmaptool-native' if d.getVar('BMAPKIT_IS_BMAPTOOL') == '1' else ''}"
PROVIDES:append:class-native = " ${BMAPKIT_BMAPTOOL_NATIVE}"
RPROVIDES:${PN}:append:class-native = " ${BMAPKIT_BMAPTOOL_NATIVE}"
PACKAGECONFIG:append:class-native = " ${@'bmaptool-name' if d.getVar('BMAPKIT_IS_BMAPTOOL') == '1' else ''}"

# On a target or in an SDK, the "bmaptool" name and the bmaptool package cannot share
# an image; the native variant has no packages.
BMAPKIT_CONFLICTS = "${@bb.utils.contains('PACKAGECONFIG', 'bmaptool-name', 'bmaptool', '', d)}"
BMAPKIT_CONFLICTS:class-native = ""
RCONFLICTS:${PN} = "${BMAPKIT_CONFLICTS}"

BBCLASSEXTEND = "native nativesdk"
