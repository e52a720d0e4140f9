/* SPDX-License-Identifier: MIT */
/*
 * The block devices of the machine with their identity (size, vendor, model, transport,
 * USB port, serial) and what uses them. Everything comes from sysfs through the root
 * prefix, so tests can describe any set of disks in a fake tree.
 */
#include "os/os.h"
#include "os/linux/sysfs.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static void read_attr(const char *sysroot, const char *name, const char *attr, char *buf,
                      size_t cap)
{
    if (bk_disk_read_attr(sysroot, name, attr, buf, cap) < 0)
        buf[0] = '\0';
}

/* "1-2" or "3-1.4.2": the name sysfs gives a USB device after its port path. */
static bool is_usb_port(const char *s, size_t len)
{
    size_t i = 0;
    bool dash = false;
    if (len == 0 || !isdigit((unsigned char)s[0]))
        return false;
    for (; i < len; i++) {
        char c = s[i];
        if (c == '-' && !dash && i > 0 && isdigit((unsigned char)s[i - 1]))
            dash = true;
        else if (c == '.' && dash && isdigit((unsigned char)s[i - 1]))
            ;
        else if (!isdigit((unsigned char)c))
            return false;
    }
    return dash && isdigit((unsigned char)s[len - 1]);
}

/*
 * The USB port path in the sysfs device path DEVPATH, e.g. ".../usb1/1-2/1-2.3/1-2.3:1.0/
 * host6/..." gives "1-2.3": the last component that is a port path. END receives the
 * length of DEVPATH up to and including that component, for reading the USB device's
 * own attributes.
 */
static void find_usb_port(const char *devpath, char *port, size_t cap, size_t *end)
{
    port[0] = '\0';
    *end = 0;
    const char *p = devpath;
    while (*p) {
        while (*p == '/')
            p++;
        size_t len = strcspn(p, "/");
        if (is_usb_port(p, len)) {
            snprintf(port, cap, "%.*s", (int)len, p);
            *end = (size_t)(p - devpath) + len;
        }
        p += len;
    }
}

static void find_transport(const char *sysroot, const char *name, const char *devpath,
                           struct bk_disk_info *d)
{
    char path[PATH_MAX];
    bk_root_path(path, sizeof path, sysroot, "/sys/class/block/%s/loop", name);
    const char *t = "";
    if (access(path, F_OK) == 0 || strncmp(name, "loop", 4) == 0)
        t = "loop";
    else if (strstr(devpath, "/usb"))
        t = "usb";
    else if (strstr(devpath, "mmc_host"))
        t = "mmc";
    else if (strstr(devpath, "nvme"))
        t = "nvme";
    else if (strstr(devpath, "/virtio"))
        t = "virtio";
    else if (strstr(devpath, "/ata"))
        t = "sata";
    else if (strncmp(name, "zram", 4) == 0)
        t = "zram";
    else if (strncmp(name, "ram", 3) == 0)
        t = "ram";
    else if (strncmp(name, "dm-", 3) == 0)
        t = "dm";
    else if (strncmp(name, "md", 2) == 0)
        t = "md";
    else if (strncmp(name, "nbd", 3) == 0)
        t = "nbd";
    else if (strstr(devpath, "/host") && strstr(devpath, "/target"))
        t = "scsi";
    else if (strstr(devpath, "/virtual/"))
        t = "virtual";
    snprintf(d->transport, sizeof d->transport, "%s", t);
}

/* "UMS disk 3" from vendor "Linux": U-Boot's gadget exporting LUN 3. */
static int ums_lun(const char *vendor, const char *model)
{
    static const char prefix[] = "UMS disk ";
    if (strcmp(vendor, "Linux") != 0 || strncmp(model, prefix, sizeof prefix - 1) != 0)
        return -1;
    const char *n = model + sizeof prefix - 1;
    char *end;
    errno = 0;
    long lun = strtol(n, &end, 10);
    if (end == n || *end || errno || lun < 0 || lun > 255)
        return -1;
    return (int)lun;
}

/* Devices nobody means to flash an image to; shown only on request. */
static bool hidden_by_default(const struct bk_disk_info *d)
{
    static const char *const prefixes[] = {"ram", "zram", "dm-", "md", "sr"};
    if (d->partition || d->size == 0)
        return true;
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
        if (strncmp(d->name, prefixes[i], strlen(prefixes[i])) == 0)
            return true;
    /* eMMC boot areas and replay-protected blocks are not where an image goes. */
    if (strncmp(d->name, "mmcblk", 6) == 0 && (strstr(d->name, "boot") || strstr(d->name, "rpmb")))
        return true;
    return strcmp(d->transport, "loop") == 0 && d->backing[0] == '\0';
}

int bk_disk_describe(const char *sysroot, const char *name, struct bk_disk_info *d,
                     struct bk_error *err)
{
    memset(d, 0, sizeof *d);
    d->ums_lun = -1;
    if (strlen(name) >= sizeof d->name || strchr(name, '/') || name[0] == '.')
        return bk_error_set(err, BK_E_INVALID, 0, "invalid block device name '%s'", name);
    snprintf(d->name, sizeof d->name, "%s", name);
    snprintf(d->path, sizeof d->path, "/dev/%s", name);

    char link[PATH_MAX], real[PATH_MAX], sysdir[PATH_MAX], base[PATH_MAX];
    bk_root_path(link, sizeof link, sysroot, "/sys/class/block/%s", name);
    if (!realpath(link, real))
        return bk_error_set(err, BK_E_IO, errno, "no block device %s in sysfs (%s)", name, link);
    /* Match on the path inside sysfs only, not on where a test put its tree. */
    bk_root_path(sysdir, sizeof sysdir, sysroot, "/sys");
    const char *devpath = real;
    if (realpath(sysdir, base) && strncmp(real, base, strlen(base)) == 0)
        devpath = real + strlen(base);

