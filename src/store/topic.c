/* topic.c - topics on disk: names, metadata, create/delete, and opening
 * every partition at start-up with recovery.
 *
 * Layout under the data directory (every open is openat relative to a
 * directory fd, with O_NOFOLLOW, and names are validated first, so no name
 * can reach outside the data directory):
 *
 *   spate.lock                  flock'ed by the running store
 *   topics/<name>/topic.meta    partitions, segment/retention settings, CRC
 *   topics/<name>/<p>/<base>.log|.idx|.tix
 *   staging/                    topics being built or deleted; emptied at start
 *
 * A topic is built in staging/, fsync'ed, then renamed into topics/ (and
 * both directories fsync'ed), so a crash leaves either no topic or a whole
 * one. Deletion renames it back into staging/ first, then removes files. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/log.h"
#include "core/time.h"
#include "store/crc32c.h"
#include "store/store_int.h"

#define META_NAME "topic.meta"
#define META_MAX  1024

int sp_store_topic_name_valid(const char *name)
{
    size_t n = 0;
    if (!name)
        return 0;
    for (; name[n]; n++) {
        char c = name[n];
        if (n >= 249 || !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                          (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return n > 0 && strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

int sp__rmtree(int parent, const char *name)
{
    int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOTDIR ? (unlinkat(parent, name, 0) < 0 ? -errno : 0) : -errno;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return -errno;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (e->d_type == DT_DIR)
            sp__rmtree(dirfd(d), e->d_name);
        else
            unlinkat(dirfd(d), e->d_name, 0);
    }
    closedir(d);
    return unlinkat(parent, name, AT_REMOVEDIR) < 0 ? -errno : 0;
}

/* ---- metadata ------------------------------------------------------------ */

static int meta_format(char *out, size_t cap, const sp__topic *t)
{
    int n = snprintf(out, cap,
                     "spate-topic 1\npartitions=%" PRIu32 "\nsegment_bytes=%" PRIu64
                     "\nretention_bytes=%" PRIu64 "\nretention_ms=%" PRId64 "\ncreated_ms=%" PRId64
                     "\n",
                     t->cfg.partitions, t->cfg.segment_bytes, t->cfg.retention_bytes,
                     t->cfg.retention_ms, t->created_ms);
    if (n < 0 || (size_t)n + 20 >= cap)
        return -ENAMETOOLONG;
    n += snprintf(out + n, cap - (size_t)n, "crc=%08" PRIx32 "\n", sp__crc32c(0, out, (size_t)n));
    return n;
}

static int meta_field(const char *text, const char *key, long long *out)
{
    size_t klen = strlen(key);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (!strncmp(p, key, klen) && p[klen] == '=') {
            char *end;
            errno = 0;
            *out = strtoll(p + klen + 1, &end, p[klen + 1] == '0' && p[klen + 2] == 'x' ? 16 : 10);
            return errno || *end != '\n' ? -EBADMSG : 0;
        }
    }
    return -EBADMSG;
}

static int meta_parse(const char *text, size_t len, sp__topic *t)
{
    const char *crc = strstr(text, "crc=");
    long long v[5];
    if (len < 14 || memcmp(text, "spate-topic 1\n", 14) || !crc ||
        strtoul(crc + 4, NULL, 16) != sp__crc32c(0, text, (size_t)(crc - text)))
        return -EBADMSG;
    if (meta_field(text, "partitions", &v[0]) || meta_field(text, "segment_bytes", &v[1]) ||
        meta_field(text, "retention_bytes", &v[2]) || meta_field(text, "retention_ms", &v[3]) ||
        meta_field(text, "created_ms", &v[4]) || v[0] < 1 || v[0] > 1000000 || v[1] < 1 || v[2] < 0)
        return -EBADMSG;
    t->cfg.partitions = (uint32_t)v[0];
    t->cfg.segment_bytes = (uint64_t)v[1];
    t->cfg.retention_bytes = (uint64_t)v[2];
    t->cfg.retention_ms = v[3];
    t->created_ms = v[4];
    return 0;
}

