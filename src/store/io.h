/* io.h - the file operations the store performs, behind one vtable.
 *
 * Every write, sync, truncate, open, rename and unlink of log files goes
 * through an sp_store_io so a test build can count them and inject faults
 * (drop unsynced bytes, tear a write, fail with EIO or ENOSPC) at the Nth
 * operation. sp__io_posix is the real thing. Every function returns the
 * non-negative result or a negative errno; pwrite writes all `len` bytes or
 * returns an error (a short write on a full disk becomes -ENOSPC). */
#ifndef SP_STORE_IO_H
#define SP_STORE_IO_H

#include <stddef.h>
#include <sys/types.h>

struct sp_store_io {
    void *ctx;
    int (*openat)(void *ctx, int dirfd, const char *name, int flags, mode_t mode);
    int (*close)(void *ctx, int fd);
    ssize_t (*pwrite)(void *ctx, int fd, const void *buf, size_t len, off_t off);
    ssize_t (*pread)(void *ctx, int fd, void *buf, size_t len, off_t off);
    int (*fdatasync)(void *ctx, int fd);
    int (*fsync_dir)(void *ctx, int dirfd);
    int (*ftruncate)(void *ctx, int fd, off_t len);
    int (*renameat)(void *ctx, int olddirfd, const char *oldname, int newdirfd,
                    const char *newname);
    int (*unlinkat)(void *ctx, int dirfd, const char *name, int flags);
    int (*mkdirat)(void *ctx, int dirfd, const char *name, mode_t mode);
};

extern const struct sp_store_io sp__io_posix;

/* Plain POSIX versions, for wrappers that forward to the real thing. */
int sp__posix_openat(void *ctx, int dirfd, const char *name, int flags, mode_t mode);
int sp__posix_close(void *ctx, int fd);
ssize_t sp__posix_pwrite(void *ctx, int fd, const void *buf, size_t len, off_t off);
ssize_t sp__posix_pread(void *ctx, int fd, void *buf, size_t len, off_t off);
int sp__posix_fdatasync(void *ctx, int fd);
int sp__posix_fsync_dir(void *ctx, int dirfd);
int sp__posix_ftruncate(void *ctx, int fd, off_t len);
int sp__posix_renameat(void *ctx, int olddirfd, const char *oldname, int newdirfd,
                       const char *newname);
int sp__posix_unlinkat(void *ctx, int dirfd, const char *name, int flags);
int sp__posix_mkdirat(void *ctx, int dirfd, const char *name, mode_t mode);

#endif
