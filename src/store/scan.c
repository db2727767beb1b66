/* scan.c - `spate log verify` and `spate log dump`: walk the files of a data
 * directory read-only, with the same codec and scan as start-up recovery,
 * and report instead of repairing. */
#include "store/scan.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/json.h"
#include "store/codec.h"
#include "store/segment.h"
#include "store/store.h"

typedef struct data_dir {
    int dirfd, lockfd, topicsfd;
} data_dir;

static int dir_open(const char *path, data_dir *d)
{
    d->dirfd = d->lockfd = d->topicsfd = -1;
    d->dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d->dirfd < 0)
        return -errno;
    d->lockfd = openat(d->dirfd, "spate.lock", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (d->lockfd >= 0 && flock(d->lockfd, LOCK_SH | LOCK_NB) < 0)
        return errno == EWOULDBLOCK ? -EBUSY : -errno;
    d->topicsfd = openat(d->dirfd, "topics", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    return d->topicsfd < 0 ? -errno : 0;
}

static void dir_close(data_dir *d)
{
    int *fds[] = {&d->topicsfd, &d->lockfd, &d->dirfd};
    for (size_t i = 0; i < 3; i++)
        if (*fds[i] >= 0)
            close(*fds[i]);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Lists names in dirfd accepted by `keep` into a sorted array of u64 keys. */
static size_t list_numbers(int dirfd, bool segments, uint64_t **out)
{
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    size_t n = 0, cap = 16;
    *out = sp_xmalloc(cap * sizeof **out);
    if (!d) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        uint64_t v;
        const char *ext;
        char *end;
        if (segments) {
            if (sp__segment_parse_name(e->d_name, &v, &ext) < 0 || strcmp(ext, "log"))
                continue;
        } else {
            if (e->d_name[0] < '0' || e->d_name[0] > '9')
                continue;
            v = strtoull(e->d_name, &end, 10);
            if (*end)
                continue;
        }
        if (n == cap)
            *out = sp_xrealloc(*out, (cap *= 2) * sizeof **out);
        (*out)[n++] = v;
    }
    closedir(d);
    qsort(*out, n, sizeof **out, cmp_u64);
    return n;
}

/* ---- verify ------------------------------------------------------------------ */

typedef struct vctx {
    FILE *out;
    sp_store_verify_report *rep;
    const char *topic;
    uint64_t partition;
} vctx;

__attribute__((format(printf, 3, 4))) static void problem(vctx *v, uint64_t base, const char *fmt,
                                                          ...)
{
    va_list ap;
    fprintf(v->out, "%s/%" PRIu64 "/%020" PRIu64 ".log: ", v->topic, v->partition, base);
    va_start(ap, fmt);
    vfprintf(v->out, fmt, ap);
    va_end(ap);
    fputc('\n', v->out);
    v->rep->problems++;
}

static bool same_index(const sp__segment *a, const sp__segment *b)
{
    if (a->nidx != b->nidx || a->ntix != b->ntix || a->next_offset != b->next_offset)
        return false;
    for (uint32_t i = 0; i < a->nidx; i++)
        if (a->idx[i].rel != b->idx[i].rel || a->idx[i].pos != b->idx[i].pos)
            return false;
    for (uint32_t i = 0; i < a->ntix; i++) /* field by field: the struct has padding */
        if (a->tix[i].ts != b->tix[i].ts || a->tix[i].rel != b->tix[i].rel)
            return false;
    return true;
}

static void verify_index(vctx *v, int pfd, sp__segment *scanned)
{
    sp__segment *loaded;
    if (sp__segment_open_file(&sp__io_posix, pfd, scanned->base, true, &loaded) < 0)
        return;
    if (sp__segment_load_index(loaded, pfd) < 0)
        problem(v, scanned->base, "index missing or damaged (rebuilt at start-up)");
    else if (!same_index(loaded, scanned))
        problem(v, scanned->base, "index does not match the log (rebuilt at start-up)");
    sp__segment_unref(loaded);
}

static void verify_segment(vctx *v, int pfd, uint64_t base, bool last, uint64_t next_base)
{
    sp__segment *seg;
    if (sp__segment_open_file(&sp__io_posix, pfd, base, true, &seg) < 0) {
        problem(v, base, "cannot open");
        return;
    }
    sp__scan r;
    if (sp__segment_scan(seg, true, &r) < 0) {
        problem(v, base, "cannot read");
    } else {
        seg->size = r.valid_end;
        seg->next_offset = r.next_offset;
        v->rep->segments++;
        v->rep->batches += r.batches;
        v->rep->records += r.records;
        if (r.damage == 2 || (r.damage == 1 && !last))
            problem(v, base, "corrupt batch at byte %" PRIu64 " (offset %" PRIu64 ")", r.valid_end,
                    r.next_offset);
        else if (r.damage == 1)
            problem(v, base, "torn tail at byte %" PRIu64 ": %" PRIu64 " bytes would be truncated",
                    r.valid_end, r.file_size - r.valid_end);
        if (!last && !r.damage && r.next_offset != next_base)
            problem(v, base, "offset gap: segment ends at %" PRIu64 ", next starts at %" PRIu64,
                    r.next_offset, next_base);
        if (!last && !r.damage)
            verify_index(v, pfd, seg);
    }
    sp__segment_unref(seg);
}

static void verify_topic(int topicsfd, const char *name, FILE *out, sp_store_verify_report *rep)
{
    int tfd = openat(topicsfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (tfd < 0)
        return;
    rep->topics++;
    uint64_t *parts;
    size_t np = list_numbers(tfd, false, &parts);
    for (size_t i = 0; i < np; i++) {
        char pname[24];
        snprintf(pname, sizeof pname, "%" PRIu64, parts[i]);
        int pfd = openat(tfd, pname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (pfd < 0)
            continue;
        rep->partitions++;
        vctx v = {out, rep, name, parts[i]};
        uint64_t *segs;
        size_t ns = list_numbers(pfd, true, &segs);
        for (size_t k = 0; k < ns; k++)
            verify_segment(&v, pfd, segs[k], k + 1 == ns, k + 1 < ns ? segs[k + 1] : 0);
        free(segs);
        close(pfd);
    }
    free(parts);
    close(tfd);
}

int sp_store_verify(const char *path, FILE *out, sp_store_verify_report *rep)
{
    data_dir d;
    memset(rep, 0, sizeof *rep);
    int err = dir_open(path, &d);
    if (err < 0) {
        dir_close(&d);
        return err;
    }
    int fd = dup(d.topicsfd);
    DIR *td = fd < 0 ? NULL : fdopendir(fd);
    struct dirent *e;
    while (td && (e = readdir(td)))
        if (sp_store_topic_name_valid(e->d_name))
            verify_topic(d.topicsfd, e->d_name, out, rep);
    if (td)
        closedir(td);
    fprintf(out,
            "%s: %" PRIu64 " topics, %" PRIu64 " partitions, %" PRIu64 " segments, %" PRIu64
            " batches, %" PRIu64 " records, %" PRIu64 " problems\n",
            rep->problems ? "NOT CLEAN" : "clean", rep->topics, rep->partitions, rep->segments,
            rep->batches, rep->records, rep->problems);
    dir_close(&d);
    return rep->problems ? 1 : 0;
}

/* ---- dump ------------------------------------------------------------------------ */

static void print_record(sp_buf *b, uint64_t partition, const sp_store_record *r, FILE *out)
{
    sp_buf_reset(b);
    sp_buf_printf(
        b, "{\"partition\":%" PRIu64 ",\"offset\":%" PRIu64 ",\"timestamp\":%" PRId64 ",\"key\":",
        partition, r->offset, r->timestamp);
    if (r->key.base)
        sp_json_str(b, r->key);
    else
        sp_buf_append_cstr(b, "null");
    sp_buf_append_cstr(b, ",\"value\":");
    sp_json_str(b, r->value);
    sp_buf_append_cstr(b, ",\"headers\":{");
    for (uint32_t i = 0; i < r->header_count; i++) {
        if (i)
            sp_buf_putc(b, ',');
        sp_json_str(b, r->headers[i].name);
        sp_buf_putc(b, ':');
        sp_json_str(b, r->headers[i].value);
    }
    sp_buf_append_cstr(b, "}}\n");
    fwrite(b->base, 1, b->len, out);
}

/* Prints records >= from in one mapped segment; returns 0, or 1 at damage. */
static int dump_mem(const char *p, uint64_t size, uint64_t partition, uint64_t from, FILE *out,
                    uint64_t *at)
{
    sp_buf b;
    sp_buf_init(&b, SP_BUF_UNLIMITED);
    uint64_t pos = 0;
    int rc = 0;
    while (pos < size) {
        sp__batch_hdr h;
        if (sp__batch_check(p + pos, size - pos, &h) != SP__BATCH_OK) {
            *at = pos;
            rc = 1;
            break;
        }
        if (h.base_offset + h.count > from) {
            sp_store_record *recs = sp_xmalloc(h.count * sizeof *recs);
            sp_store_header *hdrs =
                sp_xmalloc((h.header_total ? h.header_total : 1) * sizeof *hdrs);
            sp__batch_decode(p + pos, &h, recs, hdrs);
            for (uint32_t i = 0; i < h.count; i++)
                if (recs[i].offset >= from)
                    print_record(&b, partition, &recs[i], out);
            free(recs);
            free(hdrs);
        }
        pos += h.length;
    }
    sp_buf_free(&b);
    return rc;
}

static int dump_segment(int pfd, uint64_t partition, uint64_t base, uint64_t from, FILE *out,
                        FILE *errf)
{
    char name[SP__SEG_NAME_MAX];
    sp__segment_name(name, base, "log");
    int fd = openat(pfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        int err = -errno;
        if (fd >= 0)
            close(fd);
        return err;
    }
    int rc = 0;
    if (st.st_size > 0) {
        void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        uint64_t at = 0;
        if (map == MAP_FAILED) {
            rc = -errno;
        } else {
            rc = dump_mem(map, (uint64_t)st.st_size, partition, from, out, &at);
            munmap(map, (size_t)st.st_size);
        }
        if (rc == 1)
            fprintf(errf,
                    "spate log dump: partition %" PRIu64 ": bad batch in %s at byte %" PRIu64
                    "; stopping\n",
                    partition, name, at);
    }
    close(fd);
    return rc;
}

static int dump_partition(int tfd, uint64_t partition, uint64_t from, FILE *out, FILE *errf)
{
    char pname[24];
    snprintf(pname, sizeof pname, "%" PRIu64, partition);
    int pfd = openat(tfd, pname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (pfd < 0)
        return -errno;
    uint64_t *segs;
    size_t ns = list_numbers(pfd, true, &segs);
    int rc = 0;
    for (size_t k = 0; k < ns && rc == 0; k++)
        if (k + 1 == ns || segs[k + 1] > from)
            rc = dump_segment(pfd, partition, segs[k], from, out, errf);
    free(segs);
    close(pfd);
    return rc;
}

int sp_store_dump(const char *path, const char *topic, int32_t partition, uint64_t from, FILE *out,
                  FILE *errf)
{
    if (!sp_store_topic_name_valid(topic))
        return -EINVAL;
    data_dir d;
    int rc = dir_open(path, &d);
    int tfd =
        rc < 0 ? -1 : openat(d.topicsfd, topic, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (rc == 0 && tfd < 0)
        rc = -errno;
    if (rc == 0) {
        uint64_t *parts;
        size_t np = list_numbers(tfd, false, &parts);
        bool found = partition < 0;
        for (size_t i = 0; i < np && rc == 0; i++) {
            if (partition >= 0 && parts[i] != (uint64_t)partition)
                continue;
            found = true;
            rc = dump_partition(tfd, parts[i], from, out, errf);
        }
        free(parts);
        if (!found)
            rc = -ENOENT;
    }
    if (tfd >= 0)
        close(tfd);
    dir_close(&d);
    return rc;
}