static int meta_write(sp_store *s, int dirfd, const sp__topic *t)
{
    char text[META_MAX];
    int n = meta_format(text, sizeof text, t);
    if (n < 0)
        return n;
    int fd =
        s->io->openat(s->io->ctx, dirfd, META_NAME, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0644);
    if (fd < 0)
        return fd;
    ssize_t w = s->io->pwrite(s->io->ctx, fd, text, (size_t)n, 0);
    int err = w < 0 ? (int)w : s->io->fdatasync(s->io->ctx, fd);
    s->io->close(s->io->ctx, fd);
    return err;
}

static int meta_read(int dirfd, sp__topic *t)
{
    char text[META_MAX];
    int fd = openat(dirfd, META_NAME, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n < 0)
        return -errno;
    text[n] = '\0';
    return meta_parse(text, (size_t)n, t);
}

/* ---- partitions ------------------------------------------------------------ */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Lists segment bases (sorted) and removes leftovers: *.tmp files and
 * indexes whose log is gone. */
static int list_segments(sp_store *s, int dirfd, uint64_t **bases, size_t *n)
{
    int fd = dup(dirfd);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (!d) {
        int err = -errno;
        if (fd >= 0)
            close(fd);
        return err;
    }
    size_t cap = 16;
    *bases = sp_xmalloc(cap * sizeof **bases);
    *n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        uint64_t base;
        const char *ext;
        if (e->d_name[0] == '.')
            continue;
        size_t len = strlen(e->d_name);
        if (len > 4 && !strcmp(e->d_name + len - 4, ".tmp")) {
            s->io->unlinkat(s->io->ctx, dirfd, e->d_name, 0);
            continue;
        }
        if (sp__segment_parse_name(e->d_name, &base, &ext) < 0)
            continue;
        if (strcmp(ext, "log")) {
            char log[SP__SEG_NAME_MAX];
            sp__segment_name(log, base, "log");
            if (faccessat(dirfd, log, F_OK, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT)
                s->io->unlinkat(s->io->ctx, dirfd, e->d_name, 0);
            continue;
        }
        if (*n == cap)
            *bases = sp_xrealloc(*bases, (cap *= 2) * sizeof **bases);
        (*bases)[(*n)++] = base;
    }
    closedir(d);
    qsort(*bases, *n, sizeof **bases, cmp_u64);
    return 0;
}

static void part_push_segment(sp__partition *p, sp__segment *seg)
{
    if (p->nsegs == p->segs_cap) {
        p->segs_cap = p->segs_cap ? p->segs_cap * 2 : 8;
        p->segs = sp_xrealloc(p->segs, p->segs_cap * sizeof *p->segs);
    }
    p->segs[p->nsegs++] = seg;
}

static void log_damage(const sp__partition *p, const sp__segment *seg, const sp__scan *r,
                       const char *what)
{
    SP_LOG_ERROR(what, SP_LF_STR("topic", p->topic->name) SP_LF_INT("partition", p->id)
                           SP_LF_INT("segment", (long long)seg->base)
                               SP_LF_INT("position", (long long)r->valid_end)
                                   SP_LF_INT("offset", (long long)r->next_offset)
                                       SP_LF_INT("file_size", (long long)r->file_size));
}

/* Applies the corruption policy to segment index i whose scan found
 * mid-segment damage. With TRUNCATE, later segments are removed. */
static int handle_corruption(sp_store *s, sp__partition *p, size_t i, const sp__scan *r,
                             size_t *nbases)
{
    sp__segment *seg = p->segs[i];
    if (s->opt.on_corruption == SP_STORE_CORRUPTION_FENCE) {
        log_damage(
            p, seg, r,
            "store: corrupt batch in the middle of a segment; partition fenced (reads stop at the "
            "damage, "
            "appends fail with EUCLEAN); run `spate log verify` and see docs/internals/STORE.md");
        p->state = -EUCLEAN;
        return 0;
    }
    log_damage(p, seg, r,
               "store: corrupt batch in the middle of a segment; truncating the partition there "
               "(on_corruption=truncate): records from this offset on are discarded");
    int err = s->io->ftruncate(s->io->ctx, seg->fd, (off_t)r->valid_end);
    if (!err)
        err = s->io->fdatasync(s->io->ctx, seg->fd);
    *nbases = i + 1;
    return err;
}

