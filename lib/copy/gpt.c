/* SPDX-License-Identifier: MIT */
/*
 * A GPT image on a larger disk keeps its backup header and table at the image's end.
 * After the copy (written, verified, read back), this looks at the GPT on the
 * destination and, when asked, moves the backup to the disk's last sectors and points
 * the primary header at it. Each step leaves a valid GPT: the new backup is written and
 * flushed before the primary header names it, and a torn primary header leaves the new
 * backup where tools look for it, at the disk's last sector.
 */
#include "copy/extras.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

#define GPT_SIGNATURE "EFI PART"
#define GPT_TABLE_MAX ((size_t)4 << 20)
#define MBR_PROTECTIVE 0xEE

/* The fields of a GPT header this needs (UEFI 2.x, all little-endian). */
struct gpt_header {
    uint32_t size, crc;
    uint64_t my_lba, alt_lba, first_usable, last_usable, entries_lba;
    uint32_t entries, entry_size, entries_crc;
};

struct gpt {
    struct bk_copy *job;
    struct bk_dest *dest;
    struct bk_source *image; /* read the image here instead of the destination: a check
                                before the copy */
    uint32_t sector;
    uint64_t dev_lbas, image_lbas;
    uint8_t *lba01;  /* the first two sectors: MBR, primary header */
    uint8_t *backup; /* one sector: the backup header */
    uint8_t *table;  /* table_lbas sectors */
    uint64_t table_lbas;
    struct gpt_header primary, second;
    int mbr_entry; /* the protective partition's slot */
};

