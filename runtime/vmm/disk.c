/* SPDX-License-Identifier: MIT */
/*
 * The virtio-blk backend. Without --persist the image is opened read-only
 * and guest writes land in an unlinked sparse scratch file at the same
 * offsets; a bitmap with one bit per 512-byte sector says which sectors
 * live there. The image file is never modified, and nothing is left behind.
 */
#include "runtime/vmm/vmm-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"

#define SECTOR 512ULL

struct blk_backend {
        int fd;     /* the image */
        int cow_fd; /* scratch, or -1 with persist */
        uint64_t size;
        uint8_t *map;   /* sectors present in cow_fd */
        bool read_only; /* every write refused (--read-only) */
};

static int scratch_file(forge_error **err)
{
        const char *dir = getenv("TMPDIR");
        cleanup_free char *tmpl = NULL;
        int fd;

        if (dir == NULL || dir[0] == '\0')
                dir = "/var/tmp";
        fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (fd >= 0)
                return fd;
        if (asprintf(&tmpl, "%s/forge-vm-XXXXXX", dir) < 0)
                return forge_error_make(err, ENOMEM, "scratch file");
        fd = mkostemp(tmpl, O_CLOEXEC);
        if (fd < 0)
                return forge_error_make(err, errno, "create a scratch file in '%s' (set TMPDIR)",
                                        dir);
        unlink(tmpl);
        return fd;
}

int vmm_blk_open(const char *path, int path_fd, bool persist, blk_backend **ret, forge_error **err)
{
        cleanup_close int fd = path_fd >= 0 ? fcntl(path_fd, F_DUPFD_CLOEXEC, 3)
                                            : open(path, (persist ? O_RDWR : O_RDONLY) | O_CLOEXEC);
        blk_backend *b;
        struct stat st;
        uint64_t size;

        if (fd < 0 || fstat(fd, &st) < 0)
                return forge_error_make(err, errno, "open disk image '%s'", path);
        if (persist && (fcntl(fd, F_GETFL) & O_ACCMODE) != O_RDWR)
                return forge_error_make(err, EBADF, "disk image '%s' is not open for writing",
                                        path);
        if (S_ISBLK(st.st_mode)) {
                if (ioctl(fd, BLKGETSIZE64, &size) < 0)
                        return forge_error_make(err, errno, "size of '%s'", path);
        } else if (S_ISREG(st.st_mode)) {
                size = (uint64_t)st.st_size;
        } else {
                return forge_error_make(err, 0, "disk image '%s' is not a file or block device",
                                        path);
        }
        size &= ~(SECTOR - 1);
        if (size == 0)
                return forge_error_make(err, 0, "disk image '%s' is empty", path);
        b = calloc(1, sizeof(*b));
        if (b == NULL)
                return forge_error_make(err, ENOMEM, "disk");
        b->size = size;
        b->fd = -1;
        b->cow_fd = -1;
        if (!persist) {
                b->map = calloc((size / SECTOR + 7) / 8, 1);
                b->cow_fd = b->map ? scratch_file(err) : forge_error_make(err, ENOMEM, "disk");
                if (b->cow_fd < 0 || ftruncate(b->cow_fd, (off_t)size) < 0) {
                        if (b->cow_fd >= 0)
                                forge_error_make(err, errno, "scratch file of %llu bytes",
                                                 (unsigned long long)size);
                        vmm_blk_close(b);
                        return -1;
                }
        }
        b->fd = take_fd(fd);
        *ret = b;
        return 0;
}

void vmm_blk_close(blk_backend *b)
{
        if (b == NULL)
                return;
        if (b->fd >= 0)
                close(b->fd);
        if (b->cow_fd >= 0)
                close(b->cow_fd);
        free(b->map);
        free(b);
}

uint64_t vmm_blk_size(const blk_backend *b)
{
        return b->size;
}

static bool in_cow(const blk_backend *b, uint64_t sector)
{
        return b->map[sector / 8] & (1u << (sector % 8));
}

static int pread_all(int fd, uint8_t *buf, uint64_t len, uint64_t off)
{
        while (len > 0) {
                ssize_t n = pread(fd, buf, len, (off_t)off);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0) { /* a file shorter than it was: zeros */
                        memset(buf, 0, len);
                        return 0;
                }
                buf += n;
                len -= (uint64_t)n;
                off += (uint64_t)n;
        }
        return 0;
}

static int pwrite_all(int fd, const uint8_t *buf, uint64_t len, uint64_t off)
{
        while (len > 0) {
                ssize_t n = pwrite(fd, buf, len, (off_t)off);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return n < 0 ? -errno : -EIO;
                buf += n;
                len -= (uint64_t)n;
                off += (uint64_t)n;
        }
        return 0;
}

static bool in_range(const blk_backend *b, uint64_t len, uint64_t off)
{
        return off % SECTOR == 0 && len % SECTOR == 0 && off <= b->size && len <= b->size - off;
}

int vmm_blk_read(blk_backend *b, void *buf, uint64_t len, uint64_t off)
{
        uint8_t *p = buf;

        if (!in_range(b, len, off))
                return -EINVAL;
        if (b->cow_fd < 0)
                return pread_all(b->fd, p, len, off);
        while (len > 0) {
                uint64_t s = off / SECTOR;
                bool cow = in_cow(b, s);
                uint64_t run = SECTOR;
                int r;

                while (run < len && in_cow(b, s + run / SECTOR) == cow)
                        run += SECTOR;
                r = pread_all(cow ? b->cow_fd : b->fd, p, run, off);
                if (r < 0)
                        return r;
                p += run;
                off += run;
                len -= run;
        }
        return 0;
}

void vmm_blk_set_read_only(blk_backend *b)
{
        b->read_only = true;
}

bool vmm_blk_read_only(const blk_backend *b)
{
        return b->read_only;
}

int vmm_blk_write(blk_backend *b, const void *buf, uint64_t len, uint64_t off)
{
        int r;

        if (b->read_only)
                return -EROFS;
        if (!in_range(b, len, off))
                return -EINVAL;
        r = pwrite_all(b->cow_fd >= 0 ? b->cow_fd : b->fd, buf, len, off);
        if (r < 0 || b->cow_fd < 0)
                return r;
        for (uint64_t s = off / SECTOR; s < (off + len) / SECTOR; s++)
                b->map[s / 8] |= (uint8_t)(1u << (s % 8));
        return 0;
}

int vmm_blk_flush(blk_backend *b)
{
        if (b->cow_fd >= 0)
                return 0; /* thrown away at the end anyway */
        return fdatasync(b->fd) < 0 ? -errno : 0;
}