static int open_segment(sp_store *s, sp__partition *p, uint64_t base, bool last, sp__scan *r)
{
    sp__segment *seg;
    int err = sp__segment_open_file(s->io, p->dirfd, base, false, &seg);
    if (err < 0)
        return err;
    part_push_segment(p, seg);
    memset(r, 0, sizeof *r);
    if (!last && sp__segment_load_index(seg, p->dirfd) == 0) {
        r->valid_end = r->file_size = seg->size;
        r->next_offset = seg->next_offset;
        r->indexed = 1;
        return 0;
    }
    err = sp__segment_scan(seg, true, r);
    if (err < 0)
        return err;
    seg->size = seg->pub_size = r->valid_end;
    seg->next_offset = seg->pub_next = r->next_offset;
    return 0;
}

static int recover_tail(sp_store *s, sp__partition *p, sp__segment *seg, const sp__scan *r)
{
    SP_LOG_WARN("store: truncating torn tail",
                SP_LF_STR("topic", p->topic->name) SP_LF_INT("partition", p->id)
                    SP_LF_INT("segment", (long long)seg->base)
                        SP_LF_INT("position", (long long)r->valid_end)
                            SP_LF_INT("dropped_bytes", (long long)(r->file_size - r->valid_end)));
    int err = s->io->ftruncate(s->io->ctx, seg->fd, (off_t)r->valid_end);
    return err ? err : s->io->fdatasync(s->io->ctx, seg->fd);
}

static int open_segments(sp_store *s, sp__partition *p, uint64_t *bases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        sp__scan r;
        bool last = i + 1 == n;
        int err = open_segment(s, p, bases[i], last, &r);
        if (err < 0)
            return err;
        sp__segment *seg = p->segs[i];
        bool gap = !last && r.next_offset != bases[i + 1];
        if (r.damage == 2 || (!last && (r.damage || gap))) {
            if (p->state == 0 && (err = handle_corruption(s, p, i, &r, &n)) < 0)
                return err;
        } else if (r.damage == 1 && (err = recover_tail(s, p, seg, &r)) < 0) {
            return err;
        }
        if (!last && !r.damage && !gap) {
            seg->sealed = true;
            if (!r.indexed) /* missing or damaged: rebuilt by the scan, persist it */
                sp__segment_write_index(seg, p->dirfd);
        }
    }
    /* TRUNCATE may have cut the list: drop the segments past the damage. */
    while (p->nsegs > n) {
        sp__segment *seg = p->segs[--p->nsegs];
        sp__segment_unlink(s->io, p->dirfd, seg->base);
        sp__segment_unref(seg);
    }
    return 0;
}

static int partition_open(sp_store *s, sp__topic *t, uint32_t id)
{
    sp__partition *p = &t->parts[id];
    char name[16];
    snprintf(name, sizeof name, "%" PRIu32, id);
    p->topic = t;
    p->id = id;
    pthread_mutex_init(&p->mu, NULL);
    p->dirfd = s->io->openat(s->io->ctx, t->dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0);
    if (p->dirfd < 0)
        return p->dirfd;
    uint64_t *bases = NULL;
    size_t n = 0;
    int err = list_segments(s, p->dirfd, &bases, &n);
    if (err < 0)
        return err;
    if (n == 0) {
        SP_LOG_WARN("store: partition has no segment; starting an empty one at offset 0",
                    SP_LF_STR("topic", t->name) SP_LF_INT("partition", id));
        sp__segment *seg;
        err = sp__segment_create(s->io, p->dirfd, 0, &seg);
        if (!err) {
            part_push_segment(p, seg);
            err = s->io->fsync_dir(s->io->ctx, p->dirfd);
        }
    } else {
        err = open_segments(s, p, bases, n);
    }
    free(bases);
    if (err < 0)
        return err;
    sp__segment *act = sp__active(p);
    p->next_offset = p->visible_offset = p->synced_offset = act->next_offset;
    p->synced_size = act->size;
    for (size_t i = 0; i < p->nsegs; i++)
        p->bytes += p->segs[i]->pub_size;
    return 0;
}

static void partition_free(sp__partition *p)
{
    for (size_t i = 0; i < p->nsegs; i++)
        sp__segment_unref(p->segs[i]);
    free(p->segs);
    if (p->dirfd >= 0)
        close(p->dirfd);
    pthread_mutex_destroy(&p->mu);
}

/* ---- topics ------------------------------------------------------------- */

