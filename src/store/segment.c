/* segment.c - segment files: create/open, the start-up scan that finds the
 * last valid batch, and the sparse indexes.
 *
 * The scan maps the log read-only (the store holds the data-dir lock, so
 * nobody truncates it underneath) and walks batches with sp__batch_check.
 * At the first batch that is not valid it looks further for any valid
 * batch carrying a later offset: if one exists the damage is in the middle
 * of the segment (corruption, reported), otherwise it is a torn tail (what
 * a crash during the last unsynced writes leaves, truncated by recovery).
 *
 * Index files: a 40-byte header {magic, version, count, crc, next_offset,
 * max_ts, log_size} then entries; the CRC covers everything after byte 16.
 * log_size must match the .log file, or the index is stale and rebuilt. */
#include "store/segment.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "store/codec.h"
#include "store/crc32c.h"

#define IDX_MAGIC 0x49585053u /* "SPXI" */
#define TIX_MAGIC 0x54585053u /* "SPXT" */
#define IDX_HDR   40u

void sp__segment_name(char out[SP__SEG_NAME_MAX], uint64_t base, const char *ext)
{
    snprintf(out, SP__SEG_NAME_MAX, "%020" PRIu64 ".%s", base, ext);
}

int sp__segment_parse_name(const char *name, uint64_t *base, const char **ext)
{
    uint64_t v = 0;
    for (int i = 0; i < 20; i++) {
        if (name[i] < '0' || name[i] > '9')
            return -EINVAL;
        uint64_t d = (uint64_t)(name[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -EINVAL;
        v = v * 10 + d;
    }
    if (name[20] != '.')
        return -EINVAL;
    *base = v;
    *ext = name + 21;
    return 0;
}

static sp__segment *segment_new(const struct sp_store_io *io, int fd, uint64_t base)
{
    sp__segment *seg = sp_xcalloc(1, sizeof *seg);
    seg->base = base;
    seg->fd = fd;
    seg->io = io;
    atomic_init(&seg->refs, 1);
    seg->next_offset = seg->pub_next = base;
    seg->max_ts = INT64_MIN;
    return seg;
}

int sp__segment_create(const struct sp_store_io *io, int dirfd, uint64_t base, sp__segment **out)
{
    char name[SP__SEG_NAME_MAX];
    sp__segment_name(name, base, "log");
    int fd = io->openat(io->ctx, dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, 0644);
    if (fd < 0)
        return fd;
    *out = segment_new(io, fd, base);
    return 0;
}

int sp__segment_open_file(const struct sp_store_io *io, int dirfd, uint64_t base, bool readonly,
                          sp__segment **out)
{
    char name[SP__SEG_NAME_MAX];
    sp__segment_name(name, base, "log");
    int fd = io->openat(io->ctx, dirfd, name, (readonly ? O_RDONLY : O_RDWR) | O_NOFOLLOW, 0);
    if (fd < 0)
        return fd;
    *out = segment_new(io, fd, base);
    return 0;
}

/* ---- in-memory indexes --------------------------------------------------- */

void sp__segment_index_batch(sp__segment *seg, uint64_t base_offset, uint64_t pos, int64_t max_ts)
{
    if (max_ts > seg->max_ts)
        seg->max_ts = max_ts;
    if (seg->nidx && pos - seg->last_idx_pos < SP__INDEX_INTERVAL)
        return;
    uint32_t rel = (uint32_t)(base_offset - seg->base);
    if (seg->nidx == seg->idx_cap) {
        seg->idx_cap = seg->idx_cap ? seg->idx_cap * 2 : 64;
        seg->idx = sp_xrealloc(seg->idx, seg->idx_cap * sizeof *seg->idx);
    }
    seg->idx[seg->nidx++] = (sp__idx_entry){rel, (uint32_t)pos};
    seg->last_idx_pos = pos;
    if (seg->ntix && seg->tix[seg->ntix - 1].ts >= seg->max_ts)
        return;
    if (seg->ntix == seg->tix_cap) {
        seg->tix_cap = seg->tix_cap ? seg->tix_cap * 2 : 64;
        seg->tix = sp_xrealloc(seg->tix, seg->tix_cap * sizeof *seg->tix);
    }
    seg->tix[seg->ntix++] = (sp__tix_entry){seg->max_ts, rel};
}

void sp__segment_index_truncate(sp__segment *seg, uint64_t pos)
{
    while (seg->nidx && seg->idx[seg->nidx - 1].pos >= pos)
        seg->nidx--;
    uint32_t limit = seg->nidx ? seg->idx[seg->nidx - 1].rel : 0;
    while (seg->ntix && (seg->nidx == 0 || seg->tix[seg->ntix - 1].rel > limit))
        seg->ntix--;
    seg->last_idx_pos = seg->nidx ? seg->idx[seg->nidx - 1].pos : 0;
}

uint64_t sp__segment_lookup(const sp__segment *seg, uint64_t offset)
{
    if (seg->nidx == 0 || offset < seg->base)
        return 0;
    uint64_t rel = offset - seg->base;
    uint32_t lo = 0, hi = seg->nidx; /* find the last entry with rel <= target */
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (seg->idx[mid].rel <= rel)
            lo = mid;
        else
            hi = mid;
    }
    return seg->idx[lo].rel <= rel ? seg->idx[lo].pos : 0;
}

uint64_t sp__segment_time_lookup(const sp__segment *seg, int64_t ts_ms)
{
    uint32_t lo = 0, hi = seg->ntix; /* first entry with ts >= target */
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (seg->tix[mid].ts < ts_ms)
            lo = mid + 1;
        else
            hi = mid;
    }
    /* Every batch up to entry lo-1 has only timestamps < target. */
    return lo == 0 ? seg->base : seg->base + seg->tix[lo - 1].rel;
}

