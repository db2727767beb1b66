/* helpers.h - shared by the store tests: temp dirs, synchronous appends,
 * deterministic record contents. Header-only (static functions) so every
 * test binary stays a single translation unit plus this. */
#ifndef SP_TESTS_STORE_HELPERS_H
#define SP_TESTS_STORE_HELPERS_H

#include <errno.h>
#include <ftw.h>
#include <sys/stat.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"

static inline char *th_tmpdir_in(const char *base, const char *tag)
{
    char tmpl[256];
    snprintf(tmpl, sizeof tmpl, "%s/spate-%s-XXXXXX", base, tag);
    char *d = mkdtemp(tmpl);
    if (!d)
        abort();
    return strdup(d);
}

static inline char *th_tmpdir(const char *tag)
{
    return th_tmpdir_in("/tmp", tag);
}

/* A RAM-backed directory when there is one: for tests that reopen a store
 * thousands of times and do not measure the disk. */
static inline char *th_tmpdir_fast(const char *tag)
{
    return th_tmpdir_in(access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp", tag);
}

static inline int th_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static inline void th_rmrf(const char *dir)
{
    if (nftw(dir, th_rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
        fprintf(stderr, "warning: cannot remove %s\n", dir);
}

/* A completion that a test thread can wait for. */
typedef struct th_wait {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int pending;
    int errors;
    sp_store_ack last;
} th_wait;

static inline void th_wait_init(th_wait *w)
{
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->pending = 0;
    w->errors = 0;
    memset(&w->last, 0, sizeof w->last);
}

static inline void th_wait_destroy(th_wait *w)
{
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
}

static inline void th_ack_cb(void *arg, const sp_store_ack *ack)
{
    th_wait *w = arg;
    pthread_mutex_lock(&w->mu);
    w->last = *ack;
    if (ack->status)
        w->errors++;
    w->pending--;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static inline void th_wait_all(th_wait *w)
{
    pthread_mutex_lock(&w->mu);
    while (w->pending > 0)
        pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
}

/* Appends and waits for the completion. Returns the call's error, or the
 * ack status; *ack gets the ack. */
static inline int th_append_sync(sp_store *s, const char *topic, int32_t part,
                                 const sp_store_record *r, size_t n, sp_store_ack *ack)
{
    th_wait w;
    th_wait_init(&w);
    w.pending = 1;
    int err = sp_store_append(s, topic, part, r, n, th_ack_cb, &w);
    if (err == 0) {
        th_wait_all(&w);
        err = w.last.status;
        if (ack)
            *ack = w.last;
    }
    th_wait_destroy(&w);
    return err;
}

static inline int th_append_value(sp_store *s, const char *topic, int32_t part, const char *value,
                                  sp_store_ack *ack)
{
    sp_store_record r = {.timestamp = -1, .value = sp_slice_cstr(value)};
    return th_append_sync(s, topic, part, &r, 1, ack);
}

/* Deterministic record value for sequence number `seq`: "seq=<n>;" followed
 * by pseudo-random filler of a length that depends on seq. */
static inline size_t th_make_value(uint64_t seq, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "seq=%" PRIu64 ";", seq);
    uint64_t x = seq * 0x9E3779B97F4A7C15ull + 1;
    size_t len = (size_t)n + 8 + (size_t)(x >> 59) * 7; /* 8..225 extra bytes */
    if (len > cap)
        len = cap;
    for (size_t i = (size_t)n; i < len; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        buf[i] = (char)('a' + (x % 26));
    }
    return len;
}

/* Returns 1 when `v` is exactly th_make_value(seq). */
static inline int th_check_value(uint64_t seq, sp_slice v)
{
    char buf[512];
    size_t len = th_make_value(seq, buf, sizeof buf);
    return v.len == len && memcmp(v.base, buf, len) == 0;
}

static inline sp_store_topic_config th_cfg(uint32_t parts, uint64_t segment_bytes)
{
    sp_store_topic_config c = {.partitions = parts, .segment_bytes = segment_bytes};
    return c;
}

/* Reads the whole partition; calls fn for each record; returns count or -errno. */
typedef int (*th_rec_fn)(void *arg, const sp_store_record *r);
static inline long th_read_all(sp_store *s, const char *topic, uint32_t part, th_rec_fn fn,
                               void *arg)
{
    uint64_t from = 0;
    long total = 0;
    for (;;) {
        sp_store_records recs;
        int err = sp_store_read(s, topic, part, from, 1000, 256 * 1024, &recs);
        if (err < 0)
            return err;
        for (size_t i = 0; i < recs.count; i++) {
            if (fn && fn(arg, &recs.records[i]) < 0) {
                sp_store_records_free(&recs);
                return -EBADMSG;
            }
            total++;
        }
        bool done = recs.count == 0 || recs.next_offset >= recs.end_offset;
        from = recs.next_offset;
        sp_store_records_free(&recs);
        if (done)
            return total;
    }
}

#endif
