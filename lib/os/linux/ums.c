/* SPDX-License-Identifier: MIT */
/*
 * U-Boot's USB mass-storage gadget ("ums 0 mmc 0") shows up on the host as a SCSI disk
 * with vendor "Linux" and model "UMS disk N" for LUN N. Picking it by those marks rather
 * than by a /dev/sdX name typed by hand keeps an image off the wrong disk.
 */
#include "os/os.h"
#include "os/linux/sysfs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool bk_ums_matches(const struct bk_disk_info *d, const char *selector)
{
    if (d->ums_lun < 0 || d->partition)
        return false;
    if (!selector || !selector[0])
        return true;
    char lun[16];
    snprintf(lun, sizeof lun, "%d", d->ums_lun);
    return strcmp(selector, lun) == 0 || (d->serial[0] && strcmp(selector, d->serial) == 0) ||
           (d->usb_port[0] && strcmp(selector, d->usb_port) == 0);
}

struct bk_disk_list *bk_ums_find(const char *sysroot, const char *selector, struct bk_error *err)
{
    struct bk_disk_list *all = bk_disk_list_scan(sysroot, true, err);
    if (!all)
        return NULL;
    /* Keep the matches in place: the list is already sorted and owns the memory. */
    size_t n = 0;
    for (size_t i = 0; i < all->count; i++)
        /* Size 0 while the SCSI layer still reads the capacity: not there yet. */
        if (bk_ums_matches(&all->disks[i], selector) && all->disks[i].size > 0 &&
            bk_disk_node_ready(sysroot, &all->disks[i]))
            all->disks[n++] = all->disks[i];
    all->count = n;
    return all;
}
