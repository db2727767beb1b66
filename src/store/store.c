/* store.c - opening and closing a store, the append queue, flush, watches.
 *
 * sp_store_append encodes the records on the caller's thread (so encoding
 * scales with the I/O threads) into one allocation holding the whole batch,
 * then links it onto a bounded queue under qmu. The store thread
 * (writer.c) takes the whole queue each round. Everything else here is
 * bookkeeping around the data directory and its flock. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/log.h"
#include "core/time.h"
#include "store/codec.h"
#include "store/partitioner.h"
#include "store/store_int.h"

#define LOCK_NAME "spate.lock"

void sp_store_options_default(sp_store_options *o)
{
    memset(o, 0, sizeof *o);
    o->fsync = SP_STORE_FSYNC_ALWAYS;
    o->fsync_interval_ms = 1000;
    o->segment_bytes = 64u << 20;
    o->retention_bytes = 0;
    o->retention_ms = 7LL * 24 * 3600 * 1000;
    o->max_record_bytes = 1u << 20;
    o->max_append_records = 65536;
    o->queue_max_bytes = 64u << 20;
    o->queue_max_appends = 65536;
    o->max_topics = 10000;
    o->max_partitions = 1024;
    o->on_corruption = SP_STORE_CORRUPTION_FENCE;
}

static int check_options(const sp_store_options *o)
{
    if (o->fsync > SP_STORE_FSYNC_NEVER || o->fsync_interval_ms < 1 || o->segment_bytes < 1024 ||
        o->segment_bytes > (1u << 30) || o->retention_ms < 0 || o->max_record_bytes < 1 ||
        o->max_append_records < 1 || o->queue_max_bytes < 1024 || o->queue_max_appends < 1 ||
        o->max_topics < 1 || o->max_partitions < 1 ||
        o->on_corruption > SP_STORE_CORRUPTION_TRUNCATE)
        return -EINVAL;
    return 0;
}

/* ---- data directory and lock ------------------------------------------------ */