    bk_root_path(link, sizeof link, sysroot, "/sys/class/block/%s/partition", name);
    d->partition = access(link, F_OK) == 0;
    snprintf(d->disk, sizeof d->disk, "%s", name);
    if (d->partition) {
        /* A partition's sysfs directory sits inside its disk's. */
        char *slash = strrchr(real, '/');
        if (slash) {
            *slash = '\0';
            char *parent = strrchr(real, '/');
            snprintf(d->disk, sizeof d->disk, "%.63s", parent ? parent + 1 : real);
            *slash = '/';
        }
    }

    char buf[256];
    read_attr(sysroot, name, "size", buf, sizeof buf);
    d->size = strtoull(buf, NULL, 10) * 512;
    read_attr(sysroot, name, "ro", buf, sizeof buf);
    d->read_only = strcmp(buf, "1") == 0;
    /* Identity belongs to the whole disk; a partition shows its disk's. */
    read_attr(sysroot, d->disk, "removable", buf, sizeof buf);
    d->removable = strcmp(buf, "1") == 0;
    read_attr(sysroot, d->disk, "device/vendor", d->vendor, sizeof d->vendor);
    read_attr(sysroot, d->disk, "device/model", d->model, sizeof d->model);
    read_attr(sysroot, d->disk, "device/serial", d->serial, sizeof d->serial);
    read_attr(sysroot, name, "loop/backing_file", d->backing, sizeof d->backing);
    find_transport(sysroot, d->disk, devpath, d);

    size_t port_end;
    find_usb_port(devpath, d->usb_port, sizeof d->usb_port, &port_end);
    if (d->usb_port[0] && !d->serial[0]) {
        /* USB disks carry their serial on the USB device, not the SCSI one. */
        char serial[PATH_MAX];
        snprintf(serial, sizeof serial, "%.*s/serial", (int)(devpath - real) + (int)port_end, real);
        if (bk_read_line(serial, d->serial, sizeof d->serial) < 0)
            d->serial[0] = '\0';
    }
    if (!d->partition)
        d->ums_lun = ums_lun(d->vendor, d->model);
    d->hidden = hidden_by_default(d);

    struct bk_error ignored;
    if (bk_disk_usage(sysroot, name, &d->usage, &ignored) < 0)
        memset(&d->usage, 0, sizeof d->usage);
    return 0;
}

static int by_name(const void *a, const void *b)
{
    const struct bk_disk_info *x = a, *y = b;
    return strverscmp(x->name, y->name);
}

struct bk_disk_list *bk_disk_list_scan(const char *sysroot, bool all, struct bk_error *err)
{
    struct bk_disk_list *list = calloc(1, sizeof *list);
    if (!list) {
        bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
        return NULL;
    }
    char path[PATH_MAX];
    bk_root_path(path, sizeof path, sysroot, "/sys/class/block");
    DIR *dir = opendir(path);
    if (!dir) {
        bk_error_set(err, BK_E_IO, errno, "cannot list block devices in %s", path);
        free(list);
        return NULL;
    }
    size_t cap = 0;
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(dir))) {
        if (e->d_name[0] == '.')
            continue;
        struct bk_disk_info info;
        /* A device can vanish between readdir and the look-up: skip it. */
        if (bk_disk_describe(sysroot, e->d_name, &info, NULL) < 0 || (info.hidden && !all))
            continue;
        if (list->count == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            struct bk_disk_info *n = realloc(list->disks, ncap * sizeof *n);
            if (!n) {
                rc = bk_error_set(err, BK_E_NOMEM, 0, "out of memory");
                break;
            }
            list->disks = n;
            cap = ncap;
        }
        list->disks[list->count++] = info;
    }
    closedir(dir);
    if (rc < 0) {
        bk_disk_list_free(list);
        return NULL;
    }
    if (list->count > 1)
        qsort(list->disks, list->count, sizeof *list->disks, by_name);
    dev_t root;
    list->root_known = bk_root_device(sysroot, &root) == 0;
    for (size_t i = 0; i < list->count; i++)
        list->root_known |= list->disks[i].usage.holds_root;
    return list;
}

bool bk_disk_list_root_known(const struct bk_disk_list *list)
{
    return list->root_known;
}

size_t bk_disk_list_count(const struct bk_disk_list *list)
{
    return list->count;
}

const struct bk_disk_info *bk_disk_list_get(const struct bk_disk_list *list, size_t i)
{
    return &list->disks[i];
}

void bk_disk_list_free(struct bk_disk_list *list)
{
    if (!list)
        return;
    free(list->disks);
    free(list);
}

bool bk_disk_node_ready(const char *sysroot, const struct bk_disk_info *disk)
{
    char path[PATH_MAX];
    bk_root_path(path, sizeof path, sysroot, "/dev/%s", disk->name);
    struct stat st;
    if (stat(path, &st) < 0)
        return false;
    if (sysroot)
        return true;
    /* udev may still be creating the node, or an old node may name another device. */
    char buf[64];
    unsigned ma, mi;
    if (!S_ISBLK(st.st_mode) || bk_disk_read_attr(NULL, disk->name, "dev", buf, sizeof buf) < 0 ||
        sscanf(buf, "%u:%u", &ma, &mi) != 2)
        return false;
    return st.st_rdev == makedev(ma, mi);
}