static sp__topic *topic_new(sp_store *s, const char *name)
{
    sp__topic *t = sp_xcalloc(1, sizeof *t);
    t->name = sp_xstrdup(name);
    t->store = s;
    t->dirfd = -1;
    atomic_init(&t->refs, 1);
    return t;
}

void sp__topic_unref(sp__topic *t)
{
    if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (uint32_t i = 0; i < t->nparts; i++)
        partition_free(&t->parts[i]);
    free(t->parts);
    if (t->dirfd >= 0)
        close(t->dirfd);
    free(t->name);
    free(t);
}

/* Opens topics/<name> (already validated) and every partition in it. */
static int topic_open(sp_store *s, const char *name, sp__topic **out)
{
    sp__topic *t = topic_new(s, name);
    int err = t->dirfd =
        s->io->openat(s->io->ctx, s->topics_dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0);
    if (err < 0)
        goto fail;
    if ((err = meta_read(t->dirfd, t)) < 0) {
        SP_LOG_ERROR("store: unreadable topic metadata",
                     SP_LF_STR("topic", name) SP_LF_INT("errno", -err));
        goto fail;
    }
    t->parts = sp_xcalloc(t->cfg.partitions, sizeof *t->parts);
    for (uint32_t i = 0; i < t->cfg.partitions; i++, t->nparts++) {
        t->parts[i].dirfd = -1;
        if ((err = partition_open(s, t, i)) < 0) {
            t->nparts++;
            SP_LOG_ERROR("store: cannot open partition",
                         SP_LF_STR("topic", name) SP_LF_INT("partition", i)
                             SP_LF_INT("errno", -err));
            goto fail;
        }
    }
    *out = t;
    return 0;
fail:
    sp__topic_unref(t);
    return err;
}

static void table_add(sp_store *s, sp__topic *t)
{
    if (s->ntopics == s->topics_cap) {
        s->topics_cap = s->topics_cap ? s->topics_cap * 2 : 16;
        s->topics = sp_xrealloc(s->topics, s->topics_cap * sizeof *s->topics);
    }
    s->topics[s->ntopics++] = t;
}

static ssize_t table_find(sp_store *s, const char *name)
{
    for (size_t i = 0; i < s->ntopics; i++)
        if (!strcmp(s->topics[i]->name, name))
            return (ssize_t)i;
    return -1;
}

sp__topic *sp__topic_get(sp_store *s, const char *name)
{
    sp__topic *t = NULL;
    pthread_rwlock_rdlock(&s->topics_lock);
    ssize_t i = table_find(s, name);
    if (i >= 0) {
        t = s->topics[i];
        atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
    }
    pthread_rwlock_unlock(&s->topics_lock);
    return t;
}

int sp__topics_load(sp_store *s)
{
    int fd = dup(s->topics_dirfd);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (!d) {
        if (fd >= 0)
            close(fd);
        return -errno;
    }
    struct dirent *e;
    int err = 0;
    while (!err && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (!sp_store_topic_name_valid(e->d_name)) {
            SP_LOG_WARN("store: ignoring a file that is not a topic", SP_LF_STR("name", e->d_name));
            continue;
        }
        sp__topic *t;
        if ((err = topic_open(s, e->d_name, &t)) == 0)
            table_add(s, t);
    }
    closedir(d);
    return err;
}

void sp__topics_free(sp_store *s)
{
    for (size_t i = 0; i < s->ntopics; i++)
        sp__topic_unref(s->topics[i]);
    free(s->topics);
    s->topics = NULL;
    s->ntopics = 0;
}

static int resolve_config(sp_store *s, const sp_store_topic_config *in, sp_store_topic_config *out)
{
    if (!in || in->partitions < 1 || in->partitions > s->opt.max_partitions)
        return -EINVAL;
    *out = *in;
    if (!out->segment_bytes)
        out->segment_bytes = s->opt.segment_bytes;
    if (!out->retention_bytes)
        out->retention_bytes = s->opt.retention_bytes;
    if (out->retention_ms == 0)
        out->retention_ms = s->opt.retention_ms;
    if (out->retention_ms < 0)
        out->retention_ms = 0;
    if (out->segment_bytes < 1024 || out->segment_bytes > (1u << 30))
        return -EINVAL;
    return 0;
}

