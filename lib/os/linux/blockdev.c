/* SPDX-License-Identifier: MIT */
/* Block device ioctls: capacity, discard and zero-out, and what sysfs says of discard. */
#include "os/os.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <sys/ioctl.h>

#include <linux/fs.h>

int bk_blockdev_size(int fd, const char *name, uint64_t *size, struct bk_error *err)
{
    if (ioctl(fd, BLKGETSIZE64, size) < 0)
        return bk_error_set(err, BK_E_IO, errno, "cannot get the size of %s", name);
    return 0;
}

uint32_t bk_blockdev_logical_block(int fd)
{
    int bytes = 0;
    return ioctl(fd, BLKSSZGET, &bytes) == 0 && bytes > 0 ? (uint32_t)bytes : 512;
}

static int range_ioctl(int fd, unsigned long request, const char *what, const char *name,
                       uint64_t offset, uint64_t len, struct bk_error *err)
{
    uint64_t range[2] = {offset, len};
    if (ioctl(fd, request, range) < 0)
        return bk_error_set(err, errno == EOPNOTSUPP ? BK_E_UNSUPPORTED : BK_E_IO, errno,
                            "%s: %s of %" PRIu64 " bytes at byte %" PRIu64 " failed", name, what,
                            len, offset);
    return 0;
}

int bk_blockdev_discard(int fd, const char *name, uint64_t offset, uint64_t len,
                        struct bk_error *err)
{
    return range_ioctl(fd, BLKDISCARD, "discard", name, offset, len, err);
}

int bk_blockdev_zeroout(int fd, const char *name, uint64_t offset, uint64_t len,
                        struct bk_error *err)
{
    return range_ioctl(fd, BLKZEROOUT, "zeroing", name, offset, len, err);
}

static uint64_t queue_number(const char *sysroot, const char *disk, const char *attr)
{
    char buf[64];
    if (bk_disk_read_attr(sysroot, disk, attr, buf, sizeof buf) < 0)
        return 0;
    return strtoull(buf, NULL, 10);
}

bool bk_blockdev_can_discard(const char *sysroot, const char *disk)
{
    return queue_number(sysroot, disk, "queue/discard_max_bytes") > 0;
}

bool bk_blockdev_discard_zeroes(const char *sysroot, const char *disk)
{
    /* Since Linux 4.12 the kernel no longer promises zeros after a discard
       (discard_zeroes_data reads 0); only devices that unmap with write-zeroes do. */
    return bk_blockdev_can_discard(sysroot, disk) &&
           queue_number(sysroot, disk, "queue/discard_zeroes_data") > 0;
}
