/* io.c - the POSIX implementation of sp_store_io: thin wrappers that turn
 * -1/errno into -errno, retry EINTR and loop over short reads and writes. */
#include "store/io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

int sp__posix_openat(void *ctx, int dirfd, const char *name, int flags, mode_t mode)
{
    (void)ctx;
    int fd;
    do
        fd = openat(dirfd, name, flags | O_CLOEXEC, mode);
    while (fd < 0 && errno == EINTR);
    return fd < 0 ? -errno : fd;
}

int sp__posix_close(void *ctx, int fd)
{
    (void)ctx;
    /* Linux closes the fd even when close fails; never retry. */
    return close(fd) < 0 && errno != EINTR ? -errno : 0;
}

ssize_t sp__posix_pwrite(void *ctx, int fd, const void *buf, size_t len, off_t off)
{
    (void)ctx;
    const char *p = buf;
    size_t done = 0;
    while (done < len) {
        ssize_t n = pwrite(fd, p + done, len - done, off + (off_t)done);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return -ENOSPC;
        done += (size_t)n;
    }
    return (ssize_t)done;
}

ssize_t sp__posix_pread(void *ctx, int fd, void *buf, size_t len, off_t off)
{
    (void)ctx;
    char *p = buf;
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(fd, p + done, len - done, off + (off_t)done);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            break;
        done += (size_t)n;
    }
    return (ssize_t)done;
}

int sp__posix_fdatasync(void *ctx, int fd)
{
    (void)ctx;
    return fdatasync(fd) < 0 ? -errno : 0;
}

int sp__posix_fsync_dir(void *ctx, int dirfd)
{
    (void)ctx;
    return fsync(dirfd) < 0 ? -errno : 0;
}

int sp__posix_ftruncate(void *ctx, int fd, off_t len)
{
    (void)ctx;
    int r;
    do
        r = ftruncate(fd, len);
    while (r < 0 && errno == EINTR);
    return r < 0 ? -errno : 0;
}

int sp__posix_renameat(void *ctx, int olddirfd, const char *oldname, int newdirfd,
                       const char *newname)
{
    (void)ctx;
    return renameat(olddirfd, oldname, newdirfd, newname) < 0 ? -errno : 0;
}

int sp__posix_unlinkat(void *ctx, int dirfd, const char *name, int flags)
{
    (void)ctx;
    return unlinkat(dirfd, name, flags) < 0 ? -errno : 0;
}

int sp__posix_mkdirat(void *ctx, int dirfd, const char *name, mode_t mode)
{
    (void)ctx;
    return mkdirat(dirfd, name, mode) < 0 ? -errno : 0;
}

const struct sp_store_io sp__io_posix = {
    .ctx = NULL,
    .openat = sp__posix_openat,
    .close = sp__posix_close,
    .pwrite = sp__posix_pwrite,
    .pread = sp__posix_pread,
    .fdatasync = sp__posix_fdatasync,
    .fsync_dir = sp__posix_fsync_dir,
    .ftruncate = sp__posix_ftruncate,
    .renameat = sp__posix_renameat,
    .unlinkat = sp__posix_unlinkat,
    .mkdirat = sp__posix_mkdirat,
};
