/* SPDX-License-Identifier: MIT */
/* The pipeline's buffers, and the thread side of its state: waking, failing, stopping. */
#include "copy/pipeline.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

bool pipeline_source_is_local(const struct bk_copy *job)
{
    const struct bk_source *s = job->src;
    if (!job->bmap || !s->seekable || s->decodes)
        return false;
    for (; s; s = s->below)
        if (s->ops->fetched || s->works_ahead)
            return false;
    return true;
}

int pipeline_init(struct pipeline *p, struct bk_copy *job, unsigned hashers, struct bk_error *err)
{
    memset(p, 0, sizeof *p);
    p->job = job;
    p->nslots = job->ndests > 1 ? MANY_SLOT_COUNT : SLOT_COUNT;
    /* Several destinations have twice the slots already, and their writers, not the
       hand-overs, set the pace. */
    p->slot_bytes =
        job->ndests == 1 && pipeline_source_is_local(job) ? WIDE_SLOT_BYTES : SLOT_BYTES;
    ring_init(&p->state, p->nslots, hashers);
    p->head_bytes = job->head_bytes ? job->head_bytes : BK_COPY_HEAD_BYTES;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->to_reader, NULL);
    pthread_cond_init(&p->to_hashers, NULL);
    pthread_cond_init(&p->to_writer, NULL);
    pthread_cond_init(&p->to_caller, NULL);
    pthread_mutex_init(&p->head_lock, NULL);
    ring_set_writers(&p->state, (unsigned)job->ndests);
    p->writers = calloc(job->ndests, sizeof *p->writers);
    if (!p->writers)
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    for (size_t w = 0; w < job->ndests; w++)
        p->writers[w] = (struct writer_arg){p, (unsigned)w, 0};
    /* The slots and the scratch buffer in one block on huge pages where the kernel
       offers them: a few page faults instead of one per 4 KiB of the ring. */
    size_t bytes = (size_t)p->nslots * p->slot_bytes + SCRATCH_BYTES;
    if (posix_memalign((void **)&p->ring, HUGE_PAGE_BYTES, bytes) != 0) {
        p->ring = NULL;
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory for copy buffers");
    }
#ifdef MADV_HUGEPAGE
    (void)madvise(p->ring, bytes, MADV_HUGEPAGE);
#endif
    for (size_t i = 0; i < p->nslots; i++)
        p->slots[i].data = p->ring + i * p->slot_bytes;
    p->scratch = p->ring + (size_t)p->nslots * p->slot_bytes;
    p->head = calloc(1, (size_t)p->head_bytes);
    if (!p->head)
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    return 0;
}

void pipeline_destroy(struct pipeline *p)
{
    free(p->ring);
    free(p->head);
    free(p->head_parts);
    free(p->writers);
    pthread_mutex_destroy(&p->head_lock);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->to_reader);
    pthread_cond_destroy(&p->to_hashers);
    pthread_cond_destroy(&p->to_writer);
    pthread_cond_destroy(&p->to_caller);
}

void pipeline_wake_locked(struct pipeline *p, bool any)
{
    unsigned wake = ring_wakeups(&p->state, any);
    if (wake & RING_WAKE_READER)
        pthread_cond_signal(&p->to_reader);
    if (wake & RING_WAKE_HASHERS)
        pthread_cond_broadcast(&p->to_hashers);
    /* Writers share one condition: with several, each must see the news. */
    if ((wake & RING_WAKE_WRITER) && p->state.writers > 1)
        pthread_cond_broadcast(&p->to_writer);
    else if (wake & RING_WAKE_WRITER)
        pthread_cond_signal(&p->to_writer);
}

void pipeline_wake_from_writer_locked(struct pipeline *p, bool any)
{
    unsigned wake = ring_wakeups(&p->state, any);
    if (wake & RING_WAKE_READER)
        pthread_cond_signal(&p->to_reader);
    if (wake & RING_WAKE_HASHERS)
        pthread_cond_broadcast(&p->to_hashers);
}

void pipeline_fail_locked(struct pipeline *p, const struct bk_error *e)
{
    ring_fail(&p->state, e);
    pthread_cond_broadcast(&p->to_reader);
    pthread_cond_broadcast(&p->to_hashers);
    pthread_cond_broadcast(&p->to_writer);
    pthread_cond_broadcast(&p->to_caller);
}

void pipeline_fail(struct pipeline *p, const struct bk_error *e)
{
    pthread_mutex_lock(&p->lock);
    pipeline_fail_locked(p, e);
    pthread_mutex_unlock(&p->lock);
}

bool pipeline_check_cancel(struct pipeline *p)
{
    if (!copy_cancelled(p->job))
        return false;
    struct bk_error e;
    bk_error_set(&e, BK_E_CANCELLED, 0, "interrupted");
    pipeline_fail(p, &e);
    return true;
}
