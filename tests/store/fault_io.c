/* fault_io.c - see fault_io.h. Paths are resolved through /proc/self/fd so
 * renames and directory fsyncs can be matched to files. */
#include "fault_io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static uint64_t rnd(fault_io *f)
{
    f->rng ^= f->rng << 13, f->rng ^= f->rng >> 7, f->rng ^= f->rng << 17;
    return f->rng;
}

static void path_of(int dirfd, const char *name, char *out, size_t cap)
{
    char link[64], dir[3072];
    snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
    ssize_t n = readlink(link, dir, sizeof dir - 1);
    dir[n > 0 ? n : 0] = '\0';
    snprintf(out, cap, "%s/%s", dir, name);
}

static fault_file *find(fault_io *f, const char *path)
{
    for (size_t i = 0; i < f->nfiles; i++)
        if (!f->files[i].gone && !strcmp(f->files[i].path, path))
            return &f->files[i];
    return NULL;
}

static fault_file *track(fault_io *f, const char *path, bool created)
{
    fault_file *ff = find(f, path);
    if (ff)
        return ff;
    if (f->nfiles == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 64;
        f->files = realloc(f->files, f->cap * sizeof *f->files);
    }
    ff = &f->files[f->nfiles++];
    memset(ff, 0, sizeof *ff);
    ff->path = strdup(path);
    struct stat st;
    if (!created && stat(path, &st) == 0)
        ff->len = ff->synced_len = (uint64_t)st.st_size; /* existed before: durable */
    ff->dir_synced = !created;
    return ff;
}

static fault_file *by_fd(fault_io *f, int fd)
{
    return fd >= 0 && fd < 4096 && f->fd_file[fd] ? &f->files[f->fd_file[fd] - 1] : NULL;
}

/* Counts a write/sync; returns true when the machine is (now) dead. */
static bool tick(fault_io *f)
{
    if (f->crashed)
        return true;
    if (++f->ops == f->crash_at)
        f->crashed = true;
    return f->crashed;
}

static int f_openat(void *ctx, int dirfd, const char *name, int flags, mode_t mode)
{
    fault_io *f = ctx;
    if (f->crashed)
        return -EIO;
    char path[4096];
    path_of(dirfd, name, path, sizeof path);
    bool exists = access(path, F_OK) == 0;
    int fd = sp__posix_openat(NULL, dirfd, name, flags, mode);
    if (fd >= 0 && fd < 4096 && !(flags & O_DIRECTORY)) {
        fault_file *ff = track(f, path, !exists);
        f->fd_file[fd] = (int)(ff - f->files) + 1;
    }
    return fd;
}

static int f_close(void *ctx, int fd)
{
    fault_io *f = ctx;
    if (fd >= 0 && fd < 4096)
        f->fd_file[fd] = 0;
    return sp__posix_close(NULL, fd);
}

static ssize_t f_pwrite(void *ctx, int fd, const void *buf, size_t len, off_t off)
{
    fault_io *f = ctx;
    fault_file *ff = by_fd(f, fd);
    if (f->crashed)
        return -EIO;
    if (tick(f)) {
        if (f->kind == FAULT_TEAR && len > 0) {
            size_t part = (size_t)(rnd(f) % len);
            if (sp__posix_pwrite(NULL, fd, buf, part, off) == (ssize_t)part && ff &&
                (uint64_t)off + part > ff->len)
                ff->len = (uint64_t)off + part;
        }
        return -EIO;
    }
    ssize_t n = sp__posix_pwrite(NULL, fd, buf, len, off);
    if (n > 0 && ff && (uint64_t)off + (uint64_t)n > ff->len)
        ff->len = (uint64_t)off + (uint64_t)n;
    return n;
}

static int f_fdatasync(void *ctx, int fd)
{
    fault_io *f = ctx;
    if (tick(f))
        return -EIO;
    fault_file *ff = by_fd(f, fd);
    if (ff)
        ff->synced_len = ff->len;
    return 0; /* the model is the disk: no real sync needed */
}