static int take_lock(sp_store *s, const char *dir)
{
    s->lockfd = openat(s->dirfd, LOCK_NAME, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (s->lockfd < 0)
        return -errno;
    if (flock(s->lockfd, LOCK_EX | LOCK_NB) < 0) {
        int err = errno == EWOULDBLOCK ? -EBUSY : -errno;
        char pid[32] = "";
        ssize_t n = pread(s->lockfd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        SP_LOG_ERROR("store: data directory is in use by another spate process",
                     SP_LF_STR("data_dir", dir) SP_LF_STR("holder_pid", pid));
        return err;
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(s->lockfd, 0) < 0 || pwrite(s->lockfd, pid, (size_t)n, 0) != n)
        return -errno;
    return 0;
}

static int open_subdir(sp_store *s, const char *name, int *out)
{
    int err = s->io->mkdirat(s->io->ctx, s->dirfd, name, 0755);
    if (err == 0)
        s->io->fsync_dir(s->io->ctx, s->dirfd);
    else if (err != -EEXIST)
        return err;
    *out = s->io->openat(s->io->ctx, s->dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0);
    return *out < 0 ? *out : 0;
}

static void clean_staging(sp_store *s)
{
    int fd = dup(s->staging_dirfd);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (!d) {
        if (fd >= 0)
            close(fd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            sp__rmtree(s->staging_dirfd, e->d_name);
    closedir(d);
}

static int open_dirs(sp_store *s, const char *dir)
{
    if (mkdir(dir, 0755) < 0 && errno != EEXIST)
        return -errno;
    s->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->dirfd < 0)
        return -errno;
    int err = take_lock(s, dir);
    if (!err)
        err = open_subdir(s, "topics", &s->topics_dirfd);
    if (!err)
        err = open_subdir(s, "staging", &s->staging_dirfd);
    if (!err)
        clean_staging(s);
    return err;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static void store_free(sp_store *s)
{
    sp__topics_free(s);
    close_fd(&s->topics_dirfd);
    close_fd(&s->staging_dirfd);
    close_fd(&s->lockfd); /* releases the flock */
    close_fd(&s->dirfd);
    sp_buf_free(&s->wbuf);
    free(s->round);
    pthread_rwlock_destroy(&s->topics_lock);
    pthread_mutex_destroy(&s->qmu);
    pthread_mutex_destroy(&s->wmu);
    pthread_cond_destroy(&s->qcond);
    pthread_cond_destroy(&s->flush_cond);
    free(s);
}

int sp_store_open(const char *dir, const sp_store_options *o, sp_store **out)
{
    sp_store_options def;
    if (!o) {
        sp_store_options_default(&def);
        o = &def;
    }
    int err = check_options(o);
    if (err < 0)
        return err;
    sp_store *s = sp_xcalloc(1, sizeof *s);
    s->opt = *o;
    s->io = o->io ? o->io : &sp__io_posix;
    s->dirfd = s->lockfd = s->topics_dirfd = s->staging_dirfd = -1;
    pthread_rwlock_init(&s->topics_lock, NULL);
    pthread_mutex_init(&s->qmu, NULL);
    pthread_mutex_init(&s->wmu, NULL);
    pthread_cond_init(&s->qcond, NULL);
    pthread_cond_init(&s->flush_cond, NULL);
    sp_buf_init(&s->wbuf, SP_BUF_UNLIMITED);
    if ((err = open_dirs(s, dir)) < 0 || (err = sp__topics_load(s)) < 0)
        goto fail;
    if ((err = -pthread_create(&s->writer, NULL, sp__writer_main, s)) < 0)
        goto fail;
    s->writer_started = true;
    *out = s;
    return 0;
fail:
    store_free(s);
    return err;
}

void sp_store_close(sp_store *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->qmu);
    s->stopping = true;
    pthread_cond_signal(&s->qcond);
    pthread_mutex_unlock(&s->qmu);
    if (s->writer_started)
        pthread_join(s->writer, NULL);
    for (sp_store_watch *w = s->watches, *next; w; w = next) {
        next = w->next;
        sp__topic_unref(w->topic);
        free(w);
    }
    store_free(s);
}

int sp_store_flush(sp_store *s)
{
    pthread_mutex_lock(&s->qmu);
    uint64_t ticket = ++s->flush_req;
    pthread_cond_signal(&s->qcond);
    while (s->flush_done < ticket)
        pthread_cond_wait(&s->flush_cond, &s->qmu);
    int err = s->flush_err;
    pthread_mutex_unlock(&s->qmu);
    return err;
}

/* ---- appends ------------------------------------------------------------------ */

static int pick_partition(sp__topic *t, int32_t partition, const sp_store_record *first,
                          uint32_t *out)
{
    if (partition == SP_STORE_PARTITION_ANY) {
        if (first->key.base)
            *out = sp__partition_for_key(first->key.base, first->key.len, t->nparts);
        else
            *out = atomic_fetch_add_explicit(&t->rr, 1, memory_order_relaxed) % t->nparts;
        return 0;
    }
    if (partition < 0 || (uint32_t)partition >= t->nparts)
        return -EINVAL;
    *out = (uint32_t)partition;
    return 0;
}

static int batch_size(const sp_store *s, const sp_store_record *recs, size_t n, size_t *out)
{
    size_t total = SP__BATCH_HDR;
    for (size_t i = 0; i < n; i++) {
        size_t sz = sp__record_size(&recs[i]);
        if (sz == 0 || sp__record_payload(&recs[i]) > s->opt.max_record_bytes)
            return -EMSGSIZE;
        total += sz;
        if (total > s->opt.queue_max_bytes || total > 0x7fffffffu)
            return -EMSGSIZE;
    }
    *out = total;
    return 0;
}

static int enqueue(sp_store *s, sp__append *a)
{
    int err = 0;
    pthread_mutex_lock(&s->qmu);
    if (s->stopping)
        err = -ESHUTDOWN;
    else if (s->q_appends >= s->opt.queue_max_appends ||
             s->q_bytes + a->len > s->opt.queue_max_bytes)
        err = -EAGAIN;
    if (!err) {
        if (s->qtail)
            s->qtail->next = a;
        else
            s->qhead = a;
        s->qtail = a;
        s->q_appends++;
        s->q_bytes += a->len;
        if (s->writer_idle)
            pthread_cond_signal(&s->qcond);
    }
    pthread_mutex_unlock(&s->qmu);
    return err;
}

int sp_store_append(sp_store *s, const char *topic, int32_t partition, const sp_store_record *recs,
                    size_t n, sp_store_append_cb cb, void *arg)
{
    if (n == 0 || !recs)
        return -EINVAL;
    if (n > s->opt.max_append_records)
        return -EMSGSIZE;
    size_t len;
    int err = batch_size(s, recs, n, &len);
    if (err < 0)
        return err;
    sp__topic *t = sp__topic_get(s, topic);
    if (!t)
        return -ENOENT;
    uint32_t pid;
    if ((err = pick_partition(t, partition, &recs[0], &pid)) < 0)
        goto fail;
    if (__atomic_load_n(&t->parts[pid].state, __ATOMIC_RELAXED) == -EUCLEAN) {
        err = -EUCLEAN;
        goto fail;
    }
    sp__append *a = sp_xmalloc(sizeof *a + len);
    memset(a, 0, sizeof *a);
    a->topic = t;
    a->part = &t->parts[pid];
    a->cb = cb;
    a->arg = arg;
    a->count = (uint32_t)n;
    a->len = len;
    a->ts = sp_time_now_ms();
    a->max_ts = sp__batch_encode_records(a->batch, recs, n, a->ts);
    if ((err = enqueue(s, a)) < 0) {
        free(a);
        goto fail;
    }
    return 0;
fail:
    sp__topic_unref(t);
    return err;
}

int sp_store_partition_for_key(sp_store *s, const char *topic, sp_slice key)
{
    sp__topic *t = sp__topic_get(s, topic);
    if (!t)
        return -ENOENT;
    int p = (int)sp__partition_for_key(key.base, key.len, t->nparts);
    sp__topic_unref(t);
    return p;
}

/* ---- watches ------------------------------------------------------------------- */

int sp_store_watch_add(sp_store *s, const char *topic, int32_t partition, sp_store_tail_cb cb,
                       void *arg, sp_store_watch **out)
{
    sp__topic *t = sp__topic_get(s, topic);
    if (!t)
        return -ENOENT;
    if (partition < SP_STORE_PARTITION_ANY ||
        (partition >= 0 && (uint32_t)partition >= t->nparts) || !cb) {
        sp__topic_unref(t);
        return -EINVAL;
    }
    sp_store_watch *w = sp_xcalloc(1, sizeof *w);
    w->topic = t;
    w->partition = partition;
    w->cb = cb;
    w->arg = arg;
    pthread_mutex_lock(&s->wmu);
    w->next = s->watches;
    s->watches = w;
    pthread_mutex_unlock(&s->wmu);
    *out = w;
    return 0;
}

static void watch_unlink_free(sp_store *s, sp_store_watch *w)
{
    for (sp_store_watch **pp = &s->watches; *pp; pp = &(*pp)->next) {
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    }
    sp__topic_unref(w->topic);
    free(w);
}

void sp_store_watch_remove(sp_store *s, sp_store_watch *w)
{
    /* From inside a tail callback the store thread already holds wmu. */
    if (s->writer_started && pthread_equal(pthread_self(), s->writer) && s->notifying) {
        w->dead = true;
        return;
    }
    pthread_mutex_lock(&s->wmu);
    watch_unlink_free(s, w);
    pthread_mutex_unlock(&s->wmu);
}

void sp__notify(sp_store *s, sp__partition *p, uint64_t end)
{
    pthread_mutex_lock(&s->wmu);
    if (!s->watches) {
        pthread_mutex_unlock(&s->wmu);
        return;
    }
    s->notifying = true;
    for (sp_store_watch *w = s->watches; w; w = w->next)
        if (!w->dead && w->topic == p->topic &&
            (w->partition < 0 || (uint32_t)w->partition == p->id))
            w->cb(w->arg, p->topic->name, p->id, end);
    s->notifying = false;
    for (sp_store_watch *w = s->watches, *next; w; w = next) {
        next = w->next;
        if (w->dead)
            watch_unlink_free(s, w);
    }
    pthread_mutex_unlock(&s->wmu);
}

void sp_store_get_stats(sp_store *s, sp_store_stats *o)
{
    memset(o, 0, sizeof *o);
    o->appends = atomic_load(&s->st_appends);
    o->records = atomic_load(&s->st_records);
    o->bytes_written = atomic_load(&s->st_bytes);
    o->fsyncs = atomic_load(&s->st_fsyncs);
    o->fsync_errors = atomic_load(&s->st_fsync_errors);
    o->write_errors = atomic_load(&s->st_write_errors);
    o->group_commits = atomic_load(&s->st_groups);
    o->rolls = atomic_load(&s->st_rolls);
    o->segments_deleted = atomic_load(&s->st_deleted);
    pthread_mutex_lock(&s->qmu);
    o->queue_appends = s->q_appends;
    o->queue_bytes = s->q_bytes;
    pthread_mutex_unlock(&s->qmu);
}
