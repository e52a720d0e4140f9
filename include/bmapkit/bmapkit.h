/* SPDX-License-Identifier: MIT */
/*
 * bmapkit: create, read and write block maps (bmap files) and flash disk images with
 * them. Include this header for the whole public interface.
 */
#ifndef BMAPKIT_BMAPKIT_H
#define BMAPKIT_BMAPKIT_H

#include "bmapkit/api.h"
#include "bmapkit/bmap.h"
#include "bmapkit/copy.h"
#include "bmapkit/create.h"
#include "bmapkit/dest.h"
#include "bmapkit/digest.h"
#include "bmapkit/disk.h"
#include "bmapkit/error.h"
#include "bmapkit/fetch.h"
#include "bmapkit/format.h"
#include "bmapkit/map.h"
#include "bmapkit/signature.h"
#include "bmapkit/source.h"
#include "bmapkit/version.h"

#endif