static int f_fsync_dir(void *ctx, int dirfd)
{
    fault_io *f = ctx;
    if (tick(f))
        return -EIO;
    char dir[4096];
    path_of(dirfd, ".", dir, sizeof dir);
    dir[strlen(dir) - 2] = '\0'; /* strip "/." */
    size_t dl = strlen(dir);
    for (size_t i = 0; i < f->nfiles; i++)
        if (!strncmp(f->files[i].path, dir, dl) && f->files[i].path[dl] == '/' &&
            !strchr(f->files[i].path + dl + 1, '/'))
            f->files[i].dir_synced = true;
    return 0;
}

static int f_ftruncate(void *ctx, int fd, off_t len)
{
    fault_io *f = ctx;
    if (f->crashed)
        return -EIO;
    int r = sp__posix_ftruncate(NULL, fd, len);
    fault_file *ff = by_fd(f, fd);
    if (r == 0 && ff) {
        ff->len = (uint64_t)len;
        if (ff->synced_len > ff->len)
            ff->synced_len = ff->len;
    }
    return r;
}

static int f_renameat(void *ctx, int od, const char *on, int nd, const char *nn)
{
    fault_io *f = ctx;
    if (f->crashed)
        return -EIO;
    char op[4096], np[4096];
    path_of(od, on, op, sizeof op);
    path_of(nd, nn, np, sizeof np);
    int r = sp__posix_renameat(NULL, od, on, nd, nn);
    if (r == 0) {
        fault_file *dst = find(f, np), *src = find(f, op);
        if (dst)
            dst->gone = true;
        if (src) {
            free(src->path);
            src->path = strdup(np);
        }
    }
    return r;
}

static int f_unlinkat(void *ctx, int dirfd, const char *name, int flags)
{
    fault_io *f = ctx;
    if (f->crashed)
        return -EIO;
    char p[4096];
    path_of(dirfd, name, p, sizeof p);
    int r = sp__posix_unlinkat(NULL, dirfd, name, flags);
    fault_file *ff = find(f, p);
    if (r == 0 && ff)
        ff->gone = true;
    return r;
}

static int f_mkdirat(void *ctx, int dirfd, const char *name, mode_t mode)
{
    fault_io *f = ctx;
    return f->crashed ? -EIO : sp__posix_mkdirat(NULL, dirfd, name, mode);
}

static ssize_t f_pread(void *ctx, int fd, void *buf, size_t len, off_t off)
{
    (void)ctx;
    return sp__posix_pread(NULL, fd, buf, len, off);
}

void fault_io_init(fault_io *f, fault_kind kind, long crash_at, uint64_t seed)
{
    memset(f, 0, sizeof *f);
    f->kind = kind;
    f->crash_at = crash_at;
    f->rng = seed | 1;
    f->io = (struct sp_store_io){f,          f_openat,    f_close,     f_pwrite,
                                 f_pread,    f_fdatasync, f_fsync_dir, f_ftruncate,
                                 f_renameat, f_unlinkat,  f_mkdirat};
}

void fault_io_apply(fault_io *f)
{
    for (size_t i = 0; i < f->nfiles; i++) {
        fault_file *ff = &f->files[i];
        if (ff->gone)
            continue;
        uint64_t keep = ff->len;
        if (f->kind == FAULT_DROP) {
            if (!ff->dir_synced) {
                unlink(ff->path);
                continue;
            }
            keep = ff->synced_len;
        } else if (f->kind == FAULT_PREFIX && ff->len > ff->synced_len) {
            keep = ff->synced_len + rnd(f) % (ff->len - ff->synced_len + 1);
        }
        if (keep < ff->len && truncate(ff->path, (off_t)keep) < 0)
            perror(ff->path);
    }
}

void fault_io_free(fault_io *f)
{
    for (size_t i = 0; i < f->nfiles; i++)
        free(f->files[i].path);
    free(f->files);
}