static uint32_t crc32_ieee(const uint8_t *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    while (n--) {
        c ^= *p++;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return ~c;
}

static uint64_t load_le64(const uint8_t *p)
{
    return bk_load_le32(p) | (uint64_t)bk_load_le32(p + 4) << 32;
}

static void store_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void store_le64(uint8_t *p, uint64_t v)
{
    store_le32(p, (uint32_t)v);
    store_le32(p + 4, (uint32_t)(v >> 32));
}

static int note(struct bk_copy *job, enum bk_copy_gpt state, const char *fmt, ...)
{
    job->stats.gpt = state;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(job->stats.gpt_note, sizeof job->stats.gpt_note, fmt, ap);
    va_end(ap);
    return 0;
}

static uint8_t *sectors(size_t bytes)
{
    size_t n = (bytes + 4095) / 4096 * 4096;
    uint8_t *p = aligned_alloc(4096, n);
    if (p)
        memset(p, 0, n);
    return p;
}

/* Read exactly LEN bytes at OFFSET of the destination, from the medium where it can. */
static int read_exact(struct bk_dest *d, uint8_t *buf, size_t len, uint64_t offset,
                      struct bk_error *err)
{
    while (len > 0) {
        size_t got;
        if (bk_dest_read(d, buf, len, offset, &got, err) < 0)
            return -1;
        if (got == 0)
            return bk_error_set(err, BK_E_IO, 0, "%s: reading the GPT ended early at byte %" PRIu64,
                                d->name, offset);
        buf += got;
        len -= got;
        offset += got;
    }
    return 0;
}

/* The image's bytes: from the source before the copy, from the destination after it. */
static int gpt_read(struct gpt *g, uint8_t *buf, size_t len, uint64_t offset, struct bk_error *err)
{
    if (g->image)
        return bk_source_pread_full(g->image, buf, len, offset, err);
    return read_exact(g->dest, buf, len, offset, err);
}

static void parse_header(const uint8_t *p, struct gpt_header *h)
{
    h->size = bk_load_le32(p + 12);
    h->crc = bk_load_le32(p + 16);
    h->my_lba = load_le64(p + 24);
    h->alt_lba = load_le64(p + 32);
    h->first_usable = load_le64(p + 40);
    h->last_usable = load_le64(p + 48);
    h->entries_lba = load_le64(p + 72);
    h->entries = bk_load_le32(p + 80);
    h->entry_size = bk_load_le32(p + 84);
    h->entries_crc = bk_load_le32(p + 88);
}

/* The header's CRC over its own size with the CRC field as zeros. */
static uint32_t header_crc(const uint8_t *p, uint32_t size)
{
    uint8_t copy[4096];
    memcpy(copy, p, size);
    memset(copy + 16, 0, 4);
    return crc32_ieee(copy, size);
}

/* What is wrong with the header in sector P that claims to be at LBA, or NULL. */
static const char *header_problem(const struct gpt *g, const uint8_t *p, struct gpt_header *h,
                                  uint64_t lba)
{
    if (memcmp(p, GPT_SIGNATURE, 8) != 0)
        return "no GPT signature";
    parse_header(p, h);
    if (h->size < 92 || h->size > g->sector)
        return "a header size out of range";
    if (header_crc(p, h->size) != h->crc)
        return "a header CRC that does not match";
    if (h->my_lba != lba)
        return "a header that gives another LBA as its own";
    if (h->entry_size < 128 || h->entry_size % 8 || h->entries == 0 ||
        (uint64_t)h->entries * h->entry_size > GPT_TABLE_MAX)
        return "a partition table size out of range";
    if (h->first_usable > h->last_usable)
        return "usable LBAs that end before they start";
    return NULL;
}

/* The table of header H, read into g->table, and whether its CRC matches. */
static int read_table(struct gpt *g, const struct gpt_header *h, bool *good, struct bk_error *err)
{
    if (gpt_read(g, g->table, (size_t)(g->table_lbas * g->sector), h->entries_lba * g->sector,
                 err) < 0)
        return -1;
    *good = crc32_ieee(g->table, (size_t)h->entries * h->entry_size) == h->entries_crc;
    return 0;
}

/* The protective MBR: one 0xEE partition and no other (else a hybrid, left alone). */
static const char *mbr_problem(struct gpt *g)
{
    const uint8_t *m = g->lba01;
    if (m[510] != 0x55 || m[511] != 0xAA)
        return "no protective MBR";
    g->mbr_entry = -1;
    int others = 0;
    for (int i = 0; i < 4; i++) {
        uint8_t type = m[446 + 16 * i + 4];
        if (type == MBR_PROTECTIVE && g->mbr_entry < 0)
            g->mbr_entry = i;
        else if (type != 0)
            others++;
    }
    if (g->mbr_entry < 0)
        return "no protective MBR";
    return others ? "a hybrid MBR (partitions besides the protective one)" : NULL;
}

/*
 * The steps of inspect(). Each returns 1 to go on, 0 once it has noted why the GPT
 * stays where it is (note() returns 0), and -1 on an error in ERR.
 */

/* Where the image's primary header lies (byte 512 or 4096) tells the sector size the GPT
 * is laid out for; LBAs mean nothing on a destination with another sector size. */
static int find_layout(struct gpt *g, uint64_t image_size, struct bk_error *err)
{
    struct bk_copy *job = g->job;
    uint32_t dev_sector = g->dest->logical_block ? g->dest->logical_block : 512;
    if (image_size < 3 * 512)
        return note(job, BK_COPY_GPT_NONE, "the image is too small to hold a GPT");
    uint8_t *probe = sectors(8192);
    if (!probe)
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    size_t want = image_size < 8192 ? 1024 : 8192;
    int rc = gpt_read(g, probe, want, 0, err);
    uint32_t found = 0;
    if (rc == 0 && memcmp(probe + 512, GPT_SIGNATURE, 8) == 0)
        found = 512;
    else if (rc == 0 && want == 8192 && memcmp(probe + 4096, GPT_SIGNATURE, 8) == 0)
        found = 4096;
    free(probe);
    if (rc < 0)
        return -1;
    if (!found)
        return note(job, BK_COPY_GPT_NONE, "the image has no GPT header at byte 512 or 4096");
    if (found != dev_sector)
        return note(job, BK_COPY_GPT_LEFT_ALONE,
                    "the image's GPT is laid out for %" PRIu32 "-byte sectors, and %s has %" PRIu32
                    "-byte sectors",
                    found, g->dest->name, dev_sector);
    g->sector = found;
    g->dev_lbas = g->dest->size / found;
    g->image_lbas = image_size / found;
    return 1;
}

/* The protective MBR and the primary header. Only a backup the header places at the
 * image's last LBA is the image's own one, left behind by a copy to a larger disk. */
static int check_primary_header(struct gpt *g, struct bk_error *err)
{
    struct bk_copy *job = g->job;
    const uint32_t ss = g->sector;
    g->lba01 = sectors(2 * ss);
    g->backup = sectors(ss);
    if (!g->lba01 || !g->backup)
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    if (gpt_read(g, g->lba01, 2 * ss, 0, err) < 0)
        return -1;
    const char *why = mbr_problem(g);
    if (why)
        return note(job, BK_COPY_GPT_LEFT_ALONE, "the image has %s", why);
    struct gpt_header *h = &g->primary;
    why = header_problem(g, g->lba01 + ss, h, 1);
    if (why)
        return note(job, BK_COPY_GPT_LEFT_ALONE, "the primary GPT header has %s", why);
    if (h->alt_lba + 1 == g->dev_lbas)
        return note(job, BK_COPY_GPT_AT_END, "the backup GPT is at the end of %s already",
                    g->dest->name);
    if (h->alt_lba + 1 != g->image_lbas)
        return note(job, BK_COPY_GPT_LEFT_ALONE,
                    "the backup GPT header is at LBA %" PRIu64
                    ", not at the image's last LBA %" PRIu64,
                    h->alt_lba, g->image_lbas - 1);
    return 1;
}

/* The primary table is the one the move writes next to the new backup: it must lie
 * before the usable space and match its CRC. Leaves it in g->table. */
static int check_primary_table(struct gpt *g, struct bk_error *err)
{
    struct bk_copy *job = g->job;
    const struct gpt_header *h = &g->primary;
    g->table_lbas = ((uint64_t)h->entries * h->entry_size + g->sector - 1) / g->sector;
    g->table = sectors((size_t)(g->table_lbas * g->sector));
    if (!g->table)
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    bool good;
    if (h->entries_lba < 2 || h->entries_lba + g->table_lbas > h->first_usable)
        return note(job, BK_COPY_GPT_LEFT_ALONE,
                    "the primary partition table overlaps the "
                    "usable space");
    if (read_table(g, h, &good, err) < 0)
        return -1;
    if (!good)
        return note(job, BK_COPY_GPT_LEFT_ALONE,
                    "the primary partition table's CRC does not "
                    "match");
    return 1;
}

/* A backup header B that describes the same table as the primary H, from the image's
 * end: its table between the usable space and itself. */
static bool backup_fields_agree(const struct gpt *g, const struct gpt_header *h,
                                const struct gpt_header *b)
{
    return b->alt_lba == 1 && b->entries == h->entries && b->entry_size == h->entry_size &&
           b->entries_crc == h->entries_crc && b->last_usable == h->last_usable &&
           b->entries_lba > h->last_usable && b->entries_lba + g->table_lbas <= h->alt_lba;
}

/* Whether the backup's table is the primary's byte for byte, with a good CRC; the
 * primary's stays in g->table. */
static int backup_table_matches(struct gpt *g, bool *match, struct bk_error *err)
{
    size_t bytes = (size_t)(g->table_lbas * g->sector);
    uint8_t *primary_table = g->table;
    g->table = sectors(bytes);
    if (!g->table) {
        g->table = primary_table;
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    }
    bool good;
    int rc = read_table(g, &g->second, &good, err);
    bool same = rc == 0 && memcmp(primary_table, g->table, bytes) == 0;
    free(g->table);
    g->table = primary_table;
    if (rc < 0)
        return -1;
    *match = good && same;
    return 0;
}

/* The backup is replaced, not repaired: moving it is only safe when it says what the
 * primary says, so that no information is lost with it. */
static int check_backup(struct gpt *g, struct bk_error *err)
{
    const struct gpt_header *h = &g->primary;
    if (gpt_read(g, g->backup, g->sector, h->alt_lba * g->sector, err) < 0)
        return -1;
    const char *why = header_problem(g, g->backup, &g->second, h->alt_lba);
    if (!why && !backup_fields_agree(g, h, &g->second))
        why = "fields that disagree with the primary header";
    if (!why) {
        bool match = false;
        if (backup_table_matches(g, &match, err) < 0)
            return -1;
        if (!match)
            why = "a partition table that differs from the primary one";
    }
    if (why)
        return note(g->job, BK_COPY_GPT_LEFT_ALONE, "the backup GPT header has %s", why);
    return 1;
}

/* Look at the GPT; fills g and the job's statistics. 1: it can be moved, 0: not. */
static int inspect(struct gpt *g, uint64_t image_size, struct bk_error *err)
{
    int rc = find_layout(g, image_size, err);
    if (rc == 1)
        rc = check_primary_header(g, err);
    if (rc == 1)
        rc = check_primary_table(g, err);
    if (rc == 1)
        rc = check_backup(g, err);
    if (rc < 1)
        return rc;
    note(g->job, BK_COPY_GPT_MOVABLE,
         "the backup GPT is at LBA %" PRIu64 ", the image's end; %s ends at LBA %" PRIu64,
         g->primary.alt_lba, g->dest->name, g->dev_lbas - 1);
    return 1;
}

static void seal_header(uint8_t *p, uint32_t size)
{
    store_le32(p + 16, 0);
    store_le32(p + 16, crc32_ieee(p, size));
}

static int write_flush(struct gpt *g, const uint8_t *buf, size_t len, uint64_t offset,
                       struct bk_error *err)
{
    if (bk_dest_write(g->dest, buf, len, offset, err) < 0)
        return -1;
    return bk_dest_flush(g->dest, err);
}

/* Read LEN bytes at OFFSET back and compare them with WANT. */
static int check_back(struct gpt *g, const uint8_t *want, size_t len, uint64_t offset,
                      const char *what, struct bk_error *err)
{
    uint8_t *got = sectors(len);
    if (!got)
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    int rc = read_exact(g->dest, got, len, offset, err);
    if (rc == 0 && memcmp(got, want, len) != 0)
        rc = bk_error_set(err, BK_E_VERIFY, 0, "%s: the %s reads back different at byte %" PRIu64,
                          g->dest->name, what, offset);
    free(got);
    return rc;
}

static int relocate(struct gpt *g, struct bk_error *err)
{
    const uint32_t ss = g->sector;
    const uint64_t old_alt = g->primary.alt_lba;
    const uint64_t alt = g->dev_lbas - 1;
    const uint64_t table_lba = alt - g->table_lbas;
    uint8_t *primary = g->lba01 + ss;
    /* The new backup: the primary header with its own place, the primary's, and its table's. */
    memcpy(g->backup, primary, ss);
    store_le64(g->backup + 24, alt);
    store_le64(g->backup + 32, 1);
    store_le64(g->backup + 48, table_lba - 1);
    store_le64(g->backup + 72, table_lba);
    seal_header(g->backup, g->primary.size);
    store_le64(primary + 32, alt);
    store_le64(primary + 48, table_lba - 1);
    seal_header(primary, g->primary.size);
    /* A protective partition that covered the whole image now covers the whole disk. */
    uint8_t *entry = g->lba01 + 446 + 16 * g->mbr_entry;
    uint64_t covered = bk_min_u64(g->image_lbas - 1, 0xFFFFFFFFu);
    bool mbr = bk_load_le32(entry + 8) == 1 && bk_load_le32(entry + 12) == covered;
    if (mbr)
        store_le32(entry + 12, (uint32_t)bk_min_u64(g->dev_lbas - 1, 0xFFFFFFFFu));
    size_t table_bytes = (size_t)(g->table_lbas * ss);
    uint8_t *zeros = sectors(ss);
    if (!zeros)
        return bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
    int rc = bk_dest_write(g->dest, g->table, table_bytes, table_lba * ss, err);
    if (rc == 0)
        rc = write_flush(g, g->backup, ss, alt * ss, err);
    if (rc == 0)
        rc = write_flush(g, primary, ss, ss, err);
    if (rc == 0 && mbr)
        rc = write_flush(g, g->lba01, ss, 0, err);
    /* The old backup header now lies in usable space: it must not be taken for one. */
    if (rc == 0)
        rc = write_flush(g, zeros, ss, old_alt * ss, err);
    free(zeros);
    if (rc == 0)
        rc = check_back(g, g->lba01, 2 * (size_t)ss, 0, "moved GPT's primary header", err);
    if (rc == 0)
        rc = check_back(g, g->table, table_bytes, table_lba * ss, "moved backup GPT table", err);
    if (rc == 0)
        rc = check_back(g, g->backup, ss, alt * ss, "moved backup GPT header", err);
    if (rc < 0)
        return bk_error_prefix(err,
                               "moving the backup GPT to the end of %s (the image itself "
                               "is written and verified)",
                               g->dest->name);
    note(g->job, BK_COPY_GPT_MOVED,
         "moved the backup GPT from LBA %" PRIu64 " to LBA %" PRIu64 "%s", old_alt, alt,
         mbr ? " and the protective MBR's size" : "");
    return 0;
}

int copy_gpt(struct bk_copy *job, struct bk_error *err)
{
    bool want = job->extras && job->extras->relocate_gpt;
    struct bk_dest *d = job->dest;
    uint64_t image_size = job->bmap ? job->bmap->image_size : job->stats.bytes_written;
    if (!(d->caps & BK_DEST_CAN_READ) || d->size == UINT64_MAX) {
        if (want)
            note(job, BK_COPY_GPT_LEFT_ALONE, "%s cannot be read back or has no size", d->name);
        return 0;
    }
    /* Nothing to say about a destination the image fills, unless asked. */
    if (!want && d->size <= image_size)
        return 0;
    struct gpt g = {.job = job, .dest = d};
    struct bk_error look;
    bk_error_clear(&look);
    int rc = inspect(&g, image_size, &look);
    if (rc == 1)
        rc = want ? relocate(&g, err) : 0;
    else if (rc < 0 && want && err)
        *err = look;
    else if (rc < 0) {
        /* Only a note was at stake: the copy itself is complete. */
        job->stats.gpt = BK_COPY_GPT_UNCHECKED;
        rc = 0;
    }
    free(g.lba01);
    free(g.backup);
    free(g.table);
    return rc;
}

int copy_gpt_precheck(struct bk_copy *job, struct bk_error *err)
{
    struct bk_dest *d = job->dest;
    if (!job->extras->relocate_gpt || !job->src->seekable || !job->bmap ||
        !(d->caps & BK_DEST_CAN_READ) || d->size == UINT64_MAX)
        return 0;
    struct gpt g = {.job = job, .dest = d, .image = job->src};
    int rc = inspect(&g, job->bmap->image_size, err);
    free(g.lba01);
    free(g.backup);
    free(g.table);
    enum bk_copy_gpt state = job->stats.gpt;
    job->stats.gpt = BK_COPY_GPT_UNCHECKED;
    if (rc < 0 || (state != BK_COPY_GPT_NONE && state != BK_COPY_GPT_LEFT_ALONE))
        return rc < 0 ? -1 : 0;
    return bk_error_set(err, BK_E_UNSUPPORTED, 0,
                        "%s: its GPT cannot be moved to the end of %s: %s", job->src->name, d->name,
                        job->stats.gpt_note);
}
