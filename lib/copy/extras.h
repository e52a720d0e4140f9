/* SPDX-License-Identifier: MIT */
/*
 * Internal: what a copy does besides the bmap's ranges. Forced ranges (image bytes
 * written although the bmap leaves them out), making the unmapped rest read as zeros,
 * and moving a GPT's backup to the end of a larger disk. The job reaches them through
 * a few calls, so the pipeline's stages never see them.
 */
#ifndef BMAPKIT_COPY_EXTRAS_H
#define BMAPKIT_COPY_EXTRAS_H

#include "copy/copy_impl.h"

/* A byte range [start, end) of the image. */
struct copy_span {
    uint64_t start, end;
};

struct copy_forced;

struct copy_extras {
    struct copy_span *forced; /* as the caller gave them */
    size_t n_forced;
    bool zero_unmapped;
    bool relocate_gpt;

    /* While the job runs: the caller's bmap and source, and what stands in for them. */
    const struct bk_bmap *saved_bmap;
    struct bk_source *saved_src;
    struct copy_forced *run; /* force_ranges.c */
};

/* The job's extras, made with the job; NULL with ERR filled when out of memory. */
struct copy_extras *copy_extras_get(struct bk_copy *job, struct bk_error *err);
void copy_extras_free(struct bk_copy *job);

/*
 * Before the copy: with forced ranges, put a bmap that also lists them and a source
 * that notes their digests in the job's place (force_ranges.c). 0, or -1 with ERR.
 */
int copy_extras_begin(struct bk_copy *job, struct bk_error *err);

/*
 * Once every range is written and verified, before the head: give the forced ranges
 * the digests read-back checks, and zero the unmapped ranges when asked.
 */
int copy_extras_after_data(struct bk_copy *job, struct bk_error *err);

/* Give the job its own bmap and source back (in any case, also after a failure). */
void copy_extras_end(struct bk_copy *job);

/* Digests of the forced ranges into the job's bmap; ranges_unchecked loses them. */
void copy_forced_finish(struct bk_copy *job);

/* Make the image's unmapped ranges read as zeros (unmapped.c). */
int copy_zero_unmapped(struct bk_copy *job, struct bk_error *err);

/* After the head and the read-back: look at the destination's GPT, and move its
   backup when the job asks (gpt.c). */
int copy_gpt(struct bk_copy *job, struct bk_error *err);

/*
 * Before anything is written, with a seekable image: refuse (BK_E_UNSUPPORTED) to move
 * a GPT that the copy would find it cannot move.
 */
int copy_gpt_precheck(struct bk_copy *job, struct bk_error *err);

#endif