/* Builds staging/<sname>/ with the metadata and empty partitions, synced. */
static int stage_topic(sp_store *s, const char *sname, const sp__topic *t)
{
    const struct sp_store_io *io = s->io;
    int err = io->mkdirat(io->ctx, s->staging_dirfd, sname, 0755);
    if (err < 0)
        return err;
    int tfd = io->openat(io->ctx, s->staging_dirfd, sname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0);
    if (tfd < 0)
        return tfd;
    err = meta_write(s, tfd, t);
    for (uint32_t i = 0; !err && i < t->cfg.partitions; i++) {
        char pname[16];
        snprintf(pname, sizeof pname, "%" PRIu32, i);
        if ((err = io->mkdirat(io->ctx, tfd, pname, 0755)) < 0)
            break;
        int pfd = io->openat(io->ctx, tfd, pname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0);
        if (pfd < 0) {
            err = pfd;
            break;
        }
        sp__segment *seg;
        if ((err = sp__segment_create(io, pfd, 0, &seg)) == 0) {
            sp__segment_unref(seg);
            err = io->fsync_dir(io->ctx, pfd);
        }
        close(pfd);
    }
    if (!err)
        err = io->fsync_dir(io->ctx, tfd);
    close(tfd);
    return err;
}

int sp_store_topic_create(sp_store *s, const char *name, const sp_store_topic_config *cfg)
{
    if (!sp_store_topic_name_valid(name))
        return -EINVAL;
    sp__topic proto = {.created_ms = sp_time_now_ms()};
    int err = resolve_config(s, cfg, &proto.cfg);
    if (err < 0)
        return err;
    sp__topic *existing = sp__topic_get(s, name);
    if (existing) {
        sp__topic_unref(existing);
        return -EEXIST;
    }
    char sname[64];
    pthread_mutex_lock(&s->qmu);
    snprintf(sname, sizeof sname, "c-%lu", ++s->staging_seq);
    pthread_mutex_unlock(&s->qmu);
    if ((err = stage_topic(s, sname, &proto)) < 0)
        goto fail;
    pthread_rwlock_wrlock(&s->topics_lock);
    if (table_find(s, name) >= 0)
        err = -EEXIST;
    else if (s->ntopics >= s->opt.max_topics)
        err = -ENOSPC;
    else if ((err = s->io->renameat(s->io->ctx, s->staging_dirfd, sname, s->topics_dirfd, name)) <
             0)
        err = (err == -ENOTEMPTY || err == -EEXIST) ? -EEXIST : err;
    if (!err) {
        s->io->fsync_dir(s->io->ctx, s->topics_dirfd);
        s->io->fsync_dir(s->io->ctx, s->staging_dirfd);
        sp__topic *t;
        if ((err = topic_open(s, name, &t)) == 0)
            table_add(s, t);
    }
    pthread_rwlock_unlock(&s->topics_lock);
    if (!err)
        return 0;
fail:
    sp__rmtree(s->staging_dirfd, sname);
    return err;
}