/* ---- scanning ------------------------------------------------------------ */

static bool later_batch_exists(const char *p, uint64_t from, uint64_t end, uint64_t after_offset)
{
    for (uint64_t q = from; q + SP__BATCH_HDR <= end; q++) {
        if ((unsigned char)p[q + 8] != SP__BATCH_MAGIC ||
            (unsigned char)p[q + 9] != SP__BATCH_VERSION)
            continue;
        sp__batch_hdr h;
        if (sp__batch_check(p + q, end - q, &h) == SP__BATCH_OK && h.base_offset >= after_offset)
            return true;
    }
    return false;
}

static void scan_mem(const char *p, uint64_t size, uint64_t base, sp__scan *res, sp__segment *build)
{
    uint64_t pos = 0, next = base;
    while (pos < size) {
        sp__batch_hdr h;
        int r = sp__batch_check(p + pos, size - pos, &h);
        if (r == SP__BATCH_OK && h.base_offset != next)
            r = SP__BATCH_BAD;
        if (r != SP__BATCH_OK) {
            res->damage = later_batch_exists(p, pos + 1, size, next) ? 2 : 1;
            break;
        }
        if (build)
            sp__segment_index_batch(build, h.base_offset, pos, h.max_ts);
        if (h.max_ts > res->max_ts)
            res->max_ts = h.max_ts;
        res->batches++;
        res->records += h.count;
        next += h.count;
        pos += h.length;
    }
    res->valid_end = pos;
    res->next_offset = next;
}

int sp__scan_fd(int fd, uint64_t base, sp__scan *res, sp__segment *build_into)
{
    memset(res, 0, sizeof *res);
    res->max_ts = INT64_MIN;
    res->next_offset = base;
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    res->file_size = (uint64_t)st.st_size;
    if (st.st_size == 0)
        return 0;
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED)
        return -errno;
    madvise(map, (size_t)st.st_size, MADV_SEQUENTIAL);
    scan_mem(map, res->file_size, base, res, build_into);
    munmap(map, (size_t)st.st_size);
    return 0;
}

int sp__segment_scan(sp__segment *seg, bool build, sp__scan *res)
{
    if (build) {
        seg->nidx = seg->ntix = 0;
        seg->last_idx_pos = 0;
        seg->max_ts = INT64_MIN;
    }
    return sp__scan_fd(seg->fd, seg->base, res, build ? seg : NULL);
}

