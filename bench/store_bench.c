/* store_bench.c - in-process throughput of the embedded log.
 *
 *   store_bench DIR MODE RECORD_BYTES APPENDERS BATCH SECONDS
 *
 * An "appender" is a logical producer that keeps exactly one sp_store_append
 * call in flight, each carrying BATCH records (BATCH = 1: one record per
 * append). When its completion fires (on the store thread) the appender is
 * queued to submit again; one submitting thread (this main thread) encodes
 * and submits for all appenders, so the machine's second core runs the
 * store thread. Everything goes to one partition of one topic. After the
 * append phase the partition is read back from offset 0.
 *
 * Prints one line: mode bytes appenders batch records/s MB/s fsyncs/s
 * records_per_fsync read_records/s read_MB/s. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/time.h"
#include "store/store.h"

typedef struct bench {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint32_t *ready; /* appender ids ready to submit (ring) */
    size_t head, count, cap;
    _Atomic uint64_t records, errors;
} bench;

static void push_ready(bench *b, uint32_t id)
{
    pthread_mutex_lock(&b->mu);
    b->ready[(b->head + b->count) % b->cap] = id;
    b->count++;
    pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

static void on_ack(void *arg, const sp_store_ack *ack)
{
    bench *b = arg;
    if (ack->status)
        atomic_fetch_add(&b->errors, 1);
    else
        atomic_fetch_add(&b->records, ack->count);
    push_ready(b, 0);
}

static bool pop_ready(bench *b, uint64_t deadline_ns)
{
    pthread_mutex_lock(&b->mu);
    while (b->count == 0 && sp_time_mono_ns() < deadline_ns) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 1000000;
        if (ts.tv_nsec >= 1000000000)
            ts.tv_sec++, ts.tv_nsec -= 1000000000;
        pthread_cond_timedwait(&b->cv, &b->mu, &ts);
    }
    bool ok = b->count > 0;
    if (ok)
        b->head = (b->head + 1) % b->cap, b->count--;
    pthread_mutex_unlock(&b->mu);
    return ok;
}

static int parse_mode(const char *m, sp_store_fsync_mode *out)
{
    if (!strcmp(m, "always"))
        *out = SP_STORE_FSYNC_ALWAYS;
    else if (!strcmp(m, "interval"))
        *out = SP_STORE_FSYNC_INTERVAL;
    else if (!strcmp(m, "never"))
        *out = SP_STORE_FSYNC_NEVER;
    else
        return -1;
    return 0;
}

static void read_back(sp_store *s, double *rps, double *mbps)
{
    uint64_t from = 0, n = 0, bytes = 0, t0 = sp_time_mono_ns();
    for (;;) {
        sp_store_records r;
        if (sp_store_read(s, "bench", 0, from, 100000, 4u << 20, &r) != 0)
            break;
        for (size_t i = 0; i < r.count; i++)
            bytes += r.records[i].value.len;
        n += r.count;
        from = r.next_offset;
        bool done = r.count == 0;
        sp_store_records_free(&r);
        if (done)
            break;
    }
    double secs = (double)(sp_time_mono_ns() - t0) / 1e9;
    *rps = (double)n / secs;
    *mbps = (double)bytes / secs / 1e6;
}

int main(int argc, char **argv)
{
    sp_store_fsync_mode mode;
    if (argc != 7 || parse_mode(argv[2], &mode) < 0) {
        fprintf(
            stderr,
            "usage: store_bench DIR always|interval|never RECORD_BYTES APPENDERS BATCH SECONDS\n");
        return 2;
    }
    size_t rec_bytes = (size_t)atol(argv[3]), batch = (size_t)atol(argv[5]);
    uint32_t appenders = (uint32_t)atol(argv[4]);
    double seconds = atof(argv[6]);
    sp_log_set_level(SP_LOG_LEVEL_WARN);
    sp_store_options o;
    sp_store_options_default(&o);
    o.fsync = mode;
    o.fsync_interval_ms = 1000;
    o.segment_bytes = 256u << 20;
    o.retention_ms = 0;
    o.queue_max_bytes = 256u << 20;
    sp_store *s;
    int err = sp_store_open(argv[1], &o, &s);
    if (err) {
        fprintf(stderr, "open: %s\n", strerror(-err));
        return 1;
    }
    sp_store_topic_config c = {.partitions = 1, .retention_ms = -1};
    sp_store_topic_create(s, "bench", &c);
    char *payload = malloc(rec_bytes);
    memset(payload, 'v', rec_bytes);
    sp_store_record *recs = calloc(batch, sizeof *recs);
    for (size_t i = 0; i < batch; i++)
        recs[i] = (sp_store_record){.timestamp = -1, .value = {payload, rec_bytes}};
    bench b = {.cap = appenders};
    pthread_mutex_init(&b.mu, NULL);
    pthread_cond_init(&b.cv, NULL);
    b.ready = calloc(appenders, sizeof *b.ready);
    for (uint32_t i = 0; i < appenders; i++)
        push_ready(&b, i);
    sp_store_stats st0, st1;
    sp_store_get_stats(s, &st0);
    uint64_t t0 = sp_time_mono_ns(), deadline = t0 + (uint64_t)(seconds * 1e9);
    while (pop_ready(&b, deadline)) {
        if (sp_time_mono_ns() >= deadline) {
            push_ready(&b, 0);
            break;
        }
        while ((err = sp_store_append(s, "bench", 0, recs, batch, on_ack, &b)) == -EAGAIN)
            usleep(50);
        if (err) {
            fprintf(stderr, "append: %s\n", strerror(-err));
            return 1;
        }
    }
    /* drain: wait for every appender to be back */
    pthread_mutex_lock(&b.mu);
    while (b.count < appenders)
        pthread_cond_wait(&b.cv, &b.mu);
    pthread_mutex_unlock(&b.mu);
    double secs = (double)(sp_time_mono_ns() - t0) / 1e9;
    sp_store_get_stats(s, &st1);
    uint64_t recs_done = atomic_load(&b.records);
    uint64_t fsyncs = st1.fsyncs - st0.fsyncs;
    double rrps, rmbps;
    read_back(s, &rrps, &rmbps);
    printf("%-8s %6zu %5u %5zu %12.0f %9.1f %9.0f %10.1f %12.0f %9.1f\n", argv[2], rec_bytes,
           appenders, batch, (double)recs_done / secs,
           (double)recs_done * (double)rec_bytes / secs / 1e6, (double)fsyncs / secs,
           fsyncs ? (double)recs_done / (double)fsyncs : 0.0, rrps, rmbps);
    if (atomic_load(&b.errors))
        fprintf(stderr, "%" PRIu64 " appends failed\n", (uint64_t)atomic_load(&b.errors));
    sp_store_close(s);
    free(b.ready);
    free(recs);
    free(payload);
    return 0;
}
