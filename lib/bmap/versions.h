/* SPDX-License-Identifier: MIT */
/*
 * Internal: which checksum elements and Range attributes each bmap format version has.
 * The parser refuses content the declared version lacks: read the version's way, it
 * would be ignored, and with it the checksums it carries.
 */
#ifndef BMAPKIT_BMAP_VERSIONS_H
#define BMAPKIT_BMAP_VERSIONS_H

#include <stdbool.h>
#include <string.h>

/* The checksum-bearing parts of a bmap that only some versions define. */
enum bmap_feature {
    BMAP_FEATURE_NONE = 0,      /* anything else: every version has it */
    BMAP_FEATURE_CHECKSUM_TYPE, /* <ChecksumType> */
    BMAP_FEATURE_FILE_CHECKSUM, /* <BmapFileChecksum> */
    BMAP_FEATURE_FILE_SHA1,     /* <BmapFileSHA1> */
    BMAP_FEATURE_RANGE_CHKSUM,  /* Range attribute chksum */
    BMAP_FEATURE_RANGE_SHA1,    /* Range attribute sha1 */
};

/* Versions 1.4 and 2.x name their hash in ChecksumType (1.4 is 2.0 under another number). */
static inline bool bmap_version_is_2_0_layout(unsigned major, unsigned minor)
{
    return major >= 2 || (major == 1 && minor == 4);
}

/* Whether version MAJOR.MINOR defines F. */
static inline bool bmap_version_has(unsigned major, unsigned minor, enum bmap_feature f)
{
    switch (f) {
    case BMAP_FEATURE_CHECKSUM_TYPE:
    case BMAP_FEATURE_FILE_CHECKSUM:
    case BMAP_FEATURE_RANGE_CHKSUM:
        return bmap_version_is_2_0_layout(major, minor);
    case BMAP_FEATURE_FILE_SHA1:
        return major == 1 && minor == 3;
    case BMAP_FEATURE_RANGE_SHA1:
        return major == 1 && minor >= 1 && minor <= 3;
    default:
        return true;
    }
}

/* The versions that define F, for messages ("only versions 1.4 and 2.x have it"). */
static inline const char *bmap_feature_versions(enum bmap_feature f)
{
    switch (f) {
    case BMAP_FEATURE_FILE_SHA1:
        return "only version 1.3 has it";
    case BMAP_FEATURE_RANGE_SHA1:
        return "only versions 1.1 to 1.3 have it";
    default:
        return "only versions 1.4 and 2.x have it";
    }
}

/* The Range attribute NAME as a feature; BMAP_FEATURE_NONE for attributes of no meaning. */
static inline enum bmap_feature bmap_range_attribute(const char *name)
{
    if (strcmp(name, "chksum") == 0)
        return BMAP_FEATURE_RANGE_CHKSUM;
    if (strcmp(name, "sha1") == 0)
        return BMAP_FEATURE_RANGE_SHA1;
    return BMAP_FEATURE_NONE;
}

#endif