int sp_store_topic_delete(sp_store *s, const char *name)
{
    if (!sp_store_topic_name_valid(name))
        return -ENOENT;
    char sname[64];
    pthread_rwlock_wrlock(&s->topics_lock);
    ssize_t i = table_find(s, name);
    if (i < 0) {
        pthread_rwlock_unlock(&s->topics_lock);
        return -ENOENT;
    }
    sp__topic *t = s->topics[i];
    s->topics[i] = s->topics[--s->ntopics];
    atomic_store(&t->deleted, true);
    pthread_mutex_lock(&s->qmu);
    snprintf(sname, sizeof sname, "d-%lu", ++s->staging_seq);
    pthread_mutex_unlock(&s->qmu);
    int err = s->io->renameat(s->io->ctx, s->topics_dirfd, name, s->staging_dirfd, sname);
    if (!err) {
        s->io->fsync_dir(s->io->ctx, s->topics_dirfd);
        s->io->fsync_dir(s->io->ctx, s->staging_dirfd);
    }
    pthread_rwlock_unlock(&s->topics_lock);
    if (!err)
        sp__rmtree(s->staging_dirfd, sname);
    else
        SP_LOG_ERROR("store: cannot move deleted topic aside",
                     SP_LF_STR("topic", name) SP_LF_INT("errno", -err));
    sp__topic_unref(t);
    return err;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int sp_store_topic_list(sp_store *s, char ***names, size_t *count)
{
    pthread_rwlock_rdlock(&s->topics_lock);
    *count = s->ntopics;
    *names = sp_xcalloc(s->ntopics ? s->ntopics : 1, sizeof **names);
    for (size_t i = 0; i < s->ntopics; i++)
        (*names)[i] = sp_xstrdup(s->topics[i]->name);
    pthread_rwlock_unlock(&s->topics_lock);
    qsort(*names, *count, sizeof **names, cmp_str);
    return 0;
}

void sp_store_topic_list_free(char **names, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(names[i]);
    free(names);
}

int sp_store_topic_describe(sp_store *s, const char *name, sp_store_topic_info *out)
{
    sp__topic *t = sp__topic_get(s, name);
    if (!t)
        return -ENOENT;
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", t->name);
    out->config = t->cfg;
    out->created_ms = t->created_ms;
    out->partition_count = t->nparts;
    out->partitions = sp_xcalloc(t->nparts ? t->nparts : 1, sizeof *out->partitions);
    for (uint32_t i = 0; i < t->nparts; i++) {
        sp__partition *p = &t->parts[i];
        sp_store_partition_info *pi = &out->partitions[i];
        pthread_mutex_lock(&p->mu);
        pi->partition = i;
        pi->start_offset = p->segs[0]->base;
        pi->end_offset = p->visible_offset;
        pi->bytes = p->bytes;
        pi->records = pi->end_offset - pi->start_offset;
        pi->segments = (uint32_t)p->nsegs;
        pi->state = p->state;
        pthread_mutex_unlock(&p->mu);
    }
    sp__topic_unref(t);
    return 0;
}

void sp_store_topic_info_free(sp_store_topic_info *info)
{
    free(info->partitions);
    info->partitions = NULL;
}

/* Fsyncgate recovery, on the store thread: after a failed write or sync we
 * cannot know what reached the disk past the last successful fdatasync, and
 * the kernel may already have dropped the dirty pages. So: open the active
 * segment again (a fresh fd, whose error state is clean), truncate it back
 * to the synced size, sync that, and resume from the synced offset. The old
 * segment object stays alive for readers that pinned it. */
int sp__partition_recover_error(sp_store *s, sp__partition *p)
{
    sp__segment *old = sp__active(p), *seg;
    int err = sp__segment_open_file(s->io, p->dirfd, old->base, false, &seg);
    if (err < 0)
        return err;
    uint64_t keep = old->pub_size, keep_next = old->pub_next; /* acknowledged data only */
    if ((err = s->io->ftruncate(s->io->ctx, seg->fd, (off_t)keep)) < 0 ||
        (err = s->io->fdatasync(s->io->ctx, seg->fd)) < 0) {
        sp__segment_unref(seg);
        return err;
    }
    pthread_mutex_lock(&p->mu);
    seg->size = seg->pub_size = keep;
    seg->next_offset = seg->pub_next = keep_next;
    seg->max_ts = old->max_ts;
    seg->idx = old->idx, seg->nidx = old->nidx, seg->idx_cap = old->idx_cap;
    seg->tix = old->tix, seg->ntix = old->ntix, seg->tix_cap = old->tix_cap;
    old->idx = sp_xmalloc(sizeof *old->idx * (old->nidx ? old->nidx : 1));
    memcpy(old->idx, seg->idx, sizeof *old->idx * old->nidx);
    old->tix = sp_xmalloc(sizeof *old->tix * (old->ntix ? old->ntix : 1));
    memcpy(old->tix, seg->tix, sizeof *old->tix * old->ntix);
    old->idx_cap = old->nidx ? old->nidx : 1, old->tix_cap = old->ntix ? old->ntix : 1;
    sp__segment_index_truncate(seg, keep);
    p->segs[p->nsegs - 1] = seg;
    p->state = 0;
    pthread_mutex_unlock(&p->mu);
    sp__segment_unref(old);
    p->next_offset = p->synced_offset = keep_next;
    p->synced_size = keep;
    p->dirty = false;
    SP_LOG_WARN("store: partition recovered after an I/O error",
                SP_LF_STR("topic", p->topic->name) SP_LF_INT("partition", p->id)
                    SP_LF_INT("offset", (long long)keep_next));
    return 0;
}