/* ---- index files --------------------------------------------------------- */

static int read_whole(const struct sp_store_io *io, int dirfd, const char *name, char **out,
                      size_t *len)
{
    int fd = io->openat(io->ctx, dirfd, name, O_RDONLY | O_NOFOLLOW, 0);
    if (fd < 0)
        return fd;
    struct stat st;
    int err = fstat(fd, &st) < 0 ? -errno : 0;
    if (!err && (st.st_size < IDX_HDR || st.st_size > (1 << 28)))
        err = -EBADMSG;
    if (!err) {
        *len = (size_t)st.st_size;
        *out = sp_xmalloc(*len);
        ssize_t n = io->pread(io->ctx, fd, *out, *len, 0);
        if (n != (ssize_t)*len) {
            free(*out);
            err = n < 0 ? (int)n : -EBADMSG;
        }
    }
    io->close(io->ctx, fd);
    return err;
}

static int check_header(const char *b, size_t len, uint32_t magic, size_t entry, uint32_t *count)
{
    *count = sp__get_u32(b + 8);
    if (sp__get_u32(b) != magic || sp__get_u32(b + 4) != 1 || (len - IDX_HDR) / entry != *count ||
        (len - IDX_HDR) % entry != 0 || sp__get_u32(b + 12) != sp__crc32c(0, b + 16, len - 16))
        return -EBADMSG;
    return 0;
}

static int load_idx(sp__segment *seg, const char *b, size_t len, uint64_t log_size)
{
    uint32_t n;
    if (check_header(b, len, IDX_MAGIC, 8, &n) < 0 || sp__get_u64(b + 32) != log_size)
        return -EBADMSG;
    uint64_t next = sp__get_u64(b + 16);
    if (next < seg->base || (n == 0) != (log_size == 0))
        return -EBADMSG;
    seg->idx = sp_xrealloc(seg->idx, (n ? n : 1) * sizeof *seg->idx);
    seg->idx_cap = n ? n : 1;
    for (uint32_t i = 0; i < n; i++) {
        sp__idx_entry e = {sp__get_u32(b + IDX_HDR + 8 * i), sp__get_u32(b + IDX_HDR + 8 * i + 4)};
        if (e.pos >= log_size || e.rel >= next - seg->base || (i == 0 && (e.rel || e.pos)) ||
            (i && (e.rel <= seg->idx[i - 1].rel || e.pos <= seg->idx[i - 1].pos)))
            return -EBADMSG;
        seg->idx[i] = e;
    }
    seg->nidx = n;
    seg->next_offset = seg->pub_next = next;
    seg->max_ts = (int64_t)sp__get_u64(b + 24);
    return 0;
}

static int load_tix(sp__segment *seg, const char *b, size_t len)
{
    uint32_t n;
    if (check_header(b, len, TIX_MAGIC, 12, &n) < 0)
        return -EBADMSG;
    seg->tix = sp_xrealloc(seg->tix, (n ? n : 1) * sizeof *seg->tix);
    seg->tix_cap = n ? n : 1;
    for (uint32_t i = 0; i < n; i++) {
        const char *e = b + IDX_HDR + 12 * i;
        sp__tix_entry t = {(int64_t)sp__get_u64(e), sp__get_u32(e + 8)};
        if (t.rel >= seg->next_offset - seg->base || t.ts > seg->max_ts ||
            (i && t.ts <= seg->tix[i - 1].ts))
            return -EBADMSG;
        seg->tix[i] = t;
    }
    seg->ntix = n;
    return 0;
}

int sp__segment_load_index(sp__segment *seg, int dirfd)
{
    struct stat st;
    if (fstat(seg->fd, &st) < 0)
        return -errno;
    char name[SP__SEG_NAME_MAX];
    char *b = NULL;
    size_t len = 0;
    sp__segment_name(name, seg->base, "idx");
    int err = read_whole(seg->io, dirfd, name, &b, &len);
    if (err < 0)
        return err;
    err = load_idx(seg, b, len, (uint64_t)st.st_size);
    free(b);
    if (err < 0)
        return err;
    sp__segment_name(name, seg->base, "tix");
    err = read_whole(seg->io, dirfd, name, &b, &len);
    if (err < 0)
        return err;
    err = load_tix(seg, b, len);
    free(b);
    if (err < 0)
        return err;
    seg->size = seg->pub_size = (uint64_t)st.st_size;
    seg->last_idx_pos = seg->nidx ? seg->idx[seg->nidx - 1].pos : 0;
    return 0;
}

static int write_file(const struct sp_store_io *io, int dirfd, const char *name, const char *b,
                      size_t len)
{
    char tmp[SP__SEG_NAME_MAX + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", name);
    int fd = io->openat(io->ctx, dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0644);
    if (fd < 0)
        return fd;
    ssize_t n = io->pwrite(io->ctx, fd, b, len, 0);
    int err = n < 0 ? (int)n : io->fdatasync(io->ctx, fd);
    io->close(io->ctx, fd);
    if (!err)
        err = io->renameat(io->ctx, dirfd, tmp, dirfd, name);
    if (err)
        io->unlinkat(io->ctx, dirfd, tmp, 0);
    return err;
}

static void put_header(char *b, size_t len, uint32_t magic, uint32_t count, const sp__segment *seg)
{
    sp__put_u32(b, magic);
    sp__put_u32(b + 4, 1);
    sp__put_u32(b + 8, count);
    sp__put_u64(b + 16, seg->next_offset);
    sp__put_u64(b + 24, (uint64_t)seg->max_ts);
    sp__put_u64(b + 32, seg->size);
    sp__put_u32(b + 12, sp__crc32c(0, b + 16, len - 16));
}

int sp__segment_write_index(sp__segment *seg, int dirfd)
{
    char name[SP__SEG_NAME_MAX];
    size_t ilen = IDX_HDR + 8 * (size_t)seg->nidx, tlen = IDX_HDR + 12 * (size_t)seg->ntix;
    char *b = sp_xcalloc(1, ilen > tlen ? ilen : tlen);
    for (uint32_t i = 0; i < seg->nidx; i++) {
        sp__put_u32(b + IDX_HDR + 8 * i, seg->idx[i].rel);
        sp__put_u32(b + IDX_HDR + 8 * i + 4, seg->idx[i].pos);
    }
    put_header(b, ilen, IDX_MAGIC, seg->nidx, seg);
    sp__segment_name(name, seg->base, "idx");
    int err = write_file(seg->io, dirfd, name, b, ilen);
    if (!err) {
        memset(b, 0, tlen);
        for (uint32_t i = 0; i < seg->ntix; i++) {
            sp__put_u64(b + IDX_HDR + 12 * i, (uint64_t)seg->tix[i].ts);
            sp__put_u32(b + IDX_HDR + 12 * i + 8, seg->tix[i].rel);
        }
        put_header(b, tlen, TIX_MAGIC, seg->ntix, seg);
        sp__segment_name(name, seg->base, "tix");
        err = write_file(seg->io, dirfd, name, b, tlen);
    }
    free(b);
    return err;
}

/* ---- lifetime ------------------------------------------------------------ */

void sp__segment_ref(sp__segment *seg)
{
    atomic_fetch_add_explicit(&seg->refs, 1, memory_order_relaxed);
}

void sp__segment_unref(sp__segment *seg)
{
    if (atomic_fetch_sub_explicit(&seg->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (seg->fd >= 0)
        seg->io->close(seg->io->ctx, seg->fd);
    free(seg->idx);
    free(seg->tix);
    free(seg);
}

int sp__segment_unlink(const struct sp_store_io *io, int dirfd, uint64_t base)
{
    char name[SP__SEG_NAME_MAX];
    sp__segment_name(name, base, "log");
    int err = io->unlinkat(io->ctx, dirfd, name, 0);
    sp__segment_name(name, base, "idx");
    io->unlinkat(io->ctx, dirfd, name, 0);
    sp__segment_name(name, base, "tix");
    io->unlinkat(io->ctx, dirfd, name, 0);
    return err == -ENOENT ? 0 : err;
}
